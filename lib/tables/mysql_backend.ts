/**
 * A `dsn:mysql://` data set answered by MySQL or MariaDB through npm `mysql2` (pure
 * JavaScript, no native add-on, the most used MySQL client for Node): a small pool whose broken
 * connections are dropped and replaced on the next query, and server-side prepared statements
 * (`execute`), so a key travels as a bound value, never as text in the query.
 *
 * @module
 */
import mysql from "mysql2/promise";
import type { BackendOptions } from "./backend_options.ts";
import type { DsnSpec } from "./dsn_spec.ts";
import {
  answersFromRows,
  backendError,
  lookupQuery,
  MAX_KEYS_PER_QUERY,
  scanQuery,
  selectShape,
  type SqlDialect,
  withDeadline,
} from "./sql_select.ts";
import { describeDsn } from "./dsn.ts";
import { checkMysqlTlsHost, mysqlHost } from "./mysql_tls_host.ts";
import type { TableBackend } from "./table_backend.ts";

/** Connections per data set: lookups are short, and several dkimd share one server. */
const POOL_SIZE = 3;
/** MySQL's own default port, as OpenDBX uses when the DSN names none. */
const DEFAULT_PORT = 3306;
/** Milliseconds an unused connection is kept: a quiet dkimd holds no sessions on the server. */
const IDLE_TIMEOUT_MS = 300_000;
/** Longest the `KILL QUERY` sent for an abandoned query may take. */
const KILL_TIMEOUT_MS = 5_000;

/**
 * MySQL's identifiers: back-quoted (case rules stay the server's, as for a bare name). Also the
 * rotate tool's KeyTable writer's.
 */
export const MYSQL_DIALECT: SqlDialect = {
  quote: (part) => `\`${part}\``,
  param: () => "?",
  text: (column) => `CAST(${column} AS CHAR)`,
};

/**
 * Opens a MySQL or MariaDB data set. Connects lazily, at the first query; never throws for an
 * unreachable server (the query rejects), only for a DSN it cannot query.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openMysql } from "./mysql_backend.ts";
 * const backend = openMysql(
 *   { backend: "mysql", user: "dkim", password: "s3cret", host: "127.0.0.1", port: 1, database: "mail", table: "keys", keycol: "id", datacols: ["domain", "selector", "key"] },
 *   { queryTimeoutMs: 2000, connectTimeoutMs: 2000 },
 * );
 * assert.equal(backend.describe, "dsn:mysql://dkim:***@1+127.0.0.1/mail/table=keys?keycol=id?datacol=domain,selector,key");
 * await assert.rejects(backend.query(["example.com"], AbortSignal.timeout(5000)), (e: Error) => !e.message.includes("s3cret"));
 * await backend.close();
 * ```
 */
