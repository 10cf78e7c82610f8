/**
 * Milter framing: a frame is a 32-bit big-endian length, then one command (or reply) byte, then
 * `length - 1` bytes of data. {@link FrameDecoder} cuts a byte stream from the socket into frames,
 * refusing an oversized one before its data is buffered; {@link encodeFrame} builds one. What the
 * data holds is the business of the command and reply codecs (command.ts, reply.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeFrame, FrameDecoder } from "./frame.ts";
 * const decoder = new FrameDecoder();
 * const bytes = encodeFrame(0x48, [new TextEncoder().encode("mx.example.org\0")]);
 * decoder.push(bytes.subarray(0, 3));
 * assert.equal(decoder.next(), undefined);
 * decoder.push(bytes.subarray(3));
 * const frame = decoder.next();
 * assert.equal(frame?.code, 0x48);
 * assert.equal(new TextDecoder().decode(frame?.data), "mx.example.org\0");
 * ```
 *
 * @module
 */

import { MILTER_LEN_BYTES } from "./constants.ts";
import { MilterProtocolError } from "./protocol_error.ts";

/**
 * Largest frame accepted, length prefix excluded: 1 MiB. Sendmail sends at most 1 MiB - 1 data
 * bytes per command even when it negotiates its largest size (`SMFIP_MDS_1M`), and Postfix sends a
 * whole header field in one frame, which its `header_size_limit` (100 KiB by default) bounds.
 */
export const MAX_FRAME_BYTES_DEFAULT = 1024 * 1024;

/** Largest value a 32-bit length or integer field can carry. */
export const UINT32_MAX = 0xffffffff;

/** One frame: the command or reply byte and the data after it. */
export interface Frame {
  /** The command (`SMFIC_*`) or reply (`SMFIR_*`) byte. */
  readonly code: number;
  /** The bytes after the code; their length is the frame length minus one. */
  readonly data: Uint8Array;
}

/** Options of a {@link FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Largest frame length accepted; default {@link MAX_FRAME_BYTES_DEFAULT}. */
  readonly maxFrameBytes?: number;
}

/**
 * Cuts a byte stream into frames. Bytes go in with {@link FrameDecoder.push} as they arrive, in
 * pieces split anywhere; whole frames come out of {@link FrameDecoder.next}. A length prefix
 * announcing more than the limit (or zero) throws {@link MilterProtocolError} as soon as its four
 * bytes are in, before the frame's data is buffered; the decoder then stays failed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FrameDecoder } from "./frame.ts";
 * import { MilterProtocolError } from "./protocol_error.ts";
 * const decoder = new FrameDecoder();
 * decoder.push(Uint8Array.of(0, 0, 0));
 * assert.equal(decoder.next(), undefined);
 * decoder.push(Uint8Array.of(2, 0x42, 0x78, 0, 0));
 * assert.deepEqual(decoder.next(), { code: 0x42, data: Uint8Array.of(0x78) });
 * assert.equal(decoder.buffered, 2);
 * const small = new FrameDecoder({ maxFrameBytes: 10 });
 * assert.throws(
 *   () => small.push(Uint8Array.of(0, 0, 0, 11)),
 *   (e) => e instanceof MilterProtocolError && e.oversized?.length === 11,
 * );
 * ```
 */
export class FrameDecoder {
  /** Largest frame length accepted. */
  readonly maxFrameBytes: number;
  #buf = new Uint8Array(4096);
  #start = 0;
  #end = 0;
  // Offset of the first frame whose length prefix has not been checked yet.
  #scan = 0;
  #failure?: MilterProtocolError;

  /** Makes a decoder with an optional frame size limit. */
  constructor(options: FrameDecoderOptions = {}) {
    const max = options.maxFrameBytes ?? MAX_FRAME_BYTES_DEFAULT;
    if (!Number.isInteger(max) || max < 1 || max > UINT32_MAX) {
      throw new RangeError(`Invalid "maxFrameBytes" ${max}: expected an integer from 1 to 2^32-1`);
    }
    this.maxFrameBytes = max;
  }

