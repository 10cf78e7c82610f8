/**
 * Verifying an ARC chain (RFC 8617 §5.2): `arc=none|pass|fail` with a reason, for a message given
 * as header fields and streamed body chunks, on top of dkimd's DKIM core (the same
 * canonicalizers, body hashers, key record parsing, key cache and resolver).
 *
 * @module
 */
import { equals } from "../bytes.ts";
import { MIN_RSA_BITS } from "../crypto/key_type.ts";
import { MAX_RSA_BITS_DEFAULT, type VerifyingKey } from "../crypto/public_key.ts";
import type { TxtResolver } from "../dns/resolver.ts";
import { BodyHashes, type BodyHashSpec } from "../dkim/body_hasher.ts";
import { DkimError } from "../dkim/dkim_error.ts";
import { type HeaderField, selectHeaders, splitMessage } from "../dkim/header.ts";
import { importRecordKey, KeyCache } from "../dkim/key_cache.ts";
import { keyAllowsHash, type KeyRecord, keyRecordName } from "../dkim/key_record.ts";
import { resultOf } from "../dkim/result.ts";
import { headerHashInput } from "../dkim/sign.ts";
import type { SigningAlgorithm } from "../dkim/signature.ts";
import { withoutSignatureValue } from "../dkim/signature.ts";
import { KeyLookups } from "../dkim/key_lookups.ts";
import {
  CLOCK_DRIFT_DEFAULT,
  MAX_BODY_HASHES_DEFAULT,
  MINIMUM_KEY_BITS_DEFAULT,
} from "../dkim/verify.ts";
import {
  type ArcMessageSignature,
  type ArcSet,
  ArcSyntaxError,
  collectArcSets,
} from "./arc_set.ts";

/** The outcome of ARC chain validation (RFC 8617 §5.2, §8.1's `arc=` method results). */
export type ArcResult = "none" | "pass" | "fail";

/** What verifying a message's ARC chain found. */
export interface ArcVerdict {
  /** `none` (no ARC sets), `pass` or `fail`. */
  readonly result: ArcResult;
  /** How many ARC sets the message carries (0 for `none`, or when they could not be grouped). */
  readonly instances: number;
  /** Why the chain failed (or, for `none`, that there is none); absent on `pass`. */
  readonly reason?: string;
  /**
   * RFC 8617 §5.2 step 5: on `pass`, the lowest instance from which every AMS up to the newest
   * still verifies; 0 when all of them do (A-R `header.oldest-pass`).
   */
  readonly oldestPass?: number;
  /**
   * True when a failure came from a key lookup that may succeed later (DNS timeout or server
   * failure), so a caller can tell it from a broken chain.
   */
  readonly temporary?: boolean;
  /** The ARC sets, in instance order (empty when there are none or they are malformed). */
  readonly sets: readonly ArcSet[];
}

/** How to verify an ARC chain: the same knobs as DKIM verification, where they apply. */
export interface ArcVerifyOptions {
  /** Where key records come from. */
  readonly resolver: TxtResolver;
  /** RSA keys below this many bits fail the chain (default 1024, RFC 8301 §3.2). */
  readonly minimumKeyBits?: number;
  /** RSA keys above this many bits are never imported and fail the chain (default 4096). */
  readonly maximumKeyBits?: number;
  /**
   * Compute at most this many distinct body hashes (default 8): the newest AMS always gets one;
   * older AMSs past the limit are not checked for `oldest-pass`.
   */
  readonly maxBodyHashes?: number;
  /** A cache of imported keys shared between messages (and with DKIM). */
  readonly keyCache?: KeyCache;
  /** Aborts pending key lookups. */
  readonly signal?: AbortSignal;
  /** The clock, seconds since the epoch (default: the system clock), for `t=` and `x=`. */
  readonly now?: () => number;
  /**
   * Seconds of clock difference allowed for `t=` and `x=` (default 300, OpenDKIM's ClockDrift),
   * as for DKIM signatures.
   */
  readonly clockDrift?: number;
}

