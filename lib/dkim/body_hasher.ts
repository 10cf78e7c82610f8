/**
 * Body hashes for every signature of a message in one pass: one canonicalizer per
 * canonicalization, and one incremental hash per distinct (canonicalization, hash algorithm,
 * `l=`) among the signatures (RFC 6376 §3.7).
 *
 * @module
 */
import { createIncrementalHash, type HashAlgorithm, type IncrementalHash } from "../crypto/hash.ts";
import { BodyCanonicalizer } from "./canon_body.ts";
import type { Canonicalization } from "./canon_header.ts";

/** What a body hash is computed over. */
export interface BodyHashSpec {
  /** Body canonicalization (`c=` after the slash). */
  readonly canonicalization: Canonicalization;
  /** Hash algorithm (from `a=`). */
  readonly algorithm: HashAlgorithm;
  /** Hash only this many canonical bytes (`l=`, RFC 6376 §3.5); the whole body when absent. */
  readonly length?: number;
}

/** A finished body hash. */
export interface BodyHashResult {
  /** The digest (the `bh=` value, decoded). */
  readonly hash: Uint8Array;
  /** The length of the whole canonical body, whatever `l=` said: to check `l=` against it. */
  readonly canonicalLength: number;
}

interface HashEntry {
  readonly hash: IncrementalHash;
  readonly limit: number; // Infinity without l=
  hashed: number;
  result?: Uint8Array;
}

interface Group {
  readonly canon: BodyCanonicalizer;
  readonly entries: HashEntry[];
  readonly sink: (bytes: Uint8Array) => void;
  total: number;
}

function keyOf(spec: BodyHashSpec): string {
  return `${spec.canonicalization}/${spec.algorithm}/${spec.length ?? ""}`;
}

/**
 * Computes the body hashes of several specs over one stream of body chunks, canonicalizing the
 * body once per canonicalization and hashing it once per distinct spec. Memory is constant
 * whatever the body size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BodyHashes } from "./body_hasher.ts";
 * import { toBase64, utf8 } from "../bytes.ts";
 * const hashes = new BodyHashes();
 * const spec = { canonicalization: "relaxed", algorithm: "sha256" } as const;
 * hashes.add(spec);
 * hashes.push(utf8(""));
 * hashes.finish();
 * // RFC 6376 §3.4.4: the relaxed canonical form of an empty body is empty.
 * assert.equal(toBase64(hashes.result(spec).hash), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
 * ```
 */
export class BodyHashes {
  #groups = new Map<Canonicalization, Group>();
  #entries = new Map<string, { group: Group; entry: HashEntry }>();
  #finished = false;

  /** Registers a spec (before the first chunk); registering the same spec twice is free. */
  add(spec: BodyHashSpec): void {
    const key = keyOf(spec);
    if (this.#entries.has(key)) return;
    if (this.#finished) throw new Error("BodyHashes.add() called after finish()");
    let group = this.#groups.get(spec.canonicalization);
    if (!group) {
      group = makeGroup(spec.canonicalization);
      this.#groups.set(spec.canonicalization, group);
    }
    const entry: HashEntry = {
      hash: createIncrementalHash(spec.algorithm),
      limit: spec.length ?? Infinity,
      hashed: 0,
    };
    group.entries.push(entry);
    this.#entries.set(key, { group, entry });
  }

  /** True when `spec` is registered, so adding it again costs no extra hash. */
  has(spec: BodyHashSpec): boolean {
    return this.#entries.has(keyOf(spec));
  }

  /** The number of distinct hashes being computed. */
  get size(): number {
    return this.#entries.size;
  }

  /** Feeds the next body chunk to every hash. */
  push(chunk: Uint8Array): void {
    for (const group of this.#groups.values()) group.canon.push(chunk, group.sink);
  }

  /** Ends the body and computes every digest. */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    for (const group of this.#groups.values()) {
      group.canon.finish(group.sink);
      for (const entry of group.entries) entry.result = entry.hash.digest();
    }
  }

  /** The result for a registered spec, after {@link BodyHashes.finish}. */
  result(spec: BodyHashSpec): BodyHashResult {
    const found = this.#entries.get(keyOf(spec));
    if (!found?.entry.result) {
      throw new Error(`No finished body hash for "${keyOf(spec)}"`);
    }
    return { hash: found.entry.result, canonicalLength: found.group.total };
  }
}

function makeGroup(canonicalization: Canonicalization): Group {
  const entries: HashEntry[] = [];
  const group: Group = {
    canon: new BodyCanonicalizer(canonicalization),
    entries,
    total: 0,
    sink: (bytes) => {
      group.total += bytes.length;
      for (const entry of entries) {
        const room = entry.limit - entry.hashed;
        if (room <= 0) continue;
        const piece = room >= bytes.length ? bytes : bytes.subarray(0, room);
        entry.hash.update(piece);
        entry.hashed += piece.length;
      }
    },
  };
  return group;
}
