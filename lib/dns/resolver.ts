/**
 * The DNS capability the DKIM core is given: a TXT lookup that tells "no such key" from "could
 * not ask". RFC 6376 §6.1.2 needs the difference: a missing key record is a permanent failure
 * (permerror), a failed query a temporary one (temperror).
 *
 * @module
 */

import type { DnssecStatus } from "./dnssec.ts";

/**
 * Why a lookup gave no answer.
 * - `nxdomain`: the name does not exist (RCODE 3).
 * - `nodata`: the name exists but has no TXT record.
 * - `servfail`: the server failed (RCODE 2).
 * - `refused`: the server refused to answer (RCODE 5).
 * - `timeout`: no answer within the time allowed, after every retry.
 * - `malformed`: an answer came but could not be parsed, or another RCODE.
 * - `network`: the query could not be sent or the connection broke.
 * - `toolarge`: the answer holds more TXT record text than allowed (dkimd's `DNSMaxAnswerBytes`):
 *   the published record is what it is, so asking again gives the same answer.
 */
export type DnsErrorCode =
  | "nxdomain"
  | "nodata"
  | "servfail"
  | "refused"
  | "timeout"
  | "malformed"
  | "network"
  | "toolarge";

/**
 * A failed DNS lookup. `permanent` is true only for `nxdomain` and `nodata`, the two answers
 * that say the record does not exist (RFC 6376 §6.1.2: "no key" is a permerror, every other
 * failure a temperror).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DnsError } from "./resolver.ts";
 * const e = new DnsError("servfail", "s._domainkey.example.com");
 * assert.equal(e.permanent, false);
 * assert.equal(e.message, 'DNS lookup of "s._domainkey.example.com" failed: servfail');
 * ```
 */
export class DnsError extends Error {
  /** What went wrong. */
  readonly code: DnsErrorCode;
  /** The name that was looked up. */
  readonly query: string;

  /** Makes an error for the lookup of `query` that failed with `code`. */
  constructor(code: DnsErrorCode, query: string, detail?: string, options?: ErrorOptions) {
    super(
      `DNS lookup of "${query}" failed: ${code}${detail ? ` (${detail})` : ""}`,
      options,
    );
    this.name = "DnsError";
    this.code = code;
    this.query = query;
  }

  /** True when the answer says the record does not exist, rather than that asking failed. */
  get permanent(): boolean {
    return this.code === "nxdomain" || this.code === "nodata";
  }
}

/** Options for one lookup. */
export interface LookupOptions {
  /** Aborts the lookup; it then rejects with a `DnsError` of code `timeout`. */
  readonly signal?: AbortSignal;
}

/** TXT records with what DNSSEC said of them: absent `dnssec` when it was not asked. */
export interface CheckedTxt {
  /** The records, as {@link TxtResolver.resolveTxt} gives them. */
  readonly records: string[];
  /** The DNSSEC status of the answer, when the resolver asked for it. */
  readonly dnssec?: DnssecStatus;
}

/**
 * Looks up TXT records. Each returned string is one TXT record with its character-strings
 * concatenated (RFC 6376 §3.6.2.2), decoded one byte per character (latin1) so no byte is lost.
 * Rejects with {@link DnsError} and never with anything else.
 */
export interface TxtResolver {
  /** The TXT records at `name`, in the order the answer gave them. */
  resolveTxt(name: string, options?: LookupOptions): Promise<string[]>;
  /**
   * The records at `name` with their DNSSEC status (see `dnssec.ts`), for resolvers that can
   * tell it; a bogus record comes here, not from `resolveTxt`, which refuses it as a failure.
   */
  resolveTxtChecked?(name: string, options?: LookupOptions): Promise<CheckedTxt>;
}

/**
 * The records at `name` with their DNSSEC status when `resolver` can tell it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveTxtChecked } from "./resolver.ts";
 * const plain = { resolveTxt: () => Promise.resolve(["v=DKIM1; p="]) };
 * assert.deepEqual(await resolveTxtChecked(plain, "s._domainkey.example.com"), { records: ["v=DKIM1; p="] });
 * ```
 */
export async function resolveTxtChecked(
  resolver: TxtResolver,
  name: string,
  options?: LookupOptions,
): Promise<CheckedTxt> {
  if (resolver.resolveTxtChecked) return await resolver.resolveTxtChecked(name, options);
  return { records: await resolver.resolveTxt(name, options) };
}
