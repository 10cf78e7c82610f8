/**
 * From a data set's spec to the back end that answers it: the one place that knows which
 * client serves which `dsn:` back end or LDAP URI. The configuration layer calls it for every
 * `dsn:` and `ldap:` data set; everything above (the cache, the policy tables) sees only a
 * {@link TableBackend}.
 *
 * @module
 */

import type { BackendOptions } from "./backend_options.ts";
import type { DsnSpec } from "./dsn_spec.ts";
import { type LdapOptions, openLdap } from "./ldap_backend.ts";
import { parseLdapUri } from "./ldap_uri.ts";
import { openMysql } from "./mysql_backend.ts";
import { openPgsql } from "./pgsql_backend.ts";
import { chooseSqliteFile, openSqlite } from "./sqlite_backend.ts";
import type { TableBackend } from "./table_backend.ts";

/**
 * Opens the back end of a parsed `dsn:` data set. `directory` is where a relative SQLite file
 * (`dsn:sqlite3://%/dkim.db/...`) lives: BaseDirectory, else the working directory. The SQLite
 * file is chosen here, once (lib/tables/sqlite_backend.ts `chooseSqliteFile()`: the file
 * OpenDKIM opens, `%dkim.db`, unless only `dkim.db` exists), and `warn` is told when it is not
 * OpenDKIM's. Opening does not connect: the first query does, so a database that is down at
 * start delays nothing but the mail that needs it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openDsn } from "./open_backend.ts";
 * import { parseDsn } from "./dsn.ts";
 * const t = openDsn(parseDsn("dsn:sqlite3://%/dkim.db/table=t?keycol=k?datacol=v"), {
 *   queryTimeoutMs: 1000,
 *   connectTimeoutMs: 1000,
 * }, "/var/lib/dkimd");
 * assert.equal(t.describe, "dsn:sqlite3:///var/lib/dkimd/%dkim.db/table=t?keycol=k?datacol=v");
 * ```
 */
export function openDsn(
  spec: DsnSpec,
  options: BackendOptions,
  directory: string,
  warn: (message: string) => void = () => {},
): TableBackend {
  switch (spec.backend) {
    case "sqlite3": {
      const { host: _, ...rest } = spec;
      const { file, warning } = chooseSqliteFile(spec, directory);
      if (warning !== undefined) warn(warning);
      return openSqlite({ ...rest, database: file }, options);
    }
    case "pgsql":
      return openPgsql(spec, options);
    case "mysql":
      return openMysql(spec, options);
  }
}

/**
 * Opens the back end of an `ldap://`, `ldaps://` or `ldapi://` data set. `options` carries the
 * LDAP* settings' bind user, password, TLS and timeouts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openLdapUri } from "./open_backend.ts";
 * const t = openLdapUri("ldap://127.0.0.1:3389/dc=example?mail?sub?(domain=$d)", {
 *   queryTimeoutMs: 1000,
 *   connectTimeoutMs: 1000,
 * });
 * assert.equal(t.describe, "ldap://127.0.0.1:3389/dc=example?mail?sub?(domain=$d)");
 * await t.close();
 * ```
 */
export function openLdapUri(uri: string, options: BackendOptions & LdapOptions): TableBackend {
  return openLdap(parseLdapUri(uri), options);
}
