/**
 * The PID file (OpenDKIM's `PidFile`): written once the socket listens, so a script that waits
 * for it can connect at once (the `Type=forking` race of OpenDKIM's old unit, pain point 14 of
 * the research); written atomically (a temporary file renamed over it), with the mode `UMask`
 * allows; removed on exit only while it still names this process. A PID file naming a live
 * dkimd stops a second instance; one naming a dead process, or another program, is replaced.
 *
 * @module
 */

import { fileErrorMessage } from "../error_message.ts";
import { basename, dirname } from "node:path";

/** Largest PID file read: a PID is at most 10 digits, and anything longer is not a PID file. */
export const MAX_PID_FILE_BYTES = 64;

/** The mode mask used when no `UMask` is configured: files come out 0644. */
export const DEFAULT_PID_FILE_UMASK = 0o022;

/**
 * A PID file cannot be written, or names a dkimd that is still running.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PidFileError } from "./pid_file.ts";
 * const e = new PidFileError("/run/dkimd/dkimd.pid", "dkimd is already running as process 12");
 * assert.equal(e.message, 'Cannot use PID file "/run/dkimd/dkimd.pid": dkimd is already running as process 12');
 * ```
 */
export class PidFileError extends Error {
  /** The PID file. */
  readonly path: string;
  /** The running process it names, when that is the problem. */
  readonly runningPid?: number;

  /** Makes the error for `path` with `detail`. */
  constructor(path: string, detail: string, options?: ErrorOptions & { runningPid?: number }) {
    super(`Cannot use PID file "${path}": ${detail}`, options);
    this.name = "PidFileError";
    this.path = path;
    if (options?.runningPid !== undefined) this.runningPid = options.runningPid;
  }
}

/** What a PID file says about a running dkimd. */
export type PidFileState =
  | { readonly state: "absent" }
  | { readonly state: "stale"; readonly pid?: number; readonly why: string }
  | { readonly state: "live"; readonly pid: number };

/** How to tell whether a process is a dkimd: injected by tests. */
export interface PidFileOptions {
  /** True when `pid` is a running dkimd; default {@link isDkimdProcess}. */
  readonly isDkimd?: (pid: number) => Promise<boolean>;
}

/**
 * Reads the PID in `text` (`PID` and a newline, as OpenDKIM writes it), or undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePid } from "./pid_file.ts";
 * assert.equal(parsePid("25507\n"), 25507);
 * assert.equal(parsePid("0\n"), undefined);
 * assert.equal(parsePid("12 34"), undefined);
 * ```
 */
export function parsePid(text: string): number | undefined {
  const t = text.trim();
  if (!/^[0-9]{1,10}$/.test(t)) return undefined;
  const pid = Number(t);
  return pid > 0 && pid <= 0x7fffffff ? pid : undefined;
}

/**
 * True when process `pid` runs and is a dkimd: its program is named `dkimd`, or it is this same
 * program (`Deno.execPath()`) running this same main module. A process that exists but cannot
 * be examined counts as a dkimd, so a doubt never starts a second instance.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isDkimdProcess } from "./pid_file.ts";
 * assert.equal(await isDkimdProcess(0x7ffffffe), false); // no such process
 * ```
 */
export async function isDkimdProcess(pid: number): Promise<boolean> {
  let cmdline: string;
  try {
    cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
  } catch (e) {
    return !(e instanceof Deno.errors.NotFound);
  }
  // A zombie or kernel thread has an empty command line: not a running dkimd.
  if (cmdline === "") return false;
  const argv = cmdline.split("\0").filter((a) => a !== "");
  if (basename(argv[0] ?? "") === "dkimd") return true;
  let exe: string;
  try {
    exe = await Deno.readLink(`/proc/${pid}/exe`);
  } catch (e) {
    return !(e instanceof Deno.errors.NotFound);
  }
  if (basename(exe) === "dkimd") return true;
  if (exe !== Deno.execPath()) return false;
  const main = Deno.mainModule.startsWith("file:") ? new URL(Deno.mainModule).pathname : "";
  return main !== "" && argv.includes(main);
}

