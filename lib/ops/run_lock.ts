/**
 * A run lock: one process at a time runs a command that two runs at once would break (`dkimd
 * rotate`, whose runs read and replace the same state file, KeyTable and key files). It is an
 * exclusive flock(2) lock on a lock file, tried without waiting and held until the run ends. The
 * kernel drops a flock lock when the process that holds it dies, SIGKILL included, so a crash
 * leaves no stale lock to clean up, unlike a lock whose sign is that its file exists. Linux NFS
 * clients turn flock(2) into NFS locks (since Linux 2.6.12), so hosts that share the directory
 * over NFS exclude each other too.
 *
 * The holder writes `PID HOST` into the file, so a second run can say who holds it. The file
 * itself is never removed: a run that removed it on exit would let the next run lock a new
 * file while a slower one still held the old one.
 *
 * @module
 */

import { dirname } from "node:path";

/** Largest holder line read: a PID and a host name fit in far less. */
export const MAX_RUN_LOCK_BYTES = 512;

/**
 * How many times a run that finds the lock held reads the holder's line while it is still
 * empty, {@link HOLDER_READ_PAUSE_MS} apart: the holder writes it just after taking the lock.
 */
export const HOLDER_READ_ATTEMPTS = 50;

/** The pause between those reads. */
export const HOLDER_READ_PAUSE_MS = 20;

/** Who holds a run lock, as its lock file says. */
export interface RunLockHolder {
  /** The holder's process ID. */
  readonly pid: number;
  /** Its host, when it could be read (`--allow-sys=hostname`). */
  readonly host?: string;
}

/**
 * Another run holds the lock: try again later.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RunLockHeldError } from "./run_lock.ts";
 * const e = new RunLockHeldError("/var/lib/dkimd/rotation.json.lock", { pid: 12, host: "mx1" });
 * assert.equal(
 *   e.message,
 *   'Another run holds the lock "/var/lib/dkimd/rotation.json.lock" (pid 12 on mx1): try again later',
 * );
 * ```
 */
export class RunLockHeldError extends Error {
  /** The lock file. */
  readonly path: string;
  /** The run that holds it, when its line could be read. */
  readonly holder?: RunLockHolder;

  /** Makes the error for the lock file `path` held by `holder`. */
  constructor(path: string, holder: RunLockHolder | undefined) {
    const who = holder === undefined
      ? "its pid not written yet"
      : `pid ${holder.pid}${holder.host === undefined ? "" : ` on ${holder.host}`}`;
    super(`Another run holds the lock "${path}" (${who}): try again later`);
    this.name = "RunLockHeldError";
    this.path = path;
    if (holder !== undefined) this.holder = holder;
  }
}

/** A run lock this process holds. */
export interface RunLock {
  /** The lock file. */
  readonly path: string;
  /** Releases the lock (empties the holder's line first); the process's exit releases it too. */
  release(): void;
}

/**
 * The holder in a lock file's text (`PID HOST` and a newline), or undefined for anything else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRunLockHolder } from "./run_lock.ts";
 * assert.deepEqual(parseRunLockHolder("4242 mx1.example.com\n"), { pid: 4242, host: "mx1.example.com" });
 * assert.deepEqual(parseRunLockHolder("4242\n"), { pid: 4242 });
 * assert.equal(parseRunLockHolder(""), undefined);
 * ```
 */
export function parseRunLockHolder(text: string): RunLockHolder | undefined {
  const m = text.match(/^([1-9][0-9]{0,9})(?: (\S+))?\n?$/);
  if (!m) return undefined;
  return m[2] === undefined ? { pid: Number(m[1]) } : { pid: Number(m[1]), host: m[2] };
}

function hostname(): string | undefined {
  try {
    return Deno.hostname();
  } catch {
    return undefined; // not allowed to read it: the pid alone
  }
}

async function readHolder(file: Deno.FsFile): Promise<RunLockHolder | undefined> {
  const buf = new Uint8Array(MAX_RUN_LOCK_BYTES);
  await file.seek(0, Deno.SeekMode.Start);
  let n = 0;
  for (let r; n < buf.length && (r = await file.read(buf.subarray(n))) !== null;) n += r;
  return parseRunLockHolder(new TextDecoder().decode(buf.subarray(0, n)));
}

/**
 * Takes the lock on `path` without waiting (creating the file 0600, and its directory 0750, when
 * missing) and writes this process's `PID HOST` into it. Rejects with {@link RunLockHeldError}
 * when another process holds it, with the error of the file system otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { acquireRunLock, RunLockHeldError } from "./run_lock.ts";
 * const dir = await Deno.makeTempDir();
 * const lock = await acquireRunLock(`${dir}/run.lock`);
 * // flock(2) locks belong to an open file, so a second open of it in this process is refused.
 * const held = await acquireRunLock(`${dir}/run.lock`).catch((e) => e);
 * assert.ok(held instanceof RunLockHeldError);
 * assert.equal(held.holder?.pid, Deno.pid);
 * lock.release();
 * (await acquireRunLock(`${dir}/run.lock`)).release();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function acquireRunLock(path: string): Promise<RunLock> {
  await Deno.mkdir(dirname(path), { recursive: true, mode: 0o750 });
  const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  try {
    if (!await file.tryLock(true)) {
      let holder = await readHolder(file);
      for (let i = 1; holder === undefined && i < HOLDER_READ_ATTEMPTS; i++) {
        await new Promise((r) => setTimeout(r, HOLDER_READ_PAUSE_MS));
        holder = await readHolder(file);
      }
      throw new RunLockHeldError(path, holder);
    }
    const host = hostname();
    const line = new TextEncoder().encode(`${Deno.pid}${host ? ` ${host}` : ""}\n`);
    await file.truncate(0);
    for (let written = 0; written < line.length;) {
      written += await file.write(line.subarray(written));
    }
  } catch (error) {
    file.close();
    throw error;
  }
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      try {
        file.truncateSync(0);
      } finally {
        file.close();
      }
    },
  };
}
