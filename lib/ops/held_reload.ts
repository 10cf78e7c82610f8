/**
 * A reload request (SIGHUP or SIGUSR1) that arrives while dkimd is still starting: caught from
 * the first line of `dkimd serve` and kept until the service can act on it. Without a listener
 * the kernel's default action for either signal ends the process (signal(7)), so a `systemctl
 * reload` racing a start, or a configuration tool signalling every dkimd by name, would stop a
 * filter that is merely loading its keys; OpenDKIM's signal thread catches them from the start.
 *
 * What is held is acted on once, when serving: the configuration just loaded may already be the
 * new one, but the file may also have changed between its reading and the signal, and one reload
 * too many costs a re-read while one too few serves a stale configuration.
 *
 * SIGTERM and SIGINT are not held: while dkimd starts they keep their default action, so a stop
 * during the start is as prompt, and ends with the same status, as before.
 *
 * @module
 */

/** The signals that ask dkimd to re-read its configuration (opendkim(8): SIGUSR1; SIGHUP too). */
export const RELOAD_SIGNALS: readonly Deno.Signal[] = ["SIGHUP", "SIGUSR1"];

/** How a {@link HeldReload} listens; default `Deno.addSignalListener` and its remover. */
export interface SignalListening {
  /** Starts calling `handler` on `signal`. */
  add(signal: Deno.Signal, handler: () => void): void;
  /** Stops calling `handler` on `signal`. */
  remove(signal: Deno.Signal, handler: () => void): void;
}

const DENO_SIGNALS: SignalListening = {
  add: (signal, handler) => Deno.addSignalListener(signal, handler),
  remove: (signal, handler) => Deno.removeSignalListener(signal, handler),
};

/**
 * Catches {@link RELOAD_SIGNALS} from its construction until {@link HeldReload.release}, and
 * remembers the first one received. The caller installs its own listeners before releasing, so
 * that no moment is left without one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HeldReload } from "./held_reload.ts";
 * const handlers = new Map<string, () => void>();
 * const held = new HeldReload({
 *   add: (s, h) => handlers.set(s, h),
 *   remove: (s) => handlers.delete(s),
 * });
 * assert.equal(held.requested, undefined);
 * handlers.get("SIGUSR1")!();
 * handlers.get("SIGHUP")!(); // one reload, however many requests
 * assert.equal(held.release(), "SIGUSR1");
 * assert.equal(handlers.size, 0);
 * assert.equal(held.release(), undefined); // released once
 * ```
 */
export class HeldReload {
  readonly #listening: SignalListening;
  readonly #handlers: [Deno.Signal, () => void][] = [];
  #requested: Deno.Signal | undefined;
  #released = false;

  /** Starts catching {@link RELOAD_SIGNALS}. */
  constructor(listening: SignalListening = DENO_SIGNALS) {
    this.#listening = listening;
    for (const signal of RELOAD_SIGNALS) {
      const handler = () => {
        this.#requested ??= signal;
      };
      try {
        listening.add(signal, handler);
        this.#handlers.push([signal, handler]);
      } catch {
        // A platform without the signal (Windows): nothing can send it either.
      }
    }
  }

  /** The first reload signal received so far, if any. */
  get requested(): Deno.Signal | undefined {
    return this.#requested;
  }

  /**
   * Stops catching, and returns the reload signal received meanwhile (undefined when none, or
   * when already released): the caller now owns it and must act on it.
   */
  release(): Deno.Signal | undefined {
    if (this.#released) return undefined;
    this.#released = true;
    for (const [signal, handler] of this.#handlers) this.#listening.remove(signal, handler);
    return this.#requested;
  }
}
