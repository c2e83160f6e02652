/**
 * `ctl token new`: a new API token, offline. The token goes to stdout, once, and nowhere else;
 * stderr gets the access-file line that admits it, which holds only the token's SHA-256
 * (services/control/src/access.ts: `newToken()`, `tokenHash()`).
 */
import { newToken, type Role, tokenHash } from '@ikegate/control';
import { type CtlCommand, str } from './context.js';
import { CtlUsageError } from './errors.js';

const ROLES = ['viewer', 'operator', 'admin'] as const satisfies readonly Role[];
/** An access-file entry name (access.ts NAME): it is the actor in audit lines. */
const NAME = /^[A-Za-z0-9_.@:-]{1,64}$/;
/** What newToken() makes: a name must not be one (it is printed in audit logs). */
const LOOKS_LIKE_TOKEN = /^ikgi?_[A-Za-z0-9_-]{20,}$/;

export const TOKEN_USAGE = {
  token: `usage: ikegate ctl token new --name NAME --role viewer|operator|admin

Makes a new API token without contacting the API. The token is printed on stdout, once: keep it
in a file only you can read and give that file to --token-file. On stderr, the line to add under
tokens: in the API access file (control.accessFile); it holds only the token's SHA-256. The API
reloads the access file within a second or so.
  --name NAME             who holds the token: the actor in audit lines (letters, digits, _ . @ : -)
  --role ROLE             viewer (read), operator (also SA commands and drains), admin (everything)
  -h, --help              show this text
`,
} as const;

export const TOKEN_COMMANDS: readonly CtlCommand[] = [
  {
    words: ['token', 'new'],
    args: [],
    options: ['name', 'role'],
    offline: true,
    async run(ctx, _args, values) {
      const name = str(values, 'name');
      const role = str(values, 'role');
      if (name === undefined || role === undefined)
        throw new CtlUsageError('token new needs --name and --role');
      if (!NAME.test(name) || LOOKS_LIKE_TOKEN.test(name))
        throw new CtlUsageError('--name must be 1-64 of letters, digits, _ . @ : - (and not a token)');
      if (!(ROLES as readonly string[]).includes(role))
        throw new CtlUsageError(
          `--role must be one of ${ROLES.join(', ')}${/^[a-z]{1,16}$/.test(role) ? `, got ${role}` : ''}`,
        );
      const token = newToken();
      ctx.out(`${token}\n`);
      ctx.err(
        `Add this line under tokens: in the API access file; the token above is not shown again:\n` +
          `  - { name: ${JSON.stringify(name)}, role: ${role}, sha256: "${tokenHash(token)}" }\n`,
      );
    },
  },
];
