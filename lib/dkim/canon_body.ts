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
  #scratch = new Uint8Array(0);
  #finished = false;

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
  // whitespace before a line end change. So the chunk is scanned read-only, unchanged spans go
  // to the sink as subarrays of the chunk (no copy), and only the places that change, plus the
  // chunk's last bytes (whose meaning depends on the next chunk), go through the byte-by-byte
  // state machine.
  #pushRelaxed(chunk: Uint8Array, sink: ByteSink): void {
    const n = chunk.length;
    // The trailing whitespace and CRs of the chunk may pair with the next chunk's first bytes.
    let tail = n;
    while (tail > 0) {
      const c = chunk[tail - 1];
      if (c !== SP && c !== HTAB && c !== CR) break;
      tail--;
    }
    let i = 0;
    if (this.#cr || this.#space) i = this.#relaxedSlow(chunk, 0, n, true, sink);
    while (i < tail) {
      i = this.#relaxedSpan(chunk, i, tail, sink);
      if (i < tail) i = this.#relaxedWhitespace(chunk, i, sink);
    }
    if (i < n) this.#relaxedSlow(chunk, i, n, false, sink);
  }

  // Emits the longest span from `start` (before `end`) that relaxed canonicalization does not
  // change, holding back its trailing line ends; returns where the span stopped. Needs no pending
  // space or CR. Every whitespace or CR byte before `end` has its next byte before `end` too,
  // because the chunk's trailing whitespace and CRs lie at or after `end`.
  #relaxedSpan(chunk: Uint8Array, start: number, end: number, sink: ByteSink): number {
    let i = start;
    let tab = -1; // position of the next tab at or after i, found lazily
    outer: while (i < end) {
      // Where the next space is far (base64, long words), jump there with a native search:
      // everything before the next space or tab is unchanged, line ends included.
      let sp = chunk.indexOf(SP, i);
      if (sp === -1 || sp > end) sp = end;
      if (sp - i >= JUMP_MIN) {
        if (tab < i) {
          tab = chunk.indexOf(HTAB, i);
          if (tab === -1) tab = chunk.length;
        }
        i = Math.min(sp, tab, end);
        if (i >= end) break;
      }
      // Otherwise (ordinary text) walk the line byte by byte, then try to jump again.
      while (i < end) {
        const c = chunk[i];
        if (c > SP) {
          i++;
          continue;
        }
        if (c === SP) {
          const d = chunk[i + 1];
          if (d === SP || d === HTAB || (d === CR && chunk[i + 2] === LF)) break outer;
          i++;
          continue;
        }
        if (c === HTAB) break outer;
        if (c === CR && chunk[i + 1] === LF) {
          // A line end inside the span; look for a jump on the next line.
          i += 2;
          continue outer;
        }
        // A lone CR, a lone LF and other controls are content.
        i++;
      }
    }
    if (i > start) {
      let contentEnd = i;
      let pairs = 0;
      while (
        contentEnd - start >= 2 && chunk[contentEnd - 1] === LF && chunk[contentEnd - 2] === CR
      ) {
        contentEnd -= 2;
        pairs++;
      }
      if (contentEnd > start) {
        if (this.#crlfs > 0) {
          emitCrlfs(this.#crlfs, sink);
        }
        sink(chunk.subarray(start, contentEnd));
        this.#content = true;
        this.#crlfs = pairs;
      } else {
        this.#crlfs += pairs;
      }
    }
    return i;
  }

  // Handles a whitespace run at `start` that changes: dropped before a line end, else made one
  // space. Returns the position after the run.
  #relaxedWhitespace(chunk: Uint8Array, start: number, sink: ByteSink): number {
    let k = start;
    while (chunk[k] === SP || chunk[k] === HTAB) k++;
    if (chunk[k] === CR && chunk[k + 1] === LF) return k;
    if (this.#crlfs > 0) {
      emitCrlfs(this.#crlfs, sink);
      this.#crlfs = 0;
    }
    sink(SPACE);
    this.#content = true;
    return k;
  }

  // The byte-by-byte state machine for [from, to). With `untilClean`, it stops as soon as no
  // space or CR is pending, so the span scanner can take over. Returns where it stopped.
  #relaxedSlow(
    chunk: Uint8Array,
    from: number,
    to: number,
    untilClean: boolean,
    sink: ByteSink,
  ): number {
    // Output never exceeds the input plus a few carried bytes (a space, a CR); line ends
    // carried from earlier chunks, which can be many, go straight to the sink when they would
    // not fit.
    if (this.#scratch.length < to - from + 8) {
      this.#scratch = new Uint8Array(Math.max(to - from + 8, 256));
    }
    const out = this.#scratch;
    let o = 0;
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
          if (o > 0) sink(out.subarray(0, o));
          o = 0;
          emitCrlfs(crlfs, sink);
          crlfs = 0;
        }
        if (space) {
          out[o++] = SP;
          space = false;
        }
        out[o++] = CR;
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
        if (o > 0) sink(out.subarray(0, o));
        o = 0;
        emitCrlfs(crlfs, sink);
        crlfs = 0;
      }
      if (space) {
        out[o++] = SP;
        space = false;
      }
      out[o++] = c;
      content = true;
    }
    if (o > 0) sink(out.subarray(0, o));
    this.#crlfs = crlfs;
    this.#cr = cr;
    this.#space = space;
    this.#content = content;
    return i;
  }
}

const SPACE = Uint8Array.of(SP);

/**
 * Distance to the next space from which the span scanner jumps with a native search instead of
 * walking byte by byte: a native call costs about as much as walking a few dozen bytes.
 */
const JUMP_MIN = 48;
