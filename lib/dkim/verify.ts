/**
 * Verifying: a result for every DKIM-Signature field of a message given as header fields and
 * streamed body chunks (RFC 6376 §6, RFC 8463, RFC 8301).
 *
 * Key lookups start as soon as the header fields are known and run while the body streams, so
 * DNS latency hides behind the body (DESIGN.md, "Latency hides behind the body").
 *
 * @module
 */
import { MIN_RSA_BITS } from "../crypto/key_type.ts";
import { asciiLower, equals } from "../bytes.ts";
import { MAX_RSA_BITS_DEFAULT, type VerifyingKey } from "../crypto/public_key.ts";
import type { TxtResolver } from "../dns/resolver.ts";
import { type AcceptanceOptions, refusalOf } from "./acceptance.ts";
import { applyKeySecurity, type KeySecurityOptions } from "./key_security.ts";
import { BodyHashes, type BodyHashSpec } from "./body_hasher.ts";
import { type HeaderField, isField, selectHeaders, splitMessage } from "./header.ts";
import { importRecordKey, KeyCache } from "./key_cache.ts";
import { keyAllowsHash, type KeyRecord, keyRecordName } from "./key_record.ts";
import { KeyLookups, pickKeyRecord } from "./key_lookups.ts";
import { DkimError, UnsupportedSignatureError } from "./dkim_error.ts";
import { type KeyInfo, resultOf, type Verdict } from "./result.ts";
import { headerHashInput } from "./sign.ts";
import {
  parseSignature,
  type Signature,
  SIGNATURE_FIELD,
  summarizeSignature,
  withoutSignatureValue,
} from "./signature.ts";

/** Signatures evaluated per message by default: OpenDKIM's MaximumSignaturesToVerify (3). */
export const MAX_SIGNATURES_DEFAULT = 3;
/**
 * Most signatures evaluated per message whatever `maxSignatures` says: each costs a key lookup
 * and a verification the sender chooses, and RFC 6376 §6.1 lets verifiers limit them.
 * MaximumSignaturesToVerify 0 means this ceiling, not OpenDKIM's "no limit".
 */
export const MAX_SIGNATURES_CEILING = 50;
/**
 * Most distinct body hashes computed per message by default: each distinct (`c=` body, hash,
 * `l=`) is one more pass over the body, and a sender can pick a different `l=` for every
 * signature. Real mail needs one or two.
 */
export const MAX_BODY_HASHES_DEFAULT = 8;
/** Smallest RSA key accepted by default: RFC 8301 §3.2 and OpenDKIM's MinimumKeyBits (1024). */
export const MINIMUM_KEY_BITS_DEFAULT = MIN_RSA_BITS;
/** Allowed clock difference in seconds for `t=` and `x=`: OpenDKIM's ClockDrift (300). */
export const CLOCK_DRIFT_DEFAULT = 300;

/**
 * How to verify; the {@link AcceptanceOptions} decide when a signature that verified is still
 * `policy` (acceptance.ts).
 */
export interface VerifyOptions extends AcceptanceOptions, KeySecurityOptions {
  /** Where key records come from. */
  readonly resolver: TxtResolver;
  /** The current time in seconds since the epoch (default: the system clock). */
  readonly now?: () => number;
  /**
   * Evaluate at most this many signatures, from the top (default {@link MAX_SIGNATURES_DEFAULT};
   * never more than {@link MAX_SIGNATURES_CEILING}).
   */
  readonly maxSignatures?: number;
  /**
   * Compute at most this many distinct body hashes (default {@link MAX_BODY_HASHES_DEFAULT}); a
   * signature that would need one more gets `policy` unverified.
   */
  readonly maxBodyHashes?: number;
  /** RSA keys below this many bits give `policy` (default {@link MINIMUM_KEY_BITS_DEFAULT}). */
  readonly minimumKeyBits?: number;
  /** RSA keys above this many bits give `permerror` and are never imported (default 4096). */
  readonly maximumKeyBits?: number;
  /** Accept rsa-sha1 signatures (refused by default: RFC 8301 §3.1). */
  readonly allowSha1?: boolean;
  /** Seconds of clock difference allowed for `t=` and `x=` (default {@link CLOCK_DRIFT_DEFAULT}). */
  readonly clockDrift?: number;
  /** A cache of imported keys shared between messages. */
  readonly keyCache?: KeyCache;
  /** Aborts pending key lookups. */
  readonly signal?: AbortSignal;
}

