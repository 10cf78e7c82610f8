/**
 * Values taken from a message (a signature's `d=`, `i=`, `s=`, `a=`, tag values quoted in a
 * reason), made fit for an Authentication-Results field or a log line: cut to a bounded length
 * with a marker, and every character at or above 0x80 escaped, so a hostile signature can neither
 * make dkimd's lines arbitrarily long nor put 8-bit bytes into a header field (RFC 5322 §2.1
 * wants US-ASCII) or a log.
 *
 * @module
 */

/** Most characters a value taken from a message keeps, its marker included. */
export const MESSAGE_VALUE_MAX_CHARS = 100;

/** Most characters a reason keeps: dkimd's own words around at most one cut value. */
export const REASON_MAX_CHARS = 2 * MESSAGE_VALUE_MAX_CHARS;

/** What ends a value that was cut. */
export const CUT_MARKER = "[...]";

/**
 * `text` with every character at or above 0x80 written `\xHH` (`\u{H}` above 0xFF: DNS and header
 * text here is one byte per character), cut to at most `max` characters, the last of them
 * {@link CUT_MARKER}, when longer. An escape is never cut in half.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { messageValue } from "./message_value.ts";
 * assert.equal(messageValue("example.com"), "example.com");
 * assert.equal(messageValue("caf\xe9.example"), "caf\\xe9.example");
 * assert.equal(messageValue("a".repeat(200)), "a".repeat(95) + "[...]");
 * ```
 */
export function messageValue(text: string, max: number = MESSAGE_VALUE_MAX_CHARS): string {
  let out = "";
  let cut = -1;
  for (const c of text) {
    const code = c.codePointAt(0)!;
    const piece = code < 0x80
      ? c
      : code <= 0xff
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u{${code.toString(16)}}`;
    if (cut === -1 && out.length + piece.length > max - CUT_MARKER.length) cut = out.length;
    out += piece;
    if (out.length > max) return out.slice(0, cut) + CUT_MARKER;
  }
  return out;
}

/**
 * A verdict's reason made fit the same way: each double-quoted value in it (how dkimd's reasons
 * quote a tag value, as `unsupported algorithm "x"`) cut by {@link messageValue}, then the whole
 * escaped and cut to {@link REASON_MAX_CHARS}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { messageReason } from "./message_value.ts";
 * assert.equal(messageReason("body hash did not verify"), "body hash did not verify");
 * assert.equal(
 *   messageReason(`unsupported algorithm "${"x".repeat(300)}"`),
 *   `unsupported algorithm "${"x".repeat(95)}[...]"`,
 * );
 * ```
 */
export function messageReason(reason: string): string {
  const cut = reason.replace(/"([^"]*)"/g, (_, value: string) => `"${messageValue(value)}"`);
  return messageValue(cut, REASON_MAX_CHARS);
}
