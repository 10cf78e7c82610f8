/**
 * The session's scheduler: the one place that decides whether a command is answered at once or
 * later. A filter answers most events at once (a header, a body chunk), and waiting on a promise
 * for each would cost a turn of the event loop per milter command, so a command is answered
 * synchronously when nothing before it is still pending and the filter answered without a
 * promise; otherwise its answer is a promise, and later commands queue behind it in order. The
 * state machine writes each step as plain calls through {@link settle} and {@link andThen} and
 * returns {@link Replies}; only this module looks at which of the two it holds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { andThen, CommandQueue, settle } from "./scheduler.ts";
 * const ok = () => [{ type: "continue" as const }];
 * const failed = () => [{ type: "tempfail" as const }];
 * // A callback that answers at once is answered at once; one that throws gets `failed`.
 * assert.deepEqual(settle(() => "ok", ok, failed), [{ type: "continue" }]);
 * assert.deepEqual(settle(() => { throw new Error("boom"); }, ok, failed), [{ type: "tempfail" }]);
 * // A promise keeps its place in the queue: the command after it waits.
 * const queue = new CommandQueue((delay: number) => {
 *   const replies = settle(() => delay ? Promise.resolve(delay) : delay, ok, failed);
 *   return andThen(replies, (r) => [...r, { type: "accept" as const }]);
 * }, failed);
 * assert.deepEqual(queue.run(0), [{ type: "continue" }, { type: "accept" }]);
 * const later = queue.run(5);
 * assert.ok(later instanceof Promise);
 * assert.ok(queue.run(0) instanceof Promise);
 * assert.deepEqual(await later, [{ type: "continue" }, { type: "accept" }]);
 * ```
 *
 * @module
 */

import type { Reply } from "./reply.ts";

/** Replies now, or a promise of them when a filter callback answered with a promise. */
export type Replies = Reply[] | Promise<Reply[]>;

/**
 * Runs a filter callback and hands its answer to `then`, or what it threw (or rejected with),
 * and what `then` threw, to `failed`: at once when the callback answered without a promise,
 * otherwise once the promise settles.
 */
export function settle<T>(
  call: () => T | PromiseLike<T>,
  then: (answer: T) => Reply[],
  failed: (error: unknown) => Reply[],
): Replies {
  let answer: T | PromiseLike<T>;
  try {
    answer = call();
  } catch (error) {
    return failed(error);
  }
  if (isThenable(answer)) {
    return Promise.resolve(answer).then((value) => {
      try {
        return then(value);
      } catch (error) {
        return failed(error);
      }
    }, failed);
  }
  try {
    return then(answer);
  } catch (error) {
    return failed(error);
  }
}

/** Runs `next` with `replies` once they are there: at once when they are not a promise. */
export function andThen(replies: Replies, next: (replies: Reply[]) => Replies): Replies {
  return replies instanceof Promise ? replies.then(next) : next(replies);
}

/** True for a promise or any object with a `then` method, as `await` sees it. */
export function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof value === "object" && value !== null &&
    typeof (value as { then?: unknown }).then === "function";
}

/**
 * Runs commands one after another, each at once while no earlier one is pending. What `handle`
 * throws (or its promise rejects with) goes to `failed`, so {@link CommandQueue.run} never
 * throws and a promise it returns never rejects.
 */
export class CommandQueue<C> {
  readonly #handle: (command: C) => Replies;
  readonly #failed: (command: C, error: unknown) => Reply[];
  // The end of the commands (and tasks) queued; each waits for the one before.
  #queue: Promise<unknown> = Promise.resolve();
  // Commands and tasks not finished yet; while there are none, a command runs at once.
  #pending = 0;
  // Commands not finished yet.
  #busy = 0;

  /** Makes a queue that handles each command with `handle`, and its failures with `failed`. */
  constructor(
    handle: (command: C) => Replies,
    failed: (command: C, error: unknown) => Reply[],
  ) {
    this.#handle = handle;
    this.#failed = failed;
  }

  /** True while a command is being handled (or waits its turn). */
  get busy(): boolean {
    return this.#busy > 0;
  }

  /**
   * Handles `command`: at once, returning the replies themselves, when nothing is pending and
   * `handle` answered without a promise; otherwise a promise, which later commands wait for.
   */
  run(command: C): Replies {
    if (this.#pending > 0) {
      // Behind a command still being handled: wait for it, in order.
      return this.#track(this.#queue.then(() => this.#handle(command)), command);
    }
    let replies: Replies;
    try {
      replies = this.#handle(command);
    } catch (error) {
      return this.#failed(command, error);
    }
    return replies instanceof Promise ? this.#track(replies, command) : replies;
  }

  /**
   * Runs `task` once every command queued so far is done (closing the connection); what it
   * throws goes to `failed`. The returned promise never rejects.
   */
  after(task: () => void, failed: (error: unknown) => void): Promise<void> {
    this.#pending++;
    const run = this.#queue.then(task).then(() => {
      this.#pending--;
    }, (error) => {
      this.#pending--;
      failed(error);
    });
    this.#queue = run;
    return run;
  }

  // Counts `run` as pending until it settles, and makes it the end of the queue.
  #track(run: Promise<Reply[]>, command: C): Promise<Reply[]> {
    this.#pending++;
    this.#busy++;
    const tracked = run.then((replies) => {
      this.#pending--;
      this.#busy--;
      return replies;
    }, (error) => {
      this.#pending--;
      this.#busy--;
      return this.#failed(command, error);
    });
    this.#queue = tracked;
    return tracked;
  }
}