export function openMysql(spec: DsnSpec, options: BackendOptions): TableBackend {
  const describe = describeDsn(spec);
  const shape = selectShape(spec, MYSQL_DIALECT);
  if (spec.user === undefined || spec.user === "") {
    // libmysqlclient would take the login name from the environment; dkimd reads none.
    throw new Error(`${describe} names no user: write USER[:PASSWORD]@ before the host`);
  }
  const password = options.password ?? spec.password ?? "";
  const makePool = (tls: boolean) => mysqlPool(spec, options, tls, POOL_SIZE);
  // tls: true prefers TLS; mysql2 has no "prefer", so a server that offers none is met by a
  // second pool in the clear (what libmysqlclient's PREFERRED does).
  let pool = makePool(options.tls !== undefined && options.tls !== false);
  let plain = false;
  let closed = false;

  const explain = (error: unknown): Error => {
    if (error instanceof Error && error.message.startsWith(`Cannot query ${describe}`)) {
      return error;
    }
    const e = error as { message?: string; code?: string };
    let why = e.message ?? String(error);
    if (e.code && !why.includes(e.code)) why = `${why} (${e.code})`;
    if (e.code === "HANDSHAKE_NO_SSL_SUPPORT") {
      why = `${why}; TLS is required and the server offers none`;
    } else if (options.tls === "verify" && /certificate|altnames|self-signed/i.test(why)) {
      why = `${why}; the server's certificate was refused (TLS verification is required)`;
    }
    return backendError(describe, why, password);
  };

  const runOnce = async (text: string, params: string[], signal: AbortSignal) => {
    const waiting = pool.getConnection();
    const connection = await withDeadline(
      describe,
      options.queryTimeoutMs,
      signal,
      () => waiting,
      // Given up on: the connection the pool hands over later goes straight back.
      () => void waiting.then((c) => c.release(), () => {}),
    );
    let abandoned = false;
    try {
      return await withDeadline(
        describe,
        options.queryTimeoutMs,
        signal,
        async () => {
          const [rows] = await connection.execute({ sql: text, rowsAsArray: true }, params);
          return rows as unknown as unknown[][];
        },
        () => {
          abandoned = true;
          // Stop the statement on the server (a dropped socket alone may leave it running),
          // and never reuse this connection, which is mid-reply.
          const threadId = connection.threadId;
          pool.query({ sql: `KILL QUERY ${Number(threadId)}`, timeout: KILL_TIMEOUT_MS })
            .catch(() => {});
          connection.destroy();
        },
      );
    } finally {
      if (!abandoned) connection.release();
    }
  };

  const run = async (text: string, params: string[], signal: AbortSignal) => {
    if (closed) throw backendError(describe, "the back end is closed");
    try {
      return await runOnce(text, params, signal);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (options.tls === true && !plain && code === "HANDSHAKE_NO_SSL_SUPPORT") {
        plain = true;
        const old = pool;
        pool = makePool(false);
        old.end().catch(() => {});
        try {
          return await runOnce(text, params, signal);
        } catch (again) {
          throw explain(again);
        }
      }
      throw explain(error);
    }
  };

  return {
    describe,
    async query(keys, signal) {
      const answers: (readonly string[] | undefined)[] = new Array(keys.length).fill(undefined);
      for (let start = 0; start < keys.length; start += MAX_KEYS_PER_QUERY) {
        const batch = keys.slice(start, start + MAX_KEYS_PER_QUERY);
        const rows = await run(lookupQuery(shape, batch.length), [...batch], signal);
        answersFromRows(batch.length, rows).forEach((answer, j) => {
          answers[start + j] = answer;
        });
      }
      return answers;
    },
    async scan(limit, signal) {
      const rows = await run(scanQuery(shape, limit), [], signal);
      return rows.map((row) => ({
        key: row[0] === null ? "" : String(row[0]),
        columns: row.slice(1).map((v) => v === null ? "" : String(v)),
      }));
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end().catch(() => {});
    },
  };
}

/**
 * A mysql2 pool for `spec` with `options` (password, timeouts, TLS when `tls`, the certificate
 * checked for "verify"), at most `poolSize` connections. Throws for "verify" with a server named
 * by its address. The data set's back end and the rotate tool's KeyTable writer
 * (lib/tables/key_table_writer.ts) connect alike.
 */
export function mysqlPool(
  spec: DsnSpec,
  options: BackendOptions,
  tls: boolean,
  poolSize: number,
): mysql.Pool {
  const password = options.password ?? spec.password ?? "";
  checkMysqlTlsHost(spec, options);
  const host = mysqlHost(spec);
  return mysql.createPool({
    host,
    port: spec.port ?? DEFAULT_PORT,
    database: spec.database,
    user: spec.user,
    password,
    charset: "utf8mb4",
    connectTimeout: options.connectTimeoutMs,
    connectionLimit: poolSize,
    maxIdle: poolSize,
    idleTimeout: IDLE_TIMEOUT_MS,
    waitForConnections: true,
    queueLimit: 0,
    enableKeepAlive: true,
    multipleStatements: false,
    ssl: !tls ? undefined : options.tls === "verify"
      // libmysqlclient's VERIFY_IDENTITY: the chain, and the host name, checked before the
      // credentials are sent.
      ? {
        rejectUnauthorized: true,
        verifyIdentity: true,
        ...(options.ca === undefined ? {} : { ca: options.ca }),
      }
      // Like libmysqlclient's --ssl-mode=REQUIRED: encrypted, the certificate not checked.
      : { rejectUnauthorized: false },
  });
}
