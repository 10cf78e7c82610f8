/**
 * The three ARC header fields (RFC 8617 §4.1): ARC-Authentication-Results, ARC-Message-Signature
 * and ARC-Seal, parsed from bytes, and grouped into ARC sets by their instance `i=` (§4.2).
 *
 * @module
 */
import { asciiLower, fromBase64, latin1 } from "../bytes.ts";
import type { Canonicalization } from "../dkim/canon_header.ts";
import { fieldValue, type HeaderField, isField } from "../dkim/header.ts";
import {
  type AlgorithmName,
  ALGORITHMS,
  isDomainName,
  isSelector,
  parseCanonicalization,
  type SigningAlgorithm,
} from "../dkim/signature.ts";
import { parseTagList, stripWhitespace, trimFws } from "../dkim/tag_list.ts";

/** The ARC-Authentication-Results field name (RFC 8617 §4.1.1). */
export const ARC_AUTHENTICATION_RESULTS_FIELD = "ARC-Authentication-Results";
/** The ARC-Message-Signature field name (RFC 8617 §4.1.2). */
export const ARC_MESSAGE_SIGNATURE_FIELD = "ARC-Message-Signature";
/** The ARC-Seal field name (RFC 8617 §4.1.3). */
export const ARC_SEAL_FIELD = "ARC-Seal";
/** Most ARC sets in a chain: RFC 8617 §4.2.1 caps the instance at 50. */
export const MAX_ARC_INSTANCES = 50;

/** The chain validation status an ARC-Seal records (`cv=`, RFC 8617 §4.1.3). */
export type ChainValidation = "none" | "pass" | "fail";

/**
 * Why an ARC header field or set is unusable; a chain with one is `arc=fail` (RFC 8617 §5.2).
 * The message reads as the A-R reason.
 */
