/**
 * dkimd as a library: DKIM signing and verification (RFC 6376, RFC 8463 Ed25519, RFC 8301
 * algorithm and key-size rules) over bytes, Authentication-Results (RFC 8601), and a DNS stub
 * resolver that tells a missing key from a failed lookup.
 *
 * Sign a message held in memory:
 *
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateSigningKey, signMessage, verifyMessage } from "./mod.ts";
 * const key = await generateSigningKey("ed25519");
 * const message = new TextEncoder().encode("From: a@example.com\r\nSubject: hi\r\n\r\nHello\r\n");
 * const [field] = await signMessage(message, [{ domain: "example.com", selector: "s1", key }]);
 * const signed = new Uint8Array([...field.raw, 13, 10, ...message]);
 * const p = btoa(String.fromCharCode(...key.publicKey));
 * const resolver = { resolveTxt: () => Promise.resolve([`v=DKIM1; k=ed25519; p=${p}`]) };
 * const [verdict] = await verifyMessage(signed, { resolver });
 * assert.equal(verdict.result, "pass");
 * ```
 *
 * For streaming (as the milter does), use {@link Signer} and {@link Verifier}: `headers()`,
 * then `body()` per chunk, then `finish()`.
 *
 * @module
 */
export { DnsError } from "./lib/dns/resolver.ts";
export type { CheckedTxt, DnsErrorCode, LookupOptions, TxtResolver } from "./lib/dns/resolver.ts";
export type { DnssecStatus } from "./lib/dns/dnssec.ts";
export { StubResolver } from "./lib/dns/stub.ts";
export type { StubResolverOptions, TtlTxtResolver, TxtAnswer } from "./lib/dns/stub.ts";
export { CachingResolver } from "./lib/dns/cache.ts";
export type { CachingResolverOptions, Clock } from "./lib/dns/cache.ts";
export { KeyFileResolver, parseKeyFile, readKeyFile } from "./lib/dns/key_file.ts";
export type { KeyFile } from "./lib/dns/key_file.ts";
export { parseNameserver, parseNameserverList } from "./lib/dns/nameserver.ts";
export type { Nameserver } from "./lib/dns/nameserver.ts";
export { KeyError } from "./lib/crypto/key_error.ts";
export type { KeyErrorCode } from "./lib/crypto/key_error.ts";
export type { KeyType } from "./lib/crypto/key_type.ts";
export { generateSigningKey, importPrivateKey } from "./lib/crypto/private_key.ts";
export type { SigningKey } from "./lib/crypto/private_key.ts";
export { importPublicKey } from "./lib/crypto/public_key.ts";
export type { PublicKeyOptions, VerifyingKey } from "./lib/crypto/public_key.ts";
export type { HashAlgorithm } from "./lib/crypto/hash.ts";
export { makeHeaderField, MessageSyntaxError, splitMessage } from "./lib/dkim/header.ts";
export type { HeaderField, SplitMessage } from "./lib/dkim/header.ts";
export { Signer, SignError, signMessage } from "./lib/dkim/sign.ts";
export { DEFAULT_OVERSIGNED_HEADERS, DEFAULT_SIGNED_HEADERS } from "./lib/dkim/signed_headers.ts";
export type { SignerDeps, SignOptions } from "./lib/dkim/sign.ts";
export { Verifier, verifyMessage } from "./lib/dkim/verify.ts";
export type { VerifyOptions } from "./lib/dkim/verify.ts";
export type { AcceptanceOptions, PartialBodyResult } from "./lib/dkim/acceptance.ts";
export type { KeySecurityAction, KeySecurityOptions } from "./lib/dkim/key_security.ts";
export { KeyCache } from "./lib/dkim/key_cache.ts";
export type { PublicKeyImporter } from "./lib/dkim/key_cache.ts";
export {
  DkimError,
  IgnoredSignatureError,
  MalformedSignatureError,
  UnsupportedSignatureError,
} from "./lib/dkim/dkim_error.ts";
export type { DkimResult, FailResult, IgnoredReason } from "./lib/dkim/dkim_error.ts";
export type { KeyInfo, Verdict } from "./lib/dkim/result.ts";
export type {
  AlgorithmName,
  Signature,
  SignatureSummary,
  SigningAlgorithm,
} from "./lib/dkim/signature.ts";
export type { Canonicalization } from "./lib/dkim/canon_header.ts";
export { formatAuthResults, formatDkimResult, parseAuthservId } from "./lib/dkim/auth_results.ts";
export type { AuthResultsOptions } from "./lib/dkim/auth_results.ts";
export { VERSION } from "./lib/version.ts";
