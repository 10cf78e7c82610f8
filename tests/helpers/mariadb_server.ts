/**
 * A private MariaDB for one test (never the system's instance): `mariadb-install-db` into a
 * temporary directory and `mariadbd` as the `mysql` account on 127.0.0.1 and a free high port,
 * its socket in that directory, a test user with a password (grant tables in force), TLS when
 * asked. Tests stop it (an outage) and start it again on the same port and data.
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

/** Longest mariadb-install-db may take on a loaded two-core machine. */
const INSTALL_TIMEOUT_MS = 180_000;
/** Longest the server may take to accept connections after it is started. */
const READY_TIMEOUT_MS = 90_000;
/** Longest one mariadb client run may take. */
const CLIENT_TIMEOUT_MS = 60_000;

/** What a test asks of its server. */
export interface MariadbServerOptions {
  /** Serve TLS with a certificate from a generated test CA (plain connections still work). */
  readonly tls?: boolean;
}

/** A running private MariaDB. */
export type MariadbServer = DatabaseServer;

/**
 * Starts a private MariaDB, with the test user and database made, ready for connections.
 *
 * @example
 * ```ts ignore
 * await using db = await startMariadb();
 * await db.sql("CREATE TABLE t (k varchar(255), v text)");
 * ```
 */
export async function startMariadb(options: MariadbServerOptions = {}): Promise<MariadbServer> {
  const account = await systemAccount("mysql");
  const dir = await makeSharedTempDir(0o700);
  await Deno.chown(dir, account.uid, account.gid);
  const data = `${dir}/data`;
  const socket = `${dir}/mariadb.sock`;
  const user = "dkimd_test";
  const password = `pw-${crypto.randomUUID()}`;
  const database = "dkim";
  const port = freePort();
  let server: ServerProcess | undefined;
  const cleanup = async () => {
    await server?.stop("SIGKILL");
    await Deno.remove(dir, { recursive: true });
  };
  try {
    const install = await runAs(
      account,
      "/usr/bin/mariadb-install-db",
      [
        "--no-defaults",
        `--datadir=${data}`,
        "--auth-root-authentication-method=socket",
        "--skip-test-db",
        "--skip-name-resolve",
      ],
      INSTALL_TIMEOUT_MS,
      dir,
    );
    if (install.code !== 0) throw new Error(`mariadb-install-db failed:\n${install.text}`);
    const args = [
      "--no-defaults",
      `--datadir=${data}`,
      `--port=${port}`,
      "--bind-address=127.0.0.1",
      `--socket=${socket}`,
      `--pid-file=${dir}/mariadb.pid`,
      "--skip-name-resolve",
      "--skip-log-bin",
      "--innodb-buffer-pool-size=16M",
      "--innodb-log-file-size=8M",
      "--innodb-flush-log-at-trx-commit=0",
      "--performance-schema=OFF",
      "--max-connections=40",
    ];
    let cert: TestCertificate | undefined;
    if (options.tls) {
      cert = await writeTestCertificate(dir, account);
      args.push(`--ssl-cert=${cert.certFile}`, `--ssl-key=${cert.keyFile}`);
    } else {
      args.push("--skip-ssl");
    }
    // root logs in by unix_socket authentication: the client runs as root, as the test does.
    const client = async (sql: string, db?: string) => {
      const run = await runAs(
        undefined,
        "/usr/bin/mariadb",
        [
          "--no-defaults",
          `--socket=${socket}`,
          "--user=root",
          "--batch",
          "--skip-column-names",
          ...(db ? [`--database=${db}`] : []),
          "-e",
          sql,
        ],
        CLIENT_TIMEOUT_MS,
        dir,
      );
      if (run.code !== 0) throw new Error(`mariadb failed on ${JSON.stringify(sql)}:\n${run.text}`);
      return run.stdout;
    };
    const start = async () => {
      server = spawnAs(account, "/usr/sbin/mariadbd", args);
      const current = server;
      await waitReady("mariadbd", current, async () => {
        try {
          await client("SELECT 1");
          return true;
        } catch {
          return false;
        }
      }, READY_TIMEOUT_MS);
    };
    await start();
    await client(
      [
        `CREATE DATABASE ${database} CHARACTER SET utf8mb4`,
        `CREATE USER '${user}'@'127.0.0.1' IDENTIFIED BY '${password}'`,
        `GRANT ALL ON ${database}.* TO '${user}'@'127.0.0.1'`,
      ].join(";"),
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
      sql: (sql) => client(sql, database),
      stop: async () => await server?.stop("SIGTERM"),
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
