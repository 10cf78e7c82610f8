/**
 * The one write dkimd ever makes to a database, for `dkimd rotate` only (never on the mail
 * path, which opens its data sets read-only): switching the KeyTable row of a rotated key to
 * the new selector and key, in one transaction. The DSN's datacols are read in the KeyTable's
 * order, `domain,selector,key` (the value `domain:selector:key` OpenDKIM joins them into); a
 * fourth (the algorithm) is left as it is, since the new key has the old one's type.
 *
 * The transaction locks the key's rows (`SELECT ... FOR UPDATE`; SQLite's `BEGIN IMMEDIATE`),
 * checks that they hold the domain and the selector the rotation expects, and updates exactly
 * those, every value a bound parameter and every name a checked identifier. Rows already
 * holding the new selector make it a no-op, so a run killed after the commit repeats it
 * harmlessly; rows holding another selector (changed by hand) refuse it, changing nothing.
 *
 * @module
 */
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import type { BackendOptions } from "./backend_options.ts";
import type { DsnSpec } from "./dsn_spec.ts";
import { describeDsn } from "./dsn.ts";
import { MYSQL_DIALECT, mysqlPool } from "./mysql_backend.ts";
import { PG_DIALECT, pgsqlClient } from "./pgsql_backend.ts";
import { chooseSqliteFile } from "./sqlite_backend.ts";
import { quoteIdentifier, type SqlDialect } from "./sql_select.ts";

/** Most KeyTable rows a rotate run reads: far more keys than one dkimd signs with. */
export const MAX_KEY_TABLE_ROWS = 10_000;

/** A KeyTable row as the rotate tool sees it: its name and its domain, selector and key. */
export interface KeyTableRow {
  /** The key column: the name the SigningTable refers to. */
  readonly keyName: string;
  /** The first datacol. */
  readonly domain: string;
  /** The second datacol. */
  readonly selector: string;
  /** The third datacol: a key file path, or the key itself. */
  readonly key: string;
}

/** The switch of one KeyTable entry to a new key. */
export interface KeyRowSwitch {
  /** The key column's value. */
  readonly keyName: string;
  /** The domain its rows must hold. */
  readonly domain: string;
  /** The selector its rows hold now. */
  readonly fromSelector: string;
  /** The selector they get. */
  readonly toSelector: string;
  /** The key column value they get: the new key's file, or the key itself. */
  readonly toKey: string;
}

/** How a switch ended: rows updated, or the rows held the new selector already. */
export type KeyRowSwitchResult = { readonly updated: number } | { readonly already: true };

/** A KeyTable in a database, opened for the rotate tool. */
export interface KeyTableWriter {
  /** The DSN, its password replaced by `***`. */
  readonly describe: string;
  /** Every row (the filter applied), at most {@link MAX_KEY_TABLE_ROWS}. */
  rows(): Promise<KeyTableRow[]>;
  /**
   * Switches the rows of `change.keyName` in one transaction; rejects with
   * {@link KeyTableWriteError}, having changed nothing, when the database refuses or the rows
   * are not what the rotation expects.
   */
  switchKey(change: KeyRowSwitch): Promise<KeyRowSwitchResult>;
  /** Closes the connection. */
  close(): Promise<void>;
}

