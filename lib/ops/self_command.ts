/**
 * How dkimd starts another copy of itself, with the same Deno permissions: the supervisor's
 * worker and the detached background process. Deno has no fork(2), so a copy is a new process
 * running the same program:
 *
 * - compiled (`deno compile`, `Deno.execPath()` is `dkimd`): the executable carries its
 *   permission flags, so the copy is `dkimd ARGS...`;
 * - under `deno run main.ts`: `Deno.execPath()` is `deno`, so the copy is
 *   `deno run FLAGS... main.ts ARGS...` with {@link SERVICE_DENO_FLAGS}, the flags of the
 *   `start` and `compile` tasks in deno.json (a test keeps the three equal).
 *
 * @module
 */

import { dirname, join } from "node:path";
import { LIBCRYPTO_PATHS } from "../crypto/openssl.ts";

/**
 * The environment variables dkimd reads, each for a reason: systemd's journal stream
 * ({@link JOURNAL_STREAM_ENV}) and invocation id (systemd.exec(5): set for every service, so
 * dkimd knows systemd supervises it), the marks a copy of dkimd is started with, and the two the npm
 * `yaml` package checks while parsing (`LOG_STREAM`, `LOG_TOKENS`), systemd's sd_notify socket
 * and watchdog (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`, sd_notify(3)), and socket
 * activation's `LISTEN_FDS` and `LISTEN_PID` (sd_listen_fds(3)), and `CREDENTIALS_DIRECTORY`
 * (systemd.exec(5), LoadCredential=), where a relative DataSetPasswordFile is read. Deno refuses
 * every other.
 */
export const SERVICE_ENV_NAMES: readonly string[] = [
  "JOURNAL_STREAM",
  "INVOCATION_ID",
  "DKIMD_WORKER",
  "DKIMD_DETACHED",
  "DKIMD_READY",
  "LOG_STREAM",
  "LOG_TOKENS",
  "NOTIFY_SOCKET",
  "WATCHDOG_USEC",
  "WATCHDOG_PID",
  "LISTEN_FDS",
  "LISTEN_PID",
  "CREDENTIALS_DIRECTORY",
];

/**
 * The Deno flags the service runs with, and only those (the `start` and `compile` tasks of
 * deno.json use exactly these; a test checks it):
 * - read: the configuration, data sets and keys, which may be anywhere the configuration says;
 * - write: the PID file, the unix socket, and the files `genkey` and `install` write;
 * - net: the milter socket, DNS, the metrics listener;
 * - env: {@link SERVICE_ENV_NAMES} only;
 * - sys: the host name (AuthservID HOSTNAME), uid/gid (RequireSafeKeys) and the uptime (the
 *   clock of sd_notify's MONOTONIC_USEC, see `sd_notify.ts`); not the process
 *   umask, which Deno lets only a full `--allow-sys` change (the socket is chmodded instead);
 * - run: the supervisor and Background start dkimd again (a worker gives this up);
 * - ffi: libcrypto 3 at its known paths only (`LIBCRYPTO_PATHS`), opened only with
 *   `CryptoBackend openssl` (README, "Security model": what FFI gives up and what still holds);
 * - `--unstable-net`: unix datagram sockets, for syslog's `/dev/log`;
 * - `--no-prompt`: a missing permission is an error, never a question on a terminal;
 * - `--v8-flags`: a small young generation (1 MiB semi-spaces instead of V8's default of up to
 *   16 MiB) and an old generation that grows by 20 % at a time: a milter's live data is small
 *   (a few KiB per transaction; bodies are hashed as they stream past), so V8's defaults only let
 *   garbage pile up. Measured with `deno task bench` cells at c=16 (2 KB and 2 MB, sign and
 *   verify): the V8 heap stays near 20 MiB instead of 40–70 MiB, peak RSS about 100 MiB instead
 *   of 110–160 MiB, with the same messages per second and CPU per message. Then
 *   `--optimize-for-size` (V8 picks memory over speed where it has the choice). `--minor-ms`
 *   (the young generation marked and swept in place) was used until issue 20 and dropped: once
 *   RSA verification became cheap it was a third of the CPU per 2 KB message (verify 2KB c=4:
 *   0.35–0.38 CPU ms/msg with it, 0.24–0.25 without; sign 2KB and 2 MB 4–10 % less) for about
 *   2 MiB more peak in the benchmark's memory pass (91 → 93 MiB; `deno task bench --quick --only
 *   dkimd --cells "verify rsa 2KB c=4" --skip-memory --skip-database --duration 4000` and
 *   `deno task bench --memory-only --only dkimd --repeats 1`, alternated).
 */
