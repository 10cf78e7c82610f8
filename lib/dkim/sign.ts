/**
 * Signing: DKIM-Signature fields for a message given as header fields and streamed body chunks
 * (RFC 6376 §5, RFC 8463 for Ed25519).
 *
 * @module
 */
import { asciiLower, toBase64 } from "../bytes.ts";
import { slabBytes, slabLatin1 } from "../byte_slab.ts";
import type { SigningKey } from "../crypto/private_key.ts";
import { BodyHashes, type BodyHashSpec } from "./body_hasher.ts";
import {
  canonicalHeaderRoom,
  type Canonicalization,
  writeCanonicalHeader,
} from "./canon_header.ts";
import { type HeaderField, splitMessage } from "./header.ts";
import { signedHeaderSelection } from "./signed_headers.ts";
import { copiedTokens } from "./copied_headers.ts";
import {
  type AlgorithmName,
  ALGORITHMS,
  appendSignatureValue,
  formatSignaturePrefix,
  isDomainName,
  isSelector,
  SIGNATURE_FIELD,
} from "./signature.ts";

/** A signing configuration problem (bad domain, selector, algorithm for the key, ...). */
export class SignError extends Error {
  /** Makes an error with `message`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SignError";
  }
}

/** One signature to add. */
export interface SignOptions {
  /** `d=`: the signing domain. */
  readonly domain: string;
  /** `s=`: the selector. */
  readonly selector: string;
  /** The private key. */
  readonly key: SigningKey;
  /**
   * `a=`; by default it follows the key: `rsa-sha256` for RSA, `ed25519-sha256` for Ed25519.
   * `rsa-sha1` is refused: RFC 8301 §3.1 says signers MUST NOT use it.
   */
  readonly algorithm?: AlgorithmName;
  /** `c=` as [header, body]; default relaxed/relaxed. */
  readonly canonicalization?: readonly [Canonicalization, Canonicalization];
  /**
   * Field names to sign when present, each as often as it occurs; From is always added.
   * Default `DEFAULT_SIGNED_HEADERS` (signed_headers.ts), the milter's SignHeaders default too.
   */
  readonly signHeaders?: readonly string[];
  /**
   * Field names to list once more than they occur, so none can be added later (oversigning).
   * Default `DEFAULT_OVERSIGNED_HEADERS` (From); `[]` oversigns nothing.
   */
  readonly oversignHeaders?: readonly string[];
  /** `i=`: the signing identity, which must be in `d=` or a subdomain of it. */
  readonly identity?: string;
  /** Add `z=`, copies of the signed fields (RFC 6376 §3.5; OpenDKIM's Diagnostics). */
  readonly copyHeaders?: boolean;
  /** Write `l=` with the number of canonical body bytes signed. */
  readonly bodyLength?: boolean;
  /** Sign at most this many canonical body bytes (OpenDKIM's MaximumSignedBytes); implies `l=`. */
  readonly maxSignedBytes?: number;
  /** Write `t=` (default true). */
  readonly timestamp?: boolean;
  /** Write `x=` this many seconds after `t=` (OpenDKIM's SignatureTTL). */
  readonly ttl?: number;
  /** Write `r=y`, asking verifiers for failure reports (RFC 6651 §4; OpenDKIM's RequestReports). */
  readonly requestReports?: boolean;
}

/** Capabilities a signer is given. */
export interface SignerDeps {
  /** The current time in seconds since the epoch (default: the system clock). */
  readonly now?: () => number;
}

interface Prepared {
  readonly options: SignOptions;
  readonly algorithm: AlgorithmName;
  readonly canon: readonly [Canonicalization, Canonicalization];
  readonly spec: BodyHashSpec;
}

/**
 * Signs one message with one or more signatures (for example RSA and Ed25519), in a single pass
 * over the body: `headers()`, then `body()` for each chunk, then `finish()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Signer } from "./sign.ts";
 * import { splitMessage } from "./header.ts";
 * import { generateSigningKey } from "../crypto/private_key.ts";
 * import { latin1, utf8 } from "../bytes.ts";
 * const key = await generateSigningKey("ed25519");
 * const message = utf8("From: a@example.com\r\nSubject: hi\r\n\r\nHello\r\n");
 * const { fields, bodyOffset } = splitMessage(message);
 * const signer = new Signer([{ domain: "example.com", selector: "s", key }], { now: () => 1700000000 });
 * signer.headers(fields);
 * signer.body(message.subarray(bodyOffset));
 * const [field] = await signer.finish();
 * assert.match(latin1(field.raw), /^DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed\/relaxed; d=example.com;/);
 * ```
 */
export class Signer {
  readonly #prepared: Prepared[];
  readonly #hashes = new BodyHashes();
  readonly #now: () => number;
  #fields?: readonly HeaderField[];

