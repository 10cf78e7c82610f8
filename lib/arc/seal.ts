/**
 * ARC sealing (RFC 8617 §5.1): the next ARC set for a message, an ARC-Authentication-Results,
 * an ARC-Message-Signature and an ARC-Seal, made with dkimd's DKIM signing parts (body hashes,
 * relaxed canonicalization, signature folding, the same keys).
 *
 * @module
 */
import { asciiLower, fromLatin1, toBase64 } from "../bytes.ts";
import type { SigningKey } from "../crypto/private_key.ts";
import { BodyHashes, type BodyHashSpec } from "../dkim/body_hasher.ts";
import { type HeaderField, selectHeaders, splitMessage } from "../dkim/header.ts";
import { headerHashInput, type SignerDeps } from "../dkim/sign.ts";
import { signedHeaderList } from "../dkim/signed_headers.ts";
import {
  type AlgorithmName,
  appendSignatureValue,
  formatSignaturePrefix,
  isDomainName,
  isSelector,
} from "../dkim/signature.ts";
import {
  ARC_AUTHENTICATION_RESULTS_FIELD,
  ARC_MESSAGE_SIGNATURE_FIELD,
  ARC_SEAL_FIELD,
  ArcSyntaxError,
  type ChainValidation,
  collectArcSets,
  endedChainInstance,
  highestArcInstance,
  MAX_ARC_INSTANCES,
} from "./arc_set.ts";

export type { ChainValidation };