/**
 * Says whether the PID file at `path` names a running dkimd: `absent` (no file), `stale` (a PID
 * that is gone, or another program, or not a PID), or `live`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inspectPidFile } from "./pid_file.ts";
 * const dir = await Deno.makeTempDir();
 * assert.deepEqual(await inspectPidFile(`${dir}/dkimd.pid`), { state: "absent" });
 * await Deno.writeTextFile(`${dir}/dkimd.pid`, "4242\n");
 * const isDkimd = (pid: number) => Promise.resolve(pid === 4242);
 * assert.deepEqual(await inspectPidFile(`${dir}/dkimd.pid`, { isDkimd }), { state: "live", pid: 4242 });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function inspectPidFile(
  path: string,
  options: PidFileOptions = {},
): Promise<PidFileState> {
  let bytes: Uint8Array;
  try {
    using file = await Deno.open(path, { read: true });
    const buffer = new Uint8Array(MAX_PID_FILE_BYTES + 1);
    let n = 0;
    for (;;) {
      const got = await file.read(buffer.subarray(n));
      if (got === null) break;
      n += got;
      if (n === buffer.length) break;
    }
    bytes = buffer.subarray(0, n);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { state: "absent" };
    throw new PidFileError(path, `cannot read it: ${fileErrorMessage(e)}`, { cause: e });
  }
  const pid = bytes.length > MAX_PID_FILE_BYTES
    ? undefined
    : parsePid(new TextDecoder().decode(bytes));
  if (pid === undefined) return { state: "stale", why: "it does not hold a process ID" };
  const isDkimd = options.isDkimd ?? isDkimdProcess;
  if (await isDkimd(pid)) return { state: "live", pid };
  return { state: "stale", pid, why: `process ${pid} is not a running dkimd` };
}

/** A PID file this process wrote. */
export interface PidFile {
  /** Where it is. */
  readonly path: string;
  /** The PID written. */
  readonly pid: number;
  /** Removes the file if it still names {@link PidFile.pid}; true when removed. */
  remove(): Promise<boolean>;
  /** The same, synchronously, for an `unload` handler. */
  removeSync(): boolean;
}

/** Options of {@link writePidFile}. */
export interface WritePidFileOptions extends PidFileOptions {
  /** The PID to write; default `Deno.pid`. */
  readonly pid?: number;
  /** OpenDKIM's UMask: the file's mode is `0o666 & ~umask`; default {@link DEFAULT_PID_FILE_UMASK}. */
  readonly umask?: number;
}

/**
 * Writes the PID file at `path` atomically (a temporary file in the same directory, renamed
 * over it) with mode `0o666 & ~umask`, unless it names a running dkimd, which throws a
 * {@link PidFileError}; a stale file is replaced. Call it after the socket listens.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writePidFile } from "./pid_file.ts";
 * const dir = await Deno.makeTempDir();
 * const pidFile = await writePidFile(`${dir}/dkimd.pid`, { pid: 4242, umask: 0o002 });
 * assert.equal(await Deno.readTextFile(`${dir}/dkimd.pid`), "4242\n");
 * assert.equal((await Deno.stat(`${dir}/dkimd.pid`)).mode! & 0o777, 0o664);
 * assert.equal(await pidFile.remove(), true);
 * await Deno.remove(dir);
 * ```
 */
export async function writePidFile(
  path: string,
  options: WritePidFileOptions = {},
): Promise<PidFile> {
  const pid = options.pid ?? Deno.pid;
  const isDkimd = options.isDkimd ?? isDkimdProcess;
  const state = await inspectPidFile(path, {
    isDkimd: (p) => p === pid ? Promise.resolve(false) : isDkimd(p),
  });
  if (state.state === "live") {
    throw new PidFileError(path, `dkimd is already running as process ${state.pid}`, {
      runningPid: state.pid,
    });
  }
  const dir = dirname(path);
  const temp = `${dir}/.${basename(path)}.${pid}.tmp`;
  const mode = 0o666 & ~(options.umask ?? DEFAULT_PID_FILE_UMASK);
  try {
    await Deno.writeTextFile(temp, `${pid}\n`, { mode });
    // The process umask also applies at creation; the configured UMask alone should decide.
    await Deno.chmod(temp, mode);
    await Deno.rename(temp, path);
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    let detail = fileErrorMessage(e);
    if (e instanceof Deno.errors.NotFound) {
      detail = `directory "${dir}" does not exist`;
    } else if (e instanceof Deno.errors.PermissionDenied) {
      detail = `directory "${dir}" is not writable by this user`;
    }
    throw new PidFileError(path, detail, { cause: e });
  }
  const ours = (text: string) => parsePid(text) === pid;
  return {
    path,
    pid,
    async remove() {
      try {
        if (!ours(await Deno.readTextFile(path))) return false;
        await Deno.remove(path);
        return true;
      } catch {
        return false;
      }
    },
    removeSync() {
      try {
        if (!ours(Deno.readTextFileSync(path))) return false;
        Deno.removeSync(path);
        return true;
      } catch {
        return false;
      }
    },
  };
}
