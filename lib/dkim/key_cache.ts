/**
 * A bounded cache of imported public keys, so a busy verifier imports each published key once
 * rather than once per message.
 *
 * @module
 */
import { KeyError } from "../crypto/key_error.ts";
import { importPublicKey, type PublicKeyOptions, type VerifyingKey } from "../crypto/public_key.ts";
import type { KeyType } from "../crypto/key_type.ts";
import { DigestCache, textDigest } from "./digest_cache.ts";
import { DkimError } from "./dkim_error.ts";
import type { KeyRecord } from "./key_record.ts";

/** Most public keys kept: plenty for the domains a site hears from, bounded against abuse. */
export const KEY_CACHE_SIZE_DEFAULT = 1000;

/**
 * Most bytes of imported keys kept, by {@link KeyCache}'s estimate: 2 MiB, a thousand 2048-bit
 * RSA keys with room to spare, and fewer larger ones.
 */
export const KEY_CACHE_MAX_BYTES_DEFAULT = 2 * 1024 * 1024;

/**
 * What one cached key costs besides its key bytes, by estimate: the digest key, the map entry,
 * the promise, the key objects and WebCrypto's handle.
 */
const ENTRY_BYTES = 1024;

/** Imports a key record's public key, as lib/crypto's `importPublicKey` does. */
export type PublicKeyImporter = (
  type: KeyType,
  p: Uint8Array,
  options?: PublicKeyOptions,
) => Promise<VerifyingKey>;

/**
 * A least-recently-used map from a key record's text to its imported key. Imports are keyed by
 * the record text (which holds `k=` and `p=`), so a changed record is a new entry and DNS TTLs
 * stay the resolver's business; the map holds the text's SHA-256, never the text, which may be
 * kilobytes a sender chose. It is bounded in keys and in bytes: each key is charged 1 KiB and
 * twice its SubjectPublicKeyInfo (ours and WebCrypto's copy).
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
  readonly #cache: DigestCache<Promise<VerifyingKey>>;

  /** How a missing key is imported: lib/crypto's `importPublicKey` unless told otherwise. */
  readonly importPublicKey: PublicKeyImporter;

  /**
   * Makes a cache holding at most `max` keys (at least one) and about `maxBytes` bytes, which
   * imports keys with `importer` (the CryptoBackend's, lib/crypto/crypto_backend.ts).
   */
  constructor(
    max: number = KEY_CACHE_SIZE_DEFAULT,
    maxBytes = KEY_CACHE_MAX_BYTES_DEFAULT,
    importer: PublicKeyImporter = importPublicKey,
  ) {
    this.#cache = new DigestCache(max, maxBytes);
    this.importPublicKey = importer;
  }

  /** How many keys are held (imports still running included). */
  get size(): number {
    return this.#cache.size;
  }

  /** The bytes the held keys are charged, by the estimate above. */
  get bytes(): number {
    return this.#cache.bytes;
  }

  /** The key for `text`, importing it with `load` on a miss. Failed imports are not kept. */
  get(text: string, load: () => Promise<VerifyingKey>): Promise<VerifyingKey> {
    return this.getByDigest(textDigest(text), load);
  }

  /**
   * {@link KeyCache.get} for a text whose {@link textDigest} the caller has already: a key
   * record's, computed once per record by {@link importRecordKey}.
   */
  getByDigest(digest: string, load: () => Promise<VerifyingKey>): Promise<VerifyingKey> {
    const hit = this.#cache.get(digest);
    if (hit) return hit;
    const promise = load();
    this.#cache.set(digest, promise, ENTRY_BYTES);
    promise.then(
      (key) => this.#cache.charge(digest, promise, 2 * (key.spki?.length ?? 0)),
      () => this.#cache.delete(digest, promise),
    );
    return promise;
  }
}

// The cache key of each record's key, computed once per record: records come from the record
// cache (key_record_cache.ts), the same object for the same text, so a message signed with a
// known key costs no SHA-256 of the record text (issue 20). Weak: it goes with the record.
const recordKeyDigests = new WeakMap<KeyRecord, string>();

function recordKeyDigest(record: KeyRecord): string {
  let digest = recordKeyDigests.get(record);
  if (digest === undefined) {
    digest = textDigest(`${record.keyType}:${record.text}`);
    recordKeyDigests.set(record, digest);
  }
  return digest;
}

/**
 * The key `record` publishes, imported once through `cache` (DKIM and ARC verification share
 * it); an RSA key over `maxBits` is never imported and is a permerror. The callers check the
 * bits they allow beyond that (RFC 8301 §3.2's minimum, a site's own).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { importRecordKey, KeyCache } from "./key_cache.ts";
 * import { parseKeyRecord } from "./key_record.ts";
 * const record = parseKeyRecord("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
 * const key = await importRecordKey(new KeyCache(), record, 4096);
 * assert.equal(key.type, "ed25519");
 * ```
 */
export async function importRecordKey(
  cache: KeyCache,
  record: KeyRecord,
  maxBits: number,
): Promise<VerifyingKey> {
  try {
    return await cache.getByDigest(
      recordKeyDigest(record),
      () => cache.importPublicKey(record.keyType, record.publicKey, { maxBits }),
    );
  } catch (e) {
    if (e instanceof KeyError && e.code === "too-large") {
      throw new DkimError("permerror", `key too large (over ${maxBits} bits)`, { cause: e });
    }
    throw e;
  }
}
