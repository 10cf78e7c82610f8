/**
 * Replies written per read, not per command: the frames that came in one read are handled in
 * order and their replies gathered for one write ({@link answerBurst}), so an MTA that sends
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
 * const batch = new ReplyBatch();
 * const result = answerBurst(decoder, session, batch, {
 *   write: () => Promise.reject(new Error("nothing waited: no early write")),
 *   wait: (replies) => replies,
 *   stop: () => false,
 * });
 * assert.deepEqual(result, { frames: 2, end: "more" }); // at once: no promise, nothing waited
 * // HELO's and MAIL's replies, for one write.
 * assert.deepEqual(batch.take(), Uint8Array.of(0, 0, 0, 1, 0x63, 0, 0, 0, 1, 0x63));
 * ```
 *
 * @module
 */

import { decodeCommandAt } from "./command.ts";
import type { FrameDecoder } from "./frame.ts";
import { encodeReply, type Reply, simpleReplyCode } from "./reply.ts";
import type { Replies } from "./scheduler.ts";
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
  /**
   * Writes all of `bytes` (the replies owed before a wait); they are a view the caller may
   * reuse once the promise settles.
   */
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
   * negotiation); `stopped`: `stop()` said so; `abandoned`: `wait()` gave up. In every case but
   * `abandoned`, the replies owed and not yet written are in the batch, for the caller to write.
   */
  readonly end: "more" | "closed" | "stopped" | "abandoned";
}

/**
 * Handles the whole frames in `decoder` (the frames of one read) through `session`, in order,
 * gathering their replies in `batch`, which the caller writes in one write once this returns.
 * When a command's answer is a promise, what the batch holds is written first (the MTA may be
 * waiting for it), then the answer awaited; only then is the result a promise. Nothing is
 * pushed into `decoder` meanwhile, so the commands' byte fields (views of its buffer) stay valid.
 * Returning the result itself when nothing waited spares a promise per read.
 */
export function answerBurst(
  decoder: FrameDecoder,
  session: MilterSession,
  batch: ReplyBatch,
  io: BurstIo,
): BurstResult | Promise<BurstResult> {
  let frames = 0;
  for (let code = decoder.advance(); code !== -1; code = decoder.advance()) {
    frames++;
    const command = decodeCommandAt(code, decoder.bytes, decoder.frameStart, decoder.frameEnd);
    const answer = session.receive(command);
    if (answer instanceof Promise) {
      return waitThenAnswer(decoder, session, batch, io, frames, answer);
    }
    const end = afterReplies(session, batch, io, answer);
    if (end !== undefined) return { frames, end };
  }
  return { frames, end: "more" };
}

// The rest of a burst from a command answered with a promise.
async function waitThenAnswer(
  decoder: FrameDecoder,
  session: MilterSession,
  batch: ReplyBatch,
  io: BurstIo,
  handled: number,
  pending: Promise<Reply[]>,
): Promise<BurstResult> {
  let frames = handled;
  let answer: Replies = pending;
  for (;;) {
    let replies: Reply[] | "abandoned";
    if (answer instanceof Promise) {
      if (batch.length > 0) await io.write(batch.take());
      replies = await io.wait(answer);
    } else replies = answer;
    if (replies === "abandoned") return { frames, end: "abandoned" };
    const end = afterReplies(session, batch, io, replies);
    if (end !== undefined) return { frames, end };
    const code = decoder.advance();
    if (code === -1) return { frames, end: "more" };
    frames++;
    answer = session.receive(
      decodeCommandAt(code, decoder.bytes, decoder.frameStart, decoder.frameEnd),
    );
  }
}

// Adds a command's replies to the batch; says why the burst ends after it, if it does.
function afterReplies(
  session: MilterSession,
  batch: ReplyBatch,
  io: BurstIo,
  replies: Reply[],
): "closed" | "stopped" | undefined {
  if (replies.length > 0) batch.add(replies);
  if (session.closed) return "closed";
  if (io.stop()) return "stopped";
  return undefined;
}
