/**
 * A listening socket inherited from systemd (socket activation, sd_listen_fds(3)): LISTEN_FDS
 * descriptors from fd 3 on, meant for the process whose id is LISTEN_PID. Deno.listen() takes no
 * descriptor, but node:net's `server.listen({ fd })` does (tried on Deno 2.9.6 with
 * systemd-socket-activate for TCP and unix sockets), so the inherited socket is served through
 * node:net and each connection is offered to the milter server as the few Deno.Conn methods it
 * uses: read into a buffer, write, close, the peer's address.
 *
 * @module
 */

import net from "node:net";

/** The first descriptor systemd passes (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

/**
 * The descriptor to serve on when the environment says systemd passed this process exactly one
 * listening socket (LISTEN_FDS=1 and LISTEN_PID its id); undefined otherwise, as when the
 * variables were meant for another process (a parent that started this one).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inheritedListenFd } from "./inherited_listener.ts";
 * const env = (vars: Record<string, string>) => (name: string) => vars[name];
 * assert.equal(inheritedListenFd(env({ LISTEN_FDS: "1", LISTEN_PID: "42" }), 42), 3);
 * assert.equal(inheritedListenFd(env({ LISTEN_FDS: "1", LISTEN_PID: "41" }), 42), undefined);
 * assert.equal(inheritedListenFd(env({}), 42), undefined);
 * assert.throws(() => inheritedListenFd(env({ LISTEN_FDS: "2", LISTEN_PID: "42" }), 42));
 * ```
 */
export function inheritedListenFd(
  env: (name: string) => string | undefined,
  pid: number,
): number | undefined {
  const fds = env("LISTEN_FDS");
  if (fds === undefined || env("LISTEN_PID") !== String(pid)) return undefined;
  if (fds !== "1") {
    throw new RangeError(
      `Socket activation passed ${fds} sockets (LISTEN_FDS); dkimd serves one: ` +
        `give dkimd.socket a single ListenStream=`,
    );
  }
  return LISTEN_FDS_START;
}

/**
 * The LISTEN_PID of sockets systemd passed to another process (LISTEN_FDS set, LISTEN_PID not
 * `pid`), or undefined. A process started by the one systemd started (`deno task start`'s `deno
 * run`, a supervisor's worker) sees its parent's variables but must not take the descriptors,
 * and opens its Socket itself, which fails while dkimd.socket holds the same address: the caller
 * says so.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { foreignListenPid } from "./inherited_listener.ts";
 * const env = (vars: Record<string, string>) => (name: string) => vars[name];
 * assert.equal(foreignListenPid(env({ LISTEN_FDS: "1", LISTEN_PID: "41" }), 42), "41");
 * assert.equal(foreignListenPid(env({ LISTEN_FDS: "1", LISTEN_PID: "42" }), 42), undefined);
 * assert.equal(foreignListenPid(env({ LISTEN_FDS: "1" }), 42), "");
 * assert.equal(foreignListenPid(env({}), 42), undefined);
 * ```
 */
export function foreignListenPid(
  env: (name: string) => string | undefined,
  pid: number,
): string | undefined {
  if (env("LISTEN_FDS") === undefined) return undefined;
  const listenPid = env("LISTEN_PID") ?? "";
  return listenPid === String(pid) ? undefined : listenPid;
}

/** One accepted connection, as the milter server uses it. */
export type InheritedConn = Pick<Deno.Conn, "read" | "write" | "close" | "remoteAddr"> & {
  setNoDelay(noDelay?: boolean): void;
};

// A node socket read through a buffer-filling read(), one chunk held at a time: the socket is
// paused while a chunk waits, so a slow filter pushes back on the MTA as Deno.Conn does.
class NodeConn implements InheritedConn {
  readonly #socket: net.Socket;
  readonly remoteAddr: Deno.Addr;
  #chunk?: Uint8Array;
  #ended = false;
  #error?: Error;
  #wake?: () => void;

  constructor(socket: net.Socket) {
    this.#socket = socket;
    this.remoteAddr = socket.remoteAddress !== undefined
      ? { transport: "tcp", hostname: socket.remoteAddress, port: socket.remotePort ?? 0 }
      : { transport: "unix", path: "" };
    socket.pause();
    socket.on("data", (data: Uint8Array) => {
      socket.pause();
      this.#chunk = this.#chunk ? concatBytes(this.#chunk, data) : data;
      this.#notify();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("error", (e: Error) => {
      this.#error = e;
      this.#notify();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#notify();
    });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunk === undefined) {
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#wake = resolve;
      this.#socket.resume();
      await promise;
    }
    const chunk = this.#chunk;
    const n = Math.min(p.length, chunk.length);
    p.set(chunk.subarray(0, n));
    this.#chunk = n < chunk.length ? chunk.subarray(n) : undefined;
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      this.#socket.write(p, (e?: Error | null) => e ? reject(e) : resolve(p.length));
    });
  }

  close(): void {
    this.#ended = true;
    this.#socket.destroy();
    this.#notify();
  }

  setNoDelay(noDelay = true): void {
    this.#socket.setNoDelay(noDelay);
  }
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** A listener on an inherited descriptor, as the milter server uses it. */
export interface InheritedListener {
  /** The next connection; rejects once the listener is closed. */
  accept(): Promise<InheritedConn>;
  /** Stops accepting. The socket itself stays systemd's, which keeps it open for a restart. */
  close(): void;
  /** The TCP address it listens on; undefined for a unix socket (node:net does not say). */
  readonly tcpAddress?: { readonly host: string; readonly port: number };
}

/**
 * Serves on the listening socket at descriptor `fd`; resolves once node:net listens on it, and
 * rejects if the descriptor is not a listening socket.
 */
export function listenInherited(fd: number): Promise<InheritedListener> {
  const server = net.createServer({ pauseOnConnect: true });
  const waiting: PromiseWithResolvers<InheritedConn>[] = [];
  const ready: InheritedConn[] = [];
  let closed = false;
  server.on("connection", (socket: net.Socket) => {
    const conn = new NodeConn(socket);
    const next = waiting.shift();
    if (next) next.resolve(conn);
    else ready.push(conn);
  });
  const listener: InheritedListener = {
    accept() {
      const conn = ready.shift();
      if (conn) return Promise.resolve(conn);
      if (closed) return Promise.reject(new Deno.errors.BadResource("Listener closed"));
      const next = Promise.withResolvers<InheritedConn>();
      waiting.push(next);
      return next.promise;
    },
    close() {
      if (closed) return;
      closed = true;
      server.close();
      for (const conn of ready.splice(0)) conn.close();
      for (const next of waiting.splice(0)) {
        next.reject(new Deno.errors.BadResource("Listener closed"));
      }
    },
  };
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ fd }, () => {
      server.off("error", reject);
      const addr = server.address();
      resolve(
        addr !== null && typeof addr === "object"
          ? { ...listener, tcpAddress: { host: addr.address, port: addr.port } }
          : listener,
      );
    });
  });
}
