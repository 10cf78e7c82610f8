/**
 * Header fields between the MTA and the DKIM core: a field rebuilt from what the milter lent
 * ({@link makeField}), deletions numbered as the milter protocol counts fields
 * ({@link deletions}), and the value of a field the filter adds, as the MTA wants it
 * ({@link mtaValue}, {@link mtaText}, {@link mtaFieldValue}).
 *
 * @module
 */
import { asciiLower, CR, HTAB, LF, SP } from "../bytes.ts";
import { slabBytes, slabLatin1 } from "../byte_slab.ts";
import { fieldValue, type HeaderField } from "../dkim/header.ts";
import type { Modification } from "../milter/filter.ts";

/**
 * A header value for the MTA from text the filter made (the text after the colon): with bare
 * LF folds (MTAs store lines with LF and write CRLF on the wire), and with the space after the
 * colon only when the MTA agreed to keep it (SMFIP_HDR_LEADSPC); otherwise the MTA adds it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fromLatin1, latin1 } from "../bytes.ts";
 * import { mtaValue } from "./mta_fields.ts";
 * assert.equal(latin1(mtaValue(fromLatin1(" a;\r\n\tb"), false)), "a;\n\tb");
 * assert.equal(latin1(mtaValue(fromLatin1(" a"), true)), " a");
 * ```
 */
export function mtaValue(value: Uint8Array, leadingSpace: boolean): Uint8Array {
  // On the bytes, one pass: a round trip through text cost more than the edit.
  const out = slabBytes(value.length);
  let o = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === CR && value[i + 1] === LF) continue;
    out[o++] = c;
  }
  const start = !leadingSpace && o > 0 && out[0] === SP ? 1 : 0;
  return out.subarray(start, o);
}

/** {@link mtaValue} of text the filter made (Latin-1, as header text is on the wire). */
export function mtaText(value: string, leadingSpace: boolean): Uint8Array {
  return mtaValue(slabLatin1(value), leadingSpace);
}

/** {@link mtaValue} of a field the filter made: the text after its colon. */
export function mtaFieldValue(field: HeaderField, leadingSpace: boolean): Uint8Array {
  return mtaValue(fieldValue(field), leadingSpace);
}

/**
 * chgheader deletions for the fields `select` picks, numbered per field name from 1 as the
 * milter protocol counts them, highest first, so that deleting one never renumbers the next
 * (the bug OpenDKIM#185 had).
 */
export function deletions(
  fields: readonly HeaderField[],
  select: (field: HeaderField) => boolean,
): Modification[] {
  // Most messages have nothing to delete: pick first, number only when something was picked.
  const picked = fields.filter(select);
  if (picked.length === 0) return [];
  const seen = new Map<string, number>();
  const out: { index: number; name: string }[] = [];
  for (const f of fields) {
    const key = asciiLower(f.name);
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    if (picked.includes(f)) out.push({ index: n, name: f.name });
  }
  return out.reverse().map(({ index, name }) => ({
    type: "chgheader",
    index,
    name,
    value: new Uint8Array(0),
  }));
}

/**
 * A header field as the message has it, from what the milter received: the name, the colon,
 * and the value with its leading space put back when the MTA removed it (no SMFIP_HDR_LEADSPC;
 * Sendmail and Postfix then drop one space after the colon, and OpenDKIM restores it the same
 * way), and bare LF line ends made CRLF, as the field travels on the wire. The field owns its
 * bytes: `value` is copied, as the milter lends it only for the header call.
 */
export function makeField(name: string, value: Uint8Array, leadingSpace: boolean): HeaderField {
  const addSpace = !leadingSpace && value.length > 0 && value[0] !== SP && value[0] !== HTAB;
  // Bare LFs, each of which gets a CR in front.
  let bare = 0;
  for (let i = value.indexOf(LF); i !== -1; i = value.indexOf(LF, i + 1)) {
    if (i === 0 || value[i - 1] !== CR) bare++;
  }
  const start = name.length + 1 + (addSpace ? 1 : 0);
  // From a slab: an array of its own for every field of every message cost more than the copy.
  const raw = slabBytes(start + value.length + bare);
  for (let i = 0; i < name.length; i++) raw[i] = name.charCodeAt(i) & 0xff;
  raw[name.length] = 0x3a;
  if (addSpace) raw[name.length + 1] = SP;
  if (bare === 0) {
    raw.set(value, start);
  } else {
    let o = start;
    for (let i = 0; i < value.length; i++) {
      const c = value[i];
      if (c === LF && (i === 0 || value[i - 1] !== CR)) raw[o++] = CR;
      raw[o++] = c;
    }
  }
  // "Subject : x" keeps its bytes, but is found as "Subject" (h= names have no whitespace).
  const last = name.charCodeAt(name.length - 1);
  return { name: last === SP || last === HTAB ? name.replace(/[ \t]+$/, "") : name, raw };
}
