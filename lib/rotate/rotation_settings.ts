/**
 * The values of the key rotation settings that need more than a number or a text: the key type
 * list of `RotationKeyTypes`, and the longest time any rotation setting may name.
 *
 * @module
 */

import type { KeyType } from "../crypto/key_type.ts";

/** Longest rotation time accepted, in seconds: ten years; a longer one is a typo. */
export const MAX_ROTATION_SECONDS = 10 * 366 * 86400;

/**
 * Reads `RotationKeyTypes`: `rsa`, `ed25519`, or both, comma-separated, each once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRotationKeyTypes } from "./rotation_settings.ts";
 * assert.deepEqual(parseRotationKeyTypes("ed25519, rsa"), ["ed25519", "rsa"]);
 * assert.throws(() => parseRotationKeyTypes("dsa"), /"dsa" is not a key type: expected rsa or ed25519/);
 * ```
 */
export function parseRotationKeyTypes(text: string): KeyType[] {
  const out: KeyType[] = [];
  for (const item of text.split(",").map((t) => t.trim().toLowerCase())) {
    if (item !== "rsa" && item !== "ed25519") {
      throw new SyntaxError(`"${item}" is not a key type: expected rsa or ed25519`);
    }
    if (out.includes(item)) throw new SyntaxError(`"${item}" is listed twice`);
    out.push(item);
  }
  return out;
}