export class ArcSyntaxError extends SyntaxError {
  /** Makes an error saying what is wrong. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ArcSyntaxError";
  }
}

/** An ARC-Authentication-Results field (RFC 8617 §4.1.1): `i=N;` then an A-R payload. */
export interface ArcAuthenticationResults {
  /** The field it came from. */
  readonly field: HeaderField;
  /** `i=`. */
  readonly instance: number;
}

/** An ARC-Message-Signature (RFC 8617 §4.1.2): a DKIM-Signature without `v=`, with `i=`. */
export interface ArcMessageSignature {
  /** The field it came from. */
  readonly field: HeaderField;
  /** `i=`: the instance, not an identity as in DKIM. */
  readonly instance: number;
  /** `a=`. */
  readonly algorithm: SigningAlgorithm;
  /** `b=`, decoded. */
  readonly signature: Uint8Array;
  /** `bh=`, decoded. */
  readonly bodyHash: Uint8Array;
  /** `c=` header part (default simple, as DKIM). */
  readonly headerCanonicalization: Canonicalization;
  /** `c=` body part (default simple, as DKIM). */
  readonly bodyCanonicalization: Canonicalization;
  /** `d=`, lower-cased. */
  readonly domain: string;
  /** `s=`. */
  readonly selector: string;
  /** `h=`: the signed field names, in order, as written. */
  readonly headers: readonly string[];
  /** `l=`, when present. */
  readonly length?: number;
  /** `t=`, when present: when it was made (RFC 6376 §3.5, as in a DKIM-Signature). */
  readonly timestamp?: number;
  /** `x=`, when present: when it expires (RFC 6376 §3.5); always after `t=`. */
  readonly expiration?: number;
}

/** An ARC-Seal (RFC 8617 §4.1.3): `i`, `cv`, `a`, `b`, `d`, `s`, `t`; no `h=`, no `bh=`. */
export interface ArcSeal {
  /** The field it came from. */
  readonly field: HeaderField;
  /** `i=`. */
  readonly instance: number;
  /** `cv=`. */
  readonly cv: ChainValidation;
  /** `a=`. */
  readonly algorithm: SigningAlgorithm;
  /** `b=`, decoded. */
  readonly signature: Uint8Array;
  /** `d=`, lower-cased. */
  readonly domain: string;
  /** `s=`. */
  readonly selector: string;
  /** `t=`, when present. */
  readonly timestamp?: number;
}

/** One ARC set (RFC 8617 §4.2): the three fields of one instance. */
export interface ArcSet {
  /** The instance, 1 to {@link MAX_ARC_INSTANCES}. */
  readonly instance: number;
  /** The set's ARC-Authentication-Results. */
  readonly aar: ArcAuthenticationResults;
  /** The set's ARC-Message-Signature. */
  readonly ams: ArcMessageSignature;
  /** The set's ARC-Seal. */
  readonly seal: ArcSeal;
}

/** True for any of the three ARC header fields. */
export function isArcField(field: HeaderField): boolean {
  return isField(field, ARC_SEAL_FIELD) || isField(field, ARC_MESSAGE_SIGNATURE_FIELD) ||
    isField(field, ARC_AUTHENTICATION_RESULTS_FIELD);
}

/** Parses an instance value: 1 to {@link MAX_ARC_INSTANCES}, digits only. */
function parseInstance(text: string | undefined, what: string): number {
  if (text === undefined) throw new ArcSyntaxError(`${what} has no i= tag`);
  const value = trimFws(text);
  if (!/^[0-9]{1,2}$/.test(value) || Number(value) < 1 || Number(value) > MAX_ARC_INSTANCES) {
    throw new ArcSyntaxError(`${what} has an invalid instance i="${value.slice(0, 20)}"`);
  }
  return Number(value);
}

/**
 * Parses an ARC-Authentication-Results field: its value must start with `i=N;` (RFC 8617
 * §4.1.1); the rest is the A-R payload, which a verifier does not interpret.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseArcAuthenticationResults } from "./arc_set.ts";
 * import { utf8 } from "../bytes.ts";
 * const raw = utf8("ARC-Authentication-Results: i=2; mx.example.org; dkim=pass");
 * assert.equal(parseArcAuthenticationResults({ name: "ARC-Authentication-Results", raw }).instance, 2);
 * ```
 */
export function parseArcAuthenticationResults(field: HeaderField): ArcAuthenticationResults {
  const value = latin1(fieldValue(field));
  const m = /^[ \t\r\n]*i[ \t\r\n]*=([^;]*);/.exec(value);
  if (!m) throw new ArcSyntaxError("ARC-Authentication-Results does not start with i=N;");
  return { field, instance: parseInstance(m[1], "ARC-Authentication-Results") };
}

function tagsOf(field: HeaderField, what: string): Map<string, string> {
  try {
    return parseTagList(latin1(fieldValue(field)));
  } catch (e) {
    throw new ArcSyntaxError(`${what} syntax error: ${(e as Error).message}`, { cause: e });
  }
}

function required(tags: ReadonlyMap<string, string>, name: string, what: string): string {
  const v = tags.get(name);
  if (v === undefined) throw new ArcSyntaxError(`${what} missing required tag (${name}=)`);
  return v;
}

function base64Tag(tags: ReadonlyMap<string, string>, name: string, what: string): Uint8Array {
  const text = stripWhitespace(required(tags, name, what));
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 === 1) {
    throw new ArcSyntaxError(`${what} syntax error: invalid base64 in ${name}=`);
  }
  const bytes = fromBase64(text);
  if (bytes.length === 0) throw new ArcSyntaxError(`${what} syntax error: empty ${name}=`);
  return bytes;
}

function algorithmTag(tags: ReadonlyMap<string, string>, what: string): SigningAlgorithm {
  const name = asciiLower(trimFws(required(tags, "a", what)));
  const algorithm = ALGORITHMS[name as AlgorithmName];
  // RFC 8301 §3.1: rsa-sha1 is gone; RFC 8617 §4.1.2/3 use DKIM's algorithms.
  if (!algorithm || algorithm.hash === "sha1") {
    throw new ArcSyntaxError(`${what} has an unsupported algorithm "${name.slice(0, 40)}"`);
  }
  return algorithm;
}

