/**
 * systemd's watchdog (`WatchdogSec=` in the unit, systemd.service(5)): systemd sets
 * {@link WATCHDOG_USEC_ENV} and {@link WATCHDOG_PID_ENV}, and restarts the service when no
 * `WATCHDOG=1` arrives within the interval. The ping is sent from a timer of the serving
 * process's own event loop at half the interval (sd_watchdog_enabled(3) recommends it), so it
 * is sent only while that loop runs: a loop stuck in a computation, a blocked call or a stopped
 * process sends nothing, and systemd restarts it.
 *
 * With the supervisor (UserID from root), systemd's main process is the supervisor, whose loop
 * only waits for its worker: its health says nothing about the milter's. So the worker pings
 * (the unit has `NotifyAccess=all`), and takes a WATCHDOG_PID naming its parent, the supervisor
 * that started it, as naming itself; the supervisor never pings.
 *
 * @module
 */

import type { SdNotifier } from "./sd_notify.ts";

/** The watchdog interval in microseconds, set by systemd (sd_watchdog_enabled(3)). */
export const WATCHDOG_USEC_ENV = "WATCHDOG_USEC";

/** The process the watchdog is meant for, set by systemd (sd_watchdog_enabled(3)). */
export const WATCHDOG_PID_ENV = "WATCHDOG_PID";

/** Who is asking: this process's id, its parent's, and whether it is a supervised worker. */
export interface WatchdogProcess {
  /** This process's id. */
  readonly pid: number;
  /** The parent's id. */
  readonly ppid: number;
  /** True in a worker that a dkimd supervisor started. */
  readonly worker: boolean;
}

/**
 * The watchdog interval in microseconds that applies to this process, or undefined when there
 * is none: WATCHDOG_USEC unset, not a positive integer, or WATCHDOG_PID naming another process
 * (a worker also accepts its supervisor's id, see the module doc).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { watchdogUsec } from "./watchdog.ts";
 * const env = (vars: Record<string, string>) => (name: string) => vars[name];
 * const me = { pid: 200, ppid: 100, worker: false };
 * assert.equal(watchdogUsec(env({ WATCHDOG_USEC: "30000000" }), me), 30_000_000);
 * assert.equal(watchdogUsec(env({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "200" }), me), 30_000_000);
 * assert.equal(watchdogUsec(env({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "100" }), me), undefined);
 * const worker = { ...me, worker: true };
 * assert.equal(watchdogUsec(env({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "100" }), worker), 30_000_000);
 * assert.equal(watchdogUsec(env({ WATCHDOG_USEC: "0" }), me), undefined);
 * assert.equal(watchdogUsec(env({}), me), undefined);
 * ```
 */
export function watchdogUsec(
  env: (name: string) => string | undefined,
  self: WatchdogProcess,
): number | undefined {
  const usec = env(WATCHDOG_USEC_ENV);
  if (usec === undefined || !/^[0-9]{1,15}$/.test(usec) || Number(usec) === 0) return undefined;
  const pid = env(WATCHDOG_PID_ENV);
  if (pid !== undefined && pid !== "") {
    if (!/^[0-9]{1,10}$/.test(pid)) return undefined;
    const n = Number(pid);
    if (n !== self.pid && !(self.worker && n === self.ppid)) return undefined;
  }
  return Number(usec);
}

/**
 * Pings every half `usec` from this event loop's timers, until the returned function is called.
 * The first ping goes at once, so a service that became ready is covered from the start.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startWatchdog } from "./watchdog.ts";
 * let pings = 0;
 * const notifier = { notify: () => Promise.resolve(++pings > 0) };
 * const stop = startWatchdog(notifier, 20_000);
 * await new Promise((r) => setTimeout(r, 45));
 * stop();
 * assert.ok(pings >= 3, `${pings} pings in 45 ms at 10 ms`);
 * ```
 */
export function startWatchdog(
  notifier: Pick<SdNotifier, "notify">,
  usec: number,
): () => void {
  const ping = () => void notifier.notify({ WATCHDOG: "1" });
  ping();
  const timer = setInterval(ping, Math.max(1, Math.floor(usec / 2000)));
  return () => clearInterval(timer);
}
