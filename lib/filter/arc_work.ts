/**
 * ARC in the milter (RFC 8617), in the same pass as DKIM verification: for mail dkimd verifies,
 * with ARCMode `v` or `s`, an {@link ArcVerifier} runs beside the DKIM verifier over the same
 * header and body events (sharing the key cache and the resolver), and with ARCMode `s` an
 * {@link ArcSealer} hashes the body too, so that end of message can add the next ARC set.
 *
 * Which mail is sealed: every message dkimd verifies (not the mail it DKIM-signs as the origin,
 * nor the mail it leaves alone). Its ARC-Authentication-Results is the Authentication-Results
 * dkimd writes for the message in this pass (dkim and arc), and `cv=` is what verifying the chain
 * as received gave; except for a post a list re-injects from InternalHosts, whose new set records
 * the results dkimd wrote when it first arrived ({@link Arrival}, arrival_results.ts).
 *
 * @module
 */
import {
  ARC_AUTHENTICATION_RESULTS_FIELD,
  ARC_MESSAGE_SIGNATURE_FIELD,
  ARC_SEAL_FIELD,
} from "../arc/arc_set.ts";
import { ArcSealer } from "../arc/seal.ts";
import { type ArcVerdict, ArcVerifier } from "../arc/verify.ts";
import type { SigningKey } from "../crypto/private_key.ts";
import { type HeaderField, isField } from "../dkim/header.ts";
import type { KeyCache } from "../dkim/key_cache.ts";
import { DEFAULT_OVERSIGNED_HEADERS } from "../dkim/signed_headers.ts";
import type { TxtResolver } from "../dns/resolver.ts";
import type { MilterLogger } from "../milter/logger.ts";
import type { FilterPolicy } from "./filter_policy.ts";

/** The ARC work of one verified message. */
export interface ArcWork {
  /** Verifies the chain as received. */
  readonly verifier: ArcVerifier;
  /** With ARCMode `s`: makes the next ARC set. */
  readonly sealer?: ArcSealer;
  /** With ARCMode `v`: the `arc=` result goes into Authentication-Results and the log. */
  readonly report: boolean;
  /** A post re-injected by InternalHosts: what its new set records (arrival_results.ts). */
  readonly arrival?: Arrival;
}

/** What dkimd wrote when a post re-injected from InternalHosts first arrived. */
export interface Arrival {
  /** The results of dkimd's own Authentication-Results from that pass. */
  readonly results: string;
  /** dkimd's own ARC set from that pass, replaced by the new one (none if it did not seal). */
  readonly replaced: readonly HeaderField[];
}

/** What the ARC work needs from the filter. */
export interface ArcWorkDeps {
  /** The resolver the DKIM verifier uses (observed for metrics). */
  readonly resolver: TxtResolver;
  /** The key cache the DKIM verifier uses. */
  readonly keyCache: KeyCache;
  /** The clock, seconds since the epoch. */
  readonly now?: () => number;
}

/**
 * Starts the ARC work of a message dkimd verifies, or undefined when ARCMode is `none`. The
 * sealer is made now so that it hashes the body as it streams; its results and `cv=` are given
 * at end of message.
 */
export function startArc(
  policy: FilterPolicy<SigningKey>,
  fields: readonly HeaderField[],
  deps: ArcWorkDeps,
  arrival?: Arrival,
): ArcWork | undefined {
  const { arcMode, minimumKeyBits, maximumKeyBits, clockDrift } = policy.config;
  if (!arcMode.verify && !arcMode.seal) return undefined;
  // The chain as it arrived: without dkimd's own set from the arrival pass, which is replaced.
  const chain = arrival ? fields.filter((f) => !arrival.replaced.includes(f)) : fields;
  const verifier = new ArcVerifier({
    resolver: deps.resolver,
    keyCache: deps.keyCache,
    minimumKeyBits,
    maximumKeyBits,
    clockDrift,
    ...(deps.now ? { now: deps.now } : {}),
  });
  verifier.headers(chain);
  const sealer = arcMode.seal ? sealerFor(policy, deps.now) : undefined;
  return {
    verifier,
    ...(sealer ? { sealer } : {}),
    report: arcMode.verify,
    ...(sealer && arrival ? { arrival } : {}),
  };
}

/** Feeds one body chunk to the verifier and the sealer. */
export function arcBody(work: ArcWork, chunk: Uint8Array): void {
  work.verifier.body(chunk);
  work.sealer?.body(chunk);
}

/** Whether a field is an ARC one, whose presence keeps the body coming when ARCMode is on. */
export function isArcField(field: HeaderField): boolean {
  return isField(field, ARC_SEAL_FIELD) || isField(field, ARC_MESSAGE_SIGNATURE_FIELD) ||
    isField(field, ARC_AUTHENTICATION_RESULTS_FIELD);
}

/** One line per message with an ARC chain's result, as logVerdicts() says DKIM's. */
export function logArc(logger: MilterLogger, verdict: ArcVerdict, qid: string): void {
  if (verdict.result === "none") return;
  const detail = verdict.result === "pass"
    ? `oldest-pass=${verdict.oldestPass ?? 0}`
    : verdict.reason ?? "";
  logger.info(
    `${qid}: ARC chain of ${verdict.instances} set(s): arc=${verdict.result} (${detail})`,
  );
}

// The sealer of ARCDomain/ARCSelector/ARCKeyFile; its results and cv= are placeholders that
// finish() replaces with what end of message knows (ArcSealer.finish's outcome).
function sealerFor(
  policy: FilterPolicy<SigningKey>,
  now: (() => number) | undefined,
): ArcSealer | undefined {
  const s = policy.arcSealer;
  if (!s) return undefined;
  return new ArcSealer({
    domain: s.domain,
    selector: s.selector,
    key: s.key,
    authservId: "placeholder",
    results: "none",
    cv: "none",
    signHeaders: s.signHeaders,
    oversignHeaders: DEFAULT_OVERSIGNED_HEADERS,
  }, { now });
}
