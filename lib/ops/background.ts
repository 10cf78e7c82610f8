/**
 * OpenDKIM's `Background yes` (its default): the command returns once the filter runs in the
 * background. OpenDKIM fork(2)s; Deno cannot, so dkimd starts a copy of itself
 * (`self_command.ts`) in a new session (`Deno.Command`'s `detached`, which calls setsid(2)) with
 * its standard input closed, marked with {@link DETACHED_ENV} so it does not detach again. The
 * starting process passes on the copy's standard error until the copy is ready
 * (`readiness.ts`), then exits 0, so a bad key or a taken port is still reported on the
 * terminal with the copy's exit status; after that the copy's standard error and output lead
 * nowhere, so it should log to syslog (`Syslog yes`), as OpenDKIM in the background does.
 *
 * Not detached: under systemd (`Type=simple` runs `serve -f`), with `-f`, and in a worker.
 *
 * @module
 */

import { READY_ENV, waitForReady } from "./readiness.ts";
import { type SelfCommand, underSystemd } from "./self_command.ts";
import { WORKER_ENV } from "./supervisor.ts";

/** Set to `1` in the detached copy: it must not detach again. */
export const DETACHED_ENV = "DKIMD_DETACHED";

/**
 * Whether `serve` should detach: `Background` is on, `-f` was not given, and this process is
 * not under systemd, not the detached copy, and not a worker.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shouldDetach } from "./background.ts";
 * const none = () => undefined;
 * assert.equal(shouldDetach({ background: true, foreground: false, env: none }), true);
 * assert.equal(shouldDetach({ background: true, foreground: true, env: none }), false);
 * assert.equal(shouldDetach({ background: false, foreground: false, env: none }), false);
 * assert.equal(shouldDetach({ background: true, foreground: false, env: (n) => n === "DKIMD_DETACHED" ? "1" : undefined }), false);
 * assert.equal(shouldDetach({ background: true, foreground: false, env: (n) => n === "INVOCATION_ID" ? "x" : undefined }), false);
 * ```
 */
export function shouldDetach(options: {
  readonly background: boolean;
  readonly foreground: boolean;
  readonly env?: (name: string) => string | undefined;
}): boolean {
  const env = options.env ?? ((name: string) => {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined;
    }
  });
  if (!options.background || options.foreground) return false;
  if (env(DETACHED_ENV) === "1" || env(WORKER_ENV) === "1") return false;
  return !underSystemd(env);
}

/** What {@link detach} reports. */
export interface Detached {
  /** True when the copy said it is ready and runs on. */
  readonly ready: boolean;
  /** The copy's PID. */
  readonly pid: number;
  /** The exit status for this process: 0 when ready, else the copy's status. */
  readonly status: number;
}

/**
 * Starts `command` (a copy of dkimd) in a new session and waits until it is ready or exits,
 * copying its standard error to `stderr` meanwhile. The copy must call `notifyReady()` once it
 * listens.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { detach } from "./background.ts";
 * const result = await detach({ command: "sh", args: ["-c", "echo READY=1; exec sleep 1"] }, { stderr: () => {} });
 * assert.equal(result.ready, true);
 * assert.equal(result.status, 0);
 * Deno.kill(result.pid, "SIGTERM");
 * ```
 */
export async function detach(
  command: SelfCommand,
  options: {
    readonly env?: Readonly<Record<string, string>>;
    readonly stderr?: (bytes: Uint8Array) => void;
  } = {},
): Promise<Detached> {
  const write = options.stderr ?? ((bytes: Uint8Array) => {
    try {
      let off = 0;
      while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
    } catch {
      // Our standard error is gone; nothing else to tell.
    }
  });
  const child = new Deno.Command(command.command, {
    args: [...command.args],
    env: { ...options.env, [DETACHED_ENV]: "1", [READY_ENV]: "stdout" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    detached: true,
  }).spawn();
  const reader = child.stderr.getReader();
  let copying = true;
  const copied = (async () => {
    try {
      while (copying) {
        const { value, done } = await reader.read();
        if (done) break;
        write(value);
      }
    } catch {
      // The copy closed its standard error.
    }
  })();
  const outcome = await Promise.race([
    waitForReady(child.stdout).then((ready) => ready ? "ready" as const : "ended" as const),
    child.status.then(() => "ended" as const),
  ]);
  if (outcome === "ready") {
    copying = false;
    // Closing our end: the copy's later writes to standard error fail quietly instead of
    // blocking on a pipe nobody reads.
    await reader.cancel().catch(() => {});
    child.unref();
    return { ready: true, pid: child.pid, status: 0 };
  }
  const status = await child.status;
  await copied;
  const code = status.signal !== null && status.code === 0 ? 1 : status.code;
  return { ready: false, pid: child.pid, status: code === 0 ? 1 : code };
}