  /** Prepares the signatures described by `options`; bad options throw {@link SignError}. */
  constructor(options: readonly SignOptions[], deps: SignerDeps = {}) {
    if (options.length === 0) throw new SignError("Nothing to sign with: no signing options");
    this.#now = deps.now ?? (() => Date.now() / 1000);
    this.#prepared = options.map((o) => prepare(o));
    for (const p of this.#prepared) this.#hashes.add(p.spec);
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
   * Ends the body and computes the signatures. Resolves to the DKIM-Signature fields in the
   * order of the options; each is to be prepended to the message. `extraTags` are written into
   * every signature (a Lua script's `odkim.xtag()`).
   */
  async finish(extraTags: readonly (readonly [string, string])[] = []): Promise<HeaderField[]> {
    const fields = this.#fields;
    if (!fields) throw new SignError("Signer.finish() called before headers()");
    this.#hashes.finish();
    const now = Math.floor(this.#now());
    return await Promise.all(this.#prepared.map((p) => this.#sign(p, fields, now, extraTags)));
  }

  async #sign(
    p: Prepared,
    fields: readonly HeaderField[],
    now: number,
    extraTags: readonly (readonly [string, string])[],
  ): Promise<HeaderField> {
    const o = p.options;
    const body = this.#hashes.result(p.spec);
    const signedLength = p.spec.length === undefined
      ? body.canonicalLength
      : Math.min(body.canonicalLength, p.spec.length);
    const { names: headerNames, selected } = signedHeaderSelection(
      fields,
      o.signHeaders,
      o.oversignHeaders,
    );
    const timestamp = o.timestamp === false ? undefined : now;
    const prefix = formatSignaturePrefix({
      algorithm: p.algorithm,
      headerCanonicalization: p.canon[0],
      bodyCanonicalization: p.canon[1],
      domain: o.domain,
      selector: o.selector,
      identity: o.identity,
      length: o.bodyLength || o.maxSignedBytes !== undefined ? signedLength : undefined,
      timestamp,
      expiration: o.ttl === undefined ? undefined : (timestamp ?? now) + o.ttl,
      reportRequest: o.requestReports,
      ...(extraTags.length > 0 ? { extraTags } : {}),
      headers: headerNames,
      ...(o.copyHeaders ? { copiedHeaders: copiedTokens(fields, headerNames) } : {}),
      bodyHash: toBase64(body.hash),
    });
    const data = headerHashInput(
      selected,
      { name: SIGNATURE_FIELD, raw: slabLatin1(prefix) },
      p.canon[0],
    );
    const b = toBase64(await o.key.sign(data));
    return { name: SIGNATURE_FIELD, raw: slabLatin1(appendSignatureValue(prefix, b)) };
  }
}

function prepare(o: SignOptions): Prepared {
  const domain = asciiLower(o.domain);
  if (!isDomainName(domain)) throw new SignError(`Invalid signing domain "${o.domain}"`);
  if (!isSelector(o.selector)) throw new SignError(`Invalid selector "${o.selector}"`);
  const algorithm = o.algorithm ?? (o.key.type === "ed25519" ? "ed25519-sha256" : "rsa-sha256");
  const alg = ALGORITHMS[algorithm];
  if (!alg) throw new SignError(`Unknown signing algorithm "${algorithm}"`);
  if (alg.hash === "sha1") {
    throw new SignError(`Refusing to sign with "${algorithm}": RFC 8301 §3.1 forbids rsa-sha1`);
  }
  if (alg.keyType !== o.key.type) {
    throw new SignError(
      `Algorithm "${algorithm}" needs a ${alg.keyType} key, but the key for "${o.selector}._domainkey.${domain}" is ${o.key.type}`,
    );
  }
  if (o.identity !== undefined) {
    const at = o.identity.lastIndexOf("@");
    const idDomain = asciiLower(o.identity.slice(at + 1));
    if (at === -1 || (idDomain !== domain && !idDomain.endsWith(`.${domain}`))) {
      throw new SignError(
        `Signing identity "${o.identity}" is not in domain "${domain}" (RFC 6376 §3.5, i=)`,
      );
    }
  }
  if (
    o.maxSignedBytes !== undefined &&
    !(Number.isSafeInteger(o.maxSignedBytes) && o.maxSignedBytes >= 0)
  ) {
    throw new SignError(`Invalid maximum signed bytes "${o.maxSignedBytes}"`);
  }
  const canon = o.canonicalization ?? ["relaxed", "relaxed"];
  return {
    options: { ...o, domain },
    algorithm,
    canon,
    spec: { canonicalization: canon[1], algorithm: alg.hash, length: o.maxSignedBytes },
  };
}

/**
 * The data a signature's header hash covers (RFC 6376 §3.7): each selected field canonicalized,
 * then the DKIM-Signature field itself with an empty `b=` value, canonicalized, without its
 * final CRLF.
 */
export function headerHashInput(
  selected: readonly HeaderField[],
  signatureField: HeaderField,
  canon: Canonicalization,
): Uint8Array {
  // One array for all of it: no array per field, no copy to join them.
  let room = canonicalHeaderRoom(signatureField);
  for (const f of selected) room += canonicalHeaderRoom(f);
  const out = slabBytes(room);
  let o = 0;
  for (const f of selected) o = writeCanonicalHeader(out, o, f, canon);
  o = writeCanonicalHeader(out, o, signatureField, canon);
  return out.subarray(0, o - 2);
}

/**
 * Signs a whole message held in memory and returns the DKIM-Signature fields to prepend. For
 * the command line and tests; the milter streams instead.
 */
export async function signMessage(
  message: Uint8Array,
  options: readonly SignOptions[],
  deps: SignerDeps = {},
): Promise<HeaderField[]> {
  const { fields, bodyOffset } = splitMessage(message);
  const signer = new Signer(options, deps);
  signer.headers(fields);
  signer.body(message.subarray(bodyOffset));
  return await signer.finish();
}
