/**
 * Where a setting or a table entry came from (file and line, plus the YAML path for YAML
 * configurations), and the one error type that names it. Every configuration and policy error in
 * dkimd says `file:line`, so an operator can go straight to the mistake.
 *
 * @module
 */

/** The place a value was read from. Lines count from 1; line 0 means the whole file. */
export interface Origin {
  /** The file the value was read from, as it was named (not resolved). */
  readonly file: string;
  /** The 1-based line number, or 0 for the file as a whole (it could not be read). */
  readonly line: number;
  /** For YAML, the path of the node (`keyTable.mail.keyFile`); absent for flat files. */
  readonly path?: string;
}

/**
 * Formats an origin as `file:line` (just `file` for line 0), with the YAML path in parentheses
 * when there is one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatOrigin } from "./origin.ts";
 * assert.equal(formatOrigin({ file: "/etc/opendkim.conf", line: 12 }), "/etc/opendkim.conf:12");
 * assert.equal(formatOrigin({ file: "d.yaml", line: 3, path: "keyTable.a" }), "d.yaml:3 (keyTable.a)");
 * assert.equal(formatOrigin({ file: "/etc/opendkim.conf", line: 0 }), "/etc/opendkim.conf");
 * ```
 */
export function formatOrigin(origin: Origin): string {
  const base = origin.line > 0 ? `${origin.file}:${origin.line}` : origin.file;
  return origin.path ? `${base} (${origin.path})` : base;
}

/**
 * A mistake in a configuration file or a data set, at a known place. `file` and `line` name
 * it; the message names it too, so logging `error.message` alone is enough.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SourceError } from "./origin.ts";
 * const e = new SourceError('Cannot parse "Mode"', { file: "a.conf", line: 2 }, 'unknown mode "x"');
 * assert.equal(e.message, 'Cannot parse "Mode" at a.conf:2: unknown mode "x"');
 * assert.equal(e.line, 2);
 * assert.ok(e instanceof SyntaxError);
 * ```
 */
export class SourceError extends SyntaxError {
  /** Where the mistake is. */
  readonly origin: Origin;
  /** The file that holds the mistake. */
  readonly file: string;
  /** The 1-based line of the mistake. */
  readonly line: number;
  /** The problem on its own, without the place: what the message says after the colon. */
  readonly detail: string;

  /**
   * Makes an error whose message is `${what} at ${file:line}: ${detail}`. `what` is a short
   * sentence-case summary such as `Cannot parse "Canonicalization"`.
   */
  constructor(what: string, origin: Origin, detail: string, options?: ErrorOptions) {
    super(`${what} at ${formatOrigin(origin)}: ${detail}`, options);
    this.name = "SourceError";
    this.origin = origin;
    this.file = origin.file;
    this.line = origin.line;
    this.detail = detail;
  }
}

/**
 * Something legal but probably not what the operator meant, or an OpenDKIM setting dkimd
 * ignores. The message already names the place; `origin` is there for tools.
 */
export interface SourceWarning {
  /** Sentence-case text naming the setting, the place and what dkimd does about it. */
  readonly message: string;
  /** Where the warned-about text is. */
  readonly origin: Origin;
}
