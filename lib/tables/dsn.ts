/**
 * Reading OpenDKIM's `dsn:` data sets (opendkim(8), DATA SETS; OpenDKIM's `dkimf_db_open()` in
 * opendkim/opendkim-db.c):
 *
 * ```
 * dsn:BACKEND://[USER[:PASSWORD]@][PORT+]HOST/DATABASE/table=T?keycol=K?datacol=D[,D2...][?filter=F]
 * ```
 *
 * read as OpenDKIM reads it: the part after `//` is cut at the punctuation `: @ + /` (a `:`
 * ends the user, `@` the user or password, `+` the port, the first `/` the host and the second
 * the database, and `=` or `?` there is an error); the rest is split at `?` into `name=value`
 * pairs whose names compare case-insensitively, where a later pair replaces an earlier one and
 * a piece without `=` or with another name is skipped; in `filter=`, `=XX` (two hex digits)
 * stands for the byte XX, so a filter can hold `=` and `?` (`filter=active=3D1`).
 *
 * For `sqlite3`, OpenDBX opens the file HOST and DATABASE glued together with nothing between,
 * relative to the working directory (BaseDirectory when set): OpenDKIM users write
 * `dsn:sqlite3://%/dkim.db/table=...`, meaning "dkim.db in the working directory", and OpenDKIM
 * opens the file `%dkim.db`. dkimd opens the same file; when only `dkim.db` exists it reads that
 * one and warns at load (lib/tables/sqlite_backend.ts `chooseSqliteFile()`). An absolute path,
 * which Debian's OpenDKIM refuses, works with an empty host:
 * `dsn:sqlite3:///var/lib/dkimd/dkim.db/table=...`; for sqlite3 the path may hold `/`: it runs
 * to the `/` before `table=`.
 *
 * Stricter than OpenDKIM, which splices the names into its SQL text: `table`, `keycol` and each
 * `datacol` must be identifiers (letters, digits, `_`, optionally `schema.name`), so nothing but
 * a name reaches a query; `filter=` is SQL written by the administrator and is ANDed into the
 * query as it is, exactly as OpenDKIM does (so it must come from a trusted configuration).
 *
 * @module
 */

import type { DsnBackend, DsnSpec } from "./dsn_spec.ts";

/** The back ends dkimd speaks, by OpenDBX's names for them. */
export const DSN_BACKENDS: readonly DsnBackend[] = ["pgsql", "mysql", "sqlite3"];

/** An identifier: a table or column name, optionally qualified once (`schema.table`). */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?$/;

/** The punctuation OpenDKIM's `dkimf_db_nextpunct()` stops at. */
const PUNCT = /[:/@+=?]/;

/** The parameter names OpenDKIM knows (`strcasecmp` in `dkimf_db_open()`). */
const PARAMS = ["table", "keycol", "datacol", "filter"] as const;

/**
 * The sqlite3 host that OpenDKIM users write for the working directory; OpenDBX glues it to the
 * file name (`%/dkim.db` opens `%dkim.db`), so it names the directory only in dkimd's fallback.
 */
export const SQLITE_WORKING_DIRECTORY = "%";

/**
 * Parses a `dsn:` data set (the `dsn:` prefix is optional). Throws an Error saying what is
 * wrong, never quoting the password; the caller adds the setting, file and line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDsn } from "./dsn.ts";
 * const spec = parseDsn(
 *   "dsn:pgsql://dkim:secret@5432+db.example/mail/table=keys?keycol=id?datacol=domain,selector,key",
 * );
 * assert.equal(spec.backend, "pgsql");
 * assert.equal(spec.port, 5432);
 * assert.deepEqual(spec.datacols, ["domain", "selector", "key"]);
 * assert.equal(parseDsn("dsn:sqlite3://%/dkim.db/table=t?keycol=k?datacol=v").database, "dkim.db");
 * assert.throws(() => parseDsn("dsn:pgsql://h/db/table=t?keycol=k"), /no "datacol="/);
 * ```
 */
