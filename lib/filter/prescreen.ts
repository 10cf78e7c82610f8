/**
 * Which of a message's signatures are verified: OpenDKIM's prescreen (`dkimf_prescreen()` in
 * opendkim.c), run at end of headers before any key is looked up, with MaximumSignaturesToVerify
 * and TrustSignaturesFrom.
 *
 * @module
 */

/** One DKIM-Signature field as the prescreen sees it. */
export interface ScreenedSignature {
  /** Its `d=`, lower case; undefined when the field has none it can read. */
  readonly domain?: string;
  /** Whether `d=` is in TrustSignaturesFrom. */
  readonly trusted: boolean;
}

/**
 * The indexes (among the signatures, top down) of the signatures to ignore, as OpenDKIM's
 * prescreen chooses them:
 * - with a limit (`max` > 0), every trusted signature is kept and counts against the limit (it
 *   may use it up, or exceed it: opendkim.conf(5)), then the others from the top while any of the
 *   limit is left;
 * - with `max` 0, only first-party signatures (`d=` is the author's domain, `authorDomain`) and
 *   trusted ones are kept, however many.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { prescreenSignatures } from "./prescreen.ts";
 * const sigs = [
 *   { domain: "list.example", trusted: false },
 *   { domain: "relay.example", trusted: false },
 *   { domain: "friend.example", trusted: true },
 * ];
 * assert.deepEqual([...prescreenSignatures(sigs, 1, "author.example")], [0, 1]);
 * assert.deepEqual([...prescreenSignatures(sigs, 2, "author.example")], [1]);
 * assert.deepEqual([...prescreenSignatures(sigs, 0, "list.example")], [1]);
 * ```
 */
export function prescreenSignatures(
  signatures: readonly ScreenedSignature[],
  max: number,
  authorDomain: string | undefined,
): Set<number> {
  const ignored = new Set<number>();
  if (max > 0) {
    let left = max - signatures.filter((s) => s.trusted).length;
    signatures.forEach((s, i) => {
      if (s.trusted) return;
      if (left > 0) left--;
      else ignored.add(i);
    });
    return ignored;
  }
  signatures.forEach((s, i) => {
    const firstParty = s.domain !== undefined && s.domain === authorDomain;
    if (!firstParty && !s.trusted) ignored.add(i);
  });
  return ignored;
}
