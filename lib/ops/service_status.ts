/**
 * The one line `systemctl status dkimd` shows for the service (sd_notify(3) `STATUS=`): the
 * mode, how many domains it signs for, and how many messages it has handled, e.g.
 * `mode sv, signing for 2 domains, 1520 messages (412 signed, 1100 verified, 8 skipped)`.
 * {@link ServiceStatus} counts finished transactions as a filter observer, passing every report
 * on to the next observer (the metrics), so the filter keeps a single observer.
 *
 * @module
 */

import { formatMode, type Mode } from "../config/values.ts";
import type {
  Disposition,
  FilterObserver,
  LookupReport,
  TransactionReport,
} from "../filter/observer.ts";

/** How often the status line is refreshed (sent only when it changed), in milliseconds. */
export const STATUS_INTERVAL_MS = 5000;

/** What the status line reads of a loaded configuration (a `LoadedConfig` has it). */
export interface StatusPolicy {
  /** The configuration's Mode. */
  readonly config: { readonly mode: Mode };
  /** The KeyTable's entries. */
  readonly keyTable?: { readonly entries: readonly { readonly domain: string }[] };
  /** The Domain data set, for a single KeyFile. */
  readonly dataSets?: { readonly domain?: { readonly entries: readonly { key: string }[] } };
}

/**
 * The signing domains of a configuration, for the status line: the KeyTable's domains (`%`
 * counts as "any sender's domain"), or the Domain entries of a single KeyFile.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeDomains } from "./service_status.ts";
 * const entry = (domain: string) => ({ domain });
 * assert.equal(describeDomains({ keyTable: { entries: [entry("a.example"), entry("b.example"), entry("a.example")] } }), "signing for 2 domains");
 * assert.equal(describeDomains({ keyTable: { entries: [entry("%")] } }), "signing for any sender's domain (%)");
 * assert.equal(describeDomains({ dataSets: { domain: { entries: [{ key: "example.com" }] } } }), "signing for 1 domain");
 * assert.equal(describeDomains({}), "no signing keys");
 * ```
 */
export function describeDomains(policy: Omit<StatusPolicy, "config">): string {
  let domains: string[] | undefined;
  if (policy.keyTable) domains = policy.keyTable.entries.map((e) => e.domain.toLowerCase());
  else if (policy.dataSets?.domain) {
    domains = policy.dataSets.domain.entries.map((e) => e.key.toLowerCase());
  }
  if (domains === undefined || domains.length === 0) return "no signing keys";
  if (domains.includes("%") || domains.includes("*")) {
    return "signing for any sender's domain (%)";
  }
  const n = new Set(domains).size;
  return `signing for ${n} domain${n === 1 ? "" : "s"}`;
}

/**
 * Counts finished transactions for the status line and passes every report on to `next`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NO_OBSERVER } from "../filter/observer.ts";
 * import { ServiceStatus } from "./service_status.ts";
 * const status = new ServiceStatus(NO_OBSERVER);
 * const report = { results: [], algorithms: [], domainClasses: [], action: "accept", milliseconds: 1, bodyBytes: 9 };
 * status.transaction({ ...report, disposition: "signed" });
 * status.transaction({ ...report, disposition: "verified" });
 * const loaded = { config: { mode: { sign: true, verify: true } }, dataSets: {} };
 * assert.equal(status.line(loaded), "mode sv, no signing keys, 2 messages (1 signed, 1 verified)");
 * ```
 */
export class ServiceStatus implements FilterObserver {
  readonly #next: FilterObserver;
  readonly #counts: Record<Disposition, number> = {
    signed: 0,
    verified: 0,
    skipped: 0,
    unauthorized: 0,
    error: 0,
  };

  /** Makes a counter that passes reports on to `next`. */
  constructor(next: FilterObserver) {
    this.#next = next;
  }

  /** Counts the transaction by disposition, then passes it on. */
  transaction(report: TransactionReport): void {
    this.#counts[report.disposition]++;
    this.#next.transaction(report);
  }

  /** Passes the lookup on. */
  lookup(report: LookupReport): void {
    this.#next.lookup(report);
  }

  /** Passes the connection count on. */
  connections(delta: number): void {
    this.#next.connections(delta);
  }

  /** Messages handled so far, by disposition. */
  get counts(): Readonly<Record<Disposition, number>> {
    return { ...this.#counts };
  }

  /** The status line for the configuration in force (see the module doc). */
  line(loaded: StatusPolicy): string {
    const c = this.#counts;
    const total = c.signed + c.verified + c.skipped + c.unauthorized + c.error;
    const parts = (["signed", "verified", "skipped", "unauthorized", "error"] as const)
      .filter((d) => c[d] > 0)
      .map((d) => `${c[d]} ${d === "error" ? "failed" : d}`);
    return `mode ${formatMode(loaded.config.mode)}, ${describeDomains(loaded)}, ` +
      `${total} message${total === 1 ? "" : "s"}${parts.length ? ` (${parts.join(", ")})` : ""}`;
  }
}
