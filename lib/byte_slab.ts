/**
 * Small byte arrays carved out of shared slabs, for the arrays made for every message (each
 * header field the MTA sends, a signature's header hash input). `new Uint8Array(n)` above V8's
 * on-heap limit (64 bytes) costs a backing store of its own, zero-filled and tracked by the
 * garbage collector: about 350 ns here, against about 40 ns for a view into a slab (issue 20).
 *
 * A piece is a view of a larger `ArrayBuffer` it shares with other pieces: code that takes one
 * must use `byteOffset` and `byteLength` with its `buffer`, as every user of a `subarray()`
 * must. A slab lives as long as any piece of it, so at most {@link SLAB_BYTES} stay behind a
 * retained piece; pieces are never reused, so no piece sees another's bytes.
 *
 * @module
 */

/** The size of one slab. */
export const SLAB_BYTES = 16 * 1024;

/** The largest piece carved from a slab; longer arrays are made on their own. */
export const SLAB_PIECE_MAX = 2048;

let slab = new ArrayBuffer(SLAB_BYTES);
let used = 0;

/**
 * A new zero-filled byte array of `length` bytes: a piece of the current slab when at most
 * {@link SLAB_PIECE_MAX}, else an array of its own.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { slabBytes } from "./byte_slab.ts";
 * const a = slabBytes(100);
 * const b = slabBytes(100);
 * a.fill(1);
 * assert.equal(a.length, 100);
 * assert.deepEqual(b, new Uint8Array(100));
 * ```
 */
export function slabBytes(length: number): Uint8Array {
  if (length > SLAB_PIECE_MAX) return new Uint8Array(length);
  if (used + length > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    used = 0;
  }
  const piece = new Uint8Array(slab, used, length);
  used += length;
  return piece;
}

/**
 * `text` as one byte per character, like `fromLatin1()` in bytes.ts (code points above U+00FF
 * become "?"), in a piece from {@link slabBytes}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { slabLatin1 } from "./byte_slab.ts";
 * assert.deepEqual(slabLatin1("a\xe9\u20ac"), Uint8Array.of(0x61, 0xe9, 0x3f));
 * ```
 */
export function slabLatin1(text: string): Uint8Array {
  const out = slabBytes(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    out[i] = c < 0x100 ? c : 0x3f;
  }
  return out;
}
