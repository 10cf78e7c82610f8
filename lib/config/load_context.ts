/**
 * What the steps of one configuration load share: the I/O, BaseDirectory and how paths resolve
 * against it, where each setting was set, and the lists every step appends to (the files read,
 * for reload; the mistakes, thrown together at the end so `dkimd check-config` reports them all
 * in one run). One object, so each step (data sets, databases, scripts, keys) takes the same
 * thing instead of the same six parameters; and one way to say a file could not be read.
 *
 * @module
 */

import type { PrivateKeyInfo } from "../policy/key_table.ts";
import type { Origin, SourceError } from "../policy/origin.ts";
import { ConfigError } from "./config_error.ts";
import type { LoadIo } from "./load_io.ts";
import type { SettingField } from "./schema.ts";

/** The state one load's steps share; each step appends to `files` and `errors`. */
export interface LoadContext<K extends PrivateKeyInfo> {
  /** The I/O the load was given. */
  readonly io: LoadIo<K>;
  /** BaseDirectory, absolute (the working directory when it is not set). */
  readonly base: string;
  /** A path as written in the configuration, against {@link base}, normalized. */
  readonly resolve: (path: string) => string;
  /** Where a setting was set (the configuration file, line 0, when it was not). */
  readonly originOf: (field: SettingField) => Origin;
  /** Every file read so far: the configuration, includes, data sets, scripts and keys. */
  readonly files: string[];
  /** Every mistake found so far. */
  readonly errors: SourceError[];
}

/**
 * The error for a setting's file that cannot be read (or is not what the setting wants), in
 * the one wording every setting uses: `Cannot read "Setting"` at where it was set.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cannotRead } from "./load_context.ts";
 * const e = cannotRead("ReplaceRules", { file: "/etc/opendkim.conf", line: 3 }, "No such file");
 * assert.equal(e.setting, "ReplaceRules");
 * assert.match(e.message, /Cannot read "ReplaceRules"/);
 * ```
 */
export function cannotRead(
  setting: string,
  at: Origin,
  detail: string,
  cause?: unknown,
): ConfigError {
  return new ConfigError(`Cannot read "${setting}"`, at, detail, {
    setting,
    ...(cause === undefined ? {} : { cause }),
  });
}
