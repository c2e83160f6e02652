/**
 * The one error this package throws. Validation collects every problem it finds before throwing,
 * so an operator fixes a configuration file in one pass instead of one error per restart.
 */

export interface ConfigIssue {
  /** Dotted field path with indices, e.g. `peers[1].auth.psk`; `(root)` for the document itself. */
  readonly path: string;
  readonly message: string;
}

export class ConfigError extends Error {
  readonly code = 'IKEGATE_ERR_CONFIG';
  /** Where the text came from: a file path, or `<string>`. */
  readonly source: string;
  readonly issues: readonly ConfigIssue[];

  constructor(source: string, issues: readonly ConfigIssue[]) {
    const n = issues.length;
    super(
      `${source}: invalid configuration (${n} ${n === 1 ? 'error' : 'errors'})\n` +
        issues.map((i) => `  ${i.path}: ${i.message}`).join('\n'),
    );
    this.name = 'ConfigError';
    this.source = source;
    this.issues = issues;
  }
}
