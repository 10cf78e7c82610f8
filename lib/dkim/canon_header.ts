/**
 * Header canonicalization, `simple` and `relaxed` (RFC 6376 §3.4.1, §3.4.2).
 *
 * @module
 */
import { COLON, CR, CRLF, HTAB, LF, SP } from "../bytes.ts";
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
  const raw = field.raw;
  if (canon === "simple") {
    const out = new Uint8Array(raw.length + 2);
    out.set(raw);
    out.set(CRLF, raw.length);
    return out;
  }
  const out = new Uint8Array(raw.length + 3);
  const colon = raw.indexOf(COLON);
  let o = 0;
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
  return out.subarray(0, o);
}
