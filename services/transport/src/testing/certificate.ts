/**
 * A throwaway self-signed certificate for TLS tests (openssl; never hand-rolled): P-256, one day,
 * the name in both the CN and a subjectAltName, so clients can verify it against itself as CA.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function testCertificate(name: string): { readonly certificate: string; readonly key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ikegate-test-cert-'));
  try {
    const keyFile = join(dir, 'key.pem');
    const certFile = join(dir, 'cert.pem');
    const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    args.push('-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`, '-days', '1');
    execFileSync('openssl', [...args, '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
    return { certificate: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
