/**
 * dkimd as a library: DKIM signing and verification (RFC 6376, RFC 8463, RFC 8301) over bytes,
 * and the DNS capability it needs.
 *
 * @module
 */
export { DnsError } from "./lib/dns/resolver.ts";
export type { DnsErrorCode, LookupOptions, TxtResolver } from "./lib/dns/resolver.ts";
export { VERSION } from "./lib/version.ts";
