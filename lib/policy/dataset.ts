/**
 * OpenDKIM data sets (opendkim(8), DATA SETS): the one syntax behind every list and table
 * setting (KeyTable, SigningTable, InternalHosts, ...). A data set is named by a spec string:
 *
 * - `file:PATH`, or a plain path starting with `/`: a flat file, one entry per line, the key up
 *   to the first white space and the value after it;
 * - `refile:PATH`: the same layout, keys being wildcard patterns (`*` matches any text);
 * - `csl:a,b=c`, or any other string without a known `type:` prefix: an inline comma-separated
 *   list whose elements are `key` or `key=value`;
 * - `dsn:BACKEND://...`: a table in PostgreSQL, MySQL/MariaDB or SQLite, kept as written; the
 *   configuration layer reads it with lib/tables' `parseDsn()` (policy never imports lib/tables,
 *   which imports policy's lookup types);
 * - `ldap://`, `ldaps://`, `ldapi://`: a directory, kept as the URI (lib/tables reads it);
 * - `db:`, `lua:`, `memcache:`, `mdb:`, `erlang:`, `repute:`, `socket:` and paths ending in
 *   `.db`: back ends dkimd does not implement, refused with an error naming the setting and line.
 *
 * Parsing is pure: {@link parseDataSetSpec} reads the spec, {@link parseDataSetFile} the text
 * of a file once the loader has read it.
 *
 * @module
 */

import { type Origin, SourceError } from "./origin.ts";

/**
 * Largest data set file read: every line becomes an in-memory entry, so an unbounded file could
 * exhaust memory; 16 MiB holds several hundred thousand table lines.
 */
export const MAX_DATA_SET_FILE_BYTES = 16 * 1024 * 1024;

/**
 * Longest line in a data set file. OpenDKIM reads 1023 bytes at a time and silently splits longer
 * lines into two entries; dkimd reads lines whole (an inline base64 RSA-4096 key is about 3.2 KB)
 * and refuses a line longer than this as a likely binary or corrupt file.
 */
export const MAX_DATA_SET_LINE_LENGTH = 64 * 1024;

/** Most entries in one data set, a bound on memory for a file of many short lines. */
export const MAX_DATA_SET_ENTRIES = 1_000_000;

/**
 * Data set types OpenDKIM can be built with that dkimd does not implement (opendkim(8), DATA
 * SETS c-l, and `repute:`/`socket:` from its source). Naming one is an error, not a silent
 * empty set, because a missing KeyTable or InternalHosts changes what mail is signed.
 */
export const UNSUPPORTED_DATA_SET_TYPES: readonly string[] = [
  "db",
  "lua",
  "memcache",
  "mdb",
  "erlang",
  "repute",
  "socket",
];

/** One key with its optional value, as written inline (no origin, so configs compare equal). */
export interface InlineEntry {
  /** The key: a host, an address, a pattern, a key name... */
  readonly key: string;
  /** The text after the key, if any (`value` of `key=value` or of `key value`). */
  readonly value?: string;
}

/**
 * Where a data set's entries come from, as a configuration states it.
 * - `file`: a flat file of `key value` lines, looked up by exact key;
 * - `refile`: a flat file whose keys are wildcard patterns, tried in file order;
 * - `inline`: entries written in the configuration itself (`csl:` lists, YAML lists); with
 *   `patterns` true their keys are wildcard patterns as in `refile`;
 * - `dsn`: a database table (`text` as written, `dsn:` included), asked by key while mail flows;
 * - `ldap`: a directory named by an `ldap://`, `ldaps://` or `ldapi://` URI, asked by key.
 */
export type DataSetSource =
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "refile"; readonly path: string }
  | {
    readonly kind: "inline";
    readonly entries: readonly InlineEntry[];
    readonly patterns: boolean;
  }
  | { readonly kind: "dsn"; readonly text: string }
  | { readonly kind: "ldap"; readonly uri: string };

/** A data set source kept in a database or directory, asked by key instead of read whole. */
export type DatabaseSource = Extract<DataSetSource, { kind: "dsn" | "ldap" }>;

/** The URI schemes of LDAP data sets (opendkim(8), DATA SETS h). */
export const LDAP_SCHEMES: readonly string[] = ["ldap", "ldaps", "ldapi"];

/** One entry of a loaded data set, with the place it was read from. */
export interface DataSetEntry extends InlineEntry {
  /** The file and line of the entry (for inline entries, the setting's own line). */
  readonly origin: Origin;
}

/** A data set with its entries read: what policy tables are built from. */
export interface DataSet {
  /** The source the entries were read from. */
  readonly source: DataSetSource;
  /** The entries in file (or list) order. */
  readonly entries: readonly DataSetEntry[];
  /** True when keys are wildcard patterns (`refile:` or an inline pattern list). */
  readonly patterns: boolean;
}

/** A data set spec refused because dkimd does not implement its back end. */
export class UnsupportedDataSetError extends SourceError {
  /** The refused type, such as `ldap` or `db`. */
  readonly type: string;

