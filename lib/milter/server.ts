/**
 * The milter server: listens on a TCP or unix socket and runs one {@link MilterSession} per MTA
 * connection. It only moves bytes: frames are decoded, handed to the session, and the replies to
 * the commands of each read go back in one write (reply_batch.ts: several small writes would meet
 * Nagle's algorithm and the MTA's delayed ACK, some 40 ms per message, and each costs a system
 * call). Every limit is an option with a named default:
 * frame size, concurrent connections, idle time per read, shutdown grace. A failure in one
 * connection is logged and closes that connection only. Log lines about a limit name it by its
 * dkimd setting (`MilterMaxFrameBytes`, `MilterMaxConnections`, `MilterIdleTimeout`), so an
 * operator knows what to raise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serve } from "./server.ts";
 * import { MilterClient } from "./client.ts";
 * import { SMFIF_ADDHDRS } from "./constants.ts";
 * const quiet = { debug() {}, info() {}, warn() {}, error() {} };
 * const server = await serve({
 *   socket: { kind: "inet", host: "127.0.0.1", port: 0 },
 *   logger: quiet,
 *   filter: {
 *     needs: { actions: SMFIF_ADDHDRS, events: [] },
 *     connect: () => ({ endOfMessage: () => ({ modifications: [], action: "accept" }) }),
 *   },
 * });
 * const client = await MilterClient.connect(server.address);
 * const result = await client.sendMessage({ headers: [["Subject", "Hi"]], body: "Hi\r\n" });
 * assert.equal(result.final.type, "accept");
 * await client.quit();
 * await server.close();
 * ```
 *
 * @module
 */

import { errorDescription } from "../error_message.ts";
import type { Filter } from "./filter.ts";
import { FrameDecoder } from "./frame.ts";
import type { MilterLogger } from "./logger.ts";
import { MilterProtocolError } from "./protocol_error.ts";
import type { Reply } from "./reply.ts";
import { answerBurst, type BurstIo, ReplyBatch } from "./reply_batch.ts";
import { type ErrorAction, MilterSession } from "./session.ts";
import type { SocketSpec } from "./socket_spec.ts";
import { listenUnix, removeOwnSocket } from "./unix_socket.ts";
import {
  type InheritedConn,
  type InheritedListener,
  listenInherited,
} from "./inherited_listener.ts";

// A connection or listener: Deno's own, or one on a socket systemd passed (socket activation).
type Conn = Deno.Conn | InheritedConn;
type Listener = Deno.Listener | InheritedListener;

/**
 * Most MTA connections served at once: 512, five times Postfix's `default_process_limit` of 100
 * smtpd processes (each holds one milter connection), and well under a 1024 descriptor limit.
 */
export const MAX_CONNECTIONS_DEFAULT = 512;

/**
 * Longest wait for the MTA's next bytes before the connection is closed: 7210 s, libmilter's
 * default timeout (`MI_TIMEOUT`), which OpenDKIM keeps. Postfix holds a milter connection open for
 * a whole SMTP session, idle while its client is, so a short limit would cut live sessions.
 */
export const READ_TIMEOUT_MS_DEFAULT = 7_210_000;

/**
 * How long close() lets transactions in progress finish: 15 s, enough for a verification's DNS
 * lookups, well inside systemd's default 90 s stop timeout.
 */
export const SHUTDOWN_GRACE_MS_DEFAULT = 15_000;

// Bytes read from a socket at a time: one full body frame with its header.
const READ_BUFFER_BYTES = 65536 + 16;
// Pause after a failed accept() (e.g. out of descriptors) before trying again.
const ACCEPT_RETRY_MS = 100;

/**
 * Refusals past the connection limit are logged at most once per this many milliseconds, with a
 * count of the rest, so a flood of connections cannot flood the log too.
 */
export const REFUSAL_LOG_INTERVAL_MS = 1000;

