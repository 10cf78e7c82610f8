/**
 * Command-line parsing shared by the commands: `node:util` parseArgs (standing in for JSR's
 * `@std/cli`), with errors turned into one plain line that names the flag.
 *
 * @module
 */
import { errorMessage } from "../error_message.ts";
import { parseArgs, type ParseArgsConfig } from "node:util";

/** A usage mistake: the command prints the message and exits with status 2. */
export class UsageError extends Error {
  /** Makes an error with `message`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}

/** The option specs parseArgs takes. */
export type OptionSpecs = NonNullable<ParseArgsConfig["options"]>;

/**
 * Parses `args` for `command`, strictly: an unknown option, a missing value or a stray extra
 * argument is a {@link UsageError} that names it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCommandArgs } from "./args.ts";
 * const { values, positionals } = parseCommandArgs("sign", ["-d", "example.com", "msg.eml"], {
 *   domain: { type: "string", short: "d" },
 * });
 * assert.equal(values.domain, "example.com");
 * assert.deepEqual(positionals, ["msg.eml"]);
 * assert.throws(() => parseCommandArgs("sign", ["--nope"], {}), /unknown option "--nope"/);
 * ```
 */
export function parseCommandArgs<T extends OptionSpecs>(
  command: string,
  args: readonly string[],
  options: T,
  maxPositionals = 1,
) {
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options, strict: true, allowPositionals: true });
  } catch (e) {
    throw new UsageError(`${command}: ${describeParseError(e)}`, { cause: e });
  }
  if (parsed.positionals.length > maxPositionals) {
    throw new UsageError(
      `${command}: unexpected argument "${parsed.positionals[maxPositionals]}"`,
    );
  }
  return parsed;
}

function describeParseError(e: unknown): string {
  const text = errorMessage(e);
  const unknown = text.match(/Unknown option '([^']+)'/);
  if (unknown) return `unknown option "${unknown[1]}"`;
  const missing = text.match(/Option '(?:-\w, )?([^' ]+)[^']*' argument missing/);
  if (missing) return `option "${missing[1]}" needs a value`;
  return text.replace(/\. To specify.*$/s, "");
}

/** Parses a whole number flag value, naming the flag when it is not one. */
export function intFlag(
  command: string,
  flag: string,
  value: string | undefined,
  min = 0,
): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(
      `${command}: --${flag} needs a whole number of at least ${min}, not "${value}"`,
    );
  }
  return Number(value);
}
