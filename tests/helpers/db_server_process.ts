/**
 * A database server run by a test as an unprivileged account (PostgreSQL refuses root; MariaDB
 * would need `--user`): started through `setpriv`, which execs, so the pid Deno holds is the
 * server's own and a signal reaches it, with the tail of its log kept for error messages.
 *
 * @module
 */
import { readUserDb, resolveRunAs, type RunAs } from "../../lib/ops/run_as.ts";

/** The last bytes of a server's output kept for error messages. */
const MAX_LOG_CHARS = 16_000;

/** Resolves a system account such as `postgres` or `mysql` from /etc/passwd. */
export async function systemAccount(name: string): Promise<RunAs> {
  return resolveRunAs({ user: name }, await readUserDb());
}

/** The arguments that make `setpriv` exec `program` as `account`. */
export function asAccount(account: RunAs, program: string, args: string[]): string[] {
  return [
    `--reuid=${account.uid}`,
    `--regid=${account.gid}`,
    "--init-groups",
    "--",
    program,
    ...args,
  ];
}

/** A minimal environment, so the PGHOST, MYSQL_HOST... of the machine never reach a test server. */
export const SERVER_ENV: Record<string, string> = {
  PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
  LANG: "C.UTF-8",
};

/** Runs `program args` as `account` to completion (initdb, psql, mariadb-install-db...). */
export async function runAs(
  account: RunAs | undefined,
  program: string,
  args: string[],
  timeoutMs: number,
  cwd?: string,
): Promise<{ code: number; text: string; stdout: string }> {
  const out = await new Deno.Command(account ? "/usr/bin/setpriv" : program, {
    args: account ? asAccount(account, program, args) : args,
    clearEnv: true,
    env: SERVER_ENV,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const decoder = new TextDecoder();
  const stdout = decoder.decode(out.stdout);
  return { code: out.code, text: stdout + decoder.decode(out.stderr), stdout };
}

/** A running server process. */
export interface ServerProcess {
  /** Resolves when it exits. */
  readonly status: Promise<Deno.CommandStatus>;
  /** Whether it has exited. */
  exited(): boolean;
  /** The tail of its standard output and error. */
  log(): string;
  /** Sends `signal` (unless it has exited) and waits for it to exit. */
  stop(signal: Deno.Signal): Promise<void>;
}

/** Starts `program args` as `account`, its output drained into a bounded log. */
export function spawnAs(account: RunAs, program: string, args: string[]): ServerProcess {
  const child = new Deno.Command("/usr/bin/setpriv", {
    args: asAccount(account, program, args),
    clearEnv: true,
    env: SERVER_ENV,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let log = "";
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      log = (log + decoder.decode(chunk, { stream: true })).slice(-MAX_LOG_CHARS);
    }
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  return {
    status,
    exited: () => exited,
    log: () => log,
    async stop(signal) {
      if (!exited) {
        try {
          child.kill(signal);
        } catch {
          // It exited just now.
        }
      }
      await status;
      await drained;
    },
  };
}

/**
 * Polls `probe` until it resolves true, failing early when `server` exits and after
 * `timeoutMs` with the server's log.
 */
export async function waitReady(
  name: string,
  server: ServerProcess,
  probe: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    if (server.exited()) {
      throw new Error(`${name} exited before it was ready; log:\n${server.log()}`);
    }
    if (await probe()) return;
    if (Date.now() > deadline) {
      throw new Error(`${name} was not ready within ${timeoutMs} ms; log:\n${server.log()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * A running private database server (PostgreSQL or MariaDB), as the tests use it: where it
 * listens, the test login, SQL as its administrator, and stop/start for outages.
 */
export interface DatabaseServer extends AsyncDisposable {
  /** Always 127.0.0.1. */
  readonly host: string;
  /** The TCP port, the same across restarts. */
  readonly port: number;
  /** The test database; {@link DatabaseServer.user} may read and write every table in it. */
  readonly database: string;
  /** The test login (a password over TCP). */
  readonly user: string;
  /** Its password. */
  readonly password: string;
  /** Whether TLS is served. */
  readonly tls: boolean;
  /** The test CA's certificate (PEM file) that issued the server's, when TLS is served. */
  readonly caFile?: string;
  /** Runs `sql` as the server's administrator in the test database; resolves its text output. */
  sql(sql: string): Promise<string>;
  /** Stops the server at once (sessions ended, the data kept), as an outage. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory, and waits until it answers. */
  start(): Promise<void>;
  /** The tail of the server's log. */
  log(): string;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
}
