/**
 * The `z=` tag of RFC 6376 §3.5: copies of the header fields as signed, for a verifier to show
 * what changed when a signature fails (OpenDKIM's Diagnostics). Each field is written whole, name
 * and value as received, in dkim-quoted-printable (§2.11) with `|` also encoded (`=7C`, as §3.5
 * requires, since `|` separates the copies); the copies are joined by `|`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { copiedHeaders, decodeCopiedHeaders } from "./copied_headers.ts";
 * import { splitMessage } from "./header.ts";
 * import { utf8 } from "../bytes.ts";
 * const { fields } = splitMessage(utf8("From: a@b\r\nSubject: x|y\r\nX-Other: 1\r\n\r\n"));
 * const z = copiedHeaders(fields, ["from", "subject"]);
 * assert.equal(z, "From:=20a@b|Subject:=20x=7Cy");
 * assert.deepEqual(decodeCopiedHeaders(z), ["From: a@b", "Subject: x|y"]);
 * ```
 *
 * @module
 */
import { asciiLower } from "../bytes.ts";
import { type HeaderField, isField } from "./header.ts";
import { decodeQuotedPrintable } from "./signature.ts";

/** The characters §2.11 lets through unencoded, less `|` (§3.5): `!`-`:`, `<`, `>`-`{`, `}`, `~`. */
function safe(byte: number): boolean {
  return byte >= 0x21 && byte <= 0x7e && byte !== 0x3b && byte !== 0x3d && byte !== 0x7c;
}

/**
 * The copies of one field as indivisible tokens (a safe character, or an `=XX` escape), so a
 * folder can break the tag between any two of them (FWS is allowed there, §2.11).
 */
export function copyTokens(field: HeaderField): string[] {
  return [...field.raw].map((b) =>
    safe(b) ? String.fromCharCode(b) : `=${b.toString(16).toUpperCase().padStart(2, "0")}`
  );
}

/** The `z=` value for `fields`: every field whose name is in `names`, in message order. */
export function copiedHeaders(fields: readonly HeaderField[], names: readonly string[]): string {
  return copiedTokens(fields, names).join("");
}

/** {@link copiedHeaders} as tokens: each copy's tokens, with `|` tokens between them. */
export function copiedTokens(fields: readonly HeaderField[], names: readonly string[]): string[] {
  const wanted = new Set(names.map(asciiLower));
  const out: string[] = [];
  for (const f of fields) {
    if (![...wanted].some((n) => isField(f, n))) continue;
    if (out.length > 0) out.push("|");
    out.push(...copyTokens(f));
  }
  return out;
}

/** The copied fields of a `z=` value, decoded (folding whitespace removed), for diagnostics. */
export function decodeCopiedHeaders(z: string): string[] {
  return z.replace(/[ \t\r\n]+/g, "").split("|").map(decodeQuotedPrintable);
}