/** Options of {@link serve}. */
export interface ServeOptions {
  /** Where to listen. */
  readonly socket: SocketSpec;
  /** The filter each connection runs. */
  readonly filter: Filter;
  /** Where log lines go. */
  readonly logger: MilterLogger;
  /** A message's answer when the filter fails; default accept. */
  readonly onError?: ErrorAction;
  /** Largest frame accepted; default `MAX_FRAME_BYTES_DEFAULT` (1 MiB). */
  readonly maxFrameBytes?: number;
  /** Most connections at once; default {@link MAX_CONNECTIONS_DEFAULT}. */
  readonly maxConnections?: number;
  /**
   * Idle limit in milliseconds (dkimd's `MilterIdleTimeout`): for each read and write, and for
   * a frame to arrive whole once its first byte came, so a peer that trickles bytes cannot hold
   * a connection; default {@link READ_TIMEOUT_MS_DEFAULT}.
   */
  readonly readTimeoutMs?: number;
  /** Time close() gives transactions in progress; default {@link SHUTDOWN_GRACE_MS_DEFAULT}. */
  readonly shutdownGraceMs?: number;
  /**
   * The umask a unix socket is created with, as OpenDKIM's `UMask` (e.g. 0o007 lets the group
   * connect); the socket's mode is `0o777 & ~umask`. Default: the process umask.
   */
  readonly umask?: number;
  /**
   * A listening descriptor inherited from systemd (socket activation, inherited_listener.ts) to
   * serve on instead of opening `socket`, which then only names it in log lines.
   */
  readonly inheritedFd?: number;
}

/** A running server. */
export interface MilterServer {
  /** Where it listens, with the port the system chose when 0 was asked for. */
  readonly address: SocketSpec;
  /** Connections open now. */
  readonly connections: number;
  /**
   * Stops accepting, closes idle connections, lets transactions in progress finish within the
   * grace period, then closes the rest and removes the unix socket file. Resolves when all is
   * closed; calling it again returns the same promise.
   */
  close(): Promise<void>;
}

class TimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TimeoutError";
  }
}

