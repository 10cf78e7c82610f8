/**
 * BodyLengthDB: mail to these recipients is signed with `l=` (RFC 6376 §3.5), so a mailing
 * list's appended footer leaves the signature valid. RFC 6376 §8.2 warns why that is unsafe:
 * anyone can append content under such a signature.
 *
 * @module
 */
import type { DataSetLookup } from "../policy/data_set_lookup.ts";

/**
 * The keys OpenDKIM's `dkimf_checkbldb()` tries for one recipient, in its order: `user@domain`
 * and `*@domain` for the domain and each of its parent suffixes written with their leading dot
 * (`.example.com`, `.com`), then `user@*` and `*`. An address without `@` gives none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bodyLengthKeys } from "./body_length_recipients.ts";
 * assert.deepEqual(bodyLengthKeys("list@lists.example.com"), [
 *   "list@lists.example.com", "*@lists.example.com",
 *   "list@.example.com", "*@.example.com",
 *   "list@.com", "*@.com",
 *   "list@*", "*",
 * ]);
 * ```
 */
export function bodyLengthKeys(recipient: string): string[] {
  const at = recipient.lastIndexOf("@");
  if (at <= 0 || at === recipient.length - 1) return [];
  const user = recipient.slice(0, at);
  const domain = recipient.slice(at + 1);
  const keys: string[] = [];
  for (let p: number = 0; p !== -1; p = domain.indexOf(".", p + 1)) {
    const suffix = domain.slice(p);
    keys.push(`${user}@${suffix}`, `*@${suffix}`);
  }
  keys.push(`${user}@*`, "*");
  return keys;
}

/**
 * The first recipient (in envelope order) BodyLengthDB lists in any of the forms of
 * {@link bodyLengthKeys}, or undefined.
 */
export async function bodyLengthRecipient(
  set: DataSetLookup,
  recipients: readonly string[],
): Promise<string | undefined> {
  const keys = recipients.map(bodyLengthKeys);
  const hits = await set.lookup(keys.flat());
  let at = 0;
  for (const [i, forms] of keys.entries()) {
    if (forms.some((_, j) => hits[at + j] !== undefined)) return recipients[i];
    at += forms.length;
  }
  return undefined;
}
