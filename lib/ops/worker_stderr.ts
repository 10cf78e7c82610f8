/**
 * A worker's standard error as its supervisor passes it on, so that a worker that cannot even
 * load (Deno's own `error: ...` and its causes, before any dkimd code runs) can be explained in
 * one line instead of a Deno trace (`worker_start.ts`). Until the worker is ready, its dkimd log
 * lines (`dkimd[PID]: ...`) go straight through and anything else (Deno's messages) is held;
 * once it is ready, what was held is written and everything passes straight through. If it
 * fails before, the supervisor either explains the held text or writes it out as it was.
 *
 * @module
 */

/** Most bytes held before the worker is ready; past it, they are written out (no diagnosis). */
export const MAX_HELD_BYTES = 64 * 1024;

/** A dkimd log line on standard error: `TAG[PID]: message` (see `log.ts`). */
const LOG_LINE = /^[^\s[\]]+\[\d+\]: /;

function writeStderr(bytes: Uint8Array): void {
  try {
    let off = 0;
    while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
  } catch {
    // Standard error is gone (a detached supervisor): the worker's text has nowhere to go.
  }
}

/**
 * Relays a worker's standard error, holding Deno's own messages until the worker is ready.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WorkerStderr } from "./worker_stderr.ts";
 * const out: string[] = [];
 * const text = "dkimd[7]: dkimd starting\nerror: Failed caching npm package 'yaml@2.9.1'\n";
 * const relay = new WorkerStderr(new Blob([text]).stream(), (b) => out.push(new TextDecoder().decode(b)));
 * await relay.done;
 * assert.deepEqual(out, ["dkimd[7]: dkimd starting\n"]);
 * assert.equal(relay.held, "error: Failed caching npm package 'yaml@2.9.1'\n");
 * relay.release();
 * assert.equal(out.join(""), text);
 * ```
 */
export class WorkerStderr {
  /** Resolves when the worker's standard error has ended. */
  readonly done: Promise<void>;
  readonly #write: (bytes: Uint8Array) => void;
  readonly #encoder = new TextEncoder();
  #held = "";
  #partial = "";
  #holding = true;

  /** Starts relaying `stream` to `write` (default: this process's standard error). */
  constructor(
    stream: ReadableStream<Uint8Array>,
    write: (bytes: Uint8Array) => void = writeStderr,
  ) {
    this.#write = write;
    this.done = this.#pump(stream);
  }

  /** What is held: Deno's messages from a worker that is not ready (yet). */
  get held(): string {
    return this.#held;
  }

  /** The worker is ready: writes what is held, and passes everything on from now on. */
  ready(): void {
    this.release();
  }

  /** Writes what is held and stops holding (a failure no one explains: show Deno's words). */
  release(): void {
    this.#holding = false;
    const text = this.#held + this.#partial;
    this.#held = "";
    this.#partial = "";
    if (text !== "") this.#write(this.#encoder.encode(text));
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of stream) {
        if (!this.#holding) {
          this.#write(chunk);
          continue;
        }
        this.#partial += decoder.decode(chunk, { stream: true });
        const lines = this.#partial.split("\n");
        this.#partial = lines.pop() ?? "";
        for (const line of lines) {
          if (LOG_LINE.test(line)) this.#write(this.#encoder.encode(`${line}\n`));
          else this.#held += `${line}\n`;
        }
        if (this.#held.length + this.#partial.length > MAX_HELD_BYTES) this.release();
      }
    } catch {
      // The pipe broke with the worker; its status tells the rest.
    }
    if (this.#holding && this.#partial !== "") {
      this.#held += this.#partial;
      this.#partial = "";
    }
  }
}
