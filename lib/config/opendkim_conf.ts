/**
 * The opendkim.conf reader. Syntax as OpenDKIM's `config.c` reads it (opendkim.conf(5)):
 * a `#` anywhere starts a comment (so no value holds one) and a carriage return ends the line;
 * a line is a setting name, white space, and the value, trimmed; names are case-insensitive;
 * a name without a value is an error ("required value missing"); `Include FILE` reads another
 * file in place, nested at most {@link MAX_INCLUDE_DEPTH} levels; when a setting appears twice
 * the later one wins (OpenDKIM's `config_get()` finds the last), with a warning.
 *
 * Reading is pure: {@link parseConfText} splits text into lines, {@link expandIncludes} follows
 * `Include` through a reader the caller passes, {@link readConfLines} turns lines into a
 * {@link Config}. Unknown names are errors naming the closest known setting; OpenDKIM settings
 * dkimd does not implement are warnings.
 *
 * @module
 */

import { errorMessage } from "../error_message.ts";
import { formatOrigin, type Origin, SourceError } from "../policy/origin.ts";
import { ConfigError, type ConfigWarning, throwIfErrors } from "./config_error.ts";
import { buildConfig } from "./build_config.ts";
import { closestName } from "./did_you_mean.ts";
import type { RawSetting, RawSettings, ReadResult, SettingField } from "./schema.ts";
import { findSetting, INCLUDE_SETTING, knownSettingNames } from "./settings.ts";
import { findUnimplementedSetting, unimplementedWarning } from "./unimplemented_settings.ts";
import { ValueError } from "./values.ts";

/** Deepest Include nesting: OpenDKIM's `MAXLEVEL` ("Nesting is allowed to a maximum of five levels"). */
export const MAX_INCLUDE_DEPTH = 5;

/** Largest configuration file read: far beyond any real one, a bound on memory. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** Most lines of settings, counting every included file: a bound against include loops of wide files. */
export const MAX_CONFIG_LINES = 100_000;

/** One `Name value` line. */
export interface ConfLine {
  /** The setting name as written. */
  readonly name: string;
  /** The value, trimmed. */
  readonly value: string;
  /** The file and line. */
  readonly origin: Origin;
}

// The text without surrounding blanks (space, tab). A loop: /[ \t]+$/ backtracks over every
// inner run of blanks, which makes one long line quadratic.
function trimBlanks(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && (text[start] === " " || text[start] === "\t")) start++;
  while (end > start && (text[end - 1] === " " || text[end - 1] === "\t")) end--;
  return text.slice(start, end);
}

/**
 * Splits opendkim.conf text into setting lines. Lines without a value are returned as errors
 * (OpenDKIM: "required value missing"), so the caller can report them all.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfText } from "./opendkim_conf.ts";
 * const { lines, errors } = parseConfText("# c\nMode\t\tsv  # both\r\n\nSocket\n", "a.conf");
 * assert.deepEqual(lines, [{ name: "Mode", value: "sv", origin: { file: "a.conf", line: 2 } }]);
 * assert.match(errors[0].message, /"Socket" at a\.conf:4: the value is missing/);
 * ```
 */
