/**
 * Key records parsed, by their text: the same few keys sign most mail, and parsing one (its
 * base64 public key included) costs more than looking it up. Keyed by the text itself, not its
 * SHA-256 as the key cache is: the record holds its text anyway (and is charged for it), so the
 * key costs no memory, and a hit costs no hash of the text, which was one SHA-256 per signature
 * verified (issue 20).
 *
 * @module
 */
import { DigestCache } from "./digest_cache.ts";
import { type KeyRecord, parseKeyRecord } from "./key_record.ts";

/** Most parsed key records kept: as many as imported keys (`KEY_CACHE_SIZE_DEFAULT`). */
export const KEY_RECORD_CACHE_SIZE_DEFAULT = 1000;

/**
 * Most bytes of parsed key records kept: 2 MiB, a thousand ordinary records (about 400 bytes for
 * a 2048-bit RSA key), or 250 of the largest `DNSMaxAnswerBytes` allows by default.
 */
export const KEY_RECORD_CACHE_MAX_BYTES_DEFAULT = 2 * 1024 * 1024;

/** What one parsed record costs besides its text and key bytes, by estimate. */
const ENTRY_BYTES = 512;

/**
 * {@link parseKeyRecord} with a memory: a record parsed before is returned again (records are
 * never changed once parsed). Only records that parse are kept, each charged its text, its
 * decoded key and 512 bytes, least recently used first out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyRecordCache } from "./key_record_cache.ts";
 * const cache = new KeyRecordCache();
 * const text = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
 * assert.equal(cache.parse(text), cache.parse(text));
 * assert.throws(() => cache.parse("v=DKIM2; p=AAAA"));
 * ```
 */
export class KeyRecordCache {
  readonly #cache: DigestCache<KeyRecord>;

  /** Makes a cache of at most `max` records and `maxBytes` bytes. */
  constructor(
    max = KEY_RECORD_CACHE_SIZE_DEFAULT,
    maxBytes = KEY_RECORD_CACHE_MAX_BYTES_DEFAULT,
  ) {
    this.#cache = new DigestCache(max, maxBytes);
  }

  /** How many records are held. */
  get size(): number {
    return this.#cache.size;
  }

  /** The bytes the held records are charged. */
  get bytes(): number {
    return this.#cache.bytes;
  }

  /** The record `text` holds; throws as {@link parseKeyRecord} does. */
  parse(text: string): KeyRecord {
    const known = this.#cache.get(text);
    if (known) return known;
    const record = parseKeyRecord(text);
    this.#cache.set(record.text, record, text.length + record.publicKey.length + ENTRY_BYTES);
    return record;
  }
}
