#!/bin/sh
# Regenerates the X.509 test fixtures of libs/crypto (run once; the outputs are committed).
#   ca-ecdsa:   self-signed ECDSA P-256 CA (the trust anchor)
#   ee-ecdsa:   ECDSA P-256 end entity issued by ca-ecdsa, SAN DNS + IP
#   ee-rsa:     RSA-2048 end entity issued by ca-ecdsa, SAN email
#   other-ca:   an unrelated ECDSA CA (for "untrusted issuer" tests)
#   ed25519:    an Ed25519 key pair (RFC 8420 signatures; no certificate)
# Tests take "now" from the certificates' own validity, so the 10-year lifetime never matters.
set -eu
cd "$(dirname "$0")"
DAYS=3650
openssl ecparam -name prime256v1 -genkey -noout -out ca-ecdsa.key.tmp
openssl pkcs8 -topk8 -nocrypt -in ca-ecdsa.key.tmp -out ca-ecdsa.key && rm ca-ecdsa.key.tmp
openssl req -x509 -new -key ca-ecdsa.key -sha256 -days "$DAYS" -subj "/C=CH/O=ikegate test/CN=ikegate test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -addext "subjectKeyIdentifier=hash" -out ca-ecdsa.pem

openssl ecparam -name prime256v1 -genkey -noout -out other-ca.key.tmp
openssl pkcs8 -topk8 -nocrypt -in other-ca.key.tmp -out other-ca.key && rm other-ca.key.tmp
openssl req -x509 -new -key other-ca.key -sha256 -days "$DAYS" -subj "/C=CH/O=ikegate test/CN=ikegate test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out other-ca.pem

ext() { printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectAltName=%s\n' "$1"; }

openssl ecparam -name prime256v1 -genkey -noout -out ee-ecdsa.key.tmp
openssl pkcs8 -topk8 -nocrypt -in ee-ecdsa.key.tmp -out ee-ecdsa.key && rm ee-ecdsa.key.tmp
openssl req -new -key ee-ecdsa.key -subj "/C=CH/O=ikegate test/CN=gw.example.org" -out ee-ecdsa.csr
ext "DNS:gw.example.org,IP:192.0.2.1" > ee-ecdsa.ext
openssl x509 -req -in ee-ecdsa.csr -CA ca-ecdsa.pem -CAkey ca-ecdsa.key -CAcreateserial -sha256 -days "$DAYS" \
  -extfile ee-ecdsa.ext -out ee-ecdsa.pem

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out ee-rsa.key
openssl req -new -key ee-rsa.key -subj "/C=CH/O=ikegate test/CN=road warrior" -out ee-rsa.csr
ext "email:carol@example.org" > ee-rsa.ext
openssl x509 -req -in ee-rsa.csr -CA ca-ecdsa.pem -CAkey ca-ecdsa.key -CAcreateserial -sha256 -days "$DAYS" \
  -extfile ee-rsa.ext -out ee-rsa.pem

openssl genpkey -algorithm ED25519 -out ed25519.key
openssl pkey -in ed25519.key -pubout -out ed25519.pub

rm -f ./*.csr ./*.ext ./*.srl
