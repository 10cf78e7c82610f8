/**
 * Streaming body canonicalization, `simple` and `relaxed` (RFC 6376 §3.4.3, §3.4.4).
 *
 * Body chunks arrive as the MTA sends them (milter frames of up to 64 KiB, split anywhere, even
 * between the CR and LF of a line end). The canonicalizer keeps only a count of pending line
 * ends, a pending-space flag and a pending-CR flag between chunks, so memory stays constant
 * whatever the body, and chunk boundaries never change the output.
 *
 * @module
 */
import { CR, HTAB, LF, SP } from "../bytes.ts";
import type { Canonicalization } from "./canon_header.ts";

/** Receives canonical body bytes. It must consume them before returning (buffers are reused). */
export type ByteSink = (bytes: Uint8Array) => void;

// A block of CRLFs to emit long runs of pending empty lines without allocating per run.
const CRLF_BLOCK = (() => {
  const block = new Uint8Array(8192);
  for (let i = 0; i < block.length; i += 2) {
    block[i] = CR;
    block[i + 1] = LF;
  }
  return block;
})();
const CR_ONLY = Uint8Array.of(CR);
const CRLF_ONE = CRLF_BLOCK.subarray(0, 2);

function emitCrlfs(count: number, sink: ByteSink): void {
  let left = count * 2;
  while (left > 0) {
    const n = Math.min(left, CRLF_BLOCK.length);
    sink(CRLF_BLOCK.subarray(0, n));
    left -= n;
  }
}

/**
 * Canonicalizes a message body in a single streaming pass.
 * - `simple` (§3.4.3): the body unchanged, except that all empty lines at its end are removed
 *   and it ends with exactly one CRLF; an empty body becomes a single CRLF.
 * - `relaxed` (§3.4.4): whitespace at the end of each line removed, every run of spaces and
 *   tabs inside a line made one space, all empty lines at the end removed, and a CRLF added if
 *   the last line lacks one; an empty body (or one of only whitespace and line ends) stays
 *   empty.
 * A CR not followed by LF, and a LF not preceded by CR, are ordinary bytes, not line ends.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BodyCanonicalizer } from "./canon_body.ts";
 * import { concat, latin1, utf8 } from "../bytes.ts";
 * const parts: Uint8Array[] = [];
 * const canon = new BodyCanonicalizer("relaxed");
 * for (const chunk of ["Hi  there \r", "\n\r\n", "\r\n"]) {
 *   canon.push(utf8(chunk), (b) => parts.push(b.slice()));
 * }
 * canon.finish((b) => parts.push(b.slice()));
 * assert.equal(latin1(concat(parts)), "Hi there\r\n");
 * ```
 */
export class BodyCanonicalizer {
  /** The algorithm this canonicalizer applies. */
  readonly canonicalization: Canonicalization;
  #crlfs = 0; // line ends seen but not yet emitted: they may be trailing empty lines
  #cr = false; // the last byte seen was a CR whose LF may come in the next chunk
  #space = false; // relaxed: whitespace seen since the last content byte of this line
  #content = false; // any content byte emitted yet
  #finished = false;
  // During a relaxed push: the buffer output is gathered in, its fill, and the sink.
  #out = NO_BYTES;
  #o = 0;
  #sink?: ByteSink;

  /** Makes a canonicalizer for `canonicalization`. */
  constructor(canonicalization: Canonicalization) {
    this.canonicalization = canonicalization;
  }