export function parseConfText(
  text: string,
  file: string,
): { lines: ConfLine[]; errors: SourceError[] } {
  const lines: ConfLine[] = [];
  const errors: SourceError[] = [];
  if (text.length > MAX_CONFIG_BYTES) {
    errors.push(
      new ConfigError(
        "Cannot read configuration",
        { file, line: 1 },
        `the file is larger than ${MAX_CONFIG_BYTES} bytes`,
      ),
    );
    return { lines, errors };
  }
  const raw = text.split("\n");
  for (let i = 0; i < raw.length; i++) {
    const origin = { file, line: i + 1 };
    let line = raw[i];
    const cut = line.search(/[#\r]/);
    if (cut >= 0) line = line.slice(0, cut);
    line = trimBlanks(line);
    if (line === "") continue;
    if (line.includes("\0")) {
      errors.push(
        new ConfigError("Cannot read configuration", origin, "the line holds a NUL byte"),
      );
      continue;
    }
    const m = /^([^ \t]+)(?:[ \t]+(.*))?$/.exec(line)!;
    const name = m[1];
    const value = (m[2] ?? "").trim();
    if (value === "") {
      errors.push(
        new ConfigError(`Cannot parse "${name}"`, origin, "the value is missing", {
          setting: name,
        }),
      );
      continue;
    }
    lines.push({ name, value, origin });
  }
  return { lines, errors };
}

/** Reads an included file: the capability {@link expandIncludes} is given. */
export type IncludeReader = (
  path: string,
  from: Origin,
) => Promise<{ readonly text: string; readonly file: string }>;

/**
 * Replaces each `Include` line by the lines of the file it names, recursively, at most
 * {@link MAX_INCLUDE_DEPTH} levels deep (deeper is an error naming the Include line, likely a
 * file including itself). `read` reads a file; its errors are collected with the others.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expandIncludes, parseConfText } from "./opendkim_conf.ts";
 * const top = parseConfText("Include /etc/b.conf\nMode v\n", "/etc/a.conf").lines;
 * const { lines } = await expandIncludes(top, (path) =>
 *   Promise.resolve({ text: "Syslog yes\n", file: path }));
 * assert.deepEqual(lines.map((l) => `${l.origin.file}:${l.name}`), ["/etc/b.conf:Syslog", "/etc/a.conf:Mode"]);
 * ```
 */
export async function expandIncludes(
  lines: readonly ConfLine[],
  read: IncludeReader,
  depth = 0,
): Promise<{ lines: ConfLine[]; errors: SourceError[]; files: string[] }> {
  const out: ConfLine[] = [];
  const errors: SourceError[] = [];
  const files: string[] = [];
  for (const line of lines) {
    if (line.name.toLowerCase() !== INCLUDE_SETTING.toLowerCase()) {
      out.push(line);
      continue;
    }
    if (depth + 1 > MAX_INCLUDE_DEPTH) {
      errors.push(
        new ConfigError(
          'Cannot follow "Include"',
          line.origin,
          `nesting is deeper than ${MAX_INCLUDE_DEPTH} levels (does a file include itself?)`,
          { setting: INCLUDE_SETTING },
        ),
      );
      continue;
    }
    let included: { text: string; file: string };
    try {
      included = await read(line.value, line.origin);
    } catch (e) {
      errors.push(
        e instanceof SourceError ? e : new ConfigError(
          'Cannot read "Include"',
          line.origin,
          `"${line.value}": ${errorMessage(e)}`,
          { setting: INCLUDE_SETTING, cause: e },
        ),
      );
      continue;
    }
    files.push(included.file);
    const parsed = parseConfText(included.text, included.file);
    errors.push(...parsed.errors);
    const nested = await expandIncludes(parsed.lines, read, depth + 1);
    out.push(...nested.lines);
    errors.push(...nested.errors);
    files.push(...nested.files);
    if (out.length > MAX_CONFIG_LINES) {
      errors.push(
        new ConfigError(
          "Cannot read configuration",
          line.origin,
          `more than ${MAX_CONFIG_LINES} lines`,
        ),
      );
      break;
    }
  }
  return { lines: out, errors, files };
}

/**
 * Turns setting lines (Include already expanded) into a {@link Config}: every value is read
 * with its setting's reader, unknown names are errors with a suggestion, unimplemented
 * OpenDKIM settings are warnings. Throws a `ConfigError` (or `ConfigErrors` for several)
 * naming each bad line; `file` names the top configuration file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfText, readConfLines } from "./opendkim_conf.ts";
 * const { lines } = parseConfText("Mode v\nADSPAction discard\n", "/etc/opendkim.conf");
 * const { config, warnings } = readConfLines(lines, "/etc/opendkim.conf");
 * assert.equal(config.mode.sign, false);
 * assert.match(warnings[0].message, /"ADSPAction" at \/etc\/opendkim\.conf:2/);
 * assert.throws(
 *   () => readConfLines(parseConfText("SigingTable x\n", "c").lines, "c"),
 *   /unknown setting; did you mean "SigningTable"\?/,
 * );
 * ```
 */
export function readConfLines(lines: readonly ConfLine[], file: string): ReadResult {
  const errors: SourceError[] = [];
  const warnings: ConfigWarning[] = [];
  const raw: RawSettings = {};
  const set = raw as Record<SettingField, RawSetting<SettingField>>;
  for (const line of lines) {
    const setting = findSetting(line.name);
    if (setting) {
      const name = setting.name;
      const warn = (message: string) =>
        warnings.push({
          message: `"${name}" at ${formatOrigin(line.origin)}: ${message}`,
          origin: line.origin,
          setting: name,
        });
      try {
        const value = setting.kind.parse(line.value, { origin: line.origin, name, warn });
        const earlier = set[setting.field];
        if (earlier) {
          warnings.push({
            message: `"${name}" at ${formatOrigin(line.origin)} replaces the value set at ` +
              `${formatOrigin(earlier.origin)}`,
            origin: line.origin,
            setting: name,
          });
        }
        set[setting.field] = { value, origin: line.origin };
      } catch (e) {
        errors.push(toConfigError(e, name, line.origin));
      }
      continue;
    }
    const ignored = findUnimplementedSetting(line.name);
    if (ignored !== undefined) {
      warnings.push({
        message: unimplementedWarning(ignored, line.origin),
        origin: line.origin,
        setting: ignored.name,
      });
      continue;
    }
    if (line.name.toLowerCase() === INCLUDE_SETTING.toLowerCase()) {
      errors.push(
        new ConfigError(
          'Cannot follow "Include"',
          line.origin,
          "use loadConfig() to read includes",
          {
            setting: INCLUDE_SETTING,
          },
        ),
      );
      continue;
    }
    const guess = closestName(line.name, knownSettingNames());
    errors.push(
      new ConfigError(
        `Unknown setting "${line.name}"`,
        line.origin,
        guess ? `unknown setting; did you mean "${guess}"?` : "unknown setting",
      ),
    );
  }
  const built = buildConfig(raw, file);
  throwIfErrors([...errors, ...built.errors]);
  return {
    config: built.config,
    origins: built.origins,
    warnings: [...warnings, ...built.warnings],
  };
}

/** Wraps a value reader's error into a {@link ConfigError} naming the setting and line. */
export function toConfigError(e: unknown, setting: string, origin: Origin): SourceError {
  if (e instanceof SourceError) return e;
  const detail = e instanceof ValueError
    ? e.message
    : e instanceof Error
    ? e.message.replace(/^Cannot parse [a-z ]+(?=")/, "")
    : String(e);
  return new ConfigError(`Cannot parse "${setting}"`, origin, detail, { setting, cause: e });
}

/**
 * Reads a whole opendkim.conf text that has no `Include` (use `loadConfig()` for files that
 * include others). Throws as {@link readConfLines}, and for lines without a value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readOpendkimConf } from "./opendkim_conf.ts";
 * const { config } = readOpendkimConf(
 *   "Canonicalization relaxed/simple\nSocket inet:8891@localhost\nMode v\n",
 *   "/etc/opendkim.conf",
 * );
 * assert.deepEqual(config.canonicalization, { header: "relaxed", body: "simple" });
 * assert.deepEqual(config.socket, { kind: "inet", host: "127.0.0.1", port: 8891 });
 * assert.throws(
 *   () => readOpendkimConf("Mode sv\nCanonicalization loose\n", "/etc/opendkim.conf"),
 *   /Cannot parse "Canonicalization" at \/etc\/opendkim\.conf:2: unknown canonicalization "loose"/,
 * );
 * ```
 */
export function readOpendkimConf(text: string, file: string): ReadResult {
  const { lines, errors } = parseConfText(text, file);
  if (errors.length === 0) return readConfLines(lines, file);
  const all: SourceError[] = [...errors];
  try {
    readConfLines(lines, file);
  } catch (e) {
    all.push(...(e instanceof AggregateError ? e.errors : [e]));
  }
  throwIfErrors(sortByPlace(all));
  throw new Error("unreachable");
}

/**
 * Orders errors by file and line, so a report reads top to bottom.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SourceError } from "../policy/origin.ts";
 * import { sortByPlace } from "./opendkim_conf.ts";
 * const e = (line: number) => new SourceError("x", { file: "f", line }, "y");
 * assert.deepEqual(sortByPlace([e(3), e(1)]).map((x) => x.line), [1, 3]);
 * ```
 */
export function sortByPlace<T extends SourceError>(errors: readonly T[]): T[] {
  return [...errors].sort((a, b) => a.file === b.file ? a.line - b.line : a.file < b.file ? -1 : 1);
}