function domainAndSelector(
  tags: ReadonlyMap<string, string>,
  what: string,
): { domain: string; selector: string } {
  const domain = asciiLower(trimFws(required(tags, "d", what)));
  if (!isDomainName(domain)) {
    throw new ArcSyntaxError(`${what} syntax error: invalid d= "${domain.slice(0, 80)}"`);
  }
  const selector = trimFws(required(tags, "s", what));
  if (!isSelector(selector)) {
    throw new ArcSyntaxError(`${what} syntax error: invalid s= "${selector.slice(0, 80)}"`);
  }
  return { domain, selector };
}

function optionalNumber(tags: ReadonlyMap<string, string>, name: string, what: string) {
  const v = tags.get(name);
  if (v === undefined) return undefined;
  const text = trimFws(v);
  // Beyond 15 digits numbers lose precision in JavaScript.
  if (!/^[0-9]{1,15}$/.test(text)) {
    throw new ArcSyntaxError(`${what} syntax error: invalid ${name}=`);
  }
  return Number(text);
}

/**
 * Parses an ARC-Message-Signature (RFC 8617 §4.1.2): DKIM-Signature tags (RFC 6376 §3.5) but no
 * `v=`, and `i=` is the instance. `h=` must not name ARC-Seal (§4.1.2).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseArcMessageSignature } from "./arc_set.ts";
 * import { utf8 } from "../bytes.ts";
 * const raw = utf8(
 *   "ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org;\r\n" +
 *     " s=sel; h=from:to; bh=AAAA; b=AAAA",
 * );
 * const ams = parseArcMessageSignature({ name: "ARC-Message-Signature", raw });
 * assert.equal(ams.instance, 1);
 * assert.deepEqual(ams.headers, ["from", "to"]);
 * ```
 */
export function parseArcMessageSignature(field: HeaderField): ArcMessageSignature {
  const what = "ARC-Message-Signature";
  const tags = tagsOf(field, what);
  const instance = parseInstance(tags.get("i"), what);
  const algorithm = algorithmTag(tags, what);
  const signature = base64Tag(tags, "b", what);
  const bodyHash = base64Tag(tags, "bh", what);
  let canon: [Canonicalization, Canonicalization];
  try {
    canon = parseCanonicalization(tags.get("c") ?? "simple/simple");
  } catch (e) {
    throw new ArcSyntaxError(`${what}: ${(e as Error).message}`, { cause: e });
  }
  const { domain, selector } = domainAndSelector(tags, what);
  const headers = required(tags, "h", what).split(":").map(trimFws);
  if (headers.some((h) => !/^[\x21-\x39\x3b-\x7e]+$/.test(h))) {
    throw new ArcSyntaxError(`${what} syntax error: invalid h= list`);
  }
  if (headers.some((h) => asciiLower(h) === "arc-seal")) {
    throw new ArcSyntaxError(`${what} signs ARC-Seal (RFC 8617 §4.1.2 forbids it)`);
  }
  const timestamp = optionalNumber(tags, "t", what);
  const expiration = optionalNumber(tags, "x", what);
  // RFC 6376 §3.5, which the AMS's tags follow (RFC 8617 §4.1.2): x= MUST be greater than t=.
  if (timestamp !== undefined && expiration !== undefined && expiration <= timestamp) {
    throw new ArcSyntaxError(`${what} syntax error: x= is not after t=`);
  }
  return {
    field,
    instance,
    algorithm,
    signature,
    bodyHash,
    headerCanonicalization: canon[0],
    bodyCanonicalization: canon[1],
    domain,
    selector,
    headers,
    length: optionalNumber(tags, "l", what),
    ...(timestamp !== undefined ? { timestamp } : {}),
    ...(expiration !== undefined ? { expiration } : {}),
  };
}

