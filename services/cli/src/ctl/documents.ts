/**
 * Peer documents from a file for `ctl peer add|set`: YAML or JSON (JSON is YAML), holding one peer
 * mapping, a list of them, several `---` documents, or a config file's `peers:` section. The
 * documents go to the API as they are (it validates them, field by field); here only the file's
 * syntax is checked.
 *
 * Secrets: a PSK written in the file is collected so that whatever is printed can be scrubbed of
 * it, and parse errors name a line and column but never quote the text (it may be the PSK line).
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { CtlInputError } from './errors.js';

export interface PeerDocument {
  readonly value: unknown;
  /** `peers.yaml`, or `peers.yaml[2]` when the file holds several. */
  readonly where: string;
  /** The document's name, when it has one that is a string. */
  readonly name?: string;
}

export interface PeerFile {
  readonly documents: readonly PeerDocument[];
  /** PSKs written in the file: never to be printed. */
  readonly secrets: readonly string[];
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The YAML library's message without its excerpt of the text: the first line, up to " at line". */
function scrubbed(message: string): string {
  return (message.split('\n', 1)[0] ?? '').replace(/ at line \d+.*$/, '').replace(/:$/, '');
}

/** Reads and parses `file`; throws CtlInputError when it cannot be read or is not YAML/JSON. */
export function readPeerFile(file: string): PeerFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CtlInputError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const parsed = parseAllDocuments(text, { prettyErrors: false });
  const docs = Array.isArray(parsed) ? parsed : [];
  const values: unknown[] = [];
  for (const d of docs) {
    const e = d.errors[0];
    if (e) {
      // prettyErrors would quote the text around the error; the position is enough.
      const before = text.slice(0, e.pos[0]).split('\n');
      const at = `${before.length}:${before.at(-1)!.length + 1}`;
      throw new CtlInputError(`${file}:${at}: not valid YAML or JSON: ${scrubbed(e.message)}`);
    }
    const v: unknown = d.toJS({ maxAliasCount: 100 });
    if (v === null || v === undefined) continue;
    if (Array.isArray(v)) values.push(...(v as unknown[]));
    else if (isMapping(v) && Array.isArray(v.peers) && !('id' in v)) values.push(...(v.peers as unknown[]));
    else values.push(v);
  }
  if (values.length === 0) throw new CtlInputError(`${file}: holds no peer document`);
  const secrets: string[] = [];
  const documents = values.map((value, i): PeerDocument => {
    if (isMapping(value) && isMapping(value.auth) && typeof value.auth.psk === 'string')
      secrets.push(value.auth.psk);
    const name = isMapping(value) && typeof value.name === 'string' ? value.name : undefined;
    return {
      value,
      where: values.length === 1 ? file : `${file}[${i}]`,
      ...(name !== undefined ? { name } : {}),
    };
  });
  return { documents, secrets };
}
