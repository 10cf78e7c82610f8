/**
 * New selectors from `RotationSelectorFormat`: a strftime-like pattern (UTC) with `%k` for the
 * key type, made unique by a suffix, so a selector is never reused: a receiver's cache or an
 * archive could otherwise verify old mail against a new key.
 *
 * @module
 */

import type { KeyType } from "../crypto/key_type.ts";

/** A selector is one DNS label (RFC 6376 §3.1): letters, digits, hyphens, at most 63. */
const SELECTOR = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Formats `format` at `date` (UTC): `%Y` year, `%m` month, `%d` day, `%H` hour, `%M` minute,
 * `%k` the key type (`rsa`, `ed25519`), `%%` a percent sign. When the result is in `taken`, a
 * suffix `-2`, `-3`... makes it unique. Throws `SyntaxError` for an unknown `%` code or a result
 * that is not a selector.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { newSelector } from "./selector.ts";
 * const date = new Date("2026-12-07T10:00:00Z");
 * assert.equal(newSelector("%Y%m-%k", date, "rsa", new Set()), "202612-rsa");
 * assert.equal(newSelector("%Y%m-%k", date, "rsa", new Set(["202612-rsa"])), "202612-rsa-2");
 * assert.throws(() => newSelector("%Q", date, "rsa", new Set()), SyntaxError);
 * ```
 */
export function newSelector(
  format: string,
  date: Date,
  keyType: KeyType,
  taken: ReadonlySet<string>,
): string {
  const two = (n: number) => String(n).padStart(2, "0");
  const codes: Record<string, string> = {
    Y: String(date.getUTCFullYear()),
    m: two(date.getUTCMonth() + 1),
    d: two(date.getUTCDate()),
    H: two(date.getUTCHours()),
    M: two(date.getUTCMinutes()),
    k: keyType,
    "%": "%",
  };
  const base = format.replace(/%(.?)/g, (_, code: string) => {
    const value = codes[code];
    if (value === undefined) {
      throw new SyntaxError(
        `Cannot use RotationSelectorFormat "${format}": unknown code "%${code}" (known: %Y %m %d %H %M %k %%)`,
      );
    }
    return value;
  }).toLowerCase();
  if (!SELECTOR.test(base) || base.length > 60) {
    throw new SyntaxError(
      `Cannot use RotationSelectorFormat "${format}": "${base}" is not a selector (letters, digits and hyphens)`,
    );
  }
  let selector = base;
  for (let n = 2; taken.has(selector); n++) selector = `${base}-${n}`;
  return selector;
}
