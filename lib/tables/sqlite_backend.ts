/**
 * A `dsn:sqlite3://` data set: a table in an SQLite file, read with Deno's built-in
 * `node:sqlite` (no native add-on, no FFI: it runs under the `start` task's permissions, which
 * need only read access to the file).
 *
 * The query is OpenDKIM's (`dkimf_db_get()` in opendkim/opendkim-db.c builds
 * `SELECT datacol FROM table WHERE keycol = 'key' [AND filter]`), batched and parameterised:
 * `SELECT keycol, datacols FROM table WHERE keycol IN (?, ...) [AND (filter)]`, the keys bound
 * as values, never spliced into the text (the names in it are identifiers parseDsn() checked;
 * the filter is the administrator's SQL, as in OpenDKIM). The first row of each key is used, as
 * OpenDKIM uses the first row. Keys compare as SQLite compares them, as OpenDKIM leaves the
 * comparison to the database for every SQL back end (its `DKIMF_DB_FLAG_ICASE` applies only to
 * the sets it reads itself): SQLite's `=` is exact unless the column says `COLLATE NOCASE`, and
 * OpenDKIM lower-cases the sender's domain before asking (`dkimf_lowercase()` in opendkim.c),
 * so rows should hold domains in lower case.
 *
 * The file is opened read-only for each query, so a file replaced or removed is noticed at the
 * next query (a connection kept open would go on reading a deleted file), and nothing is held
 * between messages. SQLite's busy timeout is the query timeout, so a locked file fails the
 * lookup instead of blocking.
 *
 * @module
 */

import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { isAbsolute, join } from "node:path";
import type { BackendOptions } from "./backend_options.ts";
import { describeDsn, SQLITE_WORKING_DIRECTORY } from "./dsn.ts";
import type { DsnSpec } from "./dsn_spec.ts";
import type { TableBackend } from "./table_backend.ts";

/** Most keys bound in one statement; SQLite allows 32766 variables, a lookup asks a handful. */
export const MAX_SQLITE_KEYS_PER_QUERY = 500;

/**
 * The file Debian's OpenDKIM opens for a sqlite3 DSN: an absolute path as written; otherwise
 * the host and the database name glued together with nothing between (OpenDBX's sqlite3 back
 * end joins them without a slash), relative to `directory` (the working directory, which
 * OpenDKIM sets to BaseDirectory). So `%/dkim.db` is the file `%dkim.db`, and `d/x.db` is `dx.db`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sqliteFile } from "./sqlite_backend.ts";
 * import { parseDsn } from "./dsn.ts";
 * assert.equal(sqliteFile(parseDsn("dsn:sqlite3://%/dkim.db/table=t?keycol=k?datacol=v"), "/srv"), "/srv/%dkim.db");
 * assert.equal(sqliteFile(parseDsn("dsn:sqlite3://d/x.db/table=t?keycol=k?datacol=v"), "/srv"), "/srv/dx.db");
 * assert.equal(sqliteFile(parseDsn("dsn:sqlite3:///var/dkim.db/table=t?keycol=k?datacol=v"), "/srv"), "/var/dkim.db");
 * ```
 */
export function sqliteFile(spec: DsnSpec, directory: string): string {
  if (isAbsolute(spec.database)) return spec.database;
  return join(directory, (spec.host ?? "") + spec.database);
}

/**
 * The file a relative sqlite3 DSN names when its host is read as a directory, as its users
 * mean it: host `%` is `directory` itself (`%/dkim.db` is `dkim.db`), another host a directory
 * below it (`d/x.db` is `d/x.db`). An absolute path is as written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sqliteDirectoryFile } from "./sqlite_backend.ts";
 * import { parseDsn } from "./dsn.ts";
 * assert.equal(sqliteDirectoryFile(parseDsn("dsn:sqlite3://%/dkim.db/table=t?keycol=k?datacol=v"), "/srv"), "/srv/dkim.db");
 * assert.equal(sqliteDirectoryFile(parseDsn("dsn:sqlite3://d/x.db/table=t?keycol=k?datacol=v"), "/srv"), "/srv/d/x.db");
 * ```
 */