/** The A-R reason of a failure, and whether it may pass later. */
class ChainFailure extends Error {
  readonly temporary: boolean;
  constructor(message: string, temporary = false) {
    super(message);
    this.name = "ChainFailure";
    this.temporary = temporary;
  }
}

function specOf(ams: ArcMessageSignature): BodyHashSpec {
  return {
    canonicalization: ams.bodyCanonicalization,
    algorithm: ams.algorithm.hash,
    length: ams.length,
  };
}

/**
 * Verifies the ARC chain of one message: `headers()`, then `body()` for each chunk, then
 * `finish()`, which resolves to one {@link ArcVerdict}. Follows RFC 8617 §5.2: a newest seal
 * saying `cv=fail` fails at once; the structure (one of each field per instance, 1..N, `cv=none`
 * only at 1 and `pass` above) is checked before any key is asked for; then the newest AMS is
 * verified as a DKIM signature, then every seal from N down to 1 over the sets up to its own.
 * Key lookups start at `headers()` and run while the body streams.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ArcVerifier } from "./verify.ts";
 * import { splitMessage } from "../dkim/header.ts";
 * import { utf8 } from "../bytes.ts";
 * const message = utf8("From: a@example.com\r\n\r\nHello\r\n");
 * const { fields, bodyOffset } = splitMessage(message);
 * const verifier = new ArcVerifier({ resolver: { resolveTxt: () => Promise.resolve([]) } });
 * verifier.headers(fields);
 * verifier.body(message.subarray(bodyOffset));
 * const verdict = await verifier.finish();
 * assert.equal(verdict.result, "none");
 * ```
 */
export class ArcVerifier {
  readonly #options: ArcVerifyOptions;
  readonly #hashes = new BodyHashes();
  readonly #abort = new AbortController();
  readonly #keyLookups: KeyLookups;
  readonly #keyCache: KeyCache;
  #fields: readonly HeaderField[] = [];
  #sets: ArcSet[] = [];
  #early?: ArcVerdict;
  /** Older AMSs (newest first) whose body hash is being computed, for `oldest-pass`. */
  #olderHashed = 0;