export function parseDsn(text: string): DsnSpec {
  const dsn = text.trim().replace(/^dsn:/i, "");
  const colon = dsn.indexOf(":");
  if (colon < 0) {
    throw new Error(`expected "BACKEND://..." after "dsn:" (BACKEND one of ${backends()})`);
  }
  const backendText = dsn.slice(0, colon);
  const backend = DSN_BACKENDS.find((b) => b === backendText.toLowerCase());
  if (!backend) {
    throw new Error(`unknown DSN back end "${backendText}" (expected ${backends()})`);
  }
  if (!dsn.startsWith("//", colon + 1)) {
    throw new Error(`expected "//" after "${backendText}:"`);
  }
  const rest = dsn.slice(colon + 3);
  const { authority, database, params } = backend === "sqlite3"
    ? splitSqlite(rest)
    : splitServer(rest);
  const spec: { -readonly [P in keyof DsnSpec]: DsnSpec[P] } = {
    backend,
    ...readAuthority(authority),
    database,
    table: "",
    keycol: "",
    datacols: [],
  };
  if (backend === "sqlite3") {
    if (spec.host === undefined && !database.startsWith("/")) {
      throw new Error(
        `the SQLite file "${database}" needs a directory: write "%/${database}" for the ` +
          `working directory or "/${database}" for an absolute path`,
      );
    }
  } else if (spec.host === undefined) {
    throw new Error('no host (OpenDKIM: "SQL host not defined")');
  }
  if (database === "") throw new Error("no database name after the host");
  readParams(params, spec);
  for (const name of ["table", "keycol", "datacol"] as const) {
    const have = name === "datacol" ? spec.datacols.length > 0 : spec[name] !== "";
    if (!have) throw new Error(`no "${name}=" (the DSN needs table=, keycol= and datacol=)`);
  }
  return spec;
}

function backends(): string {
  return DSN_BACKENDS.map((b) => `"${b}"`).join(", ");
}

interface Parts {
  readonly authority: string;
  readonly database: string;
  readonly params: string;
}

// A server DSN: the database runs from the host's "/" to the next "/", as OpenDKIM cuts it.
function splitServer(rest: string): Parts {
  const hostEnd = firstSlash(rest);
  if (hostEnd < 0) throw new Error('no "/DATABASE/" after the host');
  const dbEnd = rest.indexOf("/", hostEnd + 1);
  if (dbEnd < 0) throw new Error('no "/" between the database name and "table="');
  const database = rest.slice(hostEnd + 1, dbEnd);
  if (PUNCT.test(database)) {
    throw new Error(`the database name "${database}" holds one of ": @ + = ?"`);
  }
  return { authority: rest.slice(0, hostEnd), database, params: rest.slice(dbEnd + 1) };
}

// A sqlite3 DSN: the file path may hold "/", so it runs to the "/" before the first parameter.
function splitSqlite(rest: string): Parts {
  const m = /\/(?:table|keycol|datacol|filter)=/i.exec(rest);
  const end = m ? m.index : -1;
  if (end < 0) throw new Error('no "/table=..." after the SQLite file');
  const location = rest.slice(0, end);
  if (location.startsWith("/")) {
    return { authority: "", database: location, params: rest.slice(end + 1) };
  }
  const hostEnd = firstSlash(location);
  if (hostEnd < 0) {
    return { authority: "", database: location, params: rest.slice(end + 1) };
  }
  return {
    authority: location.slice(0, hostEnd),
    database: location.slice(hostEnd + 1),
    params: rest.slice(end + 1),
  };
}

// The first "/" of the authority; "=" or "?" before it is OpenDKIM's EINVAL.
function firstSlash(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "/") return i;
    if (c === "=" || c === "?") {
      throw new Error(`unexpected "${c}" before the database name (a password cannot hold it)`);
    }
  }
  return -1;
}

// USER[:PASSWORD]@[PORT+]HOST, cut at punctuation as dkimf_db_open() does.
function readAuthority(
  authority: string,
): { user?: string; password?: string; host?: string; port?: number } {
  let user: string | undefined;
  let password: string | undefined;
  let port: string | undefined;
  let q = authority;
  for (let p = q.search(PUNCT); p >= 0; p = q.search(PUNCT)) {
    const piece = q.slice(0, p);
    const c = q[p];
    if (c === ":") {
      if (user !== undefined) throw new Error('a second ":" before the host');
      user = piece;
    } else if (c === "@") {
      if (user === undefined) user = piece;
      else password = piece;
    } else if (c === "+") {
      port = piece;
    } else {
      throw new Error(`unexpected "${c}" before the database name (a password cannot hold it)`);
    }
    q = q.slice(p + 1);
  }
  const out: { user?: string; password?: string; host?: string; port?: number } = {};
  if (user !== undefined && user !== "") out.user = user;
  if (password !== undefined) out.password = password;
  if (q !== "") out.host = q;
  if (port !== undefined) {
    const n = /^[0-9]{1,5}$/.test(port) ? Number(port) : NaN;
    if (!(n >= 1 && n <= 65535)) throw new Error(`the port "${port}" is not a number 1-65535`);
    out.port = n;
  }
  return out;
}