/**
 * Parses an ARC-Seal (RFC 8617 §4.1.3): `i`, `cv`, `a`, `b`, `d`, `s` required, `t` optional;
 * an `h=` tag makes it invalid.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseArcSeal } from "./arc_set.ts";
 * import { utf8 } from "../bytes.ts";
 * const raw = utf8("ARC-Seal: i=1; a=rsa-sha256; t=1; cv=none; d=example.org; s=sel; b=AAAA");
 * const seal = parseArcSeal({ name: "ARC-Seal", raw });
 * assert.equal(seal.cv, "none");
 * ```
 */
export function parseArcSeal(field: HeaderField): ArcSeal {
  const what = "ARC-Seal";
  const tags = tagsOf(field, what);
  const instance = parseInstance(tags.get("i"), what);
  if (tags.has("h")) throw new ArcSyntaxError(`${what} has an h= tag (RFC 8617 §4.1.3)`);
  const cv = asciiLower(trimFws(required(tags, "cv", what)));
  if (cv !== "none" && cv !== "pass" && cv !== "fail") {
    throw new ArcSyntaxError(`${what} has an invalid cv="${cv.slice(0, 20)}"`);
  }
  const algorithm = algorithmTag(tags, what);
  const signature = base64Tag(tags, "b", what);
  const { domain, selector } = domainAndSelector(tags, what);
  return {
    field,
    instance,
    cv,
    algorithm,
    signature,
    domain,
    selector,
    timestamp: optionalNumber(tags, "t", what),
  };
}

/**
 * The highest instance any ARC field of the message names, read leniently: a field whose `i=`
 * cannot be read, or is outside 1..{@link MAX_ARC_INSTANCES}, is passed over, and nothing else
 * is checked; 0 when there is none. A sealer numbers its set one above this even when the chain
 * is broken and {@link collectArcSets} throws, since a broken chain is still sealed, with
 * `cv=fail` (RFC 8617 §5.1.2).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { highestArcInstance } from "./arc_set.ts";
 * import { splitMessage } from "../dkim/header.ts";
 * import { utf8 } from "../bytes.ts";
 * const { fields } = splitMessage(utf8(
 *   "ARC-Seal: i=2; cv=pass\r\nARC-Authentication-Results: i=1; mx; none\r\nFrom: a\r\n\r\n",
 * ));
 * assert.equal(highestArcInstance(fields), 2);
 * assert.equal(highestArcInstance(fields.slice(2)), 0);
 * ```
 */
export function highestArcInstance(fields: readonly HeaderField[]): number {
  let highest = 0;
  for (const field of fields) {
    if (!isArcField(field)) continue;
    try {
      const instance = isField(field, ARC_AUTHENTICATION_RESULTS_FIELD)
        ? parseArcAuthenticationResults(field).instance
        : parseInstance(tagsOf(field, field.name).get("i"), field.name);
      highest = Math.max(highest, instance);
    } catch (e) {
      if (!(e instanceof ArcSyntaxError)) throw e;
    }
  }
  return highest;
}

/**
 * The instance of the newest ARC-Seal when it says `cv=fail`, read leniently as
 * {@link highestArcInstance} reads; undefined otherwise. Such a chain has ended: RFC 8617 §5.1
 * step 1 has a sealer stop there ("no need to proceed"), and §5.2 step 2 has every verifier fail
 * it without looking further, so nothing sealed after it could ever count.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { endedChainInstance } from "./arc_set.ts";
 * import { splitMessage } from "../dkim/header.ts";
 * import { utf8 } from "../bytes.ts";
 * const ended = splitMessage(utf8("ARC-Seal: i=2; cv=fail\r\nARC-Seal: i=1; cv=none\r\n\r\n"));
 * assert.equal(endedChainInstance(ended.fields), 2);
 * const open = splitMessage(utf8("ARC-Seal: i=2; cv=pass\r\nARC-Seal: i=1; cv=fail\r\n\r\n"));
 * assert.equal(endedChainInstance(open.fields), undefined);
 * ```
 */
