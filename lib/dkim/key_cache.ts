/**
 * A bounded cache of imported public keys, so a busy verifier imports each published key once
 * rather than once per message.
 *
 * @module
 */
import type { VerifyingKey } from "../crypto/public_key.ts";

/** Most public keys kept: plenty for the domains a site hears from, bounded against abuse. */
export const KEY_CACHE_SIZE_DEFAULT = 1000;

/**
 * A least-recently-used map from a key record's text to its imported key. Imports are keyed by
 * the record text (which holds `k=` and `p=`), so a changed record is a new entry and DNS TTLs
 * stay the resolver's business.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyCache } from "./key_cache.ts";
 * const cache = new KeyCache(2);
 * let imports = 0;
 * const load = (text: string) => cache.get(text, () => { imports++; return Promise.reject(new Error(text)); });
 * await Promise.allSettled([load("a"), load("a"), load("b"), load("c"), load("a")]);
 * assert.equal(imports, 4); // "a" was evicted by "b" and "c", then imported again
 * ```
 */
export class KeyCache {
  readonly #max: number;
  readonly #map = new Map<string, Promise<VerifyingKey>>();

  /** Makes a cache holding at most `max` keys. */
  constructor(max: number = KEY_CACHE_SIZE_DEFAULT) {
    this.#max = Math.max(1, max);
  }

  /** The key for `text`, importing it with `load` on a miss. Failed imports are not kept. */
  get(text: string, load: () => Promise<VerifyingKey>): Promise<VerifyingKey> {
    const hit = this.#map.get(text);
    if (hit) {
      this.#map.delete(text);
      this.#map.set(text, hit);
      return hit;
    }
    const promise = load();
    this.#map.set(text, promise);
    promise.catch(() => {
      if (this.#map.get(text) === promise) this.#map.delete(text);
    });
    if (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next().value;
      if (oldest !== undefined) this.#map.delete(oldest);
    }
    return promise;
  }
}
