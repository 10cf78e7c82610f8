/**
 * How a copy of dkimd tells the process that started it that it is listening: the supervisor
 * must know a worker that dies before it is ready from one that crashes later (the first would
 * fail again, so it is not restarted), and a `Background yes` start must know whether to exit
 * with success. An unprivileged worker cannot signal its root supervisor (kill(2) needs the same
 * user), so the notice goes down a pipe: the starter sets {@link READY_ENV} and reads the
 * child's standard output; the child writes {@link READY_LINE} there once and closes it, in the
 * spirit of sd_notify(3)'s `READY=1`.
 *
 * @module
 */

/** Set to `stdout` by the starting process: write {@link READY_LINE} on standard output when ready. */
export const READY_ENV = "DKIMD_READY";

/** What a ready copy writes. */
export const READY_LINE = "READY=1\n";

/** Most bytes read from a child's standard output while waiting: the line is 8 bytes. */
export const MAX_READY_BYTES = 4096;

/** Where a ready notice is written; default standard output. */
export interface ReadyOutput {
  /** Writes all of `bytes`. */
  write(bytes: Uint8Array): void;
  /** Closes the output, so the reader sees its end. */
  close(): void;
}

const stdoutOutput: ReadyOutput = {
  write(bytes) {
    let off = 0;
    while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
  },
  close() {
    Deno.stdout.close();
  },
};

let notified = false;

/**
 * Tells the starting process that this one is ready, when it asked ({@link READY_ENV} is
 * `stdout`): writes {@link READY_LINE} and closes standard output. Returns true when it did;
 * later calls do nothing. Errors (the starter has gone) are ignored.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { notifyReady } from "./readiness.ts";
 * const written: string[] = [];
 * const output = { write: (b: Uint8Array) => written.push(new TextDecoder().decode(b)), close() {} };
 * assert.equal(notifyReady({ env: () => undefined, output }), false);
 * assert.equal(notifyReady({ env: () => "stdout", output }), true);
 * assert.deepEqual(written, ["READY=1\n"]);
 * ```
 */
export function notifyReady(
  options: { env?: (name: string) => string | undefined; output?: ReadyOutput } = {},
): boolean {
  const env = options.env ?? ((name: string) => {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined;
    }
  });
  if (env(READY_ENV) !== "stdout") return false;
  const output = options.output ?? stdoutOutput;
  if (output === stdoutOutput && notified) return false;
  if (output === stdoutOutput) notified = true;
  try {
    output.write(new TextEncoder().encode(READY_LINE));
    output.close();
  } catch {
    // The starter is gone; nobody is waiting.
  }
  return true;
}

/**
 * Reads a child's standard output until it says {@link READY_LINE} (true) or ends without it
 * (false). Whatever follows is read and dropped, so the child never blocks on a full pipe, and
 * at most {@link MAX_READY_BYTES} are kept while waiting.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { waitForReady } from "./readiness.ts";
 * const stream = (text: string) => new Blob([text]).stream();
 * assert.equal(await waitForReady(stream("READY=1\n")), true);
 * assert.equal(await waitForReady(stream("")), false);
 * assert.equal(await waitForReady(stream("READY=0\n")), false);
 * ```
 */
export async function waitForReady(stream: ReadableStream<Uint8Array>): Promise<boolean> {
  const reader = stream.getReader();
  let text = "";
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return false;
    if (text.length < MAX_READY_BYTES) {
      text += decoder.decode(value, { stream: true });
      if (text.split("\n").slice(0, -1).includes(READY_LINE.trimEnd())) {
        drain(reader);
        return true;
      }
    }
  }
}

function drain(reader: ReadableStreamDefaultReader<Uint8Array>): void {
  (async () => {
    try {
      while (!(await reader.read()).done) {
        // Dropped: only the ready line matters.
      }
    } catch {
      // The pipe broke with the child; nothing to do.
    }
  })();
}