interface Candidate {
  readonly field: HeaderField;
  readonly signature?: Signature;
  readonly error?: DkimError;
  readonly spec?: BodyHashSpec;
  key?: Promise<KeyRecord>;
  keyName?: string;
}

/**
 * Verifies every DKIM-Signature of one message: `headers()`, then `body()` for each chunk, then
 * `finish()`, which resolves to one {@link Verdict} per evaluated signature in header order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Verifier } from "./verify.ts";
 * import { signMessage } from "./sign.ts";
 * import { splitMessage } from "./header.ts";
 * import { generateSigningKey } from "../crypto/private_key.ts";
 * import { concat, CRLF, toBase64, utf8 } from "../bytes.ts";
 * const key = await generateSigningKey("ed25519");
 * const message = utf8("From: a@example.com\r\n\r\nHello\r\n");
 * const [sig] = await signMessage(message, [{ domain: "example.com", selector: "s", key }]);
 * const signed = concat([sig.raw, CRLF, message]);
 * const resolver = {
 *   resolveTxt: () => Promise.resolve([`v=DKIM1; k=ed25519; p=${toBase64(key.publicKey)}`]),
 * };
 * const { fields, bodyOffset } = splitMessage(signed);
 * const verifier = new Verifier({ resolver });
 * verifier.headers(fields);
 * verifier.body(signed.subarray(bodyOffset));
 * const [verdict] = await verifier.finish();
 * assert.equal(verdict.result, "pass");
 * assert.equal(verdict.domain, "example.com");
 * ```
 */
export class Verifier {
  readonly #options: VerifyOptions;
  readonly #now: () => number;
  readonly #hashes = new BodyHashes();
  readonly #abort = new AbortController();
  readonly #keyLookups: KeyLookups;
  readonly #keyCache: KeyCache;
  #candidates: Candidate[] = [];
  #fields: readonly HeaderField[] = [];
  #overBodyHashLimit = 0;

  /** Makes a verifier for one message. */
  constructor(options: VerifyOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => Date.now() / 1000);
    this.#keyCache = options.keyCache ?? new KeyCache();
    options.signal?.addEventListener("abort", () => this.#abort.abort(), { once: true });
    this.#keyLookups = new KeyLookups(options.resolver, this.#abort.signal);
  }

