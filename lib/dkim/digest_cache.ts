/**
 * A least-recently-used map for what is derived from DNS text (parsed key records, imported
 * keys), keyed by the SHA-256 of the text rather than by the text, and bounded in entries and in
 * bytes: a sender chooses the selector, so the records a verifier meets are chosen by whoever
 * sends it mail, and each may be as large as `DNSMaxAnswerBytes`.
 *
 * @module
 */
import { toBase64, utf8 } from "../bytes.ts";
import { digest } from "../crypto/hash.ts";

/**
 * The key of `text` in a {@link DigestCache}: its SHA-256 (of the UTF-8 bytes, which for DNS text,
 * one byte per character, tells every text apart), in base64: 44 characters whatever the text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { textDigest } from "./digest_cache.ts";
 * assert.equal(textDigest("v=DKIM1; p=" + "A".repeat(8000)).length, 44);
 * assert.notEqual(textDigest("a"), textDigest("b"));
 * ```
 */
export function textDigest(text: string): string {
  return toBase64(digest("sha256", utf8(text)));
}

interface Entry<V> {
  readonly value: V;
  bytes: number;
}

/**
 * A map from {@link textDigest} keys (or the text itself, where the value holds the text anyway,
 * as a parsed key record does) to values, each charged an estimate of the memory it holds;
 * the least recently used go first when there are more than `maxEntries`, or the charges add up
 * to more than `maxBytes`. The newest entry always stays, whatever it costs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DigestCache, textDigest } from "./digest_cache.ts";
 * const cache = new DigestCache<string>(100, 1000);
 * cache.set(textDigest("a"), "A", 600);
 * cache.set(textDigest("b"), "B", 600); // 1200 bytes: "a", the oldest, goes
 * assert.equal(cache.get(textDigest("a")), undefined);
 * assert.equal(cache.get(textDigest("b")), "B");
 * assert.equal(cache.bytes, 600);
 * ```
 */
export class DigestCache<V> {
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  /** Insertion order is recency order: a hit moves its entry to the end. */
  readonly #map = new Map<string, Entry<V>>();
  #bytes = 0;

  /** Makes a cache of at most `maxEntries` entries (at least 1) and `maxBytes` bytes. */
  constructor(maxEntries: number, maxBytes: number) {
    this.#maxEntries = Math.max(1, maxEntries);
    this.#maxBytes = Math.max(0, maxBytes);
  }

  /** How many entries are held. */
  get size(): number {
    return this.#map.size;
  }

  /** The sum of the entries' charges. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The value at `key`, now the most recently used; undefined when absent. */
  get(key: string): V | undefined {
    const entry = this.#map.get(key);
    if (!entry) return undefined;
    this.#map.delete(key);
    this.#map.set(key, entry);
    return entry.value;
  }

  /** Stores `value` at `key`, charged `bytes`, and evicts the oldest entries past the bounds. */
  set(key: string, value: V, bytes: number): void {
    this.#remove(key);
    this.#map.set(key, { value, bytes });
    this.#bytes += bytes;
    this.#evict();
  }

  /**
   * Adds `bytes` to the charge of `key` while it still holds `value` (a size learnt later, as an
   * imported key's), then evicts past the bounds.
   */
  charge(key: string, value: V, bytes: number): void {
    const entry = this.#map.get(key);
    if (entry?.value !== value) return;
    entry.bytes += bytes;
    this.#bytes += bytes;
    this.#evict();
  }

  /** Removes `key` when it still holds `value`. */
  delete(key: string, value: V): void {
    if (this.#map.get(key)?.value === value) this.#remove(key);
  }

  #remove(key: string): void {
    const entry = this.#map.get(key);
    if (!entry) return;
    this.#map.delete(key);
    this.#bytes -= entry.bytes;
  }

  #evict(): void {
    while (
      this.#map.size > 1 && (this.#map.size > this.#maxEntries || this.#bytes > this.#maxBytes)
    ) {
      this.#remove(this.#map.keys().next().value!);
    }
  }
}
