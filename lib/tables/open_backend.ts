/**
 * From a data set's spec to the back end that answers it: the one place that knows which
 * client serves which `dsn:` back end or LDAP URI. The configuration layer calls it for every
 * `dsn:` and `ldap:` data set; everything above (the cache, the policy tables) sees only a
 * {@link TableBackend}.
 *
 * The PostgreSQL, MySQL and LDAP back ends, and the npm clients under them (`postgres`,
 * `mysql2`, `ldapts`), are imported here only when a data set needs one: most dkimd have none,
 * and loading the three would cost every one of them memory and start time
 * (tests/tables/lazy_clients_test.ts).
 *
 * @module
 */

import type { BackendOptions } from "./backend_options.ts";
import type { DsnSpec } from "./dsn_spec.ts";
import type { LdapOptions } from "./ldap_backend.ts";
import { parseLdapUri } from "./ldap_uri.ts";
import { checkMysqlTlsHost } from "./mysql_tls_host.ts";
import { chooseSqliteFile, openSqlite } from "./sqlite_backend.ts";
import type { TableBackend } from "./table_backend.ts";

/**
 * Opens the back end of a parsed `dsn:` data set. `directory` is where a relative SQLite file
 * (`dsn:sqlite3://%/dkim.db/...`) lives: BaseDirectory, else the working directory. The SQLite
 * file is chosen here, once (lib/tables/sqlite_backend.ts `chooseSqliteFile()`: the file
 * OpenDKIM opens, `%dkim.db`, unless only `dkim.db` exists), and `warn` is told when it is not
 * OpenDKIM's. Opening does not connect: the first query does, so a database that is down at
 * start delays nothing but the mail that needs it. Resolves once the back end's client is
 * loaded; rejects, before loading it, for a DSN it cannot query.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openDsn } from "./open_backend.ts";
 * import { parseDsn } from "./dsn.ts";
 * const t = await openDsn(parseDsn("dsn:sqlite3://%/dkim.db/table=t?keycol=k?datacol=v"), {
 *   queryTimeoutMs: 1000,
 *   connectTimeoutMs: 1000,
 * }, "/var/lib/dkimd");
 * assert.equal(t.describe, "dsn:sqlite3:///var/lib/dkimd/%dkim.db/table=t?keycol=k?datacol=v");
 * ```
 */
export async function openDsn(
  spec: DsnSpec,
  options: BackendOptions,
  directory: string,
  warn: (message: string) => void = () => {},
): Promise<TableBackend> {
  switch (spec.backend) {
    case "sqlite3": {
      const { host: _, ...rest } = spec;
      const { file, warning } = chooseSqliteFile(spec, directory);
      if (warning !== undefined) warn(warning);
      return openSqlite({ ...rest, database: file }, options);
    }
    case "pgsql":
      return (await import("./pgsql_backend.ts")).openPgsql(spec, options);
    case "mysql":
      // Refused at load, as before, without loading mysql2 first.
      checkMysqlTlsHost(spec, options);
      return (await import("./mysql_backend.ts")).openMysql(spec, options);
  }
}

/**
 * Opens the back end of an `ldap://`, `ldaps://` or `ldapi://` data set. `options` carries the
 * LDAP* settings' bind user, password, TLS and timeouts. The URL is checked (rejecting with
 * what is wrong) before the LDAP client is loaded.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openLdapUri } from "./open_backend.ts";
 * const t = await openLdapUri("ldap://127.0.0.1:3389/dc=example?mail?sub?(domain=$d)", {
 *   queryTimeoutMs: 1000,
 *   connectTimeoutMs: 1000,
 * });
 * assert.equal(t.describe, "ldap://127.0.0.1:3389/dc=example?mail?sub?(domain=$d)");
 * await t.close();
 * ```
 */
export async function openLdapUri(
  uri: string,
  options: BackendOptions & LdapOptions,
): Promise<TableBackend> {
  const spec = parseLdapUri(uri);
  return (await import("./ldap_backend.ts")).openLdap(spec, options);
}