  /** Makes a verifier for one message. */
  constructor(options: ArcVerifyOptions) {
    this.#options = options;
    this.#keyCache = options.keyCache ?? new KeyCache();
    options.signal?.addEventListener("abort", () => this.#abort.abort(), { once: true });
    this.#keyLookups = new KeyLookups(options.resolver, this.#abort.signal);
  }

  /** Gives the message's header fields in message order; checks the chain's structure. */
  headers(fields: readonly HeaderField[]): void {
    this.#fields = fields;
    let sets: ArcSet[];
    try {
      sets = collectArcSets(fields);
    } catch (e) {
      if (!(e instanceof ArcSyntaxError)) throw e;
      this.#early = { result: "fail", instances: 0, reason: e.message, sets: [] };
      return;
    }
    const n = sets.length;
    if (n === 0) {
      this.#early = { result: "none", instances: 0, reason: "no ARC sets", sets };
      return;
    }
    // §5.2 step 2: the newest seal already says the chain failed; nothing more to check.
    if (sets[n - 1].seal.cv === "fail") {
      this.#early = {
        result: "fail",
        instances: n,
        reason: `ARC-Seal i=${n} says cv=fail`,
        sets,
      };
      return;
    }
    // §5.2 step 3 (§4.1.3): cv=none belongs to the first set only; every later one says pass.
    for (const set of sets) {
      const want = set.instance === 1 ? "none" : "pass";
      if (set.seal.cv !== want) {
        this.#early = {
          result: "fail",
          instances: n,
          reason: `ARC-Seal i=${set.instance} has cv=${set.seal.cv}, not ${want}`,
          sets,
        };
        return;
      }
    }
    this.#sets = sets;
    const maxHashes = Math.max(1, this.#options.maxBodyHashes ?? MAX_BODY_HASHES_DEFAULT);
    this.#hashes.add(specOf(sets[n - 1].ams));
    for (let i = n - 2; i >= 0; i--) {
      const spec = specOf(sets[i].ams);
      if (!this.#hashes.has(spec) && this.#hashes.size >= maxHashes) break;
      this.#hashes.add(spec);
      this.#olderHashed++;
    }
    this.#lookup(sets[n - 1].ams);
    for (let i = n - 1; i >= 0; i--) this.#lookup(sets[i].seal);
  }

  /** True when the body must be fed (false: no chain to verify, the body can be skipped). */
  get needsBody(): boolean {
    return this.#hashes.size > 0;
  }

  /** Feeds the next body chunk. */
  body(chunk: Uint8Array): void {
    if (this.#hashes.size > 0) this.#hashes.push(chunk);
  }

  /** Cancels pending key lookups (the transaction was aborted). */
  abort(): void {
    this.#abort.abort();
  }

  /** Ends the message and resolves to the chain's verdict. */
  async finish(): Promise<ArcVerdict> {
    if (this.#early) return this.#early;
    this.#hashes.finish();
    const sets = this.#sets;
    const n = sets.length;
    try {
      // §5.2 step 4: the newest AMS must verify.
      const newest = await this.#verifyAms(sets[n - 1].ams);
      if (newest !== undefined) {
        throw new ChainFailure(`ARC-Message-Signature i=${n} ${newest.reason}`, newest.temporary);
      }
      // §5.2 step 6: every seal, newest first.
      for (let i = n - 1; i >= 0; i--) await this.#verifySeal(i);
    } catch (e) {
      if (!(e instanceof ChainFailure)) throw e;
      return {
        result: "fail",
        instances: n,
        reason: e.message,
        sets,
        ...(e.temporary ? { temporary: true } : {}),
      };
    }
    return { result: "pass", instances: n, oldestPass: await this.#oldestPass(), sets };
  }

  // §5.2 step 5: walk the older AMSs down from N-1 while they verify.
  async #oldestPass(): Promise<number> {
    const sets = this.#sets;
    const n = sets.length;
    for (let i = n - 2; i >= n - 1 - this.#olderHashed; i--) {
      const ams = sets[i].ams;
      this.#lookup(ams);
      if ((await this.#verifyAms(ams)) !== undefined) return i + 2;
    }
    // Past the body-hash limit nothing more is known: the lowest checked instance is the claim.
    return this.#olderHashed === n - 1 ? 0 : n - this.#olderHashed;
  }

  /** Undefined when the AMS verifies; else why not. */
  async #verifyAms(
    ams: ArcMessageSignature,
  ): Promise<{ reason: string; temporary: boolean } | undefined> {
    // An AMS has a DKIM-Signature's tags (RFC 8617 §4.1.2), and a verifier may consider one past
    // its x= invalid (RFC 6376 §3.5), as DKIM verification here does; dkimpy and Mail::DKIM fail
    // an expired AMS too. A t= in the future is refused as DKIM refuses it.
    const now = this.#options.now?.() ?? Date.now() / 1000;
    const drift = this.#options.clockDrift ?? CLOCK_DRIFT_DEFAULT;
    if (ams.expiration !== undefined && ams.expiration + drift < now) {
      return { reason: "signature expired", temporary: false };
    }
    if (ams.timestamp !== undefined && ams.timestamp - drift > now) {
      return { reason: "signature timestamp in the future", temporary: false };
    }
    try {
      const key = await this.#key(ams.algorithm, ams.domain, ams.selector);
      const body = this.#hashes.result(specOf(ams));
      if (ams.length !== undefined && ams.length > body.canonicalLength) {
        return { reason: "l= exceeds the body length", temporary: false };
      }
      if (!equals(body.hash, ams.bodyHash)) {
        return { reason: "body hash did not verify", temporary: false };
      }
      const data = headerHashInput(
        selectHeaders(this.#fields, ams.headers),
        withoutSignatureValue(ams.field),
        ams.headerCanonicalization,
      );
      if (!(await key.verify(ams.algorithm.hash, data, ams.signature))) {
        return { reason: "signature did not verify", temporary: false };
      }
      return undefined;
    } catch (e) {
      const { result, reason } = resultOf(e);
      return { reason, temporary: result === "temperror" };
    }
  }

  async #verifySeal(index: number): Promise<void> {
    const sets = this.#sets;
    const seal = sets[index].seal;
    // RFC 8617 §5.1.1: the sets 1..i in instance order, AAR, AMS, AS each; the seal's own b=
    // emptied and last. ARC-Seal is always relaxed (§4.1.3).
    const signed: HeaderField[] = [];
    for (let k = 0; k < index; k++) {
      signed.push(sets[k].aar.field, sets[k].ams.field, sets[k].seal.field);
    }
    signed.push(sets[index].aar.field, sets[index].ams.field);
    // An ARC-Seal has t= but no x= (RFC 8617 §4.1.3): only a seal made in the future is refused.
    const now = this.#options.now?.() ?? Date.now() / 1000;
    const drift = this.#options.clockDrift ?? CLOCK_DRIFT_DEFAULT;
    if (seal.timestamp !== undefined && seal.timestamp - drift > now) {
      throw new ChainFailure(`ARC-Seal i=${seal.instance} timestamp in the future`);
    }
    let ok: boolean;
    try {
      const key = await this.#key(seal.algorithm, seal.domain, seal.selector);
      const data = headerHashInput(signed, withoutSignatureValue(seal.field), "relaxed");
      ok = await key.verify(seal.algorithm.hash, data, seal.signature);
    } catch (e) {
      const { result, reason } = resultOf(e);
      throw new ChainFailure(`ARC-Seal i=${seal.instance} ${reason}`, result === "temperror");
    }
    if (!ok) throw new ChainFailure(`ARC-Seal i=${seal.instance} did not verify`);
  }

  #lookup(sig: { domain: string; selector: string }): Promise<KeyRecord> {
    return this.#keyLookups.get(keyRecordName(sig.selector, sig.domain));
  }

  // The key checks of DKIM verification (RFC 6376 §6.1.2, RFC 8301), for ARC's signatures.
  async #key(
    algorithm: SigningAlgorithm,
    domain: string,
    selector: string,
  ): Promise<VerifyingKey> {
    const record = await this.#lookup({ domain, selector });
    if (record.publicKey.length === 0) throw new DkimError("permerror", "key revoked");
    if (record.keyType !== algorithm.keyType) {
      throw new DkimError(
        "permerror",
        `key type mismatch (k=${record.keyType}, a=${algorithm.name})`,
      );
    }
    if (!keyAllowsHash(record, algorithm.hash)) {
      throw new DkimError("permerror", `key does not allow hash "${algorithm.hash}" (h=)`);
    }
    const maxBits = this.#options.maximumKeyBits ?? MAX_RSA_BITS_DEFAULT;
    const key = await importRecordKey(this.#keyCache, record, maxBits);
    if (key.type === "rsa") {
      const min = Math.max(MIN_RSA_BITS, this.#options.minimumKeyBits ?? MINIMUM_KEY_BITS_DEFAULT);
      if (key.bits > maxBits) throw new DkimError("permerror", `key too large (${key.bits} bits)`);
      if (key.bits < min) {
        throw new DkimError("permerror", `key too small (${key.bits} bits, minimum ${min})`);
      }
    }
    return key;
  }
}

/**
 * Verifies the ARC chain of a whole message held in memory. For the command line and tests; the
 * milter streams instead.
 */
export async function verifyArcMessage(
  message: Uint8Array,
  options: ArcVerifyOptions,
): Promise<ArcVerdict> {
  const { fields, bodyOffset } = splitMessage(message);
  const verifier = new ArcVerifier(options);
  verifier.headers(fields);
  verifier.body(message.subarray(bodyOffset));
  return await verifier.finish();
}