export function endedChainInstance(fields: readonly HeaderField[]): number | undefined {
  let newest = 0;
  let failed = false;
  for (const field of fields) {
    if (!isField(field, ARC_SEAL_FIELD)) continue;
    try {
      const tags = tagsOf(field, ARC_SEAL_FIELD);
      const instance = parseInstance(tags.get("i"), ARC_SEAL_FIELD);
      if (instance < newest) continue;
      const cv = asciiLower(trimFws(tags.get("cv") ?? ""));
      failed = instance === newest ? failed || cv === "fail" : cv === "fail";
      newest = instance;
    } catch (e) {
      if (!(e instanceof ArcSyntaxError)) throw e;
    }
  }
  return failed ? newest : undefined;
}

/**
 * Collects the ARC sets of a message, in instance order 1..N, checking the structure RFC 8617
 * §5.2 step 3 (and §4.2) asks for: every field parses, exactly one of each field per instance,
 * instances 1..N without a gap, at most {@link MAX_ARC_INSTANCES}. Returns `[]` for a message
 * with no ARC field; throws {@link ArcSyntaxError} when the chain is malformed. The `cv=` rules
 * are the verifier's (verify.ts), since the last set's `cv=fail` is checked first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ArcSyntaxError, collectArcSets } from "./arc_set.ts";
 * import { splitMessage } from "../dkim/header.ts";
 * import { utf8 } from "../bytes.ts";
 * const { fields } = splitMessage(utf8("ARC-Seal: i=2; a=rsa-sha256; cv=pass; d=a.example; s=s; b=AA==\r\n\r\n"));
 * assert.throws(() => collectArcSets(fields), ArcSyntaxError);
 * assert.deepEqual(collectArcSets(splitMessage(utf8("From: a\r\n\r\n")).fields), []);
 * ```
 */
export function collectArcSets(fields: readonly HeaderField[]): ArcSet[] {
  const arcFields = fields.filter(isArcField);
  if (arcFields.length === 0) return [];
  // Counted before parsing, so a hostile header block costs no more than a full chain.
  if (arcFields.length > 3 * MAX_ARC_INSTANCES) {
    throw new ArcSyntaxError(`more than ${MAX_ARC_INSTANCES} ARC sets (RFC 8617 §4.2.1)`);
  }
  const aars = new Map<number, ArcAuthenticationResults>();
  const amss = new Map<number, ArcMessageSignature>();
  const seals = new Map<number, ArcSeal>();
  const add = <T extends { instance: number }>(map: Map<number, T>, item: T, name: string) => {
    if (map.has(item.instance)) {
      throw new ArcSyntaxError(`more than one ${name} with i=${item.instance}`);
    }
    map.set(item.instance, item);
  };
  for (const field of arcFields) {
    if (isField(field, ARC_SEAL_FIELD)) {
      add(seals, parseArcSeal(field), ARC_SEAL_FIELD);
    } else if (isField(field, ARC_MESSAGE_SIGNATURE_FIELD)) {
      add(amss, parseArcMessageSignature(field), ARC_MESSAGE_SIGNATURE_FIELD);
    } else {
      add(aars, parseArcAuthenticationResults(field), ARC_AUTHENTICATION_RESULTS_FIELD);
    }
  }
  // The highest instance named, so a gap (1, 2, 4) reads as set 3 missing.
  const count = Math.max(...aars.keys(), ...amss.keys(), ...seals.keys());
  const sets: ArcSet[] = [];
  for (let i = 1; i <= count; i++) {
    const aar = aars.get(i);
    const ams = amss.get(i);
    const seal = seals.get(i);
    if (!aar || !ams || !seal) {
      const missing = [
        aar ? "" : ARC_AUTHENTICATION_RESULTS_FIELD,
        ams ? "" : ARC_MESSAGE_SIGNATURE_FIELD,
        seal ? "" : ARC_SEAL_FIELD,
      ].filter((n) => n !== "");
      throw new ArcSyntaxError(`ARC set ${i} of ${count} incomplete: no ${missing.join(", ")}`);
    }
    sets.push({ instance: i, aar, ams, seal });
  }
  return sets;
}