  /** Bytes received and not yet returned as frames. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /**
   * Adds received bytes. Throws {@link MilterProtocolError} when a length prefix is zero or over
   * the limit.
   */
  push(bytes: Uint8Array): void {
    if (this.#failure) throw this.#failure;
    if (bytes.length === 0) return;
    this.#reserve(bytes.length);
    this.#buf.set(bytes, this.#end);
    this.#end += bytes.length;
    this.#check();
  }

  /** The next whole frame, or undefined until more bytes arrive. Its data is a copy. */
  next(): Frame | undefined {
    return this.#take(true);
  }

  /**
   * The next whole frame, as {@link FrameDecoder.next} gives it, but without a copy: its data is
   * a view of the decoder's buffer, valid only until the next {@link FrameDecoder.push}, which
   * may overwrite it. For a reader that is done with each frame before it pushes more bytes, as
   * the milter server is: a copy of every 64 KiB body frame cost a quarter of the CPU of a large
   * message, and the memory of the copies grew with the message.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { encodeCommand } from "./command.ts";
   * import { FrameDecoder } from "./frame.ts";
   * const decoder = new FrameDecoder();
   * decoder.push(encodeCommand({ type: "body", chunk: new TextEncoder().encode("one") }));
   * const view = decoder.nextView();
   * const copy = new Uint8Array(view!.data);
   * decoder.push(encodeCommand({ type: "body", chunk: new TextEncoder().encode("two") }));
   * assert.equal(new TextDecoder().decode(copy), "one");
   * assert.equal(new TextDecoder().decode(view!.data), "two"); // overwritten
   * ```
   */
  nextView(): Frame | undefined {
    return this.#take(false);
  }

  /**
   * Moves past the next whole frame without making a {@link Frame} of it, and returns its code,
   * or -1 until more bytes arrive. Its data is `bytes[frameStart, frameEnd)`, valid as
   * {@link FrameDecoder.nextView}'s until the next {@link FrameDecoder.push}. For the server's
   * read loop, where a frame object and a view of each frame were a third of the garbage the
   * milter layer made per message.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { FrameDecoder } from "./frame.ts";
   * const decoder = new FrameDecoder();
   * decoder.push(Uint8Array.of(0, 0, 0, 3, 0x42, 0x78, 0x79, 0, 0));
   * assert.equal(decoder.advance(), 0x42);
   * assert.deepEqual(decoder.bytes.subarray(decoder.frameStart, decoder.frameEnd), Uint8Array.of(0x78, 0x79));
   * assert.equal(decoder.advance(), -1);
   * ```
   */
  advance(): number {
    if (this.#failure) throw this.#failure;
    const available = this.#end - this.#start;
    if (available < MILTER_LEN_BYTES) return -1;
    const length = this.#lengthAt(this.#start);
    if (available < MILTER_LEN_BYTES + length) return -1;
    const codeAt = this.#start + MILTER_LEN_BYTES;
    this.frameStart = codeAt + 1;
    this.frameEnd = codeAt + length;
    this.#start = this.frameEnd;
    // Rewinding moves no bytes: the span stays valid until the next push writes over it.
    if (this.#start === this.#end) this.#start = this.#end = this.#scan = 0;
    return this.#buf[codeAt];
  }

  /** The buffer the span of the frame {@link FrameDecoder.advance} passed is in. */
  get bytes(): Uint8Array {
    return this.#buf;
  }

  /** Where the data of the frame {@link FrameDecoder.advance} passed starts in `bytes`. */
  frameStart = 0;

  /** Where the data of the frame {@link FrameDecoder.advance} passed ends in `bytes`. */
  frameEnd = 0;

  #take(copy: boolean): Frame | undefined {
    if (this.#failure) throw this.#failure;
    const available = this.#end - this.#start;
    if (available < MILTER_LEN_BYTES) return undefined;
    const length = this.#lengthAt(this.#start);
    if (available < MILTER_LEN_BYTES + length) return undefined;
    const codeAt = this.#start + MILTER_LEN_BYTES;
    const end = codeAt + length;
    const frame = {
      code: this.#buf[codeAt],
      data: copy ? this.#buf.slice(codeAt + 1, end) : this.#buf.subarray(codeAt + 1, end),
    };
    this.#start = end;
    if (this.#start === this.#end) this.#start = this.#end = this.#scan = 0;
    return frame;
  }

  #lengthAt(offset: number): number {
    const b = this.#buf;
    return ((b[offset] << 24) | (b[offset + 1] << 16) | (b[offset + 2] << 8) | b[offset + 3]) >>>
      0;
  }

  // Validates every length prefix that is fully buffered, so an oversized frame is refused
  // before its data accumulates.
  #check(): void {
    while (this.#end - this.#scan >= MILTER_LEN_BYTES) {
      const length = this.#lengthAt(this.#scan);
      if (length === 0) {
        this.#failure = new MilterProtocolError("Invalid milter frame: length 0");
      } else if (length > this.maxFrameBytes) {
        this.#failure = new MilterProtocolError(
          `Milter frame too large: ${length} bytes announced, limit ${this.maxFrameBytes}`,
          undefined,
          { oversized: { length, limit: this.maxFrameBytes } },
        );
      }
      if (this.#failure) throw this.#failure;
      const next = this.#scan + MILTER_LEN_BYTES + length;
      if (next > this.#end) return;
      this.#scan = next;
    }
  }

  #reserve(extra: number): void {
    if (this.#end + extra <= this.#buf.length) return;
    const live = this.#end - this.#start;
    if (live + extra <= this.#buf.length) {
      this.#buf.copyWithin(0, this.#start, this.#end);
    } else {
      let size = this.#buf.length * 2;
      while (size < live + extra) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = grown;
    }
    this.#scan -= this.#start;
    this.#end = live;
    this.#start = 0;
  }
}

/**
 * Builds a whole frame: the length prefix, `code`, then `parts` one after another. Throws
 * {@link MilterProtocolError} when the length does not fit its 32 bits.
 */
export function encodeFrame(code: number, parts: readonly Uint8Array[]): Uint8Array {
  let length = 1;
  for (const p of parts) length += p.length;
  if (length > UINT32_MAX) {
    throw new MilterProtocolError(`Milter frame too large to encode: ${length} bytes`, code);
  }
  const out = new Uint8Array(MILTER_LEN_BYTES + length);
  new DataView(out.buffer).setUint32(0, length);
  out[MILTER_LEN_BYTES] = code;
  let offset = MILTER_LEN_BYTES + 1;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