  /** Canonicalizes the next chunk of the body, passing the output to `sink`. */
  push(chunk: Uint8Array, sink: ByteSink): void {
    if (this.#finished) throw new Error("BodyCanonicalizer.push() called after finish()");
    if (chunk.length === 0) return;
    if (this.canonicalization === "simple") this.#pushSimple(chunk, sink);
    else this.#pushRelaxed(chunk, sink);
  }

  /** Ends the body, passing the last canonical bytes (the final CRLF) to `sink`. */
  finish(sink: ByteSink): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#cr) {
      // A CR at the very end is a content byte, not half a line end.
      this.#cr = false;
      this.#flushPending(sink);
      sink(CR_ONLY);
      this.#content = true;
    }
    // Trailing empty lines are dropped; a last line without CRLF gets one. An empty body is
    // one CRLF in simple (§3.4.3) and nothing in relaxed (§3.4.4).
    if (this.#content || this.canonicalization === "simple") sink(CRLF_ONE);
    this.#crlfs = 0;
  }

  #flushPending(sink: ByteSink): void {
    if (this.#crlfs > 0) {
      emitCrlfs(this.#crlfs, sink);
      this.#crlfs = 0;
    }
    if (this.#space) {
      sink(SPACE);
      this.#space = false;
    }
  }

