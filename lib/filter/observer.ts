/**
 * What the DKIM filter reports about its work, for metrics. The filter calls these hooks; the
 * operations layer (lib/ops/metrics.ts) implements them. Structural, so the filter never imports
 * the operations layer.
 *
 * @module
 */

/** How a message was handled. */
export type Disposition = "signed" | "verified" | "skipped" | "error";

/** One finished transaction. */
export interface TransactionReport {
  /** What happened to the message. */
  readonly disposition: Disposition;
  /** DKIM results, one per verified signature (`none` for an unsigned message); empty when signing. */
  readonly results: readonly string[];
  /** Signing algorithms used, one per signature added. */
  readonly algorithms: readonly string[];
  /** The milter action given at end of message (`accept`, `reject`, `tempfail`, ...). */
  readonly action: string;
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