  /** Makes an error for `setting` at `origin` naming the type `type`. */
  constructor(setting: string, type: string, origin: Origin, options?: ErrorOptions) {
    super(
      `Cannot use "${setting}"`,
      origin,
      `data set type "${type}" is not supported by dkimd (use a file, "refile:", "csl:", ` +
        `"dsn:" or an LDAP URI)`,
      options,
    );
    this.name = "UnsupportedDataSetError";
    this.type = type;
  }
}

const TYPE_PREFIX = /^([A-Za-z]+):/;
const IPISH = /^!?[[\]0-9A-Fa-f:./]+$/;

/**
 * Reads a data set spec the way OpenDKIM's `dkimf_db_open()` does: a `type:` prefix before the
 * first colon selects the type unless a comma comes earlier (a list whose later elements hold
 * colons); without a prefix, a path starting with `/` is a file and anything else an inline
 * comma-separated list. `setting` is the setting name used in error messages.
 *
 * One extension: OpenDKIM refuses an inline list that starts with an IPv6 address (`::1`,
 * `[::1]`) as an "unknown database type"; dkimd reads it as the list it obviously is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDataSetSpec } from "./dataset.ts";
 * const at = { file: "/etc/opendkim.conf", line: 7 };
 * assert.deepEqual(parseDataSetSpec("refile:/etc/opendkim/signing.table", at, "SigningTable"), {
 *   kind: "refile",
 *   path: "/etc/opendkim/signing.table",
 * });
 * assert.deepEqual(parseDataSetSpec("127.0.0.1, ::1", at, "InternalHosts"), {
 *   kind: "inline",
 *   entries: [{ key: "127.0.0.1" }, { key: "::1" }],
 *   patterns: false,
 * });
 * assert.deepEqual(parseDataSetSpec("ldap://x/dc=example", at, "KeyTable"), {
 *   kind: "ldap",
 *   uri: "ldap://x/dc=example",
 * });
 * assert.throws(() => parseDataSetSpec("mdb:/var/db/keys", at, "KeyTable"), /not supported/);
 * ```
 */
export function parseDataSetSpec(text: string, origin: Origin, setting: string): DataSetSource {
  const spec = text.trim();
  if (spec === "") {
    throw new SourceError(`Cannot parse "${setting}"`, origin, "the data set is empty");
  }
  const colon = spec.indexOf(":");
  const comma = spec.indexOf(",");
  const hasPrefix = colon >= 0 && !(comma >= 0 && comma < colon);
  if (hasPrefix) {
    const m = TYPE_PREFIX.exec(spec);
    const type = m ? m[1].toLowerCase() : "";
    const rest = spec.slice(colon + 1);
    if (m && type === "file") return { kind: "file", path: requirePath(rest, setting, origin) };
    if (m && type === "refile") return { kind: "refile", path: requirePath(rest, setting, origin) };
    if (m && type === "csl") return inlineList(rest, setting, origin);
    if (m && type === "dsn") return { kind: "dsn", text: spec };
    if (m && LDAP_SCHEMES.includes(type)) return { kind: "ldap", uri: spec };
    if (m && UNSUPPORTED_DATA_SET_TYPES.includes(type)) {
      throw new UnsupportedDataSetError(setting, type, origin);
    }
    // An IPv6 address or bracketed literal has a colon but no type prefix (see above).
    if (spec.split(",").every((item) => IPISH.test(item.trim()) || item.trim() === "")) {
      return inlineList(spec, setting, origin);
    }
    throw new SourceError(
      `Cannot parse "${setting}"`,
      origin,
      `unknown data set type "${spec.slice(0, colon)}" (expected "file:", "refile:", "csl:", ` +
        `"dsn:" or an LDAP URI)`,
    );
  }
  if (spec.endsWith(".db")) {
    throw new UnsupportedDataSetError(setting, "db", origin);
  }
  if (spec.startsWith("/")) return { kind: "file", path: spec };
  return inlineList(spec, setting, origin);
}

function requirePath(path: string, setting: string, origin: Origin): string {
  const p = path.trim();
  if (p === "") {
    throw new SourceError(`Cannot parse "${setting}"`, origin, "the file name is empty");
  }
  return p;
}

function inlineList(text: string, setting: string, origin: Origin): DataSetSource {
  return { kind: "inline", entries: parseCommaList(text, setting, origin), patterns: false };
}

/**
 * Splits an inline comma-separated list (opendkim(8), DATA SETS m): elements are trimmed, empty
 * elements skipped (as `strtok` does), and an element `key=value` carries a value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCommaList } from "./dataset.ts";
 * assert.deepEqual(parseCommaList("a, b = c,,d=e:f", "MacroList", { file: "x", line: 1 }), [
 *   { key: "a" },
 *   { key: "b", value: "c" },
 *   { key: "d", value: "e:f" },
 * ]);
 * ```
 */
