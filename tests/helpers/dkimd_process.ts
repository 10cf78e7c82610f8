/**
 * Runs dkimd as a real process for end-to-end tests: `deno run main.ts -x CONFIG -f` with the
 * service's own permission flags, the way an init script starts OpenDKIM, on a free port of
 * 127.0.0.1 or ::1 (or a given socket), with its log collected.
 *
 * @module
 */

import { type ClientMessage, type MessageResult, MilterClient } from "../../lib/milter/client.ts";
import { formatSocketSpec, parseSocketSpec } from "../../lib/milter/socket_spec.ts";
import { SERVICE_DENO_FLAGS } from "../../lib/ops/self_command.ts";
import { dkimdEnv } from "./dkimd_env.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

/** A running dkimd. */
export interface DkimdProcess {
  /** The socket spec it listens on, as opendkim.conf writes it. */
  readonly socket: string;
  /** The TCP port, for inet sockets. */
  readonly port: number;
  /** The process id. */
  readonly pid: number;
  /** The configuration file. */
  readonly config: string;
  /** Everything logged so far. */
  log(): string;
  /** Waits until the log matches `pattern` (bounded). */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends a signal. */
  signal(signal: Deno.Signal): void;
  /** Stops it with SIGTERM (SIGKILL after a while) and resolves to its exit status. */
  stop(): Promise<number>;
  /** Resolves to the exit status when the process ends on its own. */
  readonly status: Promise<Deno.CommandStatus>;
}

/** A free TCP port on `host`, 127.0.0.1 unless given (bound, then released). */
export function freePort(host: "127.0.0.1" | "::1" = "127.0.0.1"): number {
  const listener = Deno.listen({ hostname: host, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Ports tried before giving up, when the one picked is taken before dkimd binds it. */
const START_PORT_ATTEMPTS = 5;

/** What {@link startDkimd} takes besides the directory and the configuration. */
export interface StartDkimdOptions {
  /** The socket to listen on; default: a free port of `host`. */
  readonly socket?: string;
  /** The loopback address of the default socket: "127.0.0.1" (default) or "::1". */
  readonly host?: "127.0.0.1" | "::1";
  /** More arguments after `-x CONFIG -f`. */
  readonly args?: readonly string[];
  /** More environment variables. */
  readonly env?: Record<string, string>;
  /** Called with the process as soon as it is started, before it listens. */
  readonly onSpawn?: (process: Deno.ChildProcess) => void;
}

class PortTakenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PortTakenError";
  }
}

/**
 * Writes `config(socket)` to `dir/dkimd.conf` and starts dkimd on it; resolves once it listens.
 * `socket` defaults to a free port of 127.0.0.1 (or `options.host`). That port is free when picked, not when dkimd
 * binds it a moment later: a connection of a test running beside this one may take it as its
 * local port meanwhile. Then dkimd exits saying so, and it is started again on another port.
 */
export async function startDkimd(
  dir: string,
  config: (socket: string) => string,
  options: StartDkimdOptions = {},
): Promise<DkimdProcess> {
  if (options.socket) return await startOnce(dir, config, options.socket, 0, options);
  for (let attempt = 1;; attempt++) {
    const host = options.host ?? "127.0.0.1";
    const port = freePort(host);
    const socket = formatSocketSpec({ kind: "inet", host, port });
    try {
      return await startOnce(dir, config, socket, port, options);
    } catch (e) {
      if (!(e instanceof PortTakenError) || attempt === START_PORT_ATTEMPTS) throw e;
    }
  }
}

async function startOnce(
  dir: string,
  config: (socket: string) => string,
  socket: string,
  port: number,
  options: StartDkimdOptions,
): Promise<DkimdProcess> {
  const path = `${dir}/dkimd.conf`;
  await Deno.writeTextFile(path, config(socket));
  const child = new Deno.Command(Deno.execPath(), {
    // The very permissions `deno task start` and `deno task compile` grant, so a missing one
    // fails here as it would in service.
    args: [
      "run",
      ...SERVICE_DENO_FLAGS,
      `--config=${CONFIG}`,
      "--quiet",
      MAIN,
      "-x",
      path,
      "-f",
      ...(options.args ?? []),
    ],
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: dkimdEnv({ NO_COLOR: "1", ...options.env }),
  }).spawn();
  options.onSpawn?.(child);
  let text = "";
  const waiters: (() => void)[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      for (const w of waiters.splice(0)) w();
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = child.status.then(async (s) => {
    await pumps;
    for (const w of waiters.splice(0)) w();
    return s;
  });
  let exited = false;
  status.then(() => exited = true);
  const waitForLog = async (pattern: RegExp, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(text)) {
      if (exited) throw new Error(`dkimd exited before logging ${pattern}:\n${text}`);
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`dkimd did not log ${pattern} within ${timeoutMs} ms:\n${text}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  };
  const handle: DkimdProcess = {
    socket,
    port,
    pid: child.pid,
    config: path,
    log: () => text,
    waitForLog,
    signal: (s) => {
      if (!exited) child.kill(s);
    },
    async stop() {
      if (!exited) child.kill("SIGTERM");
      const timer = setTimeout(() => {
        if (!exited) child.kill("SIGKILL");
      }, 20_000);
      const s = await status;
      clearTimeout(timer);
      return s.code;
    },
    status,
  };
  try {
    await waitForLog(/listening on/);
  } catch (e) {
    await handle.stop();
    if (port !== 0 && text.includes(`cannot listen on ${socket}: Address already in use`)) {
      throw new PortTakenError(`Port ${port} was taken before dkimd bound it:\n${text}`);
    }
    throw e;
  }
  return handle;
}

/** Sends one message to `d` over a connection of its own, as an MTA does. */
export async function sendMessage(d: DkimdProcess, m: ClientMessage): Promise<MessageResult> {
  const client = await MilterClient.connect(parseSocketSpec(d.socket));
  try {
    return await client.sendMessage(m);
  } finally {
    client.close();
  }
}

/** MTA connections a dkimd has open now: its `dkimd_connections` gauge on `metricsPort`. */
export async function openConnections(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const m = /^dkimd_connections (\d+)$/m.exec(text);
  if (!m) throw new Error(`No dkimd_connections gauge in:\n${text}`);
  return Number(m[1]);
}

/** Polls `check` every 20 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function until(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
