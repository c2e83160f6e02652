/**
 * A throwaway PKI for tests: a CA and leaf certificates (ECDSA P-256) named by subject CN, made
 * with the openssl CLI into a directory the caller owns. Paths only; nothing is cached.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestPki {
  readonly ca: string;
  /** A leaf: certificate and key files. */
  /** `san`: the subjectAltName entries (default DNS:ikegate-relay), e.g. `IP:127.0.0.1`. */
  issue(name: string, cn: string, san?: string): { readonly certificate: string; readonly key: string };
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA named `caName` in `dir` (`<caName>.pem`, `<caName>.key`) that issues leaves on demand. */
export function makeTestPki(dir: string, caName = 'relay-ca'): TestPki {
  const ca = join(dir, `${caName}.pem`);
  const caKey = join(dir, `${caName}.key`);
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    `/CN=${caName}`,
    '-days',
    '2',
    '-keyout',
    caKey,
    '-out',
    ca,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return {
    ca,
    issue(name: string, cn: string, san = 'DNS:ikegate-relay') {
      const key = join(dir, `${name}.key`);
      const csr = join(dir, `${name}.csr`);
      const certificate = join(dir, `${name}.pem`);
      const ext = join(dir, `${name}.ext`);
      writeFileSync(
        ext,
        `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${san}\n`,
      );
      openssl([
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-subj',
        `/CN=${cn}`,
        '-keyout',
        key,
        '-out',
        csr,
      ]);
      openssl([
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        ca,
        '-CAkey',
        caKey,
        '-CAcreateserial',
        '-days',
        '2',
        '-extfile',
        ext,
        '-out',
        certificate,
      ]);
      return { certificate, key };
    },
  };
}