/** A sealing problem: bad options, or a chain that cannot be continued with the given `cv=`. */
export class ArcSealError extends Error {
  /** Makes an error with `message`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ArcSealError";
  }
}

/** One ARC set to add. */
export interface SealOptions {
  /** `d=` of the ARC-Message-Signature and ARC-Seal: the sealing domain. */
  readonly domain: string;
  /** `s=`: the selector. */
  readonly selector: string;
  /** The private key, RSA or Ed25519; `a=` follows it. */
  readonly key: SigningKey;
  /** The authserv-id written in the ARC-Authentication-Results (RFC 8601 §2.2). */
  readonly authservId: string;
  /** The results the ARC-Authentication-Results carries, e.g. `dkim=pass header.d=a.example`. */
  readonly results: string;
  /**
   * `cv=`: what validating the chain as received gave. `none` only when the message has no ARC
   * set; with one, `pass` or `fail` (RFC 8617 §4.1.3, §5.1).
   */
  readonly cv: ChainValidation;
  /** Fields the ARC-Message-Signature signs when present (default: dkimd's DKIM default list). */
  readonly signHeaders?: readonly string[];
  /** Fields listed once more than present (default From, as for DKIM). */
  readonly oversignHeaders?: readonly string[];
  /**
   * Seconds the ARC-Message-Signature stays valid: `x=` is `t=` plus this (RFC 6376 §3.5's tag,
   * which an AMS has, RFC 8617 §4.1.2; OpenARC's SignatureTTL). Default: no `x=`, as dkimpy
   * writes it. The ARC-Seal has no `x=` (§4.1.3).
   */
  readonly ttl?: number;
}

/** What a sealer learns at end of message: the AAR's authserv-id and results, and `cv=`. */
export type SealOutcome = Pick<SealOptions, "authservId" | "results" | "cv">;

// The checks of what the AAR and the seal carry, at construction and again at finish().
function checkOutcome(o: SealOutcome): void {
  if (!/^[!-~]+$/.test(o.authservId) || /[;"()\\]/.test(o.authservId)) {
    throw new ArcSealError(`Invalid authserv-id "${o.authservId}"`);
  }
  // The AAR is one header field: a line break (CRLF, or a bare CR or LF) not followed by
  // whitespace would end it; a fold (CRLF and a tab, as Authentication-Results has) is fine.
  if (/[\r\n](?![ \t])/.test(o.results.replaceAll("\r\n", "\n")) || o.results.trim() === "") {
    throw new ArcSealError(`Invalid results for the ARC-Authentication-Results`);
  }
  if (!["none", "pass", "fail"].includes(o.cv)) {
    throw new ArcSealError(`Invalid chain validation status "${o.cv}"`);
  }
}

/** The ARC fields that the message signature never covers (RFC 8617 §4.1.2: AS MUST NOT). */
const NEVER_SIGNED = new Set(["arc-seal", "arc-message-signature", "arc-authentication-results"]);

/**
 * Seals one message: `headers()`, then `body()` for each chunk, then `finish()`, which resolves
 * to the new ARC set as `[ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results]`, to be
 * prepended to the message in that order (newest on top, as other sealers write it).
 *
 * The seal signs every earlier ARC set and the new one, in instance order (RFC 8617 §5.1.1);
 * with `cv=fail` it signs only the new set, as if it were the only one (§5.1.2), so nothing
 * sealed after a failed chain can validate. A chain whose newest seal already says `cv=fail` has
 * ended and is not sealed again (§5.1 step 1): `finish()` throws {@link ArcSealError}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ArcSealer } from "./seal.ts";
 * import { splitMessage } from "../dkim/header.ts";
 * import { generateSigningKey } from "../crypto/private_key.ts";
 * import { latin1, utf8 } from "../bytes.ts";
 * const key = await generateSigningKey("ed25519");
 * const message = utf8("From: a@example.com\r\nSubject: hi\r\n\r\nHello\r\n");
 * const { fields, bodyOffset } = splitMessage(message);
 * const sealer = new ArcSealer({
 *   domain: "example.com", selector: "arc", key, authservId: "mx.example.com",
 *   results: "dkim=none", cv: "none",
 * }, { now: () => 1700000000 });
 * sealer.headers(fields);
 * sealer.body(message.subarray(bodyOffset));
 * const [seal, ams, aar] = await sealer.finish();
 * assert.equal(latin1(aar.raw), "ARC-Authentication-Results: i=1; mx.example.com; dkim=none");
 * assert.match(latin1(ams.raw), /^ARC-Message-Signature: i=1; a=ed25519-sha256; c=relaxed\/relaxed;/);
 * assert.match(latin1(seal.raw), /^ARC-Seal: i=1; a=ed25519-sha256; t=1700000000; cv=none;/);
 * ```
 */
export class ArcSealer {
  readonly #options: SealOptions;
  readonly #algorithm: AlgorithmName;
  readonly #domain: string;
  readonly #spec: BodyHashSpec;
  readonly #hashes = new BodyHashes();
  readonly #now: () => number;
  #fields?: readonly HeaderField[];

  /** Checks `options`; bad ones throw {@link ArcSealError}. */
  constructor(options: SealOptions, deps: SignerDeps = {}) {
    this.#domain = asciiLower(options.domain);
    if (!isDomainName(this.#domain)) {
      throw new ArcSealError(`Invalid sealing domain "${options.domain}"`);
    }
    if (!isSelector(options.selector)) {
      throw new ArcSealError(`Invalid selector "${options.selector}"`);
    }
    if (options.ttl !== undefined && !(Number.isSafeInteger(options.ttl) && options.ttl > 0)) {
      throw new ArcSealError(`Invalid signature lifetime "${options.ttl}"`);
    }
    checkOutcome(options);
    this.#options = options;
    this.#algorithm = options.key.type === "ed25519" ? "ed25519-sha256" : "rsa-sha256";
    this.#now = deps.now ?? (() => Date.now() / 1000);
    // RFC 8617 §4.1.2: the AMS is a DKIM signature made relaxed/relaxed here, as dkimpy and
    // OpenARC make it (the verifier reads c= like DKIM's).
    this.#spec = { canonicalization: "relaxed", algorithm: "sha256" };
    this.#hashes.add(this.#spec);
  }

  /** Gives the message's header fields, in message order. */
  headers(fields: readonly HeaderField[]): void {
    this.#fields = fields;
  }

  /** Feeds the next body chunk. */
  body(chunk: Uint8Array): void {
    this.#hashes.push(chunk);
  }

  /**
   * Ends the body and makes the new ARC set: `[ARC-Seal, ARC-Message-Signature, AAR]`. A
   * streaming filter learns the results and `cv=` only at end of message: `outcome` gives them
   * then, in place of the constructor's.
   */
  async finish(outcome?: SealOutcome): Promise<HeaderField[]> {
    const fields = this.#fields;
    if (!fields) throw new ArcSealError("ArcSealer.finish() called before headers()");
    if (outcome) checkOutcome(outcome);
    const o = outcome ? { ...this.#options, ...outcome } : this.#options;
    const highest = highestArcInstance(fields);
    const instance = highest + 1;
    if (instance > MAX_ARC_INSTANCES) {
      throw new ArcSealError(
        `The message already has ${highest} ARC sets; RFC 8617 §4.2.1 allows ${MAX_ARC_INSTANCES}`,
      );
    }
    // RFC 8617 §5.1 step 1: a chain whose newest seal says cv=fail has ended; no set follows it,
    // whatever cv= the caller has (even fail: the chain's failure is already recorded).
    const ended = endedChainInstance(fields);
    if (ended !== undefined) {
      throw new ArcSealError(
        `ARC set ${ended} says cv=fail: the chain has ended, and RFC 8617 §5.1 seals no more`,
      );
    }
    if (o.cv === "none" && highest > 0) {
      throw new ArcSealError(
        `cv=none is only for a message without ARC sets; this one has ${highest}`,
      );
    }
    // The earlier sets the seal covers: all of them, unless the chain failed (§5.1.2).
    const earlier: HeaderField[] = [];
    if (o.cv !== "fail") {
      if (highest === 0 && o.cv === "pass") {
        throw new ArcSealError("cv=pass needs an ARC chain; this message has none");
      }
      let sets;
      try {
        sets = collectArcSets(fields);
      } catch (e) {
        if (!(e instanceof ArcSyntaxError)) throw e;
        throw new ArcSealError(`The ARC chain is broken (${e.message}); seal it with cv=fail`, {
          cause: e,
        });
      }
      for (const set of sets) earlier.push(set.aar.field, set.ams.field, set.seal.field);
    }
    this.#hashes.finish();
    const now = Math.floor(this.#now());

    const aar: HeaderField = {
      name: ARC_AUTHENTICATION_RESULTS_FIELD,
      raw: fromLatin1(
        `${ARC_AUTHENTICATION_RESULTS_FIELD}: i=${instance}; ${o.authservId}; ${o.results}`,
      ),
    };

    // The message signature: a DKIM signature with i= for v= (RFC 8617 §4.1.2). dkimpy finds
    // it by the text " i=N;", so i= comes first, after a space, and ends with ";".
    const signable = fields.filter((f) => !NEVER_SIGNED.has(asciiLower(f.name)));
    const headerNames = signedHeaderList(signable, o.signHeaders, o.oversignHeaders)
      .filter((name) => !NEVER_SIGNED.has(asciiLower(name)));
    const amsPrefix = formatSignaturePrefix({
      field: { name: ARC_MESSAGE_SIGNATURE_FIELD, leading: [`i=${instance}`] },
      algorithm: this.#algorithm,
      headerCanonicalization: "relaxed",
      bodyCanonicalization: "relaxed",
      domain: this.#domain,
      selector: o.selector,
      timestamp: now,
      ...(o.ttl !== undefined ? { expiration: now + o.ttl } : {}),
      headers: headerNames,
      bodyHash: toBase64(this.#hashes.result(this.#spec).hash),
    });
    const amsData = headerHashInput(
      selectHeaders(signable, headerNames),
      { name: ARC_MESSAGE_SIGNATURE_FIELD, raw: fromLatin1(amsPrefix) },
      "relaxed",
    );
    const ams: HeaderField = {
      name: ARC_MESSAGE_SIGNATURE_FIELD,
      raw: fromLatin1(appendSignatureValue(amsPrefix, toBase64(await o.key.sign(amsData)))),
    };

    // The seal: every earlier set's AAR, AMS, AS in instance order, then ours (§5.1.1); with
    // cv=fail ours alone (§5.1.2). Relaxed header canonicalization, no body hash, no h=.
    const sealed = [...earlier];
    sealed.push(aar, ams);
    const asPrefix =
      `${ARC_SEAL_FIELD}: i=${instance}; a=${this.#algorithm}; t=${now}; cv=${o.cv};` +
      `\r\n\td=${this.#domain}; s=${o.selector}; b=`;
    const asData = headerHashInput(
      sealed,
      { name: ARC_SEAL_FIELD, raw: fromLatin1(asPrefix) },
      "relaxed",
    );
    const seal: HeaderField = {
      name: ARC_SEAL_FIELD,
      raw: fromLatin1(appendSignatureValue(asPrefix, toBase64(await o.key.sign(asData)))),
    };
    return [seal, ams, aar];
  }
}

/**
 * Seals a whole message held in memory and returns the new ARC set to prepend,
 * `[ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results]`. For the command line and
 * tests; a filter streams with {@link ArcSealer}.
 */
export async function sealMessage(
  message: Uint8Array,
  options: SealOptions,
  deps: SignerDeps = {},
): Promise<HeaderField[]> {
  const { fields, bodyOffset } = splitMessage(message);
  const sealer = new ArcSealer(options, deps);
  sealer.headers(fields);
  sealer.body(message.subarray(bodyOffset));
  return await sealer.finish();
}
