/**
 * SelectCanonicalizationHeader (opendkim.conf(5)): a header field in the message being signed
 * that overrides Canonicalization for that message. OpenDKIM reads the field as it arrives, so
 * the last such field wins, and each half that is not `simple` or `relaxed` leaves the setting's
 * half in place (`relaxed/bogus` changes only the header canonicalization; a value without a
 * slash changes only the header one).
 *
 * @module
 */
import { asciiLower } from "../bytes.ts";
import type { Canonicalization } from "../config/values.ts";
import { fieldValueText, type HeaderField } from "../dkim/header.ts";

/**
 * The canonicalization for a message: `base`, overridden by the fields named `name`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { selectCanonicalization } from "./select_canonicalization.ts";
 * const field = { name: "X-Canonicalization", raw: new TextEncoder().encode("X-Canonicalization: simple/relaxed") };
 * assert.deepEqual(
 *   selectCanonicalization([field], "x-canonicalization", { header: "relaxed", body: "simple" }),
 *   { header: "simple", body: "relaxed" },
 * );
 * ```
 */
export function selectCanonicalization(
  fields: readonly HeaderField[],
  name: string,
  base: Canonicalization,
): Canonicalization {
  const lower = asciiLower(name);
  let { header, body } = base;
  for (const f of fields) {
    if (asciiLower(f.name) !== lower) continue;
    const value = fieldValueText(f).trim();
    const slash = value.indexOf("/");
    header = canon(slash < 0 ? value : value.slice(0, slash)) ?? header;
    if (slash >= 0) body = canon(value.slice(slash + 1)) ?? body;
  }
  return { header, body };
}

function canon(word: string): "simple" | "relaxed" | undefined {
  const w = asciiLower(word.trim());
  return w === "simple" || w === "relaxed" ? w : undefined;
}
