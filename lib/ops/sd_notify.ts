/**
 * A small sd_notify(3) client: the service tells systemd that it is ready, reloading or
 * stopping, what it is doing (`STATUS=`), and that it is alive (`WATCHDOG=1`), by sending
 * datagrams of `VARIABLE=VALUE` lines to the unix socket named by {@link NOTIFY_SOCKET_ENV}.
 * Without that variable nothing is sent (no systemd, or a unit that is not `Type=notify`).
 *
 * The socket is a path (`/run/systemd/notify`) or, starting with `@`, a name in Linux's
 * abstract namespace (`@/org/freedesktop/systemd1/notify/...`, as in containers and user
 * managers). Deno's unix datagram sockets (`Deno.listenDatagram`, `--unstable-net`) reach both:
 * an abstract address is a path whose first byte is NUL. The sending socket needs a name of its
 * own, since Deno cannot create an unbound one: the empty path (Linux's autobind) is refused
 * unless every permission is granted ("Empty path is not allowed"), so it is bound to the
 * abstract name `dkimd-notify-PID-RANDOM`, which `--allow-net` covers and which leaves no file
 * behind.
 *
 * @module
 */

import { errorMessage } from "../error_message.ts";

/** The variable systemd sets to its notification socket (sd_notify(3)). */
export const NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET";

/** Longest STATUS= text sent: systemd shows one line in `systemctl status`. */
export const MAX_STATUS_LENGTH = 200;

/** A unix datagram address as `Deno.listenDatagram` and `send` take it. */
export interface UnixDatagramAddress {
  /** Always `unixpacket` (Deno's name for unix datagram sockets). */
  readonly transport: "unixpacket";
  /** The path, or NUL and the name for the abstract namespace. */
  readonly path: string;
}

/** The part of `Deno.DatagramConn` the client uses. */
export interface NotifyDatagramSocket {
  /** Sends `data` to `addr`. */
  send(data: Uint8Array, addr: UnixDatagramAddress): Promise<number>;
  /** Closes the socket. */
  close(): void;
}

/** Opens the sending socket, bound to `addr`. */
export type OpenNotifySocket = (addr: UnixDatagramAddress) => NotifyDatagramSocket;

/** The value of {@link NOTIFY_SOCKET_ENV} cannot be used. */
export class NotifySocketError extends Error {
  /** Makes the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NotifySocketError";
  }
}

/**
 * The address named by a `NOTIFY_SOCKET` value: an absolute path, or `@name` for the abstract
 * namespace (sd_notify(3)). Throws {@link NotifySocketError} for anything else (a relative path,
 * or `vsock:`, which Deno cannot reach).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { notifySocketAddress } from "./sd_notify.ts";
 * assert.deepEqual(notifySocketAddress("/run/systemd/notify"), {
 *   transport: "unixpacket",
 *   path: "/run/systemd/notify",
 * });
 * assert.equal(notifySocketAddress("@sd-notify-1").path, "\0sd-notify-1");
 * assert.throws(() => notifySocketAddress("vsock:2:1234"), /cannot use/);
 * ```
 */
export function notifySocketAddress(value: string): UnixDatagramAddress {
  if (value.startsWith("/")) return { transport: "unixpacket", path: value };
  if (value.startsWith("@") && value.length > 1) {
    return { transport: "unixpacket", path: `\0${value.slice(1)}` };
  }
  throw new NotifySocketError(
    `dkimd cannot use NOTIFY_SOCKET "${value}": only a unix socket path or an @abstract name`,
  );
}

/**
 * One sd_notify message: `fields` as `NAME=value` lines. Line breaks in a value would start a
 * new variable, so they become spaces; a STATUS= longer than {@link MAX_STATUS_LENGTH} is cut.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatNotifyMessage } from "./sd_notify.ts";
 * assert.equal(
 *   formatNotifyMessage({ READY: "1", STATUS: "mode sv\nsigning" }),
 *   "READY=1\nSTATUS=mode sv signing\n",
 * );
 * ```
 */
export function formatNotifyMessage(fields: Readonly<Record<string, string>>): string {
  let out = "";
  for (const [name, raw] of Object.entries(fields)) {
    let value = raw.replace(/[\r\n]+/g, " ");
    if (name === "STATUS" && value.length > MAX_STATUS_LENGTH) {
      value = `${value.slice(0, MAX_STATUS_LENGTH - 3)}...`;
    }
    out += `${name}=${value}\n`;
  }
  return out;
}

/**
 * CLOCK_MONOTONIC in microseconds, for `MONOTONIC_USEC=` with `RELOADING=1`, never early. Deno
 * shows no clock with the kernel's origin: `performance.now()` and `process.hrtime` count from
 * the process start, and reading `/proc/uptime` needs `--allow-all`. What it has is
 * `Deno.osUptime()` (`--allow-sys=osUptime`): sysinfo(2)'s uptime, CLOCK_BOOTTIME rounded up to
 * the second. CLOCK_BOOTTIME is CLOCK_MONOTONIC plus time suspended, so the value is at or after
 * the true monotonic time, which is what systemd needs: it takes a RELOADING=1 as the answer to
 * its reload signal only when MONOTONIC_USEC is not before the moment it sent the signal.
 * Each reading bounds the offset between the uptime and `performance.now()`; the clock keeps
 * the tightest upper bound seen, so it runs at `performance.now()`'s resolution and is at most a
 * second late, never early.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MonotonicClock } from "./sd_notify.ts";
 * let perf = 250; // ms since the process started
 * const boottime = () => perf + 999_400; // the kernel's, in ms: unknown to the clock
 * const clock = new MonotonicClock({ uptime: () => Math.ceil(boottime() / 1000), now: () => perf });
 * assert.equal(clock.usec(), 1_000_000_000n); // 350 ms late: the uptime is rounded up
 * perf = 1599; // the uptime has just turned 1001 s
 * assert.equal(clock.usec(), 1_001_000_000n); // 1 ms late
 * perf = 5000;
 * assert.equal(clock.usec(), 1_004_401_000n); // the bound is kept: 1 ms late
 * assert.equal(new MonotonicClock({ uptime: () => { throw new Error("denied"); } }).usec(), undefined);
 * ```
 */
export class MonotonicClock {
  readonly #uptime: () => number;
  readonly #now: () => number;
  #offsetMs = Infinity;

