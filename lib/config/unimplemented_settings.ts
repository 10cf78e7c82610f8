/**
 * OpenDKIM settings dkimd does not implement: reading one gives a warning naming the setting,
 * its line and why, and is otherwise ignored (STYLE.md: known-but-unsupported OpenDKIM keys are
 * warnings). From OpenDKIM's `opendkim-config.h` (every build option) and the settings removed
 * in OpenDKIM 2.10 that old configurations still carry, with a note where dkimd offers
 * something instead.
 *
 * @module
 */

import { formatOrigin, type Origin } from "../policy/origin.ts";

/** An OpenDKIM setting dkimd reads past with a warning. */
export interface UnimplementedSetting {
  /** The name in OpenDKIM's spelling. */
  readonly name: string;
  /** Why dkimd ignores it, for the warning; empty when the name says enough. */
  readonly why: string;
}

const ignored = (why: string, names: readonly string[]): UnimplementedSetting[] =>
  names.map((name) => ({ name, why }));

/** Every OpenDKIM setting dkimd ignores, grouped by why. */
export const UNIMPLEMENTED_SETTINGS: readonly UnimplementedSetting[] = [
  ...ignored("", [
    "AllowSHA1Only",
    "BodyLengthDB",
    "BogusKey",
    "DefaultSender",
    "DiagnosticDirectory",
    "DisableCryptoInit",
    "DomainKeysCompat",
    "EnableCoredumps",
    "IdentityHeader",
    "IdentityHeaderRemove",
    "KeepTemporaryFiles",
    "MilterDebug",
    "Minimum",
    "MTACommand",
    "On-ReputationError",
    "POPDBFile",
    "ReplaceHeaders",
    "ReplaceRules",
    "ReportAddress",
    "ReportBccAddress",
    "RequestReports",
    "ResignAll",
    "ResignMailTo",
    "ResolverConfiguration",
    "ResolverTracing",
    "SendReports",
    "SingleAuthResult",
    "SMTPURI",
    "SoftStart",
    "StrictTestMode",
    "TemporaryDirectory",
    "TrustSignaturesFrom",
    "UnprotectedKey",
    "WeakSyntaxChecks",
  ]),
  // RFC 8601 §5: a border MTA MUST remove results claiming its own authserv-id, or any sender
  // could hand downstream filters a "dkim=pass" in our name. OpenDKIM's KeepAuthResults turns
  // that removal off (RemoveARFrom's with it); dkimd keeps it on. The README names the safe ways
  // to keep a trusted relay's results (PeerList, or an AuthservID of its own).
  ...ignored(
    "forged Authentication-Results are always removed, per RFC 8601 §5",
    ["KeepAuthResults"],
  ),
  ...ignored("ATPS (RFC 6541) is experimental", ["ATPSDomains", "ATPSHashAlgorithm"]),
  ...ignored("VBR (RFC 5518) is not implemented", [
    "VBR-Certifiers",
    "VBR-PurgeFields",
    "VBR-TrustedCertifiers",
    "VBR-TrustedCertifiersOnly",
    "VBR-Type",
  ]),
  ...ignored("statistics are not collected", ["Statistics", "StatisticsName", "StatisticsPrefix"]),
  ...ignored("rate limiting is not implemented", [
    "FlowData",
    "FlowDataFactor",
    "FlowDataTTL",
    "RateLimits",
  ]),
  ...ignored("reputation checks are not implemented", [
    "ReputationCache",
    "ReputationCacheTTL",
    "ReputationDuplicates",
    "ReputationLimits",
    "ReputationLimitModifiers",
    "ReputationLowTime",
    "ReputationMinimum",
    "ReputationRatios",
    "ReputationRRDHashDepth",
    "ReputationRRDRoot",
    "ReputationSpamCheck",
    "ReputationTest",
    "ReputationTimeFactor",
    "ReputationTimeout",
    "ReputationVerbose",
  ]),
  ...ignored("dkimd does not validate DNSSEC; use a validating resolver in Nameservers", [
    "TrustAnchorFile",
    "UnboundConfigFile",
  ]),
  ...ignored("removed in OpenDKIM 2.10 (ADSP, RFC 5617, is historic)", [
    "AddAllSignatureResults",
    "ADSPAction",
    "ADSPNoSuchDomain",
    "BogusPolicy",
    "DisableADSP",
    "LocalADSP",
    "NoDiscardableMailTo",
    "On-PolicyError",
    "SendADSPReports",
    "UnprotectedPolicy",
  ]),
];

const BY_LOWER_NAME = new Map(UNIMPLEMENTED_SETTINGS.map((s) => [s.name.toLowerCase(), s]));

/** Finds an OpenDKIM setting dkimd ignores, case-insensitively as OpenDKIM does. */
export function findUnimplementedSetting(name: string): UnimplementedSetting | undefined {
  return BY_LOWER_NAME.get(name.toLowerCase());
}

/**
 * The warning for an ignored setting at `origin`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findUnimplementedSetting, unimplementedWarning } from "./unimplemented_settings.ts";
 * assert.equal(
 *   unimplementedWarning(findUnimplementedSetting("vbr-type")!, { file: "/etc/opendkim.conf", line: 3 }),
 *   '"VBR-Type" at /etc/opendkim.conf:3 is an OpenDKIM setting dkimd does not implement ' +
 *     "(VBR (RFC 5518) is not implemented); ignored",
 * );
 * ```
 */
export function unimplementedWarning(setting: UnimplementedSetting, origin: Origin): string {
  return `"${setting.name}" at ${formatOrigin(origin)} is an OpenDKIM setting dkimd ` +
    `does not implement${setting.why ? ` (${setting.why})` : ""}; ignored`;
}
