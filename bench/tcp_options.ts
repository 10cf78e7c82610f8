/**
 * TCP socket options Deno does not expose, for the load client: `TCP_QUICKACK` (tcp(7)), which
 * the benchmark sets after every read on its MTA-side connections to take the receiver's delayed
 * ACK out of the picture, and a read of `TCP_NODELAY` to report what a connection runs with.
 *
 * Deno's `Deno.TcpConn` offers `setNoDelay` and `setKeepAlive` only, and no file descriptor. The
 * descriptor is found the way `ss -p` finds it: the connection's local port gives its socket
 * inode in `/proc/self/net/tcp`, and the inode its entry in `/proc/self/fd`. The option is then
 * set through libc's `setsockopt` over Deno's FFI (`--allow-ffi`, Linux only).
 *
 * Linux leaves quick-ACK mode on its own (it is not a sticky option), so the caller sets it after
 * each read: the kernel then sends the ACK it was holding at once, instead of up to 40 ms later,
 * and a filter whose reply sits behind Nagle's algorithm gets it out without waiting.
 *
 * @module
 */

/** `IPPROTO_TCP` (netinet/in.h). */
const IPPROTO_TCP = 6;
/** `TCP_NODELAY` (netinet/tcp.h). */
const TCP_NODELAY = 1;
/** `TCP_QUICKACK` (netinet/tcp.h, Linux). */
const TCP_QUICKACK = 12;

const SYMBOLS = {
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
} as const;

let libc: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

function lib(): Deno.DynamicLibrary<typeof SYMBOLS> {
  libc ??= Deno.dlopen("libc.so.6", SYMBOLS);
  return libc;
}

/** A socket option could not be found or set. */
export class SocketOptionError extends Error {
  /** Makes an error with `message`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SocketOptionError";
  }
}

/** Socket inode of this process's TCP connection from `127.0.0.1:localPort` (IPv4 only). */
async function socketInode(localPort: number): Promise<string> {
  const table = await Deno.readTextFile("/proc/self/net/tcp");
  const port = `:${localPort.toString(16).toUpperCase().padStart(4, "0")}`;
  for (const line of table.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    // f[1] local address, f[3] state (01 established), f[9] inode.
    if (f.length > 9 && f[1].endsWith(port) && f[3] === "01") return f[9];
  }
  throw new SocketOptionError(`Cannot find the TCP socket of local port ${localPort}`);
}

/**
 * The file descriptor of this process's established TCP connection with local port
 * `localPort`, from /proc.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { socketFd, getNoDelay } from "./tcp_options.ts";
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * const fd = await socketFd(conn.localAddr.port);
 * conn.setNoDelay(true);
 * assert.equal(getNoDelay(fd), true);
 * conn.setNoDelay(false);
 * assert.equal(getNoDelay(fd), false);
 * conn.close();
 * listener.close();
 * ```
 */
export async function socketFd(localPort: number): Promise<number> {
  const target = `socket:[${await socketInode(localPort)}]`;
  for await (const entry of Deno.readDir("/proc/self/fd")) {
    try {
      if ((await Deno.readLink(`/proc/self/fd/${entry.name}`)) === target) {
        return Number(entry.name);
      }
    } catch {
      // The descriptor closed while the directory was read.
    }
  }
  throw new SocketOptionError(`Cannot find the descriptor of socket ${target}`);
}

const ONE = new Int32Array([1]);

/**
 * Puts the connection `fd` in quick-ACK mode: a delayed ACK pending now goes out at once, and
 * the next segments are acknowledged without delay until the kernel leaves the mode again.
 */
export function setQuickAck(fd: number): void {
  if (lib().symbols.setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, ONE, 4) !== 0) {
    throw new SocketOptionError(`Cannot set TCP_QUICKACK on descriptor ${fd}`);
  }
}

/** Whether `TCP_NODELAY` is set on `fd`. */
export function getNoDelay(fd: number): boolean {
  const value = new Int32Array(1);
  const length = new Uint32Array([4]);
  if (lib().symbols.getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, value, length) !== 0) {
    throw new SocketOptionError(`Cannot read TCP_NODELAY of descriptor ${fd}`);
  }
  return value[0] !== 0;
}