  /**
   * Gives the message's header fields in message order, parses the DKIM-Signature fields among
   * them (at most `maxSignatures`, from the top) and starts their key lookups.
   */
  headers(fields: readonly HeaderField[]): void {
    this.#fields = fields;
    const max = Math.min(
      this.#options.maxSignatures ?? MAX_SIGNATURES_DEFAULT,
      MAX_SIGNATURES_CEILING,
    );
    const maxHashes = this.#options.maxBodyHashes ?? MAX_BODY_HASHES_DEFAULT;
    const now = this.#now();
    const drift = this.#options.clockDrift ?? CLOCK_DRIFT_DEFAULT;
    for (const field of fields) {
      if (!isField(field, SIGNATURE_FIELD)) continue;
      if (this.#candidates.length >= max) break;
      let signature: Signature | undefined;
      try {
        signature = parseSignature(field);
        this.#precheck(signature, now, drift);
      } catch (e) {
        const error = e instanceof DkimError ? e : new DkimError("permerror", String(e));
        this.#candidates.push({ field, signature, error });
        continue;
      }
      const spec: BodyHashSpec = {
        canonicalization: signature.bodyCanonicalization,
        algorithm: signature.algorithm.hash,
        length: signature.length,
      };
      if (!this.#hashes.has(spec) && this.#hashes.size >= maxHashes) {
        // Reported, not silently dropped: the reader sees a signature went unchecked, and why.
        this.#overBodyHashLimit++;
        const why = `not verified: more than ${maxHashes} distinct body hashes in the message`;
        this.#candidates.push({ field, signature, error: new DkimError("policy", why) });
        continue;
      }
      const candidate: Candidate = { field, signature, spec };
      this.#candidates.push(candidate);
      this.#hashes.add(spec);
      candidate.keyName = keyRecordName(signature.selector, signature.domain);
      candidate.key = this.#lookup(candidate.keyName);
    }
  }

  /** How many signatures will be evaluated (0 when the message is unsigned). */
  get signatureCount(): number {
    return this.#candidates.length;
  }

  /** How many distinct body hashes are computed: one per (canonicalization, hash, `l=`). */
  get bodyHashCount(): number {
    return this.#hashes.size;
  }

  /** How many signatures went unverified because they needed one body hash too many. */
  get overBodyHashLimit(): number {
    return this.#overBodyHashLimit;
  }

  /** True when any signature needs the body (false: the body can be skipped). */
  get needsBody(): boolean {
    return this.#hashes.size > 0;
  }

  /** Feeds the next body chunk. */
  body(chunk: Uint8Array): void {
    if (this.#hashes.size > 0) this.#hashes.push(chunk);
  }

  /** Ends the message and resolves to one verdict per evaluated signature, in header order. */
  async finish(): Promise<Verdict[]> {
    this.#hashes.finish();
    return await Promise.all(this.#candidates.map((c) => this.#verdict(c)));
  }

  /** Cancels pending key lookups (the transaction was aborted). */
  abort(): void {
    this.#abort.abort();
  }

  // Checks that need no key, so a doomed signature costs no DNS query.
  #precheck(sig: Signature, now: number, drift: number): void {
    if (sig.algorithm.hash === "sha1" && !this.#options.allowSha1) {
      // RFC 8301 §3.1: "rsa-sha1 MUST NOT be used for signing or verifying": to the verifier
      // it is an algorithm it does not implement, ignored as an unknown a= is.
      throw new UnsupportedSignatureError("rsa-sha1 signatures not accepted (RFC 8301)");
    }
    if (sig.expiration !== undefined && sig.expiration + drift < now) {
      throw new DkimError("policy", "signature expired");
    }
    if (sig.timestamp !== undefined && sig.timestamp - drift > now) {
      throw new DkimError("policy", "signature timestamp in the future");
    }
  }

  #lookup(name: string): Promise<KeyRecord> {
    return this.#keyLookups.get(name);
  }

  async #verdict(c: Candidate): Promise<Verdict> {
    const summary = c.signature
      ? {
        domain: c.signature.domain,
        selector: c.signature.selector,
        identity: c.signature.identity,
        algorithm: c.signature.algorithm.name,
        b: c.signature.b,
      }
      : summarizeSignature(c.field);
    if (c.error || !c.signature || !c.key || !c.spec) {
      const { result, reason, ignored } = resultOf(
        c.error ?? new DkimError("permerror", "unparsed"),
      );
      return {
        ...summary,
        result,
        reason,
        signature: c.signature,
        ...(ignored ? { ignored } : {}),
      };
    }
    const sig = c.signature;
    let keyInfo: KeyInfo | undefined;
    try {
      const record = await c.key;
      const dnssec = c.keyName === undefined ? undefined : this.#keyLookups.dnssec(c.keyName);
      keyInfo = {
        type: record.keyType,
        bits: 0,
        testing: record.flags.includes("y"),
        ...(dnssec === undefined ? {} : { dnssec }),
      };
      const key = await this.#checkKey(sig, record);
      keyInfo = { ...keyInfo, bits: key.bits };
      const body = this.#hashes.result(c.spec);
      if (sig.length !== undefined && sig.length > body.canonicalLength) {
        throw new DkimError("permerror", "l= exceeds the body length");
      }
      if (!equals(body.hash, sig.bodyHash)) {
        throw new DkimError("fail", "body hash did not verify");
      }
      const data = headerHashInput(
        selectHeaders(this.#fields, sig.headers),
        withoutSignatureValue(sig.field),
        sig.headerCanonicalization,
      );
      if (!(await key.verify(sig.algorithm.hash, data, sig.signature))) {
        throw new DkimError("fail", "signature did not verify");
      }
      // RFC 6376 §8.2: what follows l= is unsigned; say how much, so it can be reported.
      const unsigned = sig.length === undefined ? 0 : body.canonicalLength - sig.length;
      const partial = unsigned > 0 ? { unsignedBodyBytes: unsigned } : {};
      const refusal = refusalOf(sig, this.#fields, unsigned, this.#options);
      if (refusal !== undefined) {
        return {
          ...summary,
          result: "policy",
          reason: refusal,
          signature: sig,
          key: keyInfo,
          ...partial,
        };
      }
      return applyKeySecurity(
        { ...summary, result: "pass", signature: sig, key: keyInfo, ...partial },
        this.#options,
      );
    } catch (e) {
      const { result, reason } = resultOf(e);
      return { ...summary, result, reason, signature: sig, key: keyInfo };
    }
  }

  async #checkKey(sig: Signature, record: KeyRecord): Promise<VerifyingKey> {
    if (record.publicKey.length === 0) throw new DkimError("permerror", "key revoked");
    if (record.keyType !== sig.algorithm.keyType) {
      throw new DkimError(
        "permerror",
        `key type mismatch (k=${record.keyType}, a=${sig.algorithm.name})`,
      );
    }
    if (!keyAllowsHash(record, sig.algorithm.hash)) {
      throw new DkimError("permerror", `key does not allow hash "${sig.algorithm.hash}" (h=)`);
    }
    if (record.flags.includes("s")) {
      const idDomain = asciiLower(sig.identity.slice(sig.identity.lastIndexOf("@") + 1));
      if (idDomain !== sig.domain) {
        throw new DkimError("permerror", "i= domain must equal d= (key t=s)");
      }
    }
    const maxBits = this.#options.maximumKeyBits ?? MAX_RSA_BITS_DEFAULT;
    const key = await importRecordKey(this.#keyCache, record, maxBits);
    if (key.type === "rsa") {
      if (key.bits > maxBits) {
        throw new DkimError("permerror", `key too large (${key.bits} bits)`);
      }
      // RFC 8301 §3.2: keys under 1024 bits MUST NOT be accepted; a higher site minimum is policy.
      if (key.bits < MIN_RSA_BITS) {
        throw new DkimError("permerror", `key too small (${key.bits} bits)`);
      }
      const min = this.#options.minimumKeyBits ?? MINIMUM_KEY_BITS_DEFAULT;
      if (key.bits < min) {
        throw new DkimError("policy", `key too small (${key.bits} bits, minimum ${min})`);
      }
    }
    return key;
  }
}

/** Where the key record at a name is picked from its TXT records (moved to key_lookups.ts). */
export { pickKeyRecord };

/**
 * Verifies a whole message held in memory. For the command line and tests; the milter streams
 * instead.
 */
export async function verifyMessage(
  message: Uint8Array,
  options: VerifyOptions,
): Promise<Verdict[]> {
  const { fields, bodyOffset } = splitMessage(message);
  const verifier = new Verifier(options);
  verifier.headers(fields);
  verifier.body(message.subarray(bodyOffset));
  return await verifier.finish();
}
