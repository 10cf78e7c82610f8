/**
 * What the DKIM filter reports about its work, for metrics. The filter calls these hooks; the
 * operations layer (lib/ops/metrics.ts) implements them. Structural, so the filter never imports
 * the operations layer.
 *
 * @module
 */

/**
 * How a message was handled; `unauthorized`: authenticated, but AuthorizedSigners refused its
 * login its From, so it was not signed (the action says what On-UnauthorizedSigner did).
 */
export type Disposition = "signed" | "verified" | "skipped" | "unauthorized" | "error";

/**
 * How a signing domain (`d=`) stands to the message's author, the From address's domain: a
 * bounded label for metrics (per-domain labels would grow without end).
 * - `author`: d= is the From domain or a parent of it (DMARC's relaxed alignment, RFC 7489
 *   §3.1.1, taken without the Public Suffix List);
 * - `third-party`: any other d= (a mailing list, an ESP, a forwarder);
 * - `none`: no d= (an unsigned message, a signature too broken to name one) or no From domain.
 */
export type DomainClass = "author" | "third-party" | "none";

/**
 * The {@link DomainClass} of signing domain `signing` for a message from `author`'s domain.
 * Compares ASCII case-insensitively, ignoring a trailing dot.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { domainClass } from "./observer.ts";
 * assert.equal(domainClass("example.com", "Mail.Example.COM"), "author");
 * assert.equal(domainClass("mail.example.com", "example.com"), "third-party");
 * assert.equal(domainClass("list.example.org", "example.com"), "third-party");
 * assert.equal(domainClass("ample.com", "example.com"), "third-party");
 * assert.equal(domainClass(undefined, "example.com"), "none");
 * ```
 */
export function domainClass(
  signing: string | undefined,
  author: string | undefined,
): DomainClass {
  if (!signing || !author) return "none";
  const d = signing.toLowerCase().replace(/\.$/, "");
  const a = author.toLowerCase().replace(/\.$/, "");
  if (d === "" || a === "") return "none";
  return a === d || a.endsWith(`.${d}`) ? "author" : "third-party";
}

/** One finished transaction. */
export interface TransactionReport {
  /** What happened to the message. */
  readonly disposition: Disposition;
  /** DKIM results, one per verified signature (`none` for an unsigned message); empty when signing. */
  readonly results: readonly string[];
  /** Signing algorithms used, one per signature added. */
  readonly algorithms: readonly string[];
  /**
   * The {@link DomainClass} of each entry of `results` (when verifying) or `algorithms` (when
   * signing), in the same order.
   */
  readonly domainClasses: readonly DomainClass[];
  /** The milter action given at end of message (`accept`, `reject`, `tempfail`, ...). */
  readonly action: string;
  /** The ARC chain's result (`none`, `pass`, `fail`), when ARCMode verified it. */
  readonly arc?: string;
  /** True when an ARC set was added (ARCMode `s`). */
  readonly sealed?: boolean;
  /** Milliseconds from end of headers to the end-of-message answer. */
  readonly milliseconds: number;
  /** Body bytes seen. */
  readonly bodyBytes: number;
}

/** One key lookup. */
export interface LookupReport {
  /** `ok`, or the DNS error code (`nxdomain`, `servfail`, `timeout`, ...). */
  readonly outcome: string;
  /** Milliseconds the lookup took. */
  readonly milliseconds: number;
}

/** Receives the filter's reports. Every method must return quickly and never throw. */
export interface FilterObserver {
  /** A transaction ended (end of message answered, or aborted). */
  transaction(report: TransactionReport): void;
  /** A key lookup finished. */
  lookup(report: LookupReport): void;
  /** A connection opened (+1) or closed (-1). */
  connections(delta: number): void;
}

/** An observer that ignores everything. */
export const NO_OBSERVER: FilterObserver = {
  transaction() {},
  lookup() {},
  connections() {},
};