export function parseCommaList(text: string, setting: string, origin: Origin): InlineEntry[] {
  const out: InlineEntry[] = [];
  for (const element of text.split(",")) {
    const item = element.trim();
    if (item === "") continue;
    if (out.length >= MAX_DATA_SET_ENTRIES) {
      throw new SourceError(
        `Cannot parse "${setting}"`,
        origin,
        `more than ${MAX_DATA_SET_ENTRIES} entries`,
      );
    }
    const eq = item.indexOf("=");
    if (eq < 0) {
      out.push({ key: item });
    } else {
      const key = item.slice(0, eq).trim();
      if (key === "") {
        throw new SourceError(`Cannot parse "${setting}"`, origin, `element "${item}" has no key`);
      }
      out.push({ key, value: item.slice(eq + 1).trim() });
    }
  }
  if (out.length === 0) {
    throw new SourceError(`Cannot parse "${setting}"`, origin, "the list has no elements");
  }
  return out;
}

const WSP = /[ \t\f\v\r]/;

/**
 * Reads the text of a data set file (opendkim(8), DATA SETS a and b): a `#` starts a comment
 * that runs to the end of the line, blank lines are skipped, the key is the text up to the first
 * white space and the value is the rest of the line, trimmed. There are no continuation lines.
 * CRLF line ends are accepted. `file` names the file in the returned origins and in errors.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDataSetFile } from "./dataset.ts";
 * const entries = parseDataSetFile("# keys\nmail  example.com:mail:/k  # main\n\nlocalhost\n", "kt");
 * assert.deepEqual(entries, [
 *   { key: "mail", value: "example.com:mail:/k", origin: { file: "kt", line: 2 } },
 *   { key: "localhost", origin: { file: "kt", line: 4 } },
 * ]);
 * ```
 */
export function parseDataSetFile(text: string, file: string): DataSetEntry[] {
  if (text.length > MAX_DATA_SET_FILE_BYTES) {
    throw new SourceError(
      "Cannot read data set",
      { file, line: 1 },
      `the file is larger than ${MAX_DATA_SET_FILE_BYTES} bytes`,
    );
  }
  const out: DataSetEntry[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i];
    if (line.length > MAX_DATA_SET_LINE_LENGTH) {
      throw new SourceError(
        "Cannot read data set",
        { file, line: i + 1 },
        `the line is longer than ${MAX_DATA_SET_LINE_LENGTH} characters`,
      );
    }
    const hash = line.indexOf("#");
    if (hash >= 0) line = line.slice(0, hash);
    line = line.trim();
    if (line === "") continue;
    if (line.includes("\0")) {
      throw new SourceError(
        "Cannot read data set",
        { file, line: i + 1 },
        "the line holds a NUL byte; is this a binary (db:) file?",
      );
    }
    if (out.length >= MAX_DATA_SET_ENTRIES) {
      throw new SourceError(
        "Cannot read data set",
        { file, line: i + 1 },
        `more than ${MAX_DATA_SET_ENTRIES} entries`,
      );
    }
    let end = 0;
    while (end < line.length && !WSP.test(line[end])) end++;
    const key = line.slice(0, end);
    const value = line.slice(end).trim();
    const origin = { file, line: i + 1 };
    out.push(value === "" ? { key, origin } : { key, value, origin });
  }
  return out;
}

/**
 * Attaches one origin to every inline entry, for entries written inside a configuration line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withOrigin } from "./dataset.ts";
 * const [e] = withOrigin([{ key: "a" }], { file: "c", line: 4 });
 * assert.equal(e.origin.line, 4);
 * ```
 */
export function withOrigin(
  entries: readonly InlineEntry[],
  origin: Origin | readonly Origin[],
): DataSetEntry[] {
  return entries.map((e, i) => {
    const at = Array.isArray(origin) ? (origin as readonly Origin[])[i] : (origin as Origin);
    return e.value === undefined
      ? { key: e.key, origin: at }
      : { key: e.key, value: e.value, origin: at };
  });
}

/**
 * Formats a data set source back into the spec string {@link parseDataSetSpec} reads, for
 * messages and for writing configurations.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatDataSetSource } from "./dataset.ts";
 * assert.equal(formatDataSetSource({ kind: "refile", path: "/t" }), "refile:/t");
 * assert.equal(
 *   formatDataSetSource({ kind: "inline", entries: [{ key: "a" }, { key: "b", value: "c" }], patterns: false }),
 *   "csl:a,b=c",
 * );
 * ```
 */
export function formatDataSetSource(source: DataSetSource): string {
  switch (source.kind) {
    case "file":
      return source.path.startsWith("/") ? source.path : `file:${source.path}`;
    case "refile":
      return `refile:${source.path}`;
    case "dsn":
      return source.text;
    case "ldap":
      return source.uri;
    case "inline":
      return "csl:" +
        source.entries.map((e) => (e.value === undefined ? e.key : `${e.key}=${e.value}`)).join(
          ",",
        );
  }
}
