/**
 * Credentials for tests that call the control API of a real `ikegate` process: an access file
 * (control.accessFile) with one fresh token per role, and the header to send. The tokens are random
 * per call; the file holds only their SHA-256 (as in production).
 */
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type ApiRole = 'viewer' | 'operator' | 'admin';

export interface ApiAccess {
  /** The access file's path: put it in the config as `control: { accessFile: <file> }`. */
  readonly file: string;
  readonly tokens: Readonly<Record<ApiRole, string>>;
  /** `{ authorization: 'Bearer …' }` for a role (admin by default). */
  headers(role?: ApiRole): { authorization: string };
}

/** Writes `<dir>/access.yaml` with a viewer, an operator and an admin token. */
export function writeApiAccess(dir: string): ApiAccess {
  const tokens = {
    viewer: `ikg_${randomBytes(32).toString('base64url')}`,
    operator: `ikg_${randomBytes(32).toString('base64url')}`,
    admin: `ikg_${randomBytes(32).toString('base64url')}`,
  };
  const file = join(dir, 'access.yaml');
  const sha = (t: string) => createHash('sha256').update(t, 'utf8').digest('hex');
  writeFileSync(
    file,
    `tokens:\n${(Object.keys(tokens) as ApiRole[])
      .map((r) => `  - { name: test-${r}, role: ${r}, sha256: ${sha(tokens[r])} }`)
      .join('\n')}\n`,
    { mode: 0o600 },
  );
  return { file, tokens, headers: (role = 'admin') => ({ authorization: `Bearer ${tokens[role]}` }) };
}
