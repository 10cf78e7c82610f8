/**
 * The contract between dkimd's data sets and the databases that can hold them (opendkim(8), DATA
 * SETS: `dsn:` through OpenDBX and `ldap:`): one query for a batch of keys, the data columns of
 * the first row of each key out. Everything a database shares (the cache with its TTL, the
 * negative entries, serving a fresh entry through an outage, one log line per outage, the metrics)
 * is built once above this interface, so a back end is only a client, its parameterised query and
 * its own timeout.
 *
 * @module
 */

/**
 * One database table or directory as a data set sees it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TableBackend } from "./table_backend.ts";
 * const rows = new Map([["example.com", ["example.com", "sel", "/k.pem"]]]);
 * const memory: TableBackend = {
 *   describe: "memory",
 *   query: (keys) => Promise.resolve(keys.map((k) => rows.get(k.toLowerCase()))),
 *   scan: (limit) =>
 *     Promise.resolve([...rows].slice(0, limit).map(([key, columns]) => ({ key, columns }))),
 *   close: () => Promise.resolve(),
 * };
 * assert.deepEqual(await memory.query(["nope", "Example.COM"], AbortSignal.timeout(1000)), [
 *   undefined,
 *   ["example.com", "sel", "/k.pem"],
 * ]);
 * ```
 */
export interface TableBackend {
  /**
   * How logs and `check-config` name this back end: the DSN or URI with any password replaced
   * by `***`, never the password itself.
   */
  readonly describe: string;
  /**
   * For each of `keys`, in the order asked, the data columns of the first row whose key column
   * equals the key (`undefined` where there is none). Keys are values bound as query parameters,
   * never text spliced into a query. Comparison is the database's own (OpenDKIM leaves it to the
   * database too). Rejects (with an Error that names the back end and says why, password
   * redacted) when the database cannot answer or `signal` aborts (the per-query timeout).
   */
  query(keys: readonly string[], signal: AbortSignal): Promise<(readonly string[] | undefined)[]>;
  /**
   * Every row (key and data columns), for tools only (`testkey -x` on a database KeyTable,
   * `check-config`), never while mail flows: the filter asks by key and never walks a table.
   * Stops after `limit` rows. Rejects like {@link TableBackend.query}.
   */
  scan(
    limit: number,
    signal: AbortSignal,
  ): Promise<{ key: string; columns: readonly string[] }[]>;
  /** Closes connections; later queries reject. */
  close(): Promise<void>;
}
