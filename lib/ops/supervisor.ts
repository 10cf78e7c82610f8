/**
 * OpenDKIM's supervising parent, for `AutoRestart`, `AutoRestartCount`, `AutoRestartRate` and
 * `UserID` without systemd: the parent starts the filter as a child process (the worker: this
 * same program, see `self_command.ts`, marked with {@link WORKER_ENV} so it does not supervise
 * itself), as UserID's uid and gid when set, and:
 *
 * - forwards SIGTERM, SIGINT, SIGHUP and SIGUSR1 to it (SIGUSR1 reloads, as in OpenDKIM); a
 *   reload signal (SIGHUP, SIGUSR1) is held until the worker is ready, since one that reached a
 *   worker still starting Deno, before it can catch any, would end it, and forwarded then, once
 *   however many came (`held_reload.ts` says why once);
 * - starts the worker again when a reload signal sent to it directly (to every dkimd by name,
 *   say) ended it before it was ready: it did not fail, it was hit before it could listen;
 * - restarts it when it dies abnormally after it was ready, within AutoRestartCount (restarts
 *   in all) and AutoRestartRate (`10/1h`: at most 10 restarts in any hour), and otherwise gives
 *   up with OpenDKIM's words ("maximum restart rate exceeded") and exit status EX_UNAVAILABLE;
 * - never restarts a worker that exits with EX_CONFIG or EX_SOFTWARE (as OpenDKIM), or that
 *   dies before it is ready (`readiness.ts`): a key it cannot read stays unreadable, so
 *   restarting would only spin;
 * - writes the PID file with its own PID once the first worker is ready (as OpenDKIM's parent
 *   does, so `kill -USR1 $(cat PIDFILE)` reaches the one that forwards) and removes it at exit;
 * - exits with the worker's status when the worker stops cleanly or after a forwarded stop;
 * - with UserID, says in one line why a worker could not even load dkimd, and the fix, instead of
 *   Deno's trace (`worker_start.ts`; its standard error passes through `worker_stderr.ts`).
 *
 * Deno cannot change its own uid, so the parent stays root while the worker runs as the user;
 * it only waits and forwards signals.
 *
 * @module
 */

import { errorMessage } from "../error_message.ts";
import type { RestartRate } from "../config/values.ts";
import { formatRestartRate } from "../config/values.ts";
import type { HeldReload } from "./held_reload.ts";
import { RELOAD_SIGNALS } from "./held_reload.ts";
import type { Logger } from "./log.ts";
import { type PidFile, writePidFile } from "./pid_file.ts";
import { READY_ENV, waitForReady } from "./readiness.ts";
import type { RunAs } from "./run_as.ts";
import { JOURNAL_STREAM_ENV, type SelfCommand, underSystemd } from "./self_command.ts";
import { checkoutOf, diagnoseStartFailure } from "./worker_start.ts";
import { WorkerStderr } from "./worker_stderr.ts";

/** Set to `1` in a worker's environment: it serves, and never supervises or detaches. */
export const WORKER_ENV = "DKIMD_WORKER";

/** sysexits(3) EX_SOFTWARE: an internal error; OpenDKIM does not restart it. */
export const EX_SOFTWARE = 70;

/** sysexits(3) EX_CONFIG: a configuration error; OpenDKIM does not restart it. */
export const EX_CONFIG = 78;

/** sysexits(3) EX_UNAVAILABLE: what OpenDKIM's parent exits with when it gives up restarting. */
export const EX_UNAVAILABLE = 69;

/** The signals the supervisor passes on to the worker (OpenDKIM's parent handles the same four). */
export const FORWARDED_SIGNALS: readonly Deno.Signal[] = ["SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1"];

/**
 * Pause before a restart: a worker that crashes right after it is ready cannot pin a CPU while
 * AutoRestartRate (or no rate at all) still allows restarts.
 */
export const RESTART_DELAY_MS_DEFAULT = 1000;

/**
 * True in a worker process (its environment has {@link WORKER_ENV} = `1`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isWorker } from "./supervisor.ts";
 * assert.equal(isWorker(() => "1"), true);
 * assert.equal(isWorker(() => undefined), false);
 * ```
 */
export function isWorker(env: (name: string) => string | undefined = safeEnv): boolean {
  return env(WORKER_ENV) === "1";
}

function safeEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/**
 * Whether `serve` must supervise a worker rather than serve in this process: with AutoRestart
 * (except under systemd, whose `Restart=` does that job: two supervisors would fight over
 * restarts), or with a UserID naming another uid than the current one (Deno changes uid only
 * when it starts a process); never in a worker.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { needsSupervisor } from "./supervisor.ts";
 * const plain = { currentUid: 0, env: () => undefined };
 * assert.equal(needsSupervisor({ autoRestart: true }, plain), true);
 * assert.equal(needsSupervisor({ autoRestart: false }, plain), false);
 * assert.equal(needsSupervisor({ autoRestart: false, runAsUid: 104 }, plain), true);
 * assert.equal(needsSupervisor({ autoRestart: false, runAsUid: 104 }, { ...plain, currentUid: 104 }), false);
 * assert.equal(needsSupervisor({ autoRestart: true }, { ...plain, env: (n) => n === "DKIMD_WORKER" ? "1" : undefined }), false);
 * const systemd = { currentUid: 104, env: (n: string) => n === "INVOCATION_ID" ? "f00d" : undefined };
 * assert.equal(needsSupervisor({ autoRestart: true, runAsUid: 104 }, systemd), false);
 * ```
 */
export function needsSupervisor(
  wanted: { readonly autoRestart: boolean; readonly runAsUid?: number },
  current: {
    readonly currentUid: number | null;
    readonly env?: (name: string) => string | undefined;
  },
): boolean {
  if (isWorker(current.env)) return false;
  if (wanted.autoRestart && !underSystemd(current.env)) return true;
  return wanted.runAsUid !== undefined && wanted.runAsUid !== current.currentUid;
}

/**
 * AutoRestartCount and AutoRestartRate as OpenDKIM applies them before each restart: at most
 * `count` restarts in all (0: no limit), and at most `rate.count` restarts within any
 * `rate.seconds` (a rate of 0 restarts is no limit, as OpenDKIM checks only `n > 0`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RestartLimiter } from "./supervisor.ts";
 * const limiter = new RestartLimiter({ rate: { count: 2, seconds: 3600 } });
 * assert.equal(limiter.allow(0), undefined);
 * assert.equal(limiter.allow(1000), undefined);
 * assert.match(limiter.allow(2000) ?? "", /maximum restart rate exceeded/);
 * assert.equal(limiter.allow(3_601_000), undefined); // the first restart left the window
 * ```
 */
export class RestartLimiter {
  readonly #count: number;
  readonly #rate?: RestartRate;
  readonly #times: number[] = [];
  #restarts = 0;

  /** Makes a limiter for AutoRestartCount `count` and AutoRestartRate `rate`. */
  constructor(options: { count?: number; rate?: RestartRate } = {}) {
    this.#count = options.count ?? 0;
    if (options.rate) this.#rate = options.rate;
  }

  /** Restarts allowed so far. */
  get restarts(): number {
    return this.#restarts;
  }

  /**
   * Records a restart at `now` (milliseconds) and returns undefined when it is allowed, or
   * the reason to give up (OpenDKIM's log words, then the numbers).
   */
  allow(now: number): string | undefined {
    if (this.#count > 0 && this.#restarts >= this.#count) {
      return `maximum restart count exceeded (AutoRestartCount ${this.#count})`;
    }
    const rate = this.#rate;
    if (rate && rate.count > 0) {
      const since = now - rate.seconds * 1000;
      while (this.#times.length > 0 && this.#times[0] <= since) this.#times.shift();
      if (this.#times.length >= rate.count) {
        return `maximum restart rate exceeded (AutoRestartRate ${formatRestartRate(rate)}: ` +
          `${this.#times.length} restarts within ${rate.seconds} seconds)`;
      }
      this.#times.push(now);
    }
    this.#restarts++;
    return undefined;
  }
}

/** Options of {@link supervise}. */
export interface SuperviseOptions {
  /** How to start the worker (`selfCommand(Deno.args)`). */
  readonly command: SelfCommand;
  /** The supervisor's log. */
  readonly logger: Logger;
  /** AutoRestart: restart a worker that dies abnormally; without it, exit with its status. */
  readonly autoRestart: boolean;
  /** AutoRestartCount (0: no limit). */
  readonly autoRestartCount?: number;
  /** AutoRestartRate. */
  readonly autoRestartRate?: RestartRate;
  /** UserID resolved: the worker's uid and gid. */
  readonly runAs?: RunAs;
  /** Variables added to the worker's environment (it inherits the rest). */
  readonly env?: Readonly<Record<string, string>>;
  /** The PID file, written with the supervisor's PID once the first worker is ready. */
  readonly pidFile?: string;
  /** UMask for the PID file. */
  readonly umask?: number;
  /** Called once, when the first worker is ready (after the PID file is written). */
  readonly onReady?: () => void;
  /** Pause before a restart; default {@link RESTART_DELAY_MS_DEFAULT}. */
  readonly restartDelayMs?: number;
  /** The clock, in milliseconds; default `Date.now`. */
  readonly now?: () => number;
  /**
   * Reload signals caught while this process loaded its configuration: taken over once the
   * supervisor listens, and one received is forwarded when the first worker is ready.
   */
  readonly heldReload?: HeldReload;
}

/** Exit status of a finished child: its code, or 128 + the signal number, as a shell reports it. */
function exitStatus(status: Deno.CommandStatus): number {
  if (status.signal !== null) {
    return status.code > 0 ? status.code : 128 + signalNumber(status.signal);
  }
  return status.code;
}

const SIGNAL_NUMBERS: Readonly<Record<string, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
};

