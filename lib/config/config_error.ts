/**
 * Configuration errors and warnings. Every error names `file:line` (and the YAML path for
 * YAML); loading collects all of them, so one run of `dkimd check-config` lists every mistake,
 * and throws one {@link ConfigError}, or a {@link ConfigErrors} holding several.
 *
 * @module
 */

import { type Origin, SourceError, type SourceWarning } from "../policy/origin.ts";

/**
 * A configuration mistake at a known place: a bad value, an unknown setting, a missing file,
 * an unsafe key file. `setting` names the setting when there is one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConfigError } from "./config_error.ts";
 * const e = new ConfigError(
 *   'Cannot parse "Canonicalization"',
 *   { file: "/etc/opendkim.conf", line: 12 },
 *   'expected "simple" or "relaxed"',
 *   { setting: "Canonicalization" },
 * );
 * assert.equal(e.message, 'Cannot parse "Canonicalization" at /etc/opendkim.conf:12: expected "simple" or "relaxed"');
 * assert.ok(e instanceof SyntaxError);
 * ```
 */
export class ConfigError extends SourceError {
  /** The setting the mistake is in, when it is in one. */
  readonly setting?: string;

  /** Makes an error; the message is `${what} at ${file:line}: ${detail}`. */
  constructor(
    what: string,
    origin: Origin,
    detail: string,
    options: ErrorOptions & { setting?: string } = {},
  ) {
    const { setting, ...errorOptions } = options;
    super(what, origin, detail, errorOptions);
    this.name = "ConfigError";
    if (setting !== undefined) this.setting = setting;
  }
}

/**
 * Several configuration mistakes found in one load. `errors` lists them in file order; the
 * message lists every one, one per line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConfigError, ConfigErrors } from "./config_error.ts";
 * const at = (line: number) => ({ file: "c", line });
 * const e = new ConfigErrors([
 *   new ConfigError("A", at(1), "x"),
 *   new ConfigError("B", at(2), "y"),
 * ]);
 * assert.equal(e.errors.length, 2);
 * assert.match(e.message, /^2 configuration errors:\nA at c:1: x\nB at c:2: y$/);
 * ```
 */
export class ConfigErrors extends AggregateError {
  /** The errors, each naming its place. */
  declare readonly errors: SourceError[];

  /** Makes one error out of several. */
  constructor(errors: readonly SourceError[], options?: ErrorOptions) {
    super(
      [...errors],
      `${errors.length} configuration errors:\n${errors.map((e) => e.message).join("\n")}`,
      options,
    );
    this.name = "ConfigErrors";
  }
}

/** A warning about a configuration: legal, but ignored or probably not what was meant. */
export interface ConfigWarning extends SourceWarning {
  /** The setting the warning is about, when there is one. */
  readonly setting?: string;
}

/**
 * Throws when `errors` is not empty: the error itself when there is one, a
 * {@link ConfigErrors} when there are several.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConfigError, throwIfErrors } from "./config_error.ts";
 * throwIfErrors([]);
 * assert.throws(() => throwIfErrors([new ConfigError("A", { file: "c", line: 1 }, "x")]), ConfigError);
 * ```
 */
export function throwIfErrors(errors: readonly SourceError[]): void {
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new ConfigErrors(errors);
}
