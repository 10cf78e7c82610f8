/**
 * What the serving process tells systemd over its life (`Type=notify` and `Type=notify-reload`,
 * systemd.service(5)), through the sd_notify client ({@link SdNotifier}):
 *
 * - `READY=1` once the milter socket listens and the keys are loaded (both happen before
 *   {@link ServiceNotify.ready} is called), with the first status line;
 * - on a reload signal, `RELOADING=1` with `MONOTONIC_USEC=` when it starts and `READY=1` when it
 *   ends; a bad configuration keeps the old one, and `STATUS=` says why;
 * - `STOPPING=1` when a stop signal arrives;
 * - `STATUS=` ({@link ServiceStatus}) refreshed every {@link STATUS_INTERVAL_MS} when it changed;
 * - `WATCHDOG=1` at half of `WatchdogSec=`, from this event loop (`watchdog.ts`).
 *
 * With the supervisor, the worker is the serving process and says all of this itself (the unit
 * has `NotifyAccess=all`); the supervisor says nothing. Without `NOTIFY_SOCKET` nothing is
 * made and nothing sent.
 *
 * @module
 */

import process from "node:process";
import type { MilterLogger } from "../milter/logger.ts";
import { MonotonicClock, SdNotifier, type SdNotifierOptions } from "./sd_notify.ts";
import { type ServiceStatus, STATUS_INTERVAL_MS, type StatusPolicy } from "./service_status.ts";
import { startWatchdog, watchdogUsec } from "./watchdog.ts";

/** The configuration in force, as the status line reads it. */
export type StatusSource = () => StatusPolicy;

/** Options of {@link ServiceNotify.fromEnv}. */
export interface ServiceNotifyOptions extends SdNotifierOptions {
  /** Where problems with the socket are logged. */
  readonly logger: MilterLogger;
  /** The counters behind the status line. */
  readonly status: ServiceStatus;
  /** The configuration in force. */
  readonly loaded: StatusSource;
  /** True in a supervised worker (it then accepts its supervisor's WATCHDOG_PID). */
  readonly worker: boolean;
  /** How often the status line is refreshed; default {@link STATUS_INTERVAL_MS}. */
  readonly statusIntervalMs?: number;
}

/**
 * The serving process's link to systemd (see the module doc).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NO_OBSERVER } from "../filter/observer.ts";
 * import { ServiceNotify } from "./service_notify.ts";
 * import { ServiceStatus } from "./service_status.ts";
 * const sent: string[] = [];
 * const open = () => ({
 *   send: (d: Uint8Array) => Promise.resolve(sent.push(new TextDecoder().decode(d))),
 *   close() {},
 * });
 * const systemd = ServiceNotify.fromEnv({
 *   env: (n) => n === "NOTIFY_SOCKET" ? "/run/systemd/notify" : undefined,
 *   open,
 *   logger: { debug() {}, info() {}, warn() {}, error() {} },
 *   status: new ServiceStatus(NO_OBSERVER),
 *   loaded: () => ({ config: { mode: { sign: false, verify: true } } }),
 *   worker: false,
 * })!;
 * await systemd.ready();
 * await systemd.stopping();
 * systemd.close();
 * assert.deepEqual(sent, [
 *   "READY=1\nSTATUS=mode v, no signing keys, 0 messages\n",
 *   "STOPPING=1\nSTATUS=stopping\n",
 * ]);
 * ```
 */
export class ServiceNotify {
  readonly #notifier: SdNotifier;
  readonly #status: ServiceStatus;
  readonly #loaded: StatusSource;
  readonly #watchdogUsec?: number;
  readonly #statusIntervalMs: number;
  readonly #clock = new MonotonicClock();
  #lastStatus = "";
  #failure?: string;
  #stops: (() => void)[] = [];

  private constructor(
    notifier: SdNotifier,
    options: ServiceNotifyOptions,
    watchdog: number | undefined,
  ) {
    this.#notifier = notifier;
    this.#status = options.status;
    this.#loaded = options.loaded;
    this.#statusIntervalMs = options.statusIntervalMs ?? STATUS_INTERVAL_MS;
    if (watchdog !== undefined) this.#watchdogUsec = watchdog;
  }