export function sqliteDirectoryFile(spec: DsnSpec, directory: string): string {
  if (isAbsolute(spec.database)) return spec.database;
  const host = spec.host === SQLITE_WORKING_DIRECTORY ? "" : spec.host ?? "";
  return join(directory, host, spec.database);
}

/** The file a sqlite3 DSN is read from, and why when it is not the one OpenDKIM would open. */
export interface SqliteFileChoice {
  /** The absolute path opened at each query. */
  readonly file: string;
  /** Set when `file` is not {@link sqliteFile}'s: the sentence to give as a load warning. */
  readonly warning?: string;
}

/**
 * Chooses, once at load, the file a sqlite3 DSN is read from, so that a configuration that
 * works with OpenDKIM works unchanged: OpenDKIM's file ({@link sqliteFile}) when it exists;
 * else the file the host read as a directory names ({@link sqliteDirectoryFile}) when that one
 * exists, with a warning naming both; else OpenDKIM's file, so the error at query time (the
 * lookup fails: On-InternalError, one log line per outage) names the file OpenDKIM would use.
 * OpenDKIM itself, given a missing file, creates an empty database there and then silently
 * signs nothing; dkimd opens read-only and never creates it. `exists` is false only when the
 * path is known to be missing (a stat that fails otherwise, say for permissions, keeps
 * OpenDKIM's file, so its query reports the real error). An absolute path is kept as written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chooseSqliteFile } from "./sqlite_backend.ts";
 * import { parseDsn } from "./dsn.ts";
 * const spec = parseDsn("dsn:sqlite3://%/dkim.db/table=t?keycol=k?datacol=v");
 * assert.deepEqual(chooseSqliteFile(spec, "/srv", (p) => p === "/srv/%dkim.db"), { file: "/srv/%dkim.db" });
 * assert.deepEqual(chooseSqliteFile(spec, "/srv", () => false), { file: "/srv/%dkim.db" });
 * const fallback = chooseSqliteFile(spec, "/srv", (p) => p === "/srv/dkim.db");
 * assert.equal(fallback.file, "/srv/dkim.db");
 * assert.match(fallback.warning!, /"\/srv\/%dkim\.db".*"\/srv\/dkim\.db"/);
 * ```
 */
export function chooseSqliteFile(
  spec: DsnSpec,
  directory: string,
  exists: (path: string) => boolean = fileExists,
): SqliteFileChoice {
  const opendkim = sqliteFile(spec, directory);
  if (isAbsolute(spec.database) || exists(opendkim)) return { file: opendkim };
  const asDirectory = sqliteDirectoryFile(spec, directory);
  if (!exists(asDirectory)) return { file: opendkim };
  return {
    file: asDirectory,
    warning: `the SQLite file "${opendkim}", which OpenDKIM opens for ` +
      `"${spec.host}/${spec.database}" (OpenDBX joins the host and the database name without ` +
      `a slash), does not exist; dkimd reads "${asDirectory}" instead, taking the host as a ` +
      `directory, which OpenDKIM would not: rename the file, or write its absolute path ` +
      `("dsn:sqlite3://${asDirectory}/table=...")`,
  };
}

// Whether a path may exist: false only for a stat that says it is missing.
function fileExists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (e) {
    return !(e instanceof Deno.errors.NotFound);
  }
}

