export { idMatchesCertificate } from './identity.js';
export { equalConstantTime, pskAuthData, verifyPskAuth } from './psk.js';
export { idPayloadBody, signedOctets } from './signed-octets.js';
export {
  chooseSignatureScheme,
  parseSignatureAuthData,
  signatureAuthData,
  verifySignatureAuth,
} from './signature.js';
