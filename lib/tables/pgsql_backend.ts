/**
 * A `dsn:pgsql://` data set answered by PostgreSQL through npm `postgres` (porsager/postgres:
 * pure JavaScript, no native add-on, widely used, its own small connection pool that replaces a
 * dead connection on the next query, and query cancellation).
 *
 * The client is given every option explicitly and never sees the process environment: it would
 * otherwise read PGHOST, PGPASSWORD, PGAPPNAME... and, under the `start` task's limited
 * `--allow-env`, throw for the first one it is not allowed.
 *
 * @module
 */
import process from "node:process";
import tls from "node:tls";
import postgres from "postgres";
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
import type { TableBackend } from "./table_backend.ts";

/** Connections per data set: lookups are short, and several dkimd share one server. */
const POOL_SIZE = 3;
/** PostgreSQL's own default port, as libpq and OpenDBX use when the DSN names none. */
const DEFAULT_PORT = 5432;
/** Seconds an unused connection is kept: a quiet dkimd holds no sessions on the server. */
const IDLE_TIMEOUT_S = 300;

/**
 * PostgreSQL's identifiers, as OpenDKIM's unquoted ones read: folded to lower case, then quoted
 * (so a reserved word is a name too). Also the rotate tool's KeyTable writer's.
 */
export const PG_DIALECT: SqlDialect = {
  quote: (part) => `"${part.toLowerCase()}"`,
  param: (n) => `$${n + 1}`,
  text: (column) => `${column}::text`,
};

/**
 * Opens a PostgreSQL data set. Connects lazily, at the first query; never throws for an
 * unreachable server (the query rejects), only for a DSN it cannot query (a table or column
 * that is not a plain identifier, no user).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openPgsql } from "./pgsql_backend.ts";
 * const backend = openPgsql(
 *   { backend: "pgsql", user: "dkim", password: "s3cret", host: "127.0.0.1", port: 1, database: "mail", table: "keys", keycol: "id", datacols: ["domain", "selector", "key"] },
 *   { queryTimeoutMs: 2000, connectTimeoutMs: 2000 },
 * );
 * assert.equal(backend.describe, "dsn:pgsql://dkim:***@1+127.0.0.1/mail/table=keys?keycol=id?datacol=domain,selector,key");
 * await assert.rejects(backend.query(["example.com"], AbortSignal.timeout(5000)), (e: Error) => !e.message.includes("s3cret"));
 * await backend.close();
 * ```
 */
