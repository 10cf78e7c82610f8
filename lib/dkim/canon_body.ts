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

  #pushRelaxed(chunk: Uint8Array, sink: ByteSink): void {
    // Output never exceeds the input plus a few carried bytes (a space, a CR, the CR of a CRLF
    // split across chunks), once line ends carried from earlier chunks go directly to the sink.
    if (this.#scratch.length < chunk.length + 8) {
      this.#scratch = new Uint8Array(Math.max(chunk.length + 8, 1024));
    }
    const out = this.#scratch;
    let o = 0;
    let crlfs = this.#crlfs;
    let cr = this.#cr;
    let space = this.#space;
    let content = this.#content;
    let carried = crlfs > 0; // pending line ends from earlier chunks go straight to the sink
    const n = chunk.length;
    for (let i = 0; i < n; i++) {
      let c = chunk[i];
      if (cr) {
        cr = false;
        if (c === LF) {
          // Line end: whitespace before it is dropped.
          space = false;
          crlfs++;
          continue;
        }
        // The CR was a content byte; emit it, then handle c below.
        if (crlfs > 0) {
          if (carried) {
            if (o > 0) sink(out.subarray(0, o));
            o = 0;
            emitCrlfs(crlfs, sink);
            carried = false;
          } else {
            for (let k = 0; k < crlfs; k++) {
              out[o++] = CR;
              out[o++] = LF;
            }
          }
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
        if (carried) {
          if (o > 0) sink(out.subarray(0, o));
          o = 0;
          emitCrlfs(crlfs, sink);
          carried = false;
        } else {
          for (let k = 0; k < crlfs; k++) {
            out[o++] = CR;
            out[o++] = LF;
          }
        }
        crlfs = 0;
      }
      if (space) {
        out[o++] = SP;
        space = false;
      }
      out[o++] = c;
      content = true;
      // Copy the rest of a run of ordinary bytes in one go.
      let j = i + 1;
      while (j < n) {
        c = chunk[j];
        if (c === CR || c === SP || c === HTAB) break;
        j++;
      }
      if (j > i + 1) {
        out.set(chunk.subarray(i + 1, j), o);
        o += j - i - 1;
        i = j - 1;
      }
    }
    if (o > 0) sink(out.subarray(0, o));
    this.#crlfs = crlfs;
    this.#cr = cr;
    this.#space = space;
    this.#content = content;
  }
}

const SPACE = Uint8Array.of(SP);