/**
 * Opens a `dsn:sqlite3://` data set. A relative file is chosen ({@link chooseSqliteFile})
 * against the working directory now, so a later change of directory does not move it; use
 * lib/tables/open_backend.ts `openDsn()` to choose against BaseDirectory and get the warning.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { openSqlite } from "./sqlite_backend.ts";
 * import { parseDsn } from "./dsn.ts";
 * const dir = await Deno.makeTempDir();
 * const db = new DatabaseSync(`${dir}/dkim.db`);
 * db.exec("CREATE TABLE signing (sender TEXT, keyname TEXT)");
 * db.exec("INSERT INTO signing VALUES ('example.com', 'mail')");
 * db.close();
 * const table = openSqlite(
 *   parseDsn(`dsn:sqlite3://${dir}/dkim.db/table=signing?keycol=sender?datacol=keyname`),
 *   { queryTimeoutMs: 1000, connectTimeoutMs: 1000 },
 * );
 * assert.deepEqual(await table.query(["example.com", "x"], AbortSignal.timeout(1000)), [["mail"], undefined]);
 * await table.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function openSqlite(spec: DsnSpec, options: BackendOptions): TableBackend {
  if (spec.backend !== "sqlite3") {
    throw new Error(`openSqlite() cannot open a "${spec.backend}" DSN`);
  }
  return new SqliteBackend(spec, chooseSqliteFile(spec, Deno.cwd()).file, options);
}

class SqliteBackend implements TableBackend {
  readonly describe: string;
  readonly #spec: DsnSpec;
  readonly #file: string;
  readonly #options: BackendOptions;
  #closed = false;

  constructor(spec: DsnSpec, file: string, options: BackendOptions) {
    this.#spec = spec;
    this.#file = file;
    this.#options = options;
    this.describe = describeDsn(spec);
  }

  query(
    keys: readonly string[],
    signal: AbortSignal,
  ): Promise<(readonly string[] | undefined)[]> {
    return this.#run(signal, (db) => {
      const { keycol, datacols, table, filter } = this.#spec;
      const found = new Map<string, readonly string[]>();
      for (let i = 0; i < keys.length; i += MAX_SQLITE_KEYS_PER_QUERY) {
        const batch = keys.slice(i, i + MAX_SQLITE_KEYS_PER_QUERY);
        const sql = `SELECT ${columnList(keycol, datacols)} FROM ${table} WHERE ${keycol} IN (${
          batch.map(() => "?").join(", ")
        })${filter === undefined ? "" : ` AND (${filter})`}`;
        const statement = db.prepare(sql);
        for (const row of statement.iterate(...(batch as SQLInputValue[]))) {
          const [key, ...columns] = valuesOf(row, datacols.length);
          if (!found.has(key)) found.set(key, columns);
        }
      }
      return keys.map((k) => found.get(k));
    });
  }

  scan(limit: number, signal: AbortSignal): Promise<{ key: string; columns: readonly string[] }[]> {
    return this.#run(signal, (db) => {
      const { keycol, datacols, table, filter } = this.#spec;
      const statement = db.prepare(
        `SELECT ${columnList(keycol, datacols)} FROM ${table}` +
          `${filter === undefined ? "" : ` WHERE (${filter})`} LIMIT ?`,
      );
      const out: { key: string; columns: readonly string[] }[] = [];
      for (const row of statement.iterate(limit)) {
        const [key, ...columns] = valuesOf(row, datacols.length);
        out.push({ key, columns });
      }
      return out;
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  // Opens the file read-only, runs `work`, closes it; every failure names the DSN, not the password.
  #run<T>(signal: AbortSignal, work: (db: DatabaseSync) => T): Promise<T> {
    try {
      if (this.#closed) throw new Error("the data set is closed");
      signal.throwIfAborted();
      const db = new DatabaseSync(this.#file, {
        readOnly: true,
        timeout: this.#options.queryTimeoutMs,
      });
      try {
        return Promise.resolve(work(db));
      } finally {
        db.close();
      }
    } catch (e) {
      return Promise.reject(
        new Error(`${this.describe} ("${this.#file}"): ${e instanceof Error ? e.message : e}`, {
          cause: e,
        }),
      );
    }
  }
}

const decoder = new TextDecoder();

// The key column then the data columns, each named by its position, so a column named twice
// (keycol=domain?datacol=domain,selector) still comes back twice.
function columnList(keycol: string, datacols: readonly string[]): string {
  return [keycol, ...datacols].map((c, i) => `${c} AS c${i}`).join(", ");
}

function valuesOf(row: unknown, datacols: number): string[] {
  const r = row as Record<string, unknown>;
  return Array.from({ length: datacols + 1 }, (_, i) => text(r[`c${i}`]));
}

// A column as OpenDKIM's OpenDBX reads it: text; NULL is empty.
function text(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (value instanceof Uint8Array) return decoder.decode(value);
  return String(value);
}
