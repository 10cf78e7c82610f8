/**
 * A `dsn:` data set as OpenDKIM names it (opendkim(8), DATA SETS):
 * `dsn:BACKEND://[USER[:PASSWORD]@][PORT+]HOST/DATABASE/table=T?keycol=K?datacol=D[,D2...][?filter=F]`,
 * read into its parts. The parser is dsn.ts; the back ends take this.
 *
 * @module
 */

/** The SQL back ends OpenDKIM reaches through OpenDBX and dkimd speaks to directly. */
export type DsnBackend = "pgsql" | "mysql" | "sqlite3";

/**
 * A parsed `dsn:` data set.
 *
 * @example
 * ```ts
 * import type { DsnSpec } from "./dsn_spec.ts";
 * const spec: DsnSpec = {
 *   backend: "pgsql",
 *   user: "dkim",
 *   host: "127.0.0.1",
 *   port: 5432,
 *   database: "mail",
 *   table: "signing",
 *   keycol: "sender",
 *   datacols: ["keyname"],
 * };
 * ```
 */
export interface DsnSpec {
  /** Which database speaks the query. */
  readonly backend: DsnBackend;
  /** The user to log in as, when given. */
  readonly user?: string;
  /** The password written in the DSN, when given (a file or credential may override it). */
  readonly password?: string;
  /** The server's host name or address (for sqlite3, the directory part OpenDBX glues on). */
  readonly host?: string;
  /** The server's port, from OpenDKIM's `PORT+HOST` form. */
  readonly port?: number;
  /** The database name (for sqlite3, the file path). */
  readonly database: string;
  /** The table queried. */
  readonly table: string;
  /** The column compared with the key. */
  readonly keycol: string;
  /** The columns returned, in order (KeyTable: domain, selector, key or key path). */
  readonly datacols: readonly string[];
  /** An extra SQL condition ANDed into the query, as OpenDKIM's `filter=` (written by the admin). */
  readonly filter?: string;
}
