/**
 * Incremental hashing for DKIM body and header hashes (RFC 6376 §3.7) through `node:crypto`
 * `createHash`, which streams: WebCrypto's `digest` needs all the data at once, and a body must
 * never be held whole (DESIGN.md, "One pass, streaming").
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";

/** The hash algorithms DKIM names: `sha256` (RFC 6376 §3.3) and `sha1` (verify only, RFC 8301). */
export type HashAlgorithm = "sha256" | "sha1";

/**
 * Every {@link HashAlgorithm}, as `h=` lists them (RFC 6376 §3.6.1): a name outside this list
 * is one verifiers ignore.
 */
export const HASH_ALGORITHMS: readonly HashAlgorithm[] = ["sha1", "sha256"];

/**
 * True when `name` (lower case) is one of {@link HASH_ALGORITHMS}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isHashAlgorithm } from "./hash.ts";
 * assert.equal(isHashAlgorithm("sha256"), true);
 * assert.equal(isHashAlgorithm("md5"), false);
 * ```
 */
export function isHashAlgorithm(name: string): name is HashAlgorithm {
  return (HASH_ALGORITHMS as readonly string[]).includes(name);
}

/** Digest length in bytes of each {@link HashAlgorithm}. */
export const HASH_LENGTH: Readonly<Record<HashAlgorithm, number>> = { sha256: 32, sha1: 20 };

/** A hash fed in pieces; {@link IncrementalHash.digest} ends it. */
export interface IncrementalHash {
  /** Adds bytes. Throws a `TypeError` after {@link IncrementalHash.digest}. */
  update(data: Uint8Array): void;
  /** Returns the digest of everything added; call it once. */
  digest(): Uint8Array;
}

function toBytes(buffer: Uint8Array): Uint8Array {
  // A node Buffer is a Uint8Array subclass that may view a shared pool: copy into a plain,
  // owned Uint8Array so deepEqual and `.buffer` behave as for any other digest.
  return new Uint8Array(buffer);
}

class NodeIncrementalHash implements IncrementalHash {
  readonly #algorithm: HashAlgorithm;
  #hash: Hash | undefined;

  constructor(algorithm: HashAlgorithm) {
    this.#algorithm = algorithm;
    this.#hash = createHash(algorithm);
  }

  update(data: Uint8Array): void {
    if (this.#hash === undefined) {
      throw new TypeError(`Cannot update a "${this.#algorithm}" hash after digest()`);
    }
    this.#hash.update(data);
  }

  digest(): Uint8Array {
    if (this.#hash === undefined) {
      throw new TypeError(`Cannot digest a "${this.#algorithm}" hash twice`);
    }
    const out = toBytes(this.#hash.digest());
    this.#hash = undefined;
    return out;
  }
}

function checkAlgorithm(algorithm: HashAlgorithm): void {
  if (algorithm !== "sha256" && algorithm !== "sha1") {
    throw new TypeError(`Cannot hash with "${algorithm}": expected "sha256" or "sha1"`);
  }
}

/**
 * Starts an incremental hash. Feeding the data in any split gives the same digest as
 * {@link digest} over all of it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createIncrementalHash, digest } from "./hash.ts";
 * const h = createIncrementalHash("sha256");
 * h.update(new TextEncoder().encode("ab"));
 * h.update(new TextEncoder().encode("c"));
 * assert.deepEqual(h.digest(), digest("sha256", new TextEncoder().encode("abc")));
 * ```
 */
export function createIncrementalHash(algorithm: HashAlgorithm): IncrementalHash {
  checkAlgorithm(algorithm);
  return new NodeIncrementalHash(algorithm);
}

/**
 * Hashes `data` in one call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { digest } from "./hash.ts";
 * // RFC 6376 §3.4.4: the "simple" canonical form of an empty body is one CRLF.
 * const bh = btoa(String.fromCharCode(...digest("sha256", Uint8Array.of(13, 10))));
 * assert.equal(bh, "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
 * ```
 */
export function digest(algorithm: HashAlgorithm, data: Uint8Array): Uint8Array {
  checkAlgorithm(algorithm);
  return toBytes(createHash(algorithm).update(data).digest());
}