  /**
   * The link for the environment systemd gave (`NOTIFY_SOCKET`, `WATCHDOG_USEC`,
   * `WATCHDOG_PID`), or undefined without `NOTIFY_SOCKET`. A value Deno cannot use is logged
   * as an error, and the service runs on without the link.
   */
  static fromEnv(options: ServiceNotifyOptions): ServiceNotify | undefined {
    const { logger } = options;
    let notifier: SdNotifier | undefined;
    try {
      notifier = SdNotifier.fromEnv({
        ...options,
        onError: options.onError ?? ((m) => logger.error(m)),
      });
    } catch (e) {
      logger.error(`${e instanceof Error ? e.message : String(e)}; not notifying systemd`);
      return undefined;
    }
    if (!notifier) return undefined;
    const env = options.env ?? ((name: string) => {
      try {
        return Deno.env.get(name);
      } catch {
        return undefined;
      }
    });
    const usec = watchdogUsec(env, { pid: Deno.pid, ppid: process.ppid, worker: options.worker });
    return new ServiceNotify(notifier, options, usec);
  }

  /** The watchdog interval in microseconds, when systemd asked for pings. */
  get watchdogUsec(): number | undefined {
    return this.#watchdogUsec;
  }

  /**
   * Ready: the socket listens and the keys are loaded. Sends `READY=1` with the status line,
   * then starts the status refresh and the watchdog pings.
   */
  async ready(): Promise<void> {
    this.#clock.usec();
    this.#lastStatus = this.#line();
    await this.#notifier.notify({ READY: "1", STATUS: this.#lastStatus });
    const timer = setInterval(() => void this.refresh(), this.#statusIntervalMs);
    this.#stops.push(() => clearInterval(timer));
    if (this.#watchdogUsec !== undefined) {
      this.#stops.push(startWatchdog(this.#notifier, this.#watchdogUsec));
    }
  }

  /** A reload starts: `RELOADING=1` with `MONOTONIC_USEC=`. */
  async reloading(): Promise<void> {
    const usec = this.#clock.usec();
    await this.#notifier.notify({
      RELOADING: "1",
      ...(usec !== undefined ? { MONOTONIC_USEC: String(usec) } : {}),
      STATUS: "reloading the configuration",
    });
  }

  /** The reload ended with the new configuration in force: `READY=1` and its status line. */
  async reloaded(): Promise<void> {
    this.#failure = undefined;
    this.#lastStatus = this.#line();
    await this.#notifier.notify({ READY: "1", STATUS: this.#lastStatus });
  }

  /**
   * The reload failed and the old configuration stays: `READY=1` (the service runs on) with a
   * status line that starts with why; it stays at the front until a reload succeeds.
   */
  async reloadFailed(problem: string): Promise<void> {
    this.#failure = `reload failed, old configuration kept: ${problem}`;
    this.#lastStatus = this.#line();
    await this.#notifier.notify({ READY: "1", STATUS: this.#lastStatus });
  }

  /** Sends the status line if it changed since it was last sent. */
  async refresh(): Promise<void> {
    // Each reading can tighten the clock's bound (MonotonicClock), so RELOADING=1 is closer.
    this.#clock.usec();
    const line = this.#line();
    if (line === this.#lastStatus) return;
    this.#lastStatus = line;
    await this.#notifier.notify({ STATUS: line });
  }

  /** A stop signal arrived: `STOPPING=1`; the pings and refreshes end. */
  async stopping(): Promise<void> {
    this.#stopTimers();
    await this.#notifier.notify({ STOPPING: "1", STATUS: "stopping" });
  }

  /** Ends the timers and closes the socket. */
  close(): void {
    this.#stopTimers();
    this.#notifier.close();
  }

  #stopTimers(): void {
    for (const stop of this.#stops.splice(0)) stop();
  }

  #line(): string {
    const line = this.#status.line(this.#loaded());
    return this.#failure === undefined ? line : `${this.#failure}; ${line}`;
  }
}
