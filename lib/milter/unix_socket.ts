/**
 * The unix socket's file, which outlives the process that made it: listening on a path replaces
 * a stale socket left by a crash (nobody listening) but refuses a live one or anything that is
 * not a socket, and creates the socket with the mode OpenDKIM's `UMask` asks for; closing removes
 * the file only while it is still our own socket, since another process may have taken the path.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listenUnix, removeOwnSocket, SocketInUseError } from "./unix_socket.ts";
 * const quiet = { debug() {}, info() {}, warn() {}, error() {} };
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/milter.sock`;
 * const { listener, ino } = await listenUnix(path, 0o007, quiet);
 * assert.equal((await Deno.lstat(path)).mode! & 0o777, 0o770);
 * await assert.rejects(listenUnix(path, undefined, quiet), SocketInUseError);
 * listener.close();
 * await removeOwnSocket(path, ino, quiet);
 * await assert.rejects(Deno.lstat(path), Deno.errors.NotFound);
 * await Deno.remove(dir);
 * ```
 *
 * @module
 */

import { errorDescription } from "../error_message.ts";
import type { MilterLogger } from "./logger.ts";

/**
 * Listening failed because the unix socket path is taken: by a live socket (another process is
 * listening) or by something that is not a socket, which is never removed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SocketInUseError } from "./unix_socket.ts";
 * const e = new SocketInUseError("/run/x.sock", "another process is listening on it");
 * assert.equal(e.message, 'Cannot listen on "/run/x.sock": another process is listening on it');
 * ```
 */
export class SocketInUseError extends Error {
  /** The socket path. */
  readonly path: string;

  /** Makes an error about `path`. */
  constructor(path: string, detail: string, options?: ErrorOptions) {
    super(`Cannot listen on "${path}": ${detail}`, options);
    this.name = "SocketInUseError";
    this.path = path;
  }
}

/** A listening unix socket, and the inode of its file (to know it as our own at close). */
export interface UnixSocket {
  /** The listener. */
  readonly listener: Deno.Listener;
  /** The socket file's inode; null where the system does not tell. */
  readonly ino: number | null;
}

/**
 * Listens on the unix socket `path`, created under `umask` when given (its mode is then
 * `0o777 & ~umask`). A stale socket at the path is removed first; a live one, or anything but a
 * socket, is refused with {@link SocketInUseError}.
 */
export async function listenUnix(
  path: string,
  umask: number | undefined,
  log: MilterLogger,
): Promise<UnixSocket> {
  await removeStaleSocket(path, log);
  // Creating the socket under the wanted umask closes the moment before the chmod; Deno
  // allows changing the umask only with full --allow-sys, so without it the chmod alone
  // sets the mode (the socket directory, 2770 opendkim:postfix, guards that moment).
  const previous = umask === undefined ? undefined : trySetUmask(umask);
  let listener: Deno.Listener;
  try {
    listener = Deno.listen({ transport: "unix", path });
  } finally {
    if (previous !== undefined) trySetUmask(previous);
  }
  if (umask !== undefined) await Deno.chmod(path, 0o777 & ~umask);
  return { listener, ino: (await Deno.lstat(path)).ino };
}

async function removeStaleSocket(path: string, log: MilterLogger): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (!info.isSocket) {
    throw new SocketInUseError(path, "the path exists and is not a socket");
  }
  try {
    const probe = await Deno.connect({ transport: "unix", path });
    probe.close();
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionRefused) {
      await Deno.remove(path);
      log.info(`Removed stale socket "${path}"`);
      return;
    }
    throw new SocketInUseError(path, `cannot tell whether it is in use`, { cause: error });
  }
  throw new SocketInUseError(path, "another process is listening on it");
}

/**
 * Removes the socket file at `path` if it is still the socket made with inode `ino`; a failure
 * other than the file being gone is logged, not thrown, as the server is stopping anyway.
 */
export async function removeOwnSocket(
  path: string,
  ino: number | null | undefined,
  log: MilterLogger,
): Promise<void> {
  try {
    const info = await Deno.lstat(path);
    // Only our own socket: another process may have taken the path since.
    if (info.isSocket && info.ino === ino) await Deno.remove(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      log.warn(`Cannot remove socket "${path}": ${errorDescription(error)}`);
    }
  }
}

// Sets the process umask, returning the previous one, or undefined when not permitted.
function trySetUmask(mask: number): number | undefined {
  try {
    return Deno.umask(mask);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      return undefined;
    }
    throw e;
  }
}