function readParams(
  params: string,
  spec: { table: string; keycol: string; datacols: readonly string[]; filter?: string },
): void {
  for (const piece of params.split("?")) {
    const eq = piece.indexOf("=");
    if (eq < 0) continue;
    const name = PARAMS.find((p) => p === piece.slice(0, eq).toLowerCase());
    const value = piece.slice(eq + 1);
    if (name === "table") spec.table = identifier(value, "table");
    else if (name === "keycol") spec.keycol = identifier(value, "keycol");
    else if (name === "datacol") {
      spec.datacols = value.split(",").map((c) => identifier(c.trim(), "datacol"));
    } else if (name === "filter") {
      const filter = decodeFilter(value).trim();
      if (filter === "") delete spec.filter;
      else spec.filter = filter;
    }
  }
}

function identifier(value: string, what: string): string {
  if (!IDENTIFIER.test(value)) {
    throw new Error(
      `"${what}=${value}" is not a table or column name (letters, digits and "_", ` +
        `optionally "schema.name"); for an expression, query a view`,
    );
  }
  return value;
}

/**
 * Decodes `=XX` escapes in a `filter=` value, as OpenDKIM does (any other `=` stays).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeFilter } from "./dsn.ts";
 * assert.equal(decodeFilter("active=3D1 AND x=3F"), "active=1 AND x?");
 * assert.equal(decodeFilter("a=b"), "a=b");
 * ```
 */
export function decodeFilter(value: string): string {
  return value.replace(
    /=([0-9A-Fa-f]{2})/g,
    (_, hex: string) => String.fromCharCode(parseInt(hex, 16)),
  );
}

/**
 * Writes a DSN back for logs and `check-config`, the password replaced by `***` (the
 * {@link TableBackend} `describe` text).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeDsn, parseDsn } from "./dsn.ts";
 * const spec = parseDsn("dsn:mysql://u:pw@3306+db/mail/table=t?keycol=k?datacol=a,b");
 * assert.equal(describeDsn(spec), "dsn:mysql://u:***@3306+db/mail/table=t?keycol=k?datacol=a,b");
 * ```
 */
export function describeDsn(spec: DsnSpec): string {
  const user = spec.user === undefined
    ? ""
    : spec.password === undefined
    ? `${spec.user}@`
    : `${spec.user}:***@`;
  const port = spec.port === undefined ? "" : `${spec.port}+`;
  const where = spec.backend === "sqlite3" && spec.host === undefined
    ? spec.database
    : `${user}${port}${spec.host ?? ""}/${spec.database}`;
  const filter = spec.filter === undefined ? "" : `?filter=${spec.filter}`;
  return `dsn:${spec.backend}://${where}/table=${spec.table}?keycol=${spec.keycol}` +
    `?datacol=${spec.datacols.join(",")}${filter}`;
}

/**
 * Replaces the password of a `dsn:` text by `***` without parsing the rest (for messages about
 * a DSN that does not parse). Anything after `//` and before the last `@` preceding the first
 * `/` is the user and password.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { redactDsnText } from "./dsn.ts";
 * assert.equal(redactDsnText("dsn:pgsql://u:p@ss@h/db/x"), "dsn:pgsql://u:***@h/db/x");
 * assert.equal(redactDsnText("dsn:pgsql://h/db/x"), "dsn:pgsql://h/db/x");
 * ```
 */
export function redactDsnText(text: string): string {
  const start = text.indexOf("//");
  if (start < 0) return text;
  const slash = text.indexOf("/", start + 2);
  const authorityEnd = slash < 0 ? text.length : slash;
  const at = text.lastIndexOf("@", authorityEnd);
  if (at < start) return text;
  const colon = text.indexOf(":", start + 2);
  if (colon < 0 || colon > at) return text;
  return text.slice(0, colon + 1) + "***" + text.slice(at);
}
