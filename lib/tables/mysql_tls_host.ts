/**
 * The one MySQL setting dkimd refuses before connecting: `DataSetTLS verify` for a server named
 * by its address. mysql2 checks the certificate's name only against a host name: for an
 * address it would check "localhost" (Node's default), or nothing, never the address. Kept
 * apart from lib/tables/mysql_backend.ts so the configuration is refused at load without
 * loading the MySQL client first.
 *
 * @module
 */

import net from "node:net";
import type { BackendOptions } from "./backend_options.ts";
import { describeDsn } from "./dsn.ts";
import type { DsnSpec } from "./dsn_spec.ts";

/**
 * The host a `dsn:mysql` data set connects to: the DSN's, else `localhost` (libmysqlclient's
 * default).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mysqlHost } from "./mysql_tls_host.ts";
 * assert.equal(mysqlHost({ backend: "mysql", database: "d", table: "t", keycol: "k", datacols: ["v"] }), "localhost");
 * ```
 */
export function mysqlHost(spec: DsnSpec): string {
  return spec.host === undefined || spec.host === "" ? "localhost" : spec.host;
}

/**
 * Throws when `options` ask for the server's certificate to be checked (TLS "verify") and
 * `spec` names the server by its address.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkMysqlTlsHost } from "./mysql_tls_host.ts";
 * const spec = { backend: "mysql", host: "127.0.0.1", database: "d", table: "t", keycol: "k", datacols: ["v"] } as const;
 * const options = { queryTimeoutMs: 1000, connectTimeoutMs: 1000 };
 * checkMysqlTlsHost(spec, { ...options, tls: "require" });
 * assert.throws(() => checkMysqlTlsHost(spec, { ...options, tls: "verify" }), /by the address "127\.0\.0\.1"/);
 * ```
 */
export function checkMysqlTlsHost(spec: DsnSpec, options: BackendOptions): void {
  const host = mysqlHost(spec);
  if (options.tls === "verify" && net.isIP(host) !== 0) {
    throw new Error(
      `${describeDsn(spec)} names its server by the address "${host}": checking the server's ` +
        "certificate (TLS verify) needs the host name the certificate lists",
    );
  }
}