  #pushSimple(chunk: Uint8Array, sink: ByteSink): void {
    let start = 0;
    if (this.#cr) {
      this.#cr = false;
      if (chunk[0] === LF) {
        this.#crlfs++;
        start = 1;
      } else {
        this.#flushPending(sink);
        sink(CR_ONLY);
        this.#content = true;
      }
    }
    // Hold back the chunk's tail of CRLF pairs (and a final lone CR): they may be trailing.
    let end = chunk.length;
    let trailingCr = false;
    if (end > start && chunk[end - 1] === CR) {
      trailingCr = true;
      end--;
    }
    let pairs = 0;
    while (end - start >= 2 && chunk[end - 1] === LF && chunk[end - 2] === CR) {
      pairs++;
      end -= 2;
    }
    if (end > start) {
      this.#flushPending(sink);
      sink(chunk.subarray(start, end));
      this.#content = true;
      this.#crlfs = pairs;
    } else {
      this.#crlfs += pairs;
    }
    this.#cr = trailingCr;
  }

  // Relaxed canonicalization leaves most of a body as it is: only whitespace runs, tabs and
  // whitespace before a line end change. So the chunk is read-only: unchanged spans go out as
  // subarrays of the chunk (or are gathered with the small changes into one buffer, so the hash
  // is fed a few large pieces), found by native scans; only the chunk's first bytes (which may
  // finish what the last chunk began) and last bytes (whose meaning depends on the next chunk)
  // go through the byte-by-byte state machine.
  #pushRelaxed(chunk: Uint8Array, sink: ByteSink): void {
    const n = chunk.length;
    // The trailing whitespace and CRs of the chunk may pair with the next chunk's first bytes.
    let tail = n;
    while (tail > 0) {
      const c = chunk[tail - 1];
      if (c !== SP && c !== HTAB && c !== CR) break;
      tail--;
    }
    this.#sink = sink;
    // One buffer serves every canonicalizer (it is empty between pushes); a push inside a sink
    // of another push gets its own.
    const shared = !sharedOutBusy;
    this.#out = shared ? sharedOut : new Uint8Array(OUT_BYTES);
    sharedOutBusy = true;
    try {
      let i = 0;
      if (this.#cr || this.#space) i = this.#relaxedSlow(chunk, 0, n, true);
      if (i < tail) i = this.#relaxedRegion(chunk, i, tail);
      if (i < n) this.#relaxedSlow(chunk, i, n, false);
      this.#flushOut();
    } finally {
      if (shared) sharedOutBusy = false;
      this.#out = NO_BYTES;
      this.#o = 0;
      this.#sink = undefined;
    }
  }

  // [start, end) with no pending space or CR, where every whitespace or CR byte is followed by
  // another byte of the region (the chunk's trailing whitespace and CRs lie at or after `end`).
  // Stretches without a space or tab (base64: most of a large message) are found four bytes at
  // a time and pass unchanged; elsewhere a tight loop finds the whitespace runs that change
  // (a tab, two or more bytes, or a space before CRLF), and the single spaces between words,
  // most of a text's whitespace, cost one comparison.
  #relaxedRegion(chunk: Uint8Array, start: number, end: number): number {
    const region = chunk.subarray(start, end);
    const n = region.length;
    // The region's bytes as 32-bit words from its first 4-byte boundary, for the quick check.
    const head = (4 - (region.byteOffset & 3)) & 3;
    const count = Math.max(0, n - head) >>> 2;
    const words = count > 0
      ? new Uint32Array(region.buffer, region.byteOffset + head, count)
      : NO_WORDS;
    let pos = 0; // the first byte not yet emitted
    let i = 0;
    while (i < n) {
      const blockEnd = Math.min(n, i + SCAN_BLOCK_BYTES);
      if (!hasSpaceOrTab(region, words, head, i, blockEnd)) {
        i = blockEnd;
        continue;
      }
      for (; i < blockEnd; i++) {
        const c = region[i];
        if (c > SP || (c !== SP && c !== HTAB)) continue;
        let after = i + 1;
        while (region[after] === SP || region[after] === HTAB) after++;
        const beforeLineEnd = region[after] === CR && region[after + 1] === LF;
        if (c === SP && after === i + 1 && !beforeLineEnd) continue;
        if (i > pos) this.#span(region.subarray(pos, i));
        // §3.4.4 a: whitespace before a line end goes; b: any other run becomes one space.
        if (!beforeLineEnd) {
          this.#putPending();
          this.#putByte(SP);
          this.#content = true;
        }
        pos = after;
        i = after - 1;
      }
    }
    if (pos < n) this.#span(pos === 0 ? region : region.subarray(pos));
    return end;
  }

  // Emits bytes that relaxed canonicalization leaves unchanged, holding back their trailing
  // line ends: they may be trailing empty lines of the body.
  #span(bytes: Uint8Array): void {
    let contentEnd = bytes.length;
    let pairs = 0;
    while (contentEnd >= 2 && bytes[contentEnd - 1] === LF && bytes[contentEnd - 2] === CR) {
      contentEnd -= 2;
      pairs++;
    }
    if (contentEnd > 0) {
      if (this.#crlfs > 0) this.#putCrlfs(this.#crlfs);
      this.#put(contentEnd === bytes.length ? bytes : bytes.subarray(0, contentEnd));
      this.#content = true;
      this.#crlfs = pairs;
    } else {
      this.#crlfs += pairs;
    }
  }

  // The byte-by-byte state machine for [from, to). With `untilClean`, it stops as soon as no
  // space or CR is pending, so the region scanner can take over. Returns where it stopped.
  #relaxedSlow(chunk: Uint8Array, from: number, to: number, untilClean: boolean): number {
    let crlfs = this.#crlfs;
    let cr = this.#cr;
    let space = this.#space;
    let content = this.#content;
    let i = from;
    for (; i < to; i++) {
      if (untilClean && !cr && !space) break;
      const c = chunk[i];
      if (cr) {
        cr = false;
        if (c === LF) {
          // A line end: whitespace before it is dropped (§3.4.4 a).
          space = false;
          crlfs++;
          continue;
        }
        // The CR was an ordinary byte after all: emit it before c.
        if (crlfs > 0) {
          this.#putCrlfs(crlfs);
          crlfs = 0;
        }
        if (space) {
          this.#putByte(SP);
          space = false;
        }
        this.#putByte(CR);
        content = true;
      }
      if (c === CR) {
        cr = true;
        continue;
      }
      if (c === SP || c === HTAB) {
        space = true;
        continue;
      }
      if (crlfs > 0) {
        this.#putCrlfs(crlfs);
        crlfs = 0;
      }
      if (space) {
        this.#putByte(SP);
        space = false;
      }
      this.#putByte(c);
      content = true;
    }
    this.#crlfs = crlfs;
    this.#cr = cr;
    this.#space = space;
    this.#content = content;
    return i;
  }

  // Output of relaxed canonicalization goes through a buffer: pieces of at least DIRECT_BYTES
  // go to the sink as they are (after what is buffered), smaller ones are copied and sent
  // together, so a text part with many small changes costs a few hash updates, not hundreds.
  #put(bytes: Uint8Array): void {
    if (bytes.length >= DIRECT_BYTES) {
      this.#flushOut();
      this.#sink!(bytes);
      return;
    }
    if (this.#o + bytes.length > this.#out.length) this.#flushOut();
    this.#out.set(bytes, this.#o);
    this.#o += bytes.length;
  }

  #putByte(byte: number): void {
    if (this.#o === this.#out.length) this.#flushOut();
    this.#out[this.#o++] = byte;
  }

  // Line ends held back, before content.
  #putPending(): void {
    if (this.#crlfs > 0) {
      this.#putCrlfs(this.#crlfs);
      this.#crlfs = 0;
    }
  }

  #putCrlfs(count: number): void {
    if (count * 2 <= this.#out.length - this.#o) {
      const out = this.#out;
      let o = this.#o;
      for (let k = 0; k < count; k++) {
        out[o++] = CR;
        out[o++] = LF;
      }
      this.#o = o;
      return;
    }
    this.#flushOut();
    emitCrlfs(count, this.#sink!);
  }

  #flushOut(): void {
    if (this.#o > 0) {
      this.#sink!(this.#out.subarray(0, this.#o));
      this.#o = 0;
    }
  }
}

