/**
 * The DNSSEC trust model: dkimd does not validate DNSSEC itself. It asks its resolver for DNSSEC
 * (the DO bit, RFC 3225) and believes the answer's AD bit (RFC 4035 §3.2.3) only from a resolver
 * on the same host: 127.0.0.0/8 or ::1. RFC 4035 §4.9.3 and RFC 6840 §5.7 allow a stub to trust
 * AD only over a secure channel; the path to a remote resolver is plain UDP or TCP that anyone on
 * it can rewrite, AD bit included, so a remote resolver's keys are reported insecure whatever it
 * says. A validating resolver that finds a key record bogus answers SERVFAIL; dkimd knows that
 * SERVFAIL from any other by its Extended DNS Error (RFC 8914: INFO-CODEs 6 to 12), and then asks
 * again with CD (RFC 4035 §3.2.2) to get the record it may still verify with and report as bogus.
 *
 * @module
 */

import type { Nameserver } from "./nameserver.ts";

/**
 * What DNSSEC said of a key record, in OpenDKIM's terms (`DKIM_DNSSEC_*`): `secure` (the local
 * resolver validated it), `insecure` (not signed, no trust anchor covers it, or the resolver is
 * not local so its word is not taken: OpenDKIM writes "unprotected"), `bogus` (signed, but the
 * validation failed: forged, expired or broken).
 */
export type DnssecStatus = "secure" | "insecure" | "bogus";

/** The RFC 8914 INFO-CODEs that say DNSSEC validation failed: 6 "DNSSEC Bogus" to 12 "NSEC Missing". */
export const DNSSEC_FAILURE_CODES: ReadonlySet<number> = new Set([6, 7, 8, 9, 10, 11, 12]);

/**
 * True when `ns` is on this host (127.0.0.0/8, ::1, or an IPv4-mapped loopback address), the
 * only resolvers whose AD bit dkimd believes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isLocalResolver } from "./dnssec.ts";
 * assert.equal(isLocalResolver({ address: "127.0.0.53", port: 53, family: 4 }), true);
 * assert.equal(isLocalResolver({ address: "::1", port: 53, family: 6 }), true);
 * assert.equal(isLocalResolver({ address: "192.0.2.1", port: 53, family: 4 }), false);
 * ```
 */
export function isLocalResolver(ns: Nameserver): boolean {
  const address = ns.address.toLowerCase().replace(/^::ffff:(?=\d+\.)/, "");
  if (address === "::1") return true;
  return /^127\.\d+\.\d+\.\d+$/.test(address);
}

/**
 * Why DNSSEC results are not trusted with these nameservers, or undefined when every one is
 * local: the line dkimd logs once at start when DNSSEC is asked for.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { untrustedResolversWarning } from "./dnssec.ts";
 * assert.equal(untrustedResolversWarning([{ address: "127.0.0.1", port: 53, family: 4 }]), undefined);
 * assert.match(
 *   untrustedResolversWarning([{ address: "192.0.2.1", port: 53, family: 4 }])!,
 *   /192\.0\.2\.1.*insecure/,
 * );
 * ```
 */
export function untrustedResolversWarning(nameservers: readonly Nameserver[]): string | undefined {
  const remote = nameservers.filter((ns) => !isLocalResolver(ns));
  if (remote.length === 0) return undefined;
  const list = remote.map((ns) => ns.port === 53 ? ns.address : `${ns.address}@${ns.port}`);
  return `DNSSEC: the AD bit of ${list.join(", ")} is not trusted, since the path to a ` +
    `resolver that is not on this host is unauthenticated; keys they give are reported ` +
    `insecure. Run a validating resolver on 127.0.0.1 or ::1 and list it in Nameservers`;
}