  /** Makes a clock over `uptime` (seconds, rounded up) and `now` (milliseconds). */
  constructor(
    options: { uptime?: () => number; now?: () => number } = {},
  ) {
    this.#uptime = options.uptime ?? (() => Deno.osUptime());
    this.#now = options.now ?? (() => performance.now());
  }

  /** The time in microseconds, at or after CLOCK_MONOTONIC; undefined when the uptime is denied. */
  usec(): bigint | undefined {
    const before = this.#now();
    let uptime: number;
    try {
      uptime = this.#uptime();
    } catch {
      uptime = NaN;
    }
    // The uptime (rounded up) was read after `before`: boottime - now <= uptime - before.
    if (Number.isFinite(uptime)) this.#offsetMs = Math.min(this.#offsetMs, uptime * 1000 - before);
    if (!Number.isFinite(this.#offsetMs)) return undefined;
    return BigInt(Math.ceil((this.#now() + this.#offsetMs) * 1000));
  }
}

function defaultOpen(addr: UnixDatagramAddress): NotifyDatagramSocket {
  const listen = (Deno as unknown as {
    listenDatagram?: (options: UnixDatagramAddress) => NotifyDatagramSocket;
  }).listenDatagram;
  if (!listen) {
    throw new NotifySocketError("unix datagram sockets need Deno's --unstable-net flag");
  }
  return listen(addr);
}

function safeEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** Options of {@link SdNotifier.fromEnv}. */
export interface SdNotifierOptions {
  /** The environment; default `Deno.env.get` (undefined where not permitted). */
  readonly env?: (name: string) => string | undefined;
  /** Opens the sending socket; default `Deno.listenDatagram`. */
  readonly open?: OpenNotifySocket;
  /** Told once when sending fails, so a broken socket is logged, not repeated. */
  readonly onError?: (message: string) => void;
}

/**
 * Sends sd_notify messages to systemd. Sending never throws and never stops the service: a
 * failure is reported once through `onError` and the message dropped (systemd then times the
 * start or the watchdog out, which says more than a crash would).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SdNotifier } from "./sd_notify.ts";
 * const sent: string[] = [];
 * const open = () => ({
 *   send: (data: Uint8Array) => {
 *     sent.push(new TextDecoder().decode(data));
 *     return Promise.resolve(data.length);
 *   },
 *   close() {},
 * });
 * assert.equal(SdNotifier.fromEnv({ env: () => undefined, open }), undefined);
 * const notifier = SdNotifier.fromEnv({ env: () => "/run/systemd/notify", open })!;
 * await notifier.notify({ READY: "1", STATUS: "mode sv" });
 * await notifier.notify({ STOPPING: "1" });
 * assert.deepEqual(sent, ["READY=1\nSTATUS=mode sv\n", "STOPPING=1\n"]);
 * notifier.close();
 * ```
 */
export class SdNotifier {
  readonly #target: UnixDatagramAddress;
  readonly #open: OpenNotifySocket;
  readonly #onError: (message: string) => void;
  #socket?: NotifyDatagramSocket;
  #failed = false;
  #closed = false;

  /** Makes a client for `target`; the socket opens at the first message. */
  constructor(
    target: UnixDatagramAddress,
    options: { open?: OpenNotifySocket; onError?: (message: string) => void } = {},
  ) {
    this.#target = target;
    this.#open = options.open ?? defaultOpen;
    this.#onError = options.onError ?? (() => {});
  }

  /**
   * A client for the socket {@link NOTIFY_SOCKET_ENV} names, or undefined when it is unset
   * or empty. Throws {@link NotifySocketError} when it names something Deno cannot reach.
   */
  static fromEnv(options: SdNotifierOptions = {}): SdNotifier | undefined {
    const value = (options.env ?? safeEnv)(NOTIFY_SOCKET_ENV);
    if (value === undefined || value === "") return undefined;
    return new SdNotifier(notifySocketAddress(value), options);
  }

  /** The socket messages go to. */
  get target(): UnixDatagramAddress {
    return this.#target;
  }

  /** Sends `fields` as one message; resolves to true when it was sent. */
  async notify(fields: Readonly<Record<string, string>>): Promise<boolean> {
    if (this.#closed) return false;
    try {
      this.#socket ??= this.#open({
        transport: "unixpacket",
        path: `\0dkimd-notify-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`,
      });
      await this.#socket.send(new TextEncoder().encode(formatNotifyMessage(fields)), this.#target);
      return true;
    } catch (e) {
      if (!this.#failed) {
        this.#failed = true;
        this.#onError(
          `cannot notify systemd at ${formatAddress(this.#target)}: ${errorMessage(e)}`,
        );
      }
      return false;
    }
  }

  /** Closes the socket; later messages are dropped. */
  close(): void {
    this.#closed = true;
    try {
      this.#socket?.close();
    } catch {
      // Already closed.
    }
    this.#socket = undefined;
  }
}

function formatAddress(addr: UnixDatagramAddress): string {
  return addr.path.startsWith("\0") ? `@${addr.path.slice(1)}` : addr.path;
}