export const SERVICE_DENO_FLAGS: readonly string[] = [
  "--allow-read",
  "--allow-write",
  "--allow-net",
  `--allow-env=${SERVICE_ENV_NAMES.join(",")}`,
  "--allow-sys=hostname,uid,gid,osUptime",
  "--allow-run",
  `--allow-ffi=${LIBCRYPTO_PATHS.join(",")}`,
  "--unstable-net",
  "--no-prompt",
  "--v8-flags=--max-semi-space-size=1,--heap-growing-percent=20,--optimize-for-size",
];

/** The variable systemd sets to the journal stream's `DEV:INODE` (systemd.exec(5)). */
export const JOURNAL_STREAM_ENV = "JOURNAL_STREAM";

/**
 * True when systemd runs this process as a service: it sets `INVOCATION_ID` for every service
 * it starts (systemd.exec(5), "Environment Variables Set or Propagated by the Service
 * Manager"). Then systemd restarts, detaches and logs, and dkimd leaves that to it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { underSystemd } from "./self_command.ts";
 * assert.equal(underSystemd((n) => n === "INVOCATION_ID" ? "8f3a..." : undefined), true);
 * assert.equal(underSystemd(() => undefined), false);
 * ```
 */
export function underSystemd(env: (name: string) => string | undefined = safeEnv): boolean {
  const id = env("INVOCATION_ID");
  return id !== undefined && id !== "";
}

function safeEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** A program and its arguments, as `Deno.Command` takes them. */
export interface SelfCommand {
  /** The executable. */
  readonly command: string;
  /** Its arguments. */
  readonly args: readonly string[];
}

/** What identifies the running program: by default `Deno.execPath()` and `Deno.mainModule`. */
export interface Program {
  /** The executable: `deno`, or the compiled `dkimd`. */
  readonly execPath: string;
  /** The main module's URL. */
  readonly mainModule: string;
  /** The deno.json to pass under `deno run`, when there is one beside the main module. */
  readonly configFile?: string;
}

/**
 * True when the program is a `deno compile` executable: its main module is inside the
 * executable's embedded file system, under a directory named `deno-compile-NAME`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isCompiledProgram } from "./self_command.ts";
 * assert.equal(isCompiledProgram("file:///tmp/deno-compile-dkimd/main.ts"), true);
 * assert.equal(isCompiledProgram("file:///srv/dkimd/main.ts"), false);
 * ```
 */
export function isCompiledProgram(mainModule: string): boolean {
  if (!mainModule.startsWith("file:")) return false;
  return new URL(mainModule).pathname.split("/").some((p) => p.startsWith("deno-compile-"));
}

/**
 * The running program: `Deno.execPath()`, `Deno.mainModule`, and deno.json beside the main
 * module when running from source (the copy may start in a directory where Deno would not find
 * it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { currentProgram } from "./self_command.ts";
 * assert.equal(currentProgram().execPath, Deno.execPath());
 * ```
 */
export function currentProgram(): Program {
  const execPath = Deno.execPath();
  const mainModule = Deno.mainModule;
  if (isCompiledProgram(mainModule) || !mainModule.startsWith("file:")) {
    return { execPath, mainModule };
  }
  const config = join(dirname(new URL(mainModule).pathname), "deno.json");
  try {
    if (Deno.statSync(config).isFile) return { execPath, mainModule, configFile: config };
  } catch {
    // No deno.json: Deno's own discovery applies.
  }
  return { execPath, mainModule };
}

/**
 * The command that runs this program again with `args` and the same permissions.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SERVICE_DENO_FLAGS, selfCommand } from "./self_command.ts";
 * assert.deepEqual(
 *   selfCommand(["serve", "-f"], {
 *     execPath: "/usr/local/bin/dkimd",
 *     mainModule: "file:///tmp/deno-compile-dkimd/main.ts",
 *   }),
 *   { command: "/usr/local/bin/dkimd", args: ["serve", "-f"] },
 * );
 * assert.deepEqual(
 *   selfCommand(["serve"], {
 *     execPath: "/usr/bin/deno",
 *     mainModule: "file:///srv/dkimd/main.ts",
 *     configFile: "/srv/dkimd/deno.json",
 *   }),
 *   {
 *     command: "/usr/bin/deno",
 *     args: ["run", ...SERVICE_DENO_FLAGS, "--config=/srv/dkimd/deno.json", "/srv/dkimd/main.ts", "serve"],
 *   },
 * );
 * ```
 */
export function selfCommand(
  args: readonly string[],
  program: Program = currentProgram(),
): SelfCommand {
  if (isCompiledProgram(program.mainModule)) {
    return { command: program.execPath, args: [...args] };
  }
  const main = program.mainModule.startsWith("file:")
    ? new URL(program.mainModule).pathname
    : program.mainModule;
  return {
    command: program.execPath,
    args: [
      "run",
      ...SERVICE_DENO_FLAGS,
      ...(program.configFile ? [`--config=${program.configFile}`] : []),
      main,
      ...args,
    ],
  };
}
