/**
 * Replies written per read, not per command: the frames that came in one read are handled in
 * order and their replies go out in one write ({@link answerBurst}), so an MTA that sends
 * several commands at once gets one packet back, not one per reply. A reply is never held back
 * for a reply the MTA has not asked for yet: the batch is written as soon as the frames read so
 * far are handled, and before any wait on the filter (a command answered with a promise), since
 * the MTA may be waiting on a reply already in the batch. {@link ReplyBatch} encodes the replies
 * into one buffer it keeps between reads, so a batch costs no allocation once the buffer has
 * grown to the largest batch.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeCommand } from "./command.ts";
 * import { FrameDecoder } from "./frame.ts";
 * import { answerBurst, ReplyBatch } from "./reply_batch.ts";
 * import { MilterSession } from "./session.ts";
 * const quiet = { debug() {}, info() {}, warn() {}, error() {} };
 * const session = new MilterSession({
 *   needs: { actions: 0, events: ["helo", "envFrom"] },
 *   connect: () => ({ endOfMessage: () => ({ modifications: [], action: "accept" }) }),
 * }, { logger: quiet });
 * await session.receive({ type: "optneg", version: 6, actions: 0, protocol: 0 });
 * await session.receive({ type: "connect", hostname: "mx", family: "unknown", port: 0, address: "" });
 * const decoder = new FrameDecoder();
 * decoder.push(encodeCommand({ type: "helo", name: "mx.example" }));
 * decoder.push(encodeCommand({ type: "mail", args: ["<a@example.org>"] }));
 * const writes: Uint8Array[] = [];
 * const result = await answerBurst(() => decoder.nextView(), session, new ReplyBatch(), {
 *   write: (bytes) => {
 *     writes.push(bytes.slice());
 *     return Promise.resolve();
 *   },
 *   wait: (replies) => replies,
 *   stop: () => false,
 * });
 * assert.deepEqual(result, { frames: 2, end: "more" });
 * assert.deepEqual(writes, [Uint8Array.of(0, 0, 0, 1, 0x63, 0, 0, 0, 1, 0x63)]); // in one write
 * ```
 *
 * @module
 */

import { decodeCommand } from "./command.ts";
import type { Frame } from "./frame.ts";
import { encodeReply, type Reply, simpleReplyCode } from "./reply.ts";
import type { MilterSession } from "./session.ts";

// Room for a few replies; grows (doubling) to the largest batch seen on the connection.
const INITIAL_BATCH_BYTES = 256;

// Bytes of a reply without data: the 32-bit length (1) and the code.
const SIMPLE_REPLY_BYTES = 5;

/**
 * Encoded replies waiting to be written, in order, in one buffer reused from batch to batch.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ReplyBatch } from "./reply_batch.ts";
 * const batch = new ReplyBatch();
 * batch.add([{ type: "continue" }, { type: "accept" }]);
 * assert.deepEqual(batch.take(), Uint8Array.of(0, 0, 0, 1, 0x63, 0, 0, 0, 1, 0x61));
 * assert.equal(batch.length, 0);
 * ```
 */
export class ReplyBatch {
  #buf = new Uint8Array(INITIAL_BATCH_BYTES);
  #length = 0;

  /** Bytes waiting. */
  get length(): number {
    return this.#length;
  }

  /**
   * Encodes `replies` after those already waiting. Throws as {@link encodeReply} does for a
   * reply that cannot be sent, leaving the batch as it was.
   */
  add(replies: readonly Reply[]): void {
    const start = this.#length;
    try {
      for (const reply of replies) {
        const code = simpleReplyCode(reply);
        if (code !== undefined) {
          this.#reserve(SIMPLE_REPLY_BYTES);
          const at = this.#length;
          this.#buf[at] = 0;
          this.#buf[at + 1] = 0;
          this.#buf[at + 2] = 0;
          this.#buf[at + 3] = 1;
          this.#buf[at + 4] = code;
          this.#length = at + SIMPLE_REPLY_BYTES;
        } else {
          const bytes = encodeReply(reply);
          this.#reserve(bytes.length);
          this.#buf.set(bytes, this.#length);
          this.#length += bytes.length;
        }
      }
    } catch (error) {
      this.#length = start;
      throw error;
    }
  }

  /**
   * The bytes waiting, and the batch emptied. The bytes are a view of the batch's buffer, valid
   * until the next {@link ReplyBatch.add}: write them before adding more.
   */
  take(): Uint8Array {
    const bytes = this.#buf.subarray(0, this.#length);
    this.#length = 0;
    return bytes;
  }

  #reserve(extra: number): void {
    const need = this.#length + extra;
    if (need <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < need) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#buf.subarray(0, this.#length));
    this.#buf = grown;
  }
}

/** What {@link answerBurst} needs from the connection. */
export interface BurstIo {
  /** Writes all of `bytes`; they are a view the caller may reuse once the promise settles. */
  write(bytes: Uint8Array): Promise<void>;
  /** Waits for replies the filter answered with a promise, or gives up ("abandoned"). */
  wait(replies: Promise<Reply[]>): Promise<Reply[] | "abandoned">;
  /** True to stop after the command just handled (shutdown at a transaction boundary). */
  stop(): boolean;
}

/** How a burst ended, and how many frames it handled. */
export interface BurstResult {
  /** Frames handled. */
  readonly frames: number;
  /**
   * `more`: every whole frame was handled, read on; `closed`: the session closed (QUIT, failed
   * negotiation); `stopped`: `stop()` said so; `abandoned`: `wait()` gave up. The replies owed
   * so far have been written in every case but `abandoned`.
   */
  readonly end: "more" | "closed" | "stopped" | "abandoned";
}

/**
 * Handles the whole frames `next` gives (the frames of one read) through `session`, in order,
 * and writes their replies: in one write at the end, or earlier when a command's answer is a
 * promise, so what the MTA may be waiting for goes out before the wait. Frames from `next` may
 * be views valid until the next read: each is decoded before the next is taken, and nothing is
 * read meanwhile.
 */
export async function answerBurst(
  next: () => Frame | undefined,
  session: MilterSession,
  batch: ReplyBatch,
  io: BurstIo,
): Promise<BurstResult> {
  let frames = 0;
  let end: BurstResult["end"] = "more";
  for (let frame = next(); frame; frame = next()) {
    frames++;
    const answer = session.receive(decodeCommand(frame));
    let replies: Reply[] | "abandoned";
    if (answer instanceof Promise) {
      if (batch.length > 0) await io.write(batch.take());
      replies = await io.wait(answer);
    } else replies = answer;
    if (replies === "abandoned") return { frames, end: "abandoned" };
    if (replies.length > 0) batch.add(replies);
    if (session.closed) {
      end = "closed";
      break;
    }
    if (io.stop()) {
      end = "stopped";
      break;
    }
  }
  if (batch.length > 0) await io.write(batch.take());
  return { frames, end };
}