function signalNumber(signal: string): number {
  return SIGNAL_NUMBERS[signal] ?? 0;
}

function describeExit(status: Deno.CommandStatus): string {
  return status.signal !== null
    ? `terminated with signal ${signalNumber(status.signal)} (${status.signal})`
    : `exited with status ${status.code}`;
}

/**
 * Runs workers until one stops cleanly, a stop signal is forwarded, or restarts are used up;
 * resolves to the exit status for the supervisor (see the module doc). Throws when the first
 * worker cannot be started at all (e.g. UserID needs root).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLogger } from "./log.ts";
 * import { supervise } from "./supervisor.ts";
 * const logger = await createLogger(
 *   { syslog: false, syslogFacility: "mail", syslogName: "dkimd" },
 *   { env: () => undefined, stderr: () => {} },
 * );
 * // A worker that gets ready and then stops cleanly: the supervisor exits with its status.
 * const command = { command: "sh", args: ["-c", "echo READY=1; exit 0"] };
 * assert.equal(await supervise({ command, logger, autoRestart: true }), 0);
 * ```
 */
export async function supervise(options: SuperviseOptions): Promise<number> {
  const { logger } = options;
  const limiter = new RestartLimiter({
    count: options.autoRestartCount ?? 0,
    ...(options.autoRestartRate ? { rate: options.autoRestartRate } : {}),
  });
  const delay = options.restartDelayMs ?? RESTART_DELAY_MS_DEFAULT;
  const now = options.now ?? Date.now;
  let child: Deno.ChildProcess | undefined;
  // Whether `child` has said it is ready; until then a reload signal waits in `heldReload`.
  let childReady = false;
  let heldReload: Deno.Signal | undefined;
  let stopping: Deno.Signal | undefined;
  let wake: (() => void) | undefined;
  let pidFile: PidFile | undefined;
  let first = true;

  const forward = (signal: Deno.Signal) => {
    if (!child) return;
    logger.info(`forwarding ${signal} to worker ${child.pid}`);
    try {
      child.kill(signal);
    } catch {
      // The worker has just exited; its status decides.
    }
  };
  const hold = (signal: Deno.Signal) => {
    if (stopping || heldReload) return;
    heldReload = signal;
    logger.info(`${signal} received before the worker is ready: holding it until it is`);
  };
  const handlers = FORWARDED_SIGNALS.map((signal) => {
    const handler = () => {
      if (RELOAD_SIGNALS.includes(signal) && !(child && childReady)) return hold(signal);
      if (signal === "SIGTERM" || signal === "SIGINT") {
        stopping ??= signal;
        heldReload = undefined;
        wake?.();
      }
      forward(signal);
    };
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  // Listening now: what came while the configuration loaded waits for the first worker.
  const early = options.heldReload?.release();
  if (early) hold(early);

  try {
    for (;;) {
      const spawned = spawnWorker(options);
      child = spawned;
      childReady = false;
      const stderr = relaysStderr(options) ? new WorkerStderr(spawned.stderr) : undefined;
      let failure: unknown;
      const ready = waitForReady(spawned.stdout).then(async (isReady) => {
        if (!isReady) return false;
        stderr?.ready();
        logger.info(`worker ${spawned.pid} is ready`);
        if (child === spawned) {
          childReady = true;
          const signal = heldReload;
          heldReload = undefined;
          if (signal) forward(signal);
        }
        if (first) {
          first = false;
          if (options.pidFile) {
            pidFile = await writePidFile(options.pidFile, {
              ...(options.umask !== undefined ? { umask: options.umask } : {}),
            });
          }
          options.onReady?.();
        }
        return true;
      }).catch((e) => {
        // The PID file cannot be written (another dkimd runs): stop, as OpenDKIM would not start.
        failure = e;
        try {
          spawned.kill("SIGTERM");
        } catch {
          // Already gone.
        }
        return true;
      });
      const status = await spawned.status;
      const wasReady = await ready;
      await stderr?.done;
      const diagnosis = !wasReady && stderr && options.runAs
        ? diagnoseStartFailure(stderr.held, options.runAs, checkoutOf(options.command))
        : undefined;
      if (diagnosis === undefined) stderr?.release();
      if (failure !== undefined) {
        logger.error(errorMessage(failure));
        return EX_CONFIG;
      }
      child = undefined;
      childReady = false;
      const code = exitStatus(status);
      const what = `worker ${spawned.pid} ${describeExit(status)}`;
      if (stopping) {
        logger.notice(`${what} after ${stopping}`);
        return code;
      }
      if (status.success) {
        logger.notice(what);
        return 0;
      }
      if (diagnosis !== undefined) {
        logger.error(`${what} before it was ready, so dkimd stops: ${diagnosis}`);
        return code;
      }
      if (!wasReady && status.signal !== null && RELOAD_SIGNALS.includes(status.signal)) {
        // Sent to the worker itself before Deno ran the line that catches it; the supervisor
        // holds its own copy, if it got one, for the new worker.
        logger.notice(
          `${what} before it was ready (a reload signal sent to it directly): starting it again`,
        );
        continue;
      }
      if (status.signal === null && (status.code === EX_CONFIG || status.code === EX_SOFTWARE)) {
        logger.error(`${what}; not restarting (as OpenDKIM, a configuration or internal error)`);
        return code;
      }
      if (!wasReady) {
        logger.error(
          `${what} before it was ready; not restarting, since it would fail again: see its ` +
            `error above`,
        );
        return code;
      }
      if (!options.autoRestart) {
        logger.error(`${what}; AutoRestart is off, so dkimd stops`);
        return code;
      }
      const refusal = limiter.allow(now());
      if (refusal) {
        logger.error(`${what}; ${refusal}; giving up`);
        return EX_UNAVAILABLE;
      }
      logger.notice(`${what}, restarting (restart ${limiter.restarts})`);
      if (delay > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
      if (stopping) {
        logger.notice(`stopping on ${stopping} before restarting`);
        return 0;
      }
    }
  } finally {
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
    await pidFile?.remove();
  }
}

/**
 * Whether the supervisor passes a worker's standard error on itself (`worker_stderr.ts`): only
 * with UserID, where Deno's cache or the checkout may be out of the worker's reach, and not when
 * standard error is systemd's journal stream, which the worker must write itself to be
 * recognised (`log.ts`).
 */
function relaysStderr(options: SuperviseOptions): boolean {
  return options.runAs !== undefined && !safeEnv(JOURNAL_STREAM_ENV);
}

function spawnWorker(options: SuperviseOptions): Deno.ChildProcess {
  const { command, runAs } = options;
  try {
    return new Deno.Command(command.command, {
      args: [...command.args],
      env: { ...options.env, [WORKER_ENV]: "1", [READY_ENV]: "stdout" },
      stdin: "null",
      stdout: "piped",
      stderr: relaysStderr(options) ? "piped" : "inherit",
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    }).spawn();
  } catch (e) {
    const detail = errorMessage(e);
    if (runAs && e instanceof Deno.errors.PermissionDenied) {
      throw new Error(
        `Cannot start the worker as user "${runAs.user}" (uid ${runAs.uid}): ${detail}; ` +
          `UserID needs dkimd to be started as root`,
        { cause: e },
      );
    }
    throw new Error(`Cannot start the worker "${command.command}": ${detail}`, { cause: e });
  }
}
