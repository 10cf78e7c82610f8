/**
 * Applies a milter's header changes to a message as an MTA does, to get the message that would
 * be delivered: insheader at an index, addheader at the end, chgheader of the nth field of a
 * name (an empty value deletes it). Values are written after `Name:` as given when the MTA kept
 * leading spaces (SMFIP_HDR_LEADSPC), else after `Name: `; LF folds become CRLF.
 *
 * @module
 */
import { asciiLower, concat, CRLF, fromLatin1, latin1 } from "../../lib/bytes.ts";
import type { HeaderValue, Reply } from "../../lib/milter/reply.ts";

/** A header field as name and raw value (after the colon). */
export type HeaderPair = readonly [string, string];

function text(value: HeaderValue): string {
  return typeof value === "string" ? value : latin1(value);
}

/** The header list after `modifications`, in order. */
export function applyModifications(
  headers: readonly HeaderPair[],
  modifications: readonly Reply[],
  leadingSpace = true,
): HeaderPair[] {
  const out: [string, string][] = headers.map(([n, v]) => [n, v]);
  const fix = (v: HeaderValue) => {
    const t = text(v).replace(/\r?\n/g, "\r\n");
    return leadingSpace ? t : ` ${t}`;
  };
  for (const m of modifications) {
    if (m.type === "insheader") {
      out.splice(Math.min(m.index, out.length), 0, [m.name, fix(m.value)]);
    } else if (m.type === "addheader") out.push([m.name, fix(m.value)]);
    else if (m.type === "chgheader") {
      let n = 0;
      const at = out.findIndex(([name]) =>
        asciiLower(name) === asciiLower(m.name) && ++n === m.index
      );
      if (at === -1) continue;
      if (text(m.value) === "") out.splice(at, 1);
      else out[at] = [m.name, fix(m.value)];
    }
  }
  return out;
}

/** A whole message from header pairs and a body. */
export function buildMessage(
  headers: readonly HeaderPair[],
  body: Uint8Array | string,
): Uint8Array {
  const head = headers.map(([n, v]) => `${n}:${v}\r\n`).join("");
  return concat([fromLatin1(head), CRLF, typeof body === "string" ? fromLatin1(body) : body]);
}