export function openPgsql(spec: DsnSpec, options: BackendOptions): TableBackend {
  const describe = describeDsn(spec);
  const shape = selectShape(spec, PG_DIALECT);
  if (spec.user === undefined || spec.user === "") {
    // libpq would take the login name from the environment; dkimd reads none.
    throw new Error(`${describe} names no user: write USER[:PASSWORD]@ before the host`);
  }
  const { sql, ssl, password } = pgsqlClient(spec, options, POOL_SIZE);
  let closed = false;

  const run = async (text: string, params: string[], signal: AbortSignal) => {
    if (closed) throw backendError(describe, "the back end is closed");
    const query = sql.unsafe(text, params).values();
    try {
      return await withDeadline(
        describe,
        options.queryTimeoutMs,
        signal,
        () => query,
        () => void query.cancel(),
      );
    } catch (error) {
      throw explain(error);
    } finally {
      // A cancelled query rejects later; nobody waits for it.
      query.catch(() => {});
    }
  };

  const explain = (error: unknown): Error => {
    if (error instanceof Error && error.message.startsWith(`Cannot query ${describe}`)) {
      return error;
    }
    const e = error as { message?: string; code?: string };
    let why = e.message ?? String(error);
    if (e.code && !why.includes(e.code)) why = `${why} (${e.code})`;
    if (e.code !== undefined && CERTIFICATE_REFUSED.test(e.code)) {
      why = `${why}; the server's certificate was refused (TLS verification is required)`;
    } else if (
      (ssl === "require" || typeof ssl === "object") &&
      /SSL|TLS|EPROTO|ECONNRESET|wrong version/i.test(why)
    ) {
      why = `${why}; TLS is required and the server did not complete a TLS handshake`;
    }
    return backendError(describe, why, password);
  };

  return {
    describe,
    async query(keys, signal) {
      const answers: (readonly string[] | undefined)[] = new Array(keys.length).fill(undefined);
      // PostgreSQL text cannot hold NUL, so no row can match such a key; sending it would fail
      // the whole batch ("invalid byte sequence").
      const asked = keys.flatMap((key, i) => key.includes("\0") ? [] : [{ key, i }]);
      for (let start = 0; start < asked.length; start += MAX_KEYS_PER_QUERY) {
        const batch = asked.slice(start, start + MAX_KEYS_PER_QUERY);
        const rows = await run(
          lookupQuery(shape, batch.length),
          batch.map((b) => b.key),
          signal,
        );
        answersFromRows(batch.length, rows).forEach((answer, j) => {
          answers[batch[j].i] = answer;
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
      await sql.end({ timeout: 1 });
    },
  };
}

/** A PostgreSQL client for `spec`, and what its errors are explained with. */
export interface PgsqlClient {
  /** The npm `postgres` client (connects at its first query). */
  readonly sql: postgres.Sql;
  /** Its TLS option, as npm `postgres` takes it. */
  readonly ssl: boolean | "require" | "prefer" | tls.ConnectionOptions;
  /** The password it logs in with, to scrub from error text. */
  readonly password: string;
}

/**
 * The npm `postgres` client for `spec` with `options` (password, TLS, timeouts) and at most
 * `poolSize` connections, built without the process environment. The data set's back end and
 * the rotate tool's KeyTable writer (lib/tables/key_table_writer.ts) connect alike.
 */
export function pgsqlClient(spec: DsnSpec, options: BackendOptions, poolSize: number): PgsqlClient {
  const password = options.password ?? spec.password ?? "";
  const host = spec.host === undefined || spec.host === "" ? "localhost" : spec.host;
  const ssl = options.tls === "verify"
    ? verifiedTls(host, options.ca)
    : options.tls === "require"
    ? "require"
    : options.tls
    ? "prefer"
    : false;
  const sql = withoutEnvironment(() =>
    postgres({
      host,
      port: spec.port ?? DEFAULT_PORT,
      database: spec.database,
      user: spec.user,
      password,
      ssl,
      sslnegotiation: null,
      max: poolSize,
      idle_timeout: IDLE_TIMEOUT_S,
      connect_timeout: options.connectTimeoutMs / 1000,
      max_lifetime: null,
      max_pipeline: 100,
      keep_alive: 60,
      prepare: true,
      debug: false,
      fetch_types: false,
      publications: "alltables",
      target_session_attrs: undefined,
      backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 2),
      connection: { application_name: "dkimd" },
      onnotice: () => {},
    } as postgres.Options<Record<string, never>>)
  );
  return { sql, ssl, password };
}

/** Node's codes for a certificate chain or name that verification refused. */
const CERTIFICATE_REFUSED = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/;

/**
 * npm `postgres`' TLS options for libpq's sslmode=verify-full: the chain checked against `ca`
 * (else the default CAs), and the certificate checked for `host` itself. Node's own check
 * takes the name from `servername`, which must not be an address, so for a DSN naming
 * 127.0.0.1 it would check "localhost": a certificate for localhost would pass for any
 * address, and one listing the address (an IP subjectAltName) would fail.
 */
function verifiedTls(host: string, ca: string | undefined): tls.ConnectionOptions {
  return {
    rejectUnauthorized: true,
    ...(ca === undefined ? {} : { ca }),
    checkServerIdentity: (_name, cert) => tls.checkServerIdentity(host, cert),
  };
}

/**
 * Runs `make` with `process.env` empty: npm `postgres` reads PGAPPNAME and
 * PGTARGETSESSIONATTRS (and PG* for any option left out) while it builds its options,
 * synchronously, and nowhere else.
 */
function withoutEnvironment<T>(make: () => T): T {
  const saved = Object.getOwnPropertyDescriptor(process, "env");
  Object.defineProperty(process, "env", {
    value: Object.freeze({}),
    configurable: true,
    writable: true,
  });
  try {
    return make();
  } finally {
    if (saved) Object.defineProperty(process, "env", saved);
  }
}
