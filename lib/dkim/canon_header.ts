/**
 * Header canonicalization, `simple` and `relaxed` (RFC 6376 §3.4.1, §3.4.2).
 *
 * @module
 */
import { COLON, CR, HTAB, LF, SP } from "../bytes.ts";
import type { HeaderField } from "./header.ts";

/** The two canonicalization algorithms of RFC 6376 §3.4. */
export type Canonicalization = "simple" | "relaxed";

/**
 * Canonicalizes one header field, ending it with CRLF.
 * - `simple` (§3.4.1): the field unchanged.
 * - `relaxed` (§3.4.2): name lower-cased; value unfolded (every CRLF removed); every run of
 *   spaces and tabs made one space; whitespace at the end of the value and around the colon
 *   removed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { canonicalizeHeader } from "./canon_header.ts";
 * import { latin1, utf8 } from "../bytes.ts";
 * const field = { name: "SubJect", raw: utf8("SubJect :  A\t b\r\n\tc  ") };
 * assert.equal(latin1(canonicalizeHeader(field, "relaxed")), "subject:A b c\r\n");
 * assert.equal(latin1(canonicalizeHeader(field, "simple")), "SubJect :  A\t b\r\n\tc  \r\n");
 * ```
 */
export function canonicalizeHeader(field: HeaderField, canon: Canonicalization): Uint8Array {
  const out = new Uint8Array(canonicalHeaderRoom(field));
  return out.subarray(0, writeCanonicalHeader(out, 0, field, canon));
}

/**
 * The most bytes {@link writeCanonicalHeader} writes for `field` in either canonicalization: the
 * field, the CRLF that ends it, and one byte more (relaxed may add a colon the name lacks).
 */
export function canonicalHeaderRoom(field: HeaderField): number {
  return field.raw.length + 3;
}

/**
 * Writes {@link canonicalizeHeader}'s bytes for `field` into `out` at `offset`, which needs
 * {@link canonicalHeaderRoom} bytes free, and returns the offset after them: a signature's
 * header hash input is built in one array this way, without an array per field.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { canonicalHeaderRoom, writeCanonicalHeader } from "./canon_header.ts";
 * import { latin1, utf8 } from "../bytes.ts";
 * const a = { name: "To", raw: utf8("To:  b ") };
 * const c = { name: "Cc", raw: utf8("Cc: d") };
 * const out = new Uint8Array(canonicalHeaderRoom(a) + canonicalHeaderRoom(c));
 * const end = writeCanonicalHeader(out, writeCanonicalHeader(out, 0, a, "relaxed"), c, "simple");
 * assert.equal(latin1(out.subarray(0, end)), "to:b\r\nCc: d\r\n");
 * ```
 */
export function writeCanonicalHeader(
  out: Uint8Array,
  offset: number,
  field: HeaderField,
  canon: Canonicalization,
): number {
  const raw = field.raw;
  let o = offset;
  if (canon === "simple") {
    out.set(raw, o);
    o += raw.length;
    out[o++] = CR;
    out[o++] = LF;
    return o;
  }
  const colon = raw.indexOf(COLON);
  // Name: lower-case ASCII letters, drop whitespace before the colon.
  let nameEnd = colon;
  while (nameEnd > 0 && (raw[nameEnd - 1] === SP || raw[nameEnd - 1] === HTAB)) nameEnd--;
  for (let i = 0; i < nameEnd; i++) {
    const c = raw[i];
    out[o++] = c >= 0x41 && c <= 0x5a ? c + 0x20 : c;
  }
  out[o++] = COLON;
  // Value: unfold, squeeze whitespace runs, drop leading and trailing whitespace.
  let pendingSpace = false;
  let started = false;
  for (let i = colon + 1; i < raw.length; i++) {
    const c = raw[i];
    if (c === CR && raw[i + 1] === LF) {
      i++;
      continue;
    }
    if (c === SP || c === HTAB) {
      pendingSpace = started;
      continue;
    }
    if (pendingSpace) {
      out[o++] = SP;
      pendingSpace = false;
    }
    started = true;
    out[o++] = c;
  }
  out[o++] = CR;
  out[o++] = LF;
  return o;
}