const SPACE = Uint8Array.of(SP);

/**
 * Bytes checked at once for a space or tab before the relaxed scanner walks them: small enough
 * that the base64 right after a text part passes at full speed, large enough that the check
 * costs little where text has spaces everywhere.
 */
const SCAN_BLOCK_BYTES = 512;

/**
 * Pieces of relaxed output at least this long go to the sink without a copy; smaller ones are
 * gathered in a {@link OUT_BYTES} buffer first. A hash update costs about as much as copying a
 * few hundred bytes.
 */
const DIRECT_BYTES = 512;

/** The relaxed output buffer: large enough for a text part's many small pieces. */
const OUT_BYTES = 16384;

const NO_BYTES = new Uint8Array(0);
const NO_WORDS = new Uint32Array(0);
const sharedOut = new Uint8Array(OUT_BYTES);
let sharedOutBusy = false;

/**
 * Whether `bytes[from, to)` holds a space or a tab, four bytes at a time (SWAR: a word has a zero
 * byte when `(w - 0x01010101) & ~w & 0x80808080` is not zero): about twice the speed of two
 * native `indexOf` scans, so base64 passes through near the speed of SHA-256 itself. `words`
 * views `bytes` from offset `head` (its first 4-byte boundary) on.
 */
function hasSpaceOrTab(
  bytes: Uint8Array,
  words: Uint32Array,
  head: number,
  from: number,
  to: number,
): boolean {
  // Whole words inside [from, to); the bytes around them one by one.
  const first = Math.max(0, Math.ceil((from - head) / 4));
  const last = Math.min(words.length, Math.floor((to - head) / 4));
  const wordsFrom = head + first * 4;
  const wordsTo = last > first ? head + last * 4 : wordsFrom;
  for (let i = from; i < Math.min(to, wordsFrom); i++) {
    const c = bytes[i];
    if (c === SP || c === HTAB) return true;
  }
  for (let k = first; k < last; k++) {
    const v = words[k];
    const x = v ^ 0x20202020;
    const y = v ^ 0x09090909;
    if (((((x - 0x01010101) | 0) & ~x) | (((y - 0x01010101) | 0) & ~y)) & 0x80808080) {
      return true;
    }
  }
  for (let i = Math.max(from, wordsTo); i < to; i++) {
    const c = bytes[i];
    if (c === SP || c === HTAB) return true;
  }
  return false;
}