/**
 * Starts listening and serving; resolves once the socket is ready. A unix socket path holding a
 * stale socket (nobody listening) is replaced; one with a live listener, or anything but a
 * socket, is refused with `SocketInUseError` (unix_socket.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serve } from "./server.ts";
 * const quiet = { debug() {}, info() {}, warn() {}, error() {} };
 * const dir = await Deno.makeTempDir();
 * const server = await serve({
 *   socket: { kind: "unix", path: `${dir}/milter.sock` },
 *   logger: quiet,
 *   umask: 0o007,
 *   filter: {
 *     needs: { actions: 0, events: [] },
 *     connect: () => ({ endOfMessage: () => ({ modifications: [], action: "continue" }) }),
 *   },
 * });
 * assert.equal((await Deno.lstat(`${dir}/milter.sock`)).mode! & 0o777, 0o770);
 * await server.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function serve(options: ServeOptions): Promise<MilterServer> {
  const server = new Server(options);
  await server.listen();
  return server;
}

interface Connection {
  readonly conn: Conn;
  readonly session: MilterSession;
  // Set when this side closes the socket; reads and writes then fail quietly.
  closed: boolean;
  // Settles when shutdown gives up on the connection after the grace period, so a filter
  // callback that never returns cannot hold close() forever.
  readonly abandoned: PromiseWithResolvers<"abandoned">;
  // Ends the wait of the frame being handled when shutdown gives up. One slot, refilled per
  // frame: racing `abandoned.promise` itself would add a reaction to it for every frame, all
  // kept until the connection closes (a leak of ~1 MB per thousand messages).
  onAbandoned?: (value: "abandoned") => void;
  // Set once shutdown has given up on the connection.
  gaveUp?: boolean;
  // When the socket operation in progress must be over (performance.now() milliseconds);
  // Infinity while none is, as while the filter works on a command.
  deadline: number;
  // What the connection is waiting for, said when the deadline passes.
  waitingFor: string;
  // Set when the idle timer closed the connection: what it had waited for.
  timedOut?: string;
  // The connection's one idle timer and when it fires. It is not re-armed per read or write (a
  // timer armed and cleared per socket operation cost a fifth of the CPU of a small message):
  // it fires, compares the deadline with the clock, and either closes the connection or sleeps
  // until the deadline.
  timer?: ReturnType<typeof setTimeout>;
  timerAt: number;
}

class Server implements MilterServer {
  readonly #options: ServeOptions;
  readonly #log: MilterLogger;
  readonly #maxConnections: number;
  readonly #readTimeoutMs: number;
  readonly #graceMs: number;
  // What a connection closed by MilterIdleTimeout was waiting for, for the log.
  readonly #idleText: string;
  readonly #incompleteText: string;
  readonly #unreadText: string;
  #listener?: Listener;
  #address?: SocketSpec;
  #socketIno?: number | null;
  readonly #live = new Map<Connection, Promise<void>>();
  #stopping = false;
  #closing?: Promise<void>;
  #accepting?: Promise<void>;
  #nextId = 1;
  // Connections refused since the last refusal was logged, and the timer that logs their count.
  #refusedUnlogged = 0;
  #refusalTimer?: ReturnType<typeof setTimeout>;

  constructor(options: ServeOptions) {
    this.#options = options;
    this.#log = options.logger;
    this.#maxConnections = positive(
      "maxConnections",
      options.maxConnections,
      MAX_CONNECTIONS_DEFAULT,
    );
    this.#readTimeoutMs = positive("readTimeoutMs", options.readTimeoutMs, READ_TIMEOUT_MS_DEFAULT);
    this.#graceMs = positive(
      "shutdownGraceMs",
      options.shutdownGraceMs,
      SHUTDOWN_GRACE_MS_DEFAULT,
      true,
    );
    const limit = seconds(this.#readTimeoutMs);
    this.#idleText = `No data from the MTA for MilterIdleTimeout (${limit})`;
    this.#incompleteText = `Frame incomplete after MilterIdleTimeout (${limit})`;
    this.#unreadText = `The MTA read no reply for MilterIdleTimeout (${limit})`;
    // Checked now, so a bad limit fails at start rather than per connection.
    new FrameDecoder({ maxFrameBytes: options.maxFrameBytes });
  }

  get address(): SocketSpec {
    if (!this.#address) throw new Error("The milter server is not listening");
    return this.#address;
  }

  get connections(): number {
    return this.#live.size;
  }

  async listen(): Promise<void> {
    const spec = this.#options.socket;
    if (this.#options.inheritedFd !== undefined) {
      const listener = await listenInherited(this.#options.inheritedFd);
      const tcp = listener.tcpAddress;
      this.#listener = listener;
      this.#address = tcp ? { kind: "inet", host: tcp.host, port: tcp.port } : spec;
      this.#log.info(
        `Milter listening on the socket systemd passed (fd ${this.#options.inheritedFd}, ` +
          `${tcp ? describeSpec(this.#address) : "a unix socket"})`,
      );
      this.#accepting = this.#acceptLoop(this.#listener);
      return;
    }
    if (spec.kind === "inet") {
      const listener = Deno.listen({ transport: "tcp", hostname: spec.host, port: spec.port });
      this.#listener = listener;
      this.#address = { kind: "inet", host: spec.host, port: listener.addr.port };
    } else {
      const socket = await listenUnix(spec.path, this.#options.umask, this.#log);
      this.#listener = socket.listener;
      this.#socketIno = socket.ino;
      this.#address = spec;
    }
    this.#log.info(`Milter listening on ${describeSpec(this.#address)}`);
    this.#accepting = this.#acceptLoop(this.#listener);
  }

  async #acceptLoop(listener: Listener): Promise<void> {
    while (!this.#stopping) {
      let conn: Conn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (this.#stopping) return;
        this.#log.error(`Cannot accept a connection: ${errorDescription(error)}`);
        await new Promise((resolve) => setTimeout(resolve, ACCEPT_RETRY_MS));
        continue;
      }
      if (this.#stopping) {
        safeClose(conn);
        return;
      }
      const id = this.#nextId++;
      if (this.#live.size >= this.#maxConnections) {
        this.#refuse(conn, id);
        continue;
      }
      const entry: Connection = {
        conn,
        session: new MilterSession(this.#options.filter, {
          logger: this.#log,
          onError: this.#options.onError,
          label: `connection ${id}`,
        }),
        closed: false,
        abandoned: Promise.withResolvers(),
        deadline: Infinity,
        waitingFor: "",
        timerAt: Infinity,
      };
      this.#live.set(entry, this.#serveConnection(entry, id));
    }
  }

  // Closes a connection over the limit: the MTA then applies its own default action
  // (Postfix's milter_default_action). The first refusal of a burst is logged at once, the rest
  // as one count per REFUSAL_LOG_INTERVAL_MS.
  #refuse(conn: Conn, id: number): void {
    const from = describeAddr(conn.remoteAddr);
    safeClose(conn);
    if (this.#refusalTimer !== undefined) {
      this.#refusedUnlogged++;
      return;
    }
    this.#log.warn(
      `MilterMaxConnections (${this.#maxConnections}) reached: refusing connection ${id} from ${from}`,
    );
    const flush = () => {
      if (this.#refusedUnlogged === 0) {
        this.#refusalTimer = undefined;
        return;
      }
      this.#log.warn(
        `MilterMaxConnections (${this.#maxConnections}) reached: refused ${this.#refusedUnlogged} ` +
          `more connection(s) in the last ${REFUSAL_LOG_INTERVAL_MS} ms`,
      );
      this.#refusedUnlogged = 0;
      this.#refusalTimer = setTimeout(flush, REFUSAL_LOG_INTERVAL_MS);
    };
    this.#refusalTimer = setTimeout(flush, REFUSAL_LOG_INTERVAL_MS);
  }

  async #serveConnection(entry: Connection, id: number): Promise<void> {
    const { conn, session } = entry;
    this.#log.debug(`connection ${id}: opened from ${describeAddr(conn.remoteAddr)}`);
    if ("setNoDelay" in conn && typeof conn.setNoDelay === "function") {
      try {
        (conn as Deno.TcpConn).setNoDelay(true);
      } catch {
        // The peer may already be gone; the first read will say so.
      }
    }
    const decoder = new FrameDecoder({ maxFrameBytes: this.#options.maxFrameBytes });
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    // The replies to the frames of each read go out in one write (reply_batch.ts).
    const batch = new ReplyBatch();
    const io: BurstIo = {
      write: (bytes) => this.#writeAll(entry, bytes),
      wait: (replies) => this.#unlessAbandoned(entry, replies),
      stop: () => this.#stopping && !session.busy,
    };
    // When the current frame's first bytes came: the whole frame must follow within the idle
    // limit, so a peer that trickles a byte at a time cannot hold the connection for ever.
    let frameStarted: number | undefined;
    this.#armIdleTimer(entry, this.#readTimeoutMs);
    try {
      while (!entry.closed) {
        if (frameStarted === undefined) {
          this.#await(entry, performance.now() + this.#readTimeoutMs, this.#idleText);
        } else this.#await(entry, frameStarted + this.#readTimeoutMs, this.#incompleteText);
        let n: number | null;
        try {
          n = await conn.read(buffer);
        } finally {
          this.#settled(entry);
        }
        if (n === null) break;
        decoder.push(buffer.subarray(0, n));
        const burst = answerBurst(decoder, session, batch, io);
        const { frames, end } = burst instanceof Promise ? await burst : burst;
        if (end !== "abandoned" && batch.length > 0) await this.#writeAll(entry, batch.take());
        if (end === "stopped") {
          this.#log.debug(`connection ${id}: closing at a transaction boundary for shutdown`);
        }
        if (end !== "more") break;
        if (decoder.buffered === 0) frameStarted = undefined;
        else if (frames > 0 || frameStarted === undefined) frameStarted = performance.now();
      }
    } catch (error) {
      if (entry.closed && !(error instanceof TimeoutError)) {
        // Closed from this side (shutdown); the read or write was interrupted by it.
      } else if (error instanceof MilterProtocolError && error.oversized) {
        this.#log.warn(
          `connection ${id}: a frame of ${error.oversized.length} bytes exceeds ` +
            `MilterMaxFrameBytes (${error.oversized.limit}); closing (the MTA applies its ` +
            `default action)`,
        );
      } else if (error instanceof MilterProtocolError) {
        this.#log.warn(`connection ${id}: ${error.message}; closing`);
      } else if (error instanceof TimeoutError) {
        this.#log.info(`connection ${id}: ${error.message}; closing`);
      } else {
        this.#log.warn(`connection ${id}: ${errorDescription(error)}; closing`);
      }
    } finally {
      entry.closed = true;
      clearTimeout(entry.timer);
      safeClose(conn);
      await Promise.race([session.close(), entry.abandoned.promise]);
      this.#live.delete(entry);
      this.#log.debug(`connection ${id}: closed`);
    }
  }

  // The replies, or "abandoned" as soon as shutdown gives up on the connection.
  #unlessAbandoned(entry: Connection, replies: Promise<Reply[]>): Promise<Reply[] | "abandoned"> {
    return Promise.race([
      replies,
      new Promise<"abandoned">((resolve) => {
        if (entry.gaveUp) resolve("abandoned");
        entry.onAbandoned = resolve;
      }),
    ]);
  }

  // The socket operation about to start must be over by `deadline`, or the idle timer closes
  // the connection, saying `what`. The timer is moved only when the deadline comes before it.
  #await(entry: Connection, deadline: number, what: string): void {
    entry.deadline = deadline;
    entry.waitingFor = what;
    if (deadline < entry.timerAt) {
      clearTimeout(entry.timer);
      this.#armIdleTimer(entry, deadline - performance.now());
    }
  }

  // The socket operation is over: no deadline until the next one. Throws a TimeoutError when
  // the idle timer closed the connection meanwhile, whatever the operation returned.
  #settled(entry: Connection): void {
    entry.deadline = Infinity;
    if (entry.timedOut !== undefined) throw new TimeoutError(entry.timedOut);
  }

  #armIdleTimer(entry: Connection, ms: number): void {
    const wait = Math.min(Math.max(1, Math.ceil(ms)), MAX_TIMER_MS);
    entry.timerAt = performance.now() + wait;
    entry.timer = setTimeout(() => this.#idleTimerFired(entry), wait);
  }

  #idleTimerFired(entry: Connection): void {
    entry.timer = undefined;
    entry.timerAt = Infinity;
    if (entry.closed) return;
    const left = entry.deadline - performance.now();
    if (left > 0) {
      // Nothing awaited (the filter is working), or the deadline moved on since the timer was
      // armed: sleep until the deadline, or a whole idle period when there is none.
      this.#armIdleTimer(entry, left === Infinity ? this.#readTimeoutMs : left);
      return;
    }
    // Closing the socket interrupts the read or write in progress, which then reports this.
    entry.timedOut = entry.waitingFor;
    entry.closed = true;
    safeClose(entry.conn);
  }

  async #writeAll(entry: Connection, bytes: Uint8Array): Promise<void> {
    for (let offset = 0; offset < bytes.length;) {
      this.#await(entry, performance.now() + this.#readTimeoutMs, this.#unreadText);
      try {
        offset += await entry.conn.write(bytes.subarray(offset));
      } finally {
        this.#settled(entry);
      }
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#refusalTimer);
    try {
      this.#listener?.close();
    } catch {
      // Already closed.
    }
    await this.#accepting;
    for (const entry of this.#live.keys()) {
      if (!entry.session.busy) {
        entry.closed = true;
        safeClose(entry.conn);
      }
    }
    const all = Promise.all(this.#live.values());
    let timer: ReturnType<typeof setTimeout> | undefined;
    const graceOver = new Promise<"grace">((resolve) => {
      timer = setTimeout(() => resolve("grace"), this.#graceMs);
    });
    const outcome = await Promise.race([all.then(() => "done" as const), graceOver]);
    clearTimeout(timer);
    if (outcome === "grace") {
      this.#log.warn(
        `Shutdown grace of ${this.#graceMs} ms over: closing ${this.#live.size} connection(s)`,
      );
      for (const entry of this.#live.keys()) {
        entry.closed = true;
        safeClose(entry.conn);
        entry.abandoned.resolve("abandoned");
        entry.gaveUp = true;
        entry.onAbandoned?.("abandoned");
      }
      await Promise.all(this.#live.values());
    }
    const spec = this.#address;
    if (spec?.kind === "unix") await removeOwnSocket(spec.path, this.#socketIno, this.#log);
    this.#log.info(`Milter stopped listening on ${describeSpec(this.#address)}`);
  }
}

// Timers fire at once beyond this many milliseconds (a signed 32-bit count).
const MAX_TIMER_MS = 2 ** 31 - 1;

function positive(
  name: string,
  value: number | undefined,
  fallback: number,
  zeroOk = false,
): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < (zeroOk ? 0 : 1) || v > MAX_TIMER_MS) {
    throw new RangeError(
      `Invalid "${name}" ${v}: expected an integer from ${zeroOk ? 0 : 1} to ${MAX_TIMER_MS}`,
    );
  }
  return v;
}

// A duration for log lines, in the unit of the MilterIdleTimeout setting.
function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

function safeClose(conn: Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

function describeSpec(spec: SocketSpec | undefined): string {
  if (!spec) return "(nothing)";
  if (spec.kind === "unix") return `"${spec.path}"`;
  return spec.host.includes(":") ? `[${spec.host}]:${spec.port}` : `${spec.host}:${spec.port}`;
}

function describeAddr(addr: Deno.Addr): string {
  if (addr.transport === "tcp" || addr.transport === "udp") {
    return addr.hostname.includes(":")
      ? `[${addr.hostname}]:${addr.port}`
      : `${addr.hostname}:${addr.port}`;
  }
  return "path" in addr && addr.path ? `"${addr.path}"` : "a unix socket";
}