/** A KeyTable row that could not be read or switched; says which, where and why. */
export class KeyTableWriteError extends Error {
  /** Makes the error; the message is one line, without the password. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KeyTableWriteError";
  }
}

/** The SQL of one dialect, and how a transaction runs there. */
interface Session {
  /** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(work: (run: Runner) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Runs one statement; resolves its rows (as arrays) and how many rows it changed. */
type Runner = (
  text: string,
  params: readonly string[],
) => Promise<{ rows: unknown[][]; changed: number }>;

/** SQLite's identifiers: double-quoted, as SQL writes them. */
const SQLITE_DIALECT: SqlDialect = {
  quote: (part) => `"${part.replaceAll('"', '""')}"`,
  param: () => "?",
  text: (column) => `CAST(${column} AS TEXT)`,
};

/**
 * Opens the KeyTable `spec` for writing with `options` (the data set's password, TLS and
 * timeouts, or the rotation's own user and password). `directory` is where a relative SQLite
 * file lives (BaseDirectory), chosen as the data set chooses it. Throws for a DSN without the
 * three datacols domain, selector and key. Connects at the first call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { openKeyTableWriter } from "./key_table_writer.ts";
 * import { parseDsn } from "./dsn.ts";
 * const dir = await Deno.makeTempDir();
 * const db = new DatabaseSync(`${dir}/dkim.db`);
 * db.exec("CREATE TABLE keys (id TEXT, domain TEXT, selector TEXT, key TEXT)");
 * db.exec("INSERT INTO keys VALUES ('main', 'example.com', 'old', '/k/old.private')");
 * db.close();
 * const writer = openKeyTableWriter(
 *   parseDsn(`dsn:sqlite3://${dir}/dkim.db/table=keys?keycol=id?datacol=domain,selector,key`),
 *   { queryTimeoutMs: 1000, connectTimeoutMs: 1000 },
 *   dir,
 * );
 * const change = { keyName: "main", domain: "example.com", fromSelector: "old", toSelector: "new", toKey: "/k/new.private" };
 * assert.deepEqual(await writer.switchKey(change), { updated: 1 });
 * assert.deepEqual(await writer.switchKey(change), { already: true });
 * assert.deepEqual(await writer.rows(), [{ keyName: "main", domain: "example.com", selector: "new", key: "/k/new.private" }]);
 * await writer.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function openKeyTableWriter(
  spec: DsnSpec,
  options: BackendOptions,
  directory: string,
): KeyTableWriter {
  const describe = describeDsn(spec);
  if (spec.datacols.length < 3) {
    throw new KeyTableWriteError(
      `The KeyTable ${describe} has ${spec.datacols.length} datacol(s): rotation needs ` +
        "datacol=DOMAIN,SELECTOR,KEY, one column each, to switch the selector and the key",
    );
  }
  const password = options.password ?? spec.password ?? "";
  let session: Session | undefined;
  const dialect = spec.backend === "pgsql"
    ? PG_DIALECT
    : spec.backend === "mysql"
    ? MYSQL_DIALECT
    : SQLITE_DIALECT;
  const q = (name: string, what: string) => quoteIdentifier(name, what, dialect);
  const table = q(spec.table, "table");
  const keycol = q(spec.keycol, "keycol");
  const [domaincol, selectorcol, datacol] = spec.datacols.slice(0, 3).map((c) => q(c, "datacol"));
  const filter = spec.filter === undefined || spec.filter.trim() === ""
    ? ""
    : ` AND (${spec.filter})`;
  const p = (n: number) => dialect.param(n);
  const columns = (names: readonly string[]) =>
    names.map((c, i) => `${dialect.text(c)} AS c${i}`).join(", ");
  // SQLite locks the whole file with BEGIN IMMEDIATE; FOR UPDATE is not its syntax.
  const lock = spec.backend === "sqlite3" ? "" : " FOR UPDATE";

  const open = (): Session => {
    session ??= spec.backend === "pgsql"
      ? pgsqlSession(spec, options)
      : spec.backend === "mysql"
      ? mysqlSession(spec, options)
      : sqliteSession(spec, options, directory);
    return session;
  };
  const failure = (what: string, error: unknown): KeyTableWriteError => {
    if (error instanceof KeyTableWriteError) return error;
    const e = error as { message?: string; code?: string | number; errno?: number };
    let why = e.message ?? String(error);
    if (e.code !== undefined && !why.includes(String(e.code))) why = `${why} (${e.code})`;
    if (password !== "") why = why.split(password).join("***");
    if (DENIED.test(why) || e.code === "42501") {
      why = `${why}; rotation needs a database user with UPDATE on the KeyTable ` +
        "(RotationDataSetUser, RotationDataSetPasswordFile)";
    }
    return new KeyTableWriteError(`Cannot ${what} ${describe}: ${why.replace(/\s+/g, " ")}`, {
      cause: error,
    });
  };

  return {
    describe,
    async rows() {
      const text = `SELECT ${columns([keycol, domaincol, selectorcol, datacol])} FROM ${table}` +
        `${
          filter === "" ? "" : ` WHERE ${filter.slice(" AND ".length)}`
        } LIMIT ${MAX_KEY_TABLE_ROWS}`;
      try {
        const { rows } = await open().transaction((run) => run(text, []));
        return rows.map((r) => {
          const [keyName, domain, selector, key] = r.map((v) => v === null ? "" : String(v));
          return { keyName, domain, selector, key };
        });
      } catch (error) {
        throw failure("read the KeyTable", error);
      }
    },
    async switchKey(change) {
      try {
        return await open().transaction(async (run) => {
          const { rows } = await run(
            `SELECT ${columns([domaincol, selectorcol])} FROM ${table} ` +
              `WHERE ${keycol} = ${p(0)}${filter}${lock}`,
            [change.keyName],
          );
          const found = rows.map(([d, s]) => ({
            domain: String(d ?? ""),
            selector: String(s ?? ""),
          }));
          if (found.length === 0) {
            throw new KeyTableWriteError(`it has no row "${change.keyName}" any more`);
          }
          for (const row of found) {
            if (row.domain.toLowerCase() !== change.domain.toLowerCase()) {
              throw new KeyTableWriteError(
                `its row "${change.keyName}" is for "${row.domain}", not "${change.domain}"`,
              );
            }
            if (row.selector !== change.fromSelector && row.selector !== change.toSelector) {
              throw new KeyTableWriteError(
                `its row "${change.keyName}" has selector "${row.selector}", not ` +
                  `"${change.fromSelector}" (changed by hand?)`,
              );
            }
          }
          const toSwitch = found.filter((r) => r.selector === change.fromSelector).length;
          if (toSwitch === 0) return { already: true } as const;
          const { changed } = await run(
            `UPDATE ${table} SET ${selectorcol} = ${p(0)}, ${datacol} = ${p(1)} ` +
              `WHERE ${keycol} = ${p(2)} AND ${selectorcol} = ${p(3)}${filter}`,
            [change.toSelector, change.toKey, change.keyName, change.fromSelector],
          );
          if (changed !== toSwitch) {
            throw new KeyTableWriteError(
              `the update changed ${changed} row(s) of "${change.keyName}", expected ${toSwitch}`,
            );
          }
          return { updated: changed };
        });
      } catch (error) {
        const e = error instanceof KeyTableWriteError && error.cause === undefined
          ? new KeyTableWriteError(
            `Cannot switch the KeyTable row "${change.keyName}" in ${describe}: ${error.message}`,
          )
          : failure(`switch the KeyTable row "${change.keyName}" in`, error);
        throw e;
      }
    },
    async close() {
      await session?.close();
      session = undefined;
    },
  };
}

/** How each database words a refused privilege or a file it may not write. */
const DENIED = /permission denied|command denied|access denied|readonly database|read-only/i;

/** Longest a PostgreSQL or MySQL transaction of the rotate tool may take, past the connection. */
function deadlineMs(options: BackendOptions): number {
  return options.connectTimeoutMs + 2 * options.queryTimeoutMs;
}

/** Rejects after `ms`, calling `cancel` (which must end the session, rolling back). */
function bounded<T>(work: Promise<T>, ms: number, cancel: () => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      cancel();
      reject(new Error(`no answer within ${ms} ms`));
    }, ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function pgsqlSession(spec: DsnSpec, options: BackendOptions): Session {
  if (spec.user === undefined || spec.user === "") {
    throw new Error("the DSN names no user: write USER[:PASSWORD]@ before the host");
  }
  const { sql } = pgsqlClient(spec, options, 1);
  return {
    async transaction<T>(work: (run: Runner) => Promise<T>): Promise<T> {
      const done = sql.begin((tx) =>
        work(async (text, params) => {
          const result = await tx.unsafe(text, [...params]).values();
          return { rows: result as unknown as unknown[][], changed: result.count };
        })
      ) as Promise<T>;
      done.catch(() => {});
      return await bounded(done, deadlineMs(options), () => void sql.end({ timeout: 0 }));
    },
    async close() {
      await sql.end({ timeout: 1 });
    },
  };
}

function mysqlSession(spec: DsnSpec, options: BackendOptions): Session {
  if (spec.user === undefined || spec.user === "") {
    throw new Error("the DSN names no user: write USER[:PASSWORD]@ before the host");
  }
  let pool = mysqlPool(spec, options, options.tls !== undefined && options.tls !== false, 1);
  const connect = async () => {
    try {
      return await pool.getConnection();
    } catch (error) {
      // DataSetTLS prefer: a server without TLS is met in the clear, as the data set does.
      if (
        options.tls !== true || (error as { code?: string }).code !== "HANDSHAKE_NO_SSL_SUPPORT"
      ) {
        throw error;
      }
      await pool.end().catch(() => {});
      pool = mysqlPool(spec, options, false, 1);
      return await pool.getConnection();
    }
  };
  return {
    async transaction(work) {
      const connection = await bounded(connect(), deadlineMs(options), () => {});
      let broken = false;
      try {
        const done = (async () => {
          await connection.beginTransaction();
          try {
            const result = await work(async (text, params) => {
              const [rows] = await connection.execute({ sql: text, rowsAsArray: true }, [
                ...params,
              ]);
              const header = rows as { affectedRows?: number };
              return Array.isArray(rows)
                ? { rows: rows as unknown as unknown[][], changed: 0 }
                : { rows: [], changed: header.affectedRows ?? 0 };
            });
            await connection.commit();
            return result;
          } catch (error) {
            await connection.rollback().catch(() => {});
            throw error;
          }
        })();
        done.catch(() => {});
        return await bounded(done, deadlineMs(options), () => {
          // The server rolls back a transaction whose connection is gone.
          broken = true;
          connection.destroy();
        });
      } finally {
        if (!broken) connection.release();
      }
    },
    async close() {
      await pool.end().catch(() => {});
    },
  };
}

function sqliteSession(spec: DsnSpec, options: BackendOptions, directory: string): Session {
  const { file } = chooseSqliteFile(spec, directory);
  return {
    transaction(work) {
      // Never create the file: a KeyTable that is not there is an error, not an empty table.
      Deno.statSync(file);
      const db = new DatabaseSync(file, { timeout: options.queryTimeoutMs });
      const runner: Runner = (text, params) => {
        const statement = db.prepare(text);
        if (/^\s*SELECT/i.test(text)) {
          // Every selected column has its own alias (c0, c1...), so the values keep their order.
          const rows = statement.all(...(params as SQLInputValue[]));
          return Promise.resolve({ rows: rows.map((r) => Object.values(r)), changed: 0 });
        }
        const { changes } = statement.run(...(params as SQLInputValue[]));
        return Promise.resolve({ rows: [], changed: Number(changes) });
      };
      const go = async () => {
        db.exec("BEGIN IMMEDIATE");
        try {
          const result = await work(runner);
          db.exec("COMMIT");
          return result;
        } catch (error) {
          if (db.isTransaction) db.exec("ROLLBACK");
          throw error;
        }
      };
      return go().finally(() => db.close());
    },
    close() {
      return Promise.resolve();
    },
  };
}
