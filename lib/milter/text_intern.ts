/**
 * Short byte strings the MTA sends again and again (header names, macro names, most macro
 * values), decoded to text once and then shared: {@link TextIntern.latin1} finds the string of
 * the same bytes in a small table by a hash of the bytes and gives it back without allocating;
 * a miss decodes and takes the slot. A 2 KB message brings some forty such strings, each of
 * which cost a string and a typed-array view before, which made the milter decoder the largest
 * source of garbage per message. Only what one byte per character can hold goes through here
 * (ASCII, or latin1 by definition); the table is a cache, so a collision only costs a decode.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TextIntern } from "./text_intern.ts";
 * const intern = new TextIntern();
 * const bytes = new TextEncoder().encode("xSubject\0");
 * const a = intern.latin1(bytes, 1, 8);
 * assert.equal(a, "Subject");
 * assert.equal(intern.latin1(Uint8Array.from(bytes), 1, 8), a);
 * assert.equal(intern.latin1(bytes, 0, 0), "");
 * ```
 *
 * @module
 */

// Slots in the table: a power of two; more than the distinct names of a busy server's mail.
const SLOTS = 1024;

/** Longest text interned; longer text is decoded each time (it rarely repeats). */
export const INTERN_MAX_BYTES = 64;

/** A table of short latin1 strings by their bytes. */
export class TextIntern {
  readonly #table: (string | undefined)[] = new Array(SLOTS).fill(undefined);

  /**
   * The text of `bytes[start, end)`, one character per byte (latin1), from the table when it
   * holds the same bytes. `end - start` must be at most {@link INTERN_MAX_BYTES}.
   */
  latin1(bytes: Uint8Array, start: number, end: number): string {
    // FNV-1a over the bytes, folded to the table size.
    let h = 0x811c9dc5;
    for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
    const slot = (h ^ (h >>> 16)) & (SLOTS - 1);
    const cached = this.#table[slot];
    if (cached !== undefined && cached.length === end - start) {
      let same = true;
      for (let i = start; i < end; i++) {
        if (cached.charCodeAt(i - start) !== bytes[i]) {
          same = false;
          break;
        }
      }
      if (same) return cached;
    }
    const text = String.fromCharCode.apply(
      null,
      bytes.subarray(start, end) as unknown as number[],
    );
    this.#table[slot] = text;
    return text;
  }
}
