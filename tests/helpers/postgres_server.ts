/**
 * A private PostgreSQL 15 for one test (never the system's instance): `initdb` into a temporary
 * directory and `postgres` as the `postgres` account on 127.0.0.1 and a free high port, its
 * socket in that directory, SCRAM password logins for a test user, TLS when asked. Tests stop it
 * (an outage) and start it again on the same port and data, and close it at the end.
 *
 * @module
 */
import { freePort } from "./dkimd_process.ts";
import { makeSharedTempDir } from "./shared_temp_dir.ts";
import { type TestCertificate, writeTestCertificate } from "./test_certificate.ts";
import {
  type DatabaseServer,
  runAs,
  type ServerProcess,
  spawnAs,
  systemAccount,
  waitReady,
} from "./db_server_process.ts";

/** Debian's PostgreSQL 15 programs. */
const BIN = "/usr/lib/postgresql/15/bin";
/** Longest initdb may take on a loaded two-core machine. */
const INITDB_TIMEOUT_MS = 120_000;
/** Longest the server may take to accept connections after it is started. */
const READY_TIMEOUT_MS = 60_000;
/** Longest one psql run may take. */
const PSQL_TIMEOUT_MS = 60_000;

/** What a test asks of its server. */
export interface PostgresServerOptions {
  /** Serve TLS with a certificate from a generated test CA (plain connections still work). */
  readonly tls?: boolean;
  /** Log every statement into {@link PostgresServer.log} (`log_statement=all`). */
  readonly logStatements?: boolean;
  /**
   * The TLS certificate's subjectAltName entries (`IP:127.0.0.1`, `DNS:localhost`, ...) in place
   * of the test CA's usual two, for a test of the client's name check.
   */
  readonly certificateNames?: readonly string[];
}

/** A running private PostgreSQL. */
export type PostgresServer = DatabaseServer;

/**
 * Starts a private PostgreSQL, with the test user and database made, ready for connections.
 *
 * @example
 * ```ts ignore
 * await using pg = await startPostgres();
 * await pg.sql("CREATE TABLE t (k text, v text)");
 * ```
 */
export async function startPostgres(options: PostgresServerOptions = {}): Promise<PostgresServer> {
  const account = await systemAccount("postgres");
  const dir = await makeSharedTempDir(0o700);
  await Deno.chown(dir, account.uid, account.gid);
  const data = `${dir}/data`;
  const user = "dkimd_test";
  const password = `pw-${crypto.randomUUID()}`;
  const database = "dkim";
  const port = freePort();
  let server: ServerProcess | undefined;
  const cleanup = async () => {
    await server?.stop("SIGQUIT");
    await Deno.remove(dir, { recursive: true });
  };
  try {
    const init = await runAs(
      account,
      `${BIN}/initdb`,
      [
        "-D",
        data,
        "-U",
        "postgres",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C.UTF-8",
        "--no-sync",
        "--no-instructions",
      ],
      INITDB_TIMEOUT_MS,
      dir,
    );
    if (init.code !== 0) throw new Error(`initdb failed:\n${init.text}`);
    const settings = [
      "listen_addresses=127.0.0.1",
      `port=${port}`,
      `unix_socket_directories=${dir}`,
      "fsync=off",
      "full_page_writes=off",
      "synchronous_commit=off",
      "shared_buffers=16MB",
      "max_connections=40",
      "log_min_messages=warning",
      "logging_collector=off",
    ];
    if (options.logStatements) settings.push("log_statement=all");
    let cert: TestCertificate | undefined;
    if (options.tls) {
      cert = await writeTestCertificate(dir, account, options.certificateNames);
      settings.push("ssl=on", `ssl_cert_file=${cert.certFile}`, `ssl_key_file=${cert.keyFile}`);
    }
    const args = settings.flatMap((s) => ["-c", s]);
    const psql = async (sql: string, db: string) => {
      const run = await runAs(
        account,
        `${BIN}/psql`,
        [
          "-X",
          "-q",
          "-A",
          "-t",
          "-v",
          "ON_ERROR_STOP=1",
          "-h",
          dir,
          "-p",
          String(port),
          "-U",
          "postgres",
          "-d",
          db,
          "-c",
          sql,
        ],
        PSQL_TIMEOUT_MS,
        dir,
      );
      if (run.code !== 0) throw new Error(`psql failed on ${JSON.stringify(sql)}:\n${run.text}`);
      return run.stdout;
    };
    const start = async () => {
      server = spawnAs(account, `${BIN}/postgres`, ["-D", data, ...args]);
      const current = server;
      await waitReady("postgres", current, async () => {
        try {
          await psql("SELECT 1", "postgres");
          return true;
        } catch {
          return false;
        }
      }, READY_TIMEOUT_MS);
    };
    await start();
    await psql(`CREATE ROLE ${user} LOGIN PASSWORD '${password}'`, "postgres");
    await psql(`CREATE DATABASE ${database} OWNER ${user}`, "postgres");
    // Tables the superuser makes in the test database are readable and writable by the user.
    await psql(
      `ALTER DEFAULT PRIVILEGES GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${user}`,
      database,
    );
    let closed = false;
    const close = async () => {
      if (closed) return;
      closed = true;
      await cleanup();
    };
    return {
      host: "127.0.0.1",
      port,
      database,
      user,
      password,
      tls: options.tls ?? false,
      ...(cert ? { caFile: cert.caFile } : {}),
      sql: (sql) => psql(sql, database),
      // SIGINT is PostgreSQL's "fast" shutdown: sessions are ended at once, as in a crash of
      // the database host from a client's point of view, but the data stays consistent.
      stop: async () => await server?.stop("SIGINT"),
      start,
      log: () => server?.log() ?? "",
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
