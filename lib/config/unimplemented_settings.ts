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
  /** Why dkimd ignores it, in one line: the warning says it, `check-config` groups by it. */
  readonly why: string;
}

/**
 * The reasons, one line each. Settings share a reason where one explains them all, so
 * `check-config` and the settings reference can list them together.
 */
export const IGNORED_BECAUSE = {
  adsp: "removed in OpenDKIM 2.10: ADSP is historic (RFC 5617 moved to Historic in 2013)",
  domainKeys: "DomainKeys (RFC 4870) is historic; its key records are refused, as by " +
    "OpenDKIM's default",
  reputation: "the reputation service it queried (repute.opendkim.org) is gone",
  rateLimit: "rate limits came from the reputation service's flow data, which is gone",
  vbr: "VBR (RFC 5518) found no certifiers and no deployment",
  atps: "ATPS (RFC 6541) is experimental and unused",
  statistics: "the statistics collection service it reported to is gone",
  debugging: "a debugging switch with no meaning here (use LogWhy, LogResults, dkimd explain)",
  build: "a switch for OpenDKIM's build or libraries, with nothing to switch in dkimd",
  authResults: "forged Authentication-Results are always removed, per RFC 8601 §5",
  singleAuthResult: "removed in OpenDKIM 2.5; dkimd adds one Authentication-Results field",
  softStart: "always so in dkimd: a database that does not answer never stops the start",
  popAuth: "POP-before-SMTP is obsolete; list such clients in InternalHosts or use SMTP AUTH",
  minimum: "superseded by PartialBodyResult, which decides what a signature with l= gets",
  weakSyntax: "dkimd's checks are fixed; IgnoreMalformedMail passes mail without a usable From",
  smtpUri: "reports are sent through MTACommand only (OpenDKIM's SMTP transport needs libcurl)",
  conditional: "conditional signatures are an experimental draft, not in OpenDKIM's releases",
} as const;

const ignored = (why: string, names: readonly string[]): UnimplementedSetting[] =>
  names.map((name) => ({ name, why }));

/**
 * Every OpenDKIM setting dkimd ignores, grouped by why. Together with the settings table and
 * `Include`, it covers every name of opendkim.conf(5) and `opendkim-config.h` of OpenDKIM 2.11
 * (a test holds them to that list).
 */
export const UNIMPLEMENTED_SETTINGS: readonly UnimplementedSetting[] = [
  // RFC 8601 §5: a border MTA MUST remove results claiming its own authserv-id, or any sender
  // could hand downstream filters a "dkim=pass" in our name. OpenDKIM's KeepAuthResults turns
  // that removal off (RemoveARFrom's with it); dkimd keeps it on. The README names the safe ways
  // to keep a trusted relay's results (PeerList, or an AuthservID of its own).
  ...ignored(IGNORED_BECAUSE.authResults, ["KeepAuthResults"]),
  ...ignored(IGNORED_BECAUSE.singleAuthResult, ["SingleAuthResult"]),
  ...ignored(IGNORED_BECAUSE.softStart, ["SoftStart"]),
  ...ignored(IGNORED_BECAUSE.minimum, ["Minimum"]),
  ...ignored(IGNORED_BECAUSE.weakSyntax, ["WeakSyntaxChecks"]),
  ...ignored(IGNORED_BECAUSE.smtpUri, ["SMTPURI"]),
  ...ignored(IGNORED_BECAUSE.popAuth, ["POPDBFile"]),
  ...ignored(IGNORED_BECAUSE.conditional, ["ConditionalSignatures"]),
  ...ignored(IGNORED_BECAUSE.debugging, [
    "DiagnosticDirectory",
    "EnableCoredumps",
    "KeepTemporaryFiles",
    "MilterDebug",
    "ResolverTracing",
    "StrictTestMode",
  ]),
  ...ignored(IGNORED_BECAUSE.build, ["AllowSHA1Only", "DisableCryptoInit", "TemporaryDirectory"]),
  ...ignored(IGNORED_BECAUSE.atps, ["ATPSDomains", "ATPSHashAlgorithm"]),
  ...ignored(IGNORED_BECAUSE.vbr, [
    "VBR-Certifiers",
    "VBR-PurgeFields",
    "VBR-TrustedCertifiers",
    "VBR-TrustedCertifiersOnly",
    "VBR-Type",
  ]),
  ...ignored(IGNORED_BECAUSE.statistics, ["Statistics", "StatisticsName", "StatisticsPrefix"]),
  ...ignored(IGNORED_BECAUSE.rateLimit, [
    "FlowData",
    "FlowDataFactor",
    "FlowDataTTL",
    "RateLimits",
  ]),
  ...ignored(IGNORED_BECAUSE.reputation, [
    "On-ReputationError",
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
  ...ignored(IGNORED_BECAUSE.domainKeys, ["DomainKeysCompat"]),
  ...ignored(IGNORED_BECAUSE.adsp, [
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
 *     "(VBR (RFC 5518) found no certifiers and no deployment); ignored",
 * );
 * ```
 */
export function unimplementedWarning(setting: UnimplementedSetting, origin: Origin): string {
  return `"${setting.name}" at ${formatOrigin(origin)} is an OpenDKIM setting dkimd ` +
    `does not implement (${setting.why}); ignored`;
}

/** One reason and the ignored settings a configuration gives for it, with their places. */
export interface IgnoredGroup {
  /** The reason, as in {@link IGNORED_BECAUSE}. */
  readonly why: string;
  /** Each setting given for it: OpenDKIM's spelling and where. */
  readonly settings: readonly { readonly name: string; readonly origin: Origin }[];
}

/**
 * The ignored settings among `warnings`, grouped by reason (in the order reasons first appear),
 * and the other warnings: `dkimd check-config` lists a group in one line per reason rather than
 * one warning per setting.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { groupIgnoredSettings, IGNORED_BECAUSE } from "./unimplemented_settings.ts";
 * const at = (line: number) => ({ file: "/etc/opendkim.conf", line });
 * const { groups, others } = groupIgnoredSettings([
 *   { message: "x", origin: at(1), setting: "VBR-Type" },
 *   { message: "other", origin: at(2) },
 *   { message: "y", origin: at(3), setting: "VBR-Certifiers" },
 * ]);
 * assert.deepEqual(groups, [{
 *   why: IGNORED_BECAUSE.vbr,
 *   settings: [{ name: "VBR-Type", origin: at(1) }, { name: "VBR-Certifiers", origin: at(3) }],
 * }]);
 * assert.deepEqual(others.map((w) => w.message), ["other"]);
 * ```
 */
export function groupIgnoredSettings<
  W extends { readonly origin: Origin; readonly setting?: string },
>(
  warnings: readonly W[],
): { groups: IgnoredGroup[]; others: W[] } {
  const byWhy = new Map<string, { name: string; origin: Origin }[]>();
  const others: W[] = [];
  for (const w of warnings) {
    const ignored = w.setting === undefined ? undefined : findUnimplementedSetting(w.setting);
    if (ignored === undefined) {
      others.push(w);
      continue;
    }
    byWhy.set(ignored.why, [...byWhy.get(ignored.why) ?? [], {
      name: ignored.name,
      origin: w.origin,
    }]);
  }
  return { groups: [...byWhy].map(([why, settings]) => ({ why, settings })), others };
}
