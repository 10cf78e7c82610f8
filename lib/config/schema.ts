/**
 * The one typed configuration of dkimd (DESIGN.md, "Config has one source of truth"): the
 * {@link Config} shape, the registry of every opendkim.conf setting (implemented ones with
 * their value readers, OpenDKIM ones dkimd ignores with a warning), and
 * {@link buildConfig}, which applies OpenDKIM's defaults and the rules between settings (Mode
 * with Domain/KeyFile/Selector/KeyTable/SigningTable, On-Default before the other On-*
 * settings) and freezes the result. The opendkim.conf and YAML readers both end here.
 *
 * @module
 */

import type { Nameserver } from "../dns/nameserver.ts";
import { parseNameserverList } from "../dns/nameserver.ts";
import { type DataSetSource, parseDataSetSpec } from "../policy/dataset.ts";
import type { SigningAlgorithm } from "../policy/key_table.ts";
import { formatOrigin, type Origin, type SourceError } from "../policy/origin.ts";
import { ConfigError, type ConfigWarning } from "./config_error.ts";
import {
  type Actions,
  DEFAULT_ACTIONS,
  DEFAULT_BACKGROUND,
  DEFAULT_CANONICALIZATION,
  DEFAULT_CLOCK_DRIFT,
  DEFAULT_DNS_MAX_ANSWER_BYTES,
  DEFAULT_DNS_TIMEOUT,
  DEFAULT_INTERNAL_HOSTS_SOURCE,
  DEFAULT_MAXIMUM_HEADER_FIELDS,
  DEFAULT_MAXIMUM_HEADERS,
  DEFAULT_MAXIMUM_KEY_BITS,
  DEFAULT_MAXIMUM_SIGNATURES_TO_VERIFY,
  DEFAULT_MILTER_IDLE_TIMEOUT,
  DEFAULT_MILTER_MAX_CONNECTIONS,
  DEFAULT_MILTER_MAX_FRAME_BYTES,
  DEFAULT_MILTER_SHUTDOWN_TIMEOUT,
  DEFAULT_MINIMUM_KEY_BITS,
  DEFAULT_MODE,
  DEFAULT_REQUIRE_SAFE_KEYS,
  DEFAULT_SIGNATURE_ALGORITHM,
  DEFAULT_SYSLOG_FACILITY,
  DEFAULT_SYSLOG_NAME,
} from "./defaults.ts";
import { type ListenAddress, parseListenAddress } from "./listen_address.ts";
import { parseSocketSpec, type SocketSpec } from "../milter/socket_spec.ts";
import {
  type AuthservId,
  type Canonicalization,
  type MilterAction,
  type Mode,
  parseAction,
  parseAuthservId,
  parseBoolean,
  parseCanonicalization,
  parseIntegerIn,
  parseMode,
  parseRestartRate,
  parseSignatureAlgorithm,
  parseSyslogFacility,
  parseUmask,
  parseUserId,
  type RestartRate,
  type SyslogFacility,
  type UserId,
} from "./values.ts";

export type { Actions } from "./defaults.ts";

/**
 * The whole configuration, defaults applied, validated, frozen. Data-set settings hold their
 * source (a file to read, or inline entries); `loadConfig()` reads the files and builds the
 * tables. Optional fields are absent when OpenDKIM's default is "undefined".
 */
export interface Config {
  /** Mode: sign, verify, or both (default both). */
  readonly mode: Mode;
  /** Socket: where to listen for the MTA; absent when the command line must give it. */
  readonly socket?: SocketSpec;
  /** Domain: the domains the single key signs for (ignored with a KeyTable). */
  readonly domain?: DataSetSource;
  /** Selector of the single key (ignored with a KeyTable). */
  readonly selector?: string;
  /** KeyFile: the single key's file (ignored with a KeyTable). */
  readonly keyFile?: string;
  /** KeyTable: key names to domain, selector and key. */
  readonly keyTable?: DataSetSource;
  /** SigningTable: senders to key names. */
  readonly signingTable?: DataSetSource;
  /** SubDomains: the single key signs subdomains of the Domain entries too. */
  readonly subDomains: boolean;
  /** MultipleSignatures: every matching SigningTable entry signs, not just the first. */
  readonly multipleSignatures: boolean;
  /** InternalHosts: clients whose mail is signed (default 127.0.0.1 and ::1). */
  readonly internalHosts: DataSetSource;
  /** ExternalIgnoreList: hosts allowed to send as our domains without a complaint in the log. */
  readonly externalIgnoreList?: DataSetSource;
  /** PeerList: clients whose mail is neither signed nor verified. */
  readonly peerList?: DataSetSource;
  /** MTA: `{daemon_name}` values whose mail is signed. */
  readonly mta?: DataSetSource;
  /** MacroList: macros that mark a sender as local (file or inline only). */
  readonly macroList?: DataSetSource;
  /** SenderHeaders: header fields that name the sender, in order (default From). */
  readonly senderHeaders?: DataSetSource;
  /** DontSignMailTo: recipients whose mail is never signed. */
  readonly dontSignMailTo?: DataSetSource;
  /** ExemptDomains: sender domains whose mail is ignored entirely. */
  readonly exemptDomains?: DataSetSource;
  /** Canonicalization for signing (default simple/simple). */
  readonly canonicalization: Canonicalization;
  /** SignatureAlgorithm (default rsa-sha256); Ed25519 keys always sign ed25519-sha256. */
  readonly signatureAlgorithm: SigningAlgorithm;
  /** SignHeaders: fields to sign (default RFC 6376 §5.4.1's list). */
  readonly signHeaders?: DataSetSource;
  /** OmitHeaders: fields never to sign (default opendkim.conf(5)'s list). */
  readonly omitHeaders?: DataSetSource;
  /** OversignHeaders: fields signed once more than present (default none). */
  readonly oversignHeaders?: DataSetSource;
  /** SignatureTTL in seconds; 0 (the default) adds no `x=`. */
  readonly signatureTtl: number;
  /** MinimumKeyBits for verification (default 1024). */
  readonly minimumKeyBits: number;
  /** MaximumHeaders: header block limit in bytes (default 65536; 0 means OpenDKIM's "no limit"). */
  readonly maximumHeaders: number;
  /** MaximumHeaderFields (dkimd's own): most header fields per message (default 1000; 0: no limit). */
  readonly maximumHeaderFields: number;
  /** MaximumSignaturesToVerify (default 3; 0 means no limit). */
  readonly maximumSignaturesToVerify: number;
  /** MaximumKeyBits (dkimd's own): larger RSA keys give permerror unimported (default 4096). */
  readonly maximumKeyBits: number;
  /** MaximumSignedBytes: sign at most this much body, adding `l=`; absent signs it all. */
  readonly maximumSignedBytes?: number;
  /** RemoveOldSignatures when signing. */
  readonly removeOldSignatures: boolean;
  /** The On-* actions, On-Default already applied. */
  readonly actions: Actions;
  /** AlwaysAddARHeader: add Authentication-Results to unsigned mail too. */
  readonly alwaysAddArHeader: boolean;
  /** AuthservID (default: the MTA's name). */
  readonly authservId: AuthservId;
  /** AuthservIDWithJobID: append `/jobid` to the authserv-id. */
  readonly authservIdWithJobId: boolean;
  /** NoHeaderB: leave `header.b` out of Authentication-Results. */
  readonly noHeaderB: boolean;
  /** RemoveARAll: remove every Authentication-Results field from RemoveARFrom hosts, not just DKIM ones. */
  readonly removeArAll: boolean;
  /** RemoveARFrom: hosts and `.domains` whose Authentication-Results fields are removed. */
  readonly removeArFrom?: DataSetSource;
  /** SoftwareHeader: add `DKIM-Filter:`. */
  readonly softwareHeader: boolean;
  /** Nameservers to query instead of resolv.conf's. */
  readonly nameservers?: readonly Nameserver[];
  /** DNSTimeout in seconds (default 5). */
  readonly dnsTimeout: number;
  /** DNSMaxAnswerBytes (dkimd's own): larger DNS answers are a temporary error (default 65535). */
  readonly dnsMaxAnswerBytes: number;
  /** QueryCache: cache keys beyond the resolver's own cache. */
  readonly queryCache: boolean;
  /** TestPublicKeys: a file of keys to use instead of DNS (testing only). */
  readonly testPublicKeys?: string;
  /** TestDNSData: names and TXT records to use instead of DNS (testing only). */
  readonly testDnsData?: DataSetSource;
  /** RequireSafeKeys: refuse key files others can read or replace (default true). */
  readonly requireSafeKeys: boolean;
  /** ClockDrift in seconds for `t=`/`x=` checks (default 300). */
  readonly clockDrift: number;
  /** FixCRLF: turn bare CR and LF into CRLF when canonicalizing bodies. */
  readonly fixCrlf: boolean;
  /** Syslog: log to syslog. */
  readonly syslog: boolean;
  /** SyslogFacility (default mail). */
  readonly syslogFacility: SyslogFacility;
  /** SyslogName (default dkimd). */
  readonly syslogName: string;
  /** SyslogSuccess: log successful signing and verification. */
  readonly syslogSuccess: boolean;
  /** LogWhy: log why each message was signed or verified. */
  readonly logWhy: boolean;
  /** LogResults: log each signature's result. */
  readonly logResults: boolean;
  /** UMask for the socket and pid file. */
  readonly umask?: number;
  /** UserID to run as. */
  readonly userId?: UserId;
  /** MetricsListen (dkimd's own): where /metrics and /healthz are served; absent: off. */
  readonly metricsListen?: ListenAddress;
  /** MilterMaxFrameBytes (dkimd's own): a larger milter frame closes its connection (default 1 MiB). */
  readonly milterMaxFrameBytes: number;
  /** MilterMaxConnections (dkimd's own): MTA connections served at once (default 512). */
  readonly milterMaxConnections: number;
  /** MilterIdleTimeout (dkimd's own): seconds an MTA connection may stay silent (default 7210). */
  readonly milterIdleTimeout: number;
  /**
   * MilterShutdownTimeout (dkimd's own): seconds SIGTERM leaves transactions in progress to
   * finish before their connections are closed (default 15).
   */
  readonly milterShutdownTimeout: number;
  /** PidFile to write. */
  readonly pidFile?: string;
  /** AutoRestart on failure. */
  readonly autoRestart: boolean;
  /** AutoRestartCount: most restarts; 0 (the default) means no limit. */
  readonly autoRestartCount: number;
  /** AutoRestartRate: most restarts per period. */
  readonly autoRestartRate?: RestartRate;
  /** Background: detach (default true). */
  readonly background: boolean;
  /** BaseDirectory: relative paths are read from here. */
  readonly baseDirectory?: string;
}

/**
 * The typed value of every setting a reader can produce, before defaults and rules: the
 * {@link Config} fields (except `actions`, which the On-* settings make), plus the On-* settings
 * themselves and `xHeader`, OpenDKIM's old name for SoftwareHeader.
 */
export type SettingValues =
  & { -readonly [K in Exclude<keyof Config, "actions">]-?: NonNullable<Config[K]> }
  & {
    /** On-Default: the action for every outcome, before the specific On-* settings. */
    onDefault: MilterAction;
    /** On-NoSignature. */
    onNoSignature: MilterAction;
    /** On-BadSignature. */
    onBadSignature: MilterAction;
    /** On-KeyNotFound. */
    onKeyNotFound: MilterAction;
    /** On-DNSError. */
    onDnsError: MilterAction;
    /** On-InternalError. */
    onInternalError: MilterAction;
    /** On-Security. */
    onSecurity: MilterAction;
    /** On-SignatureError. */
    onSignatureError: MilterAction;
    /** X-Header, the deprecated name of SoftwareHeader. */
    xHeader: boolean;
  };

/** The name of a setting as readers produce it. */
export type SettingField = keyof SettingValues;

/** One setting value with where it was set. */
export interface RawSetting<F extends SettingField> {
  /** The typed value. */
  readonly value: SettingValues[F];
  /** Where it was set. */
  readonly origin: Origin;
}

/** What a reader produced: each setting's last value, with its origin. */
export type RawSettings = { [F in SettingField]?: RawSetting<F> };

/** Where each setting of a {@link Config} was set, for messages. */
export type ConfigOrigins = { readonly [F in SettingField]?: Origin };

/** Context a value reader gets: where the value is, and a way to warn. */
export interface ValueContext {
  /** The setting's place. */
  readonly origin: Origin;
  /** The setting's name as the user wrote it. */
  readonly name: string;
  /** Records a warning about this value (the place is added). */
  warn(message: string): void;
}

/** An opendkim.conf setting dkimd implements. */
export interface SupportedSetting<F extends SettingField = SettingField> {
  /** The OpenDKIM spelling. */
  readonly name: string;
  /** The field it sets. */
  readonly field: F;
  /** Reads the text of the value. Throws `ValueError` or `SourceError`. */
  readonly parse: (text: string, ctx: ValueContext) => SettingValues[F];
}

/** Longest integer accepted for byte and count limits: C's INT_MAX, as OpenDKIM's `int`. */
const INT_MAX = 2147483647;

/** Largest MinimumKeyBits: a bigger floor would refuse every key verifiers can import (RFC 8301 §3.2 stops at 4096). */
export const MAX_MINIMUM_KEY_BITS = 16384;

/** Largest DNSTimeout in seconds: an MTA gives up on a milter long before an hour. */
export const MAX_DNS_TIMEOUT = 3600;

/** Smallest MaximumKeyBits: RFC 8301 §3.2 forbids accepting RSA keys under 1024 bits anyway. */
export const MIN_MAXIMUM_KEY_BITS = 1024;

/** RFC 8301 §3.2: verifiers MUST be able to validate RSA keys of 1024 to 4096 bits. */
export const RFC8301_VERIFIER_KEY_BITS = 4096;

/** Smallest DNSMaxAnswerBytes: a DNS message over UDP without EDNS0 (RFC 1035 §4.2.1). */
export const MIN_DNS_MAX_ANSWER_BYTES = 512;

/** Largest DNSMaxAnswerBytes: a TCP length prefix cannot announce more (RFC 1035 §4.2.2). */
export const MAX_DNS_MAX_ANSWER_BYTES = 65535;

/**
 * Smallest MilterMaxFrameBytes: a 64 KiB body chunk with its command byte, the frame Postfix and
 * Sendmail send for every full body chunk; a smaller limit would cut every large message.
 */
export const MIN_MILTER_MAX_FRAME_BYTES = 65536;

/** Largest MilterMaxFrameBytes: 16 times Sendmail's largest frame, so one frame stays bounded. */
export const MAX_MILTER_MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** Largest MilterIdleTimeout in seconds: timers cannot wait longer (2^31-1 ms). */
export const MAX_MILTER_IDLE_TIMEOUT = 2_147_483;

const bool = <F extends SettingField>(name: string, field: F): SupportedSetting<F> => ({
  name,
  field,
  parse: (t) => parseBoolean(t) as SettingValues[F],
});
const int = <F extends SettingField>(
  name: string,
  field: F,
  min: number,
  max: number,
): SupportedSetting<F> => ({
  name,
  field,
  parse: (t) => parseIntegerIn(t, min, max) as SettingValues[F],
});
const str = <F extends SettingField>(name: string, field: F): SupportedSetting<F> => ({
  name,
  field,
  parse: (t) => t as SettingValues[F],
});
const dataset = <F extends SettingField>(name: string, field: F): SupportedSetting<F> => ({
  name,
  field,
  parse: (t, ctx) => parseDataSet(t, ctx) as SettingValues[F],
});
const action = <F extends SettingField>(name: string, field: F): SupportedSetting<F> => ({
  name,
  field,
  parse: (t) => parseAction(t) as SettingValues[F],
});

/**
 * Reads a data-set value and warns when an inline list of one element looks like a file name:
 * OpenDKIM reads `KeyTable key.table` as a one-element list, not a file.
 */
function parseDataSet(text: string, ctx: ValueContext): DataSetSource {
  const source = parseDataSetSpec(text, ctx.origin, ctx.name);
  if (source.kind === "inline" && source.entries.length === 1) {
    const only = source.entries[0].key;
    if (
      source.entries[0].value === undefined &&
      (/^\.{0,2}\//.test(only) || /\.(table|txt|conf|list|hosts)$/i.test(only) ||
        (only.includes("/") && !/^[!\[\]0-9A-Fa-f:./]+$/.test(only)))
    ) {
      ctx.warn(
        `"${only}" is read as a one-element list, as OpenDKIM reads it; write ` +
          `"file:${only}" or an absolute path to read a file`,
      );
    }
  }
  return source;
}

/**
 * Every opendkim.conf setting dkimd implements, by OpenDKIM name: issue 4's list with the
 * readers for their types.
 */
export const SUPPORTED_SETTINGS: readonly SupportedSetting[] = [
  { name: "Mode", field: "mode", parse: (t) => parseMode(t) },
  { name: "Socket", field: "socket", parse: (t) => parseSocketSpec(t) },
  dataset("Domain", "domain"),
  str("Selector", "selector"),
  str("KeyFile", "keyFile"),
  dataset("KeyTable", "keyTable"),
  dataset("SigningTable", "signingTable"),
  bool("SubDomains", "subDomains"),
  bool("MultipleSignatures", "multipleSignatures"),
  dataset("InternalHosts", "internalHosts"),
  dataset("ExternalIgnoreList", "externalIgnoreList"),
  dataset("PeerList", "peerList"),
  dataset("MTA", "mta"),
  dataset("MacroList", "macroList"),
  dataset("SenderHeaders", "senderHeaders"),
  dataset("DontSignMailTo", "dontSignMailTo"),
  dataset("ExemptDomains", "exemptDomains"),
  { name: "Canonicalization", field: "canonicalization", parse: (t) => parseCanonicalization(t) },
  {
    name: "SignatureAlgorithm",
    field: "signatureAlgorithm",
    parse: (t) => parseSignatureAlgorithm(t),
  },
  dataset("SignHeaders", "signHeaders"),
  dataset("OmitHeaders", "omitHeaders"),
  dataset("OversignHeaders", "oversignHeaders"),
  int("SignatureTTL", "signatureTtl", 0, INT_MAX),
  int("MinimumKeyBits", "minimumKeyBits", 0, MAX_MINIMUM_KEY_BITS),
  int("MaximumHeaders", "maximumHeaders", 0, INT_MAX),
  int("MaximumHeaderFields", "maximumHeaderFields", 0, INT_MAX),
  int("MaximumSignaturesToVerify", "maximumSignaturesToVerify", 0, INT_MAX),
  int("MaximumKeyBits", "maximumKeyBits", MIN_MAXIMUM_KEY_BITS, MAX_MINIMUM_KEY_BITS),
  int("MaximumSignedBytes", "maximumSignedBytes", 0, INT_MAX),
  bool("RemoveOldSignatures", "removeOldSignatures"),
  action("On-Default", "onDefault"),
  action("On-BadSignature", "onBadSignature"),
  action("On-DNSError", "onDnsError"),
  action("On-InternalError", "onInternalError"),
  action("On-KeyNotFound", "onKeyNotFound"),
  action("On-NoSignature", "onNoSignature"),
  action("On-Security", "onSecurity"),
  action("On-SignatureError", "onSignatureError"),
  bool("AlwaysAddARHeader", "alwaysAddArHeader"),
  { name: "AuthservID", field: "authservId", parse: (t) => parseAuthservId(t) },
  bool("AuthservIDWithJobID", "authservIdWithJobId"),
  bool("NoHeaderB", "noHeaderB"),
  bool("RemoveARAll", "removeArAll"),
  dataset("RemoveARFrom", "removeArFrom"),
  bool("SoftwareHeader", "softwareHeader"),
  bool("X-Header", "xHeader"),
  { name: "Nameservers", field: "nameservers", parse: (t) => parseNameserverList(t) },
  int("DNSTimeout", "dnsTimeout", 0, MAX_DNS_TIMEOUT),
  int("DNSMaxAnswerBytes", "dnsMaxAnswerBytes", MIN_DNS_MAX_ANSWER_BYTES, MAX_DNS_MAX_ANSWER_BYTES),
  bool("QueryCache", "queryCache"),
  str("TestPublicKeys", "testPublicKeys"),
  dataset("TestDNSData", "testDnsData"),
  bool("RequireSafeKeys", "requireSafeKeys"),
  int("ClockDrift", "clockDrift", 0, INT_MAX),
  bool("FixCRLF", "fixCrlf"),
  bool("Syslog", "syslog"),
  { name: "SyslogFacility", field: "syslogFacility", parse: (t) => parseSyslogFacility(t) },
  str("SyslogName", "syslogName"),
  bool("SyslogSuccess", "syslogSuccess"),
  bool("LogWhy", "logWhy"),
  bool("LogResults", "logResults"),
  {
    name: "UMask",
    field: "umask",
    parse: (t, ctx) => {
      const { value, note } = parseUmask(t);
      if (note) ctx.warn(note);
      return value;
    },
  },
  { name: "UserID", field: "userId", parse: (t) => parseUserId(t) },
  str("PidFile", "pidFile"),
  { name: "MetricsListen", field: "metricsListen", parse: (t) => parseListenAddress(t) },
  int(
    "MilterMaxFrameBytes",
    "milterMaxFrameBytes",
    MIN_MILTER_MAX_FRAME_BYTES,
    MAX_MILTER_MAX_FRAME_BYTES,
  ),
  int("MilterMaxConnections", "milterMaxConnections", 1, INT_MAX),
  int("MilterIdleTimeout", "milterIdleTimeout", 1, MAX_MILTER_IDLE_TIMEOUT),
  int("MilterShutdownTimeout", "milterShutdownTimeout", 1, MAX_MILTER_IDLE_TIMEOUT),
  bool("AutoRestart", "autoRestart"),
  int("AutoRestartCount", "autoRestartCount", 0, INT_MAX),
  { name: "AutoRestartRate", field: "autoRestartRate", parse: (t) => parseRestartRate(t) },
  bool("Background", "background"),
  str("BaseDirectory", "baseDirectory"),
];

/**
 * OpenDKIM settings dkimd does not implement: a warning naming the setting and line, and
 * otherwise ignored. From OpenDKIM's `opendkim-config.h` (every build option) and the settings
 * removed in OpenDKIM 2.10 that old configurations still carry, with a note where dkimd
 * offers something instead.
 */
export const IGNORED_SETTINGS: ReadonlyMap<string, string> = new Map([
  ...[
    "AllowSHA1Only",
    "BodyLengthDB",
    "BogusKey",
    "CaptureUnknownErrors",
    "ChangeRootDirectory",
    "DefaultSender",
    "Diagnostics",
    "DiagnosticDirectory",
    "DisableCryptoInit",
    "DNSConnect",
    "DomainKeysCompat",
    "EnableCoredumps",
    "IdentityHeader",
    "IdentityHeaderRemove",
    "IgnoreMalformedMail",
    "KeepAuthResults",
    "KeepTemporaryFiles",
    "MilterDebug",
    "Minimum",
    "MTACommand",
    "MustBeSigned",
    "On-ReputationError",
    "POPDBFile",
    "Quarantine",
    "RedirectFailuresTo",
    "ReplaceHeaders",
    "ReplaceRules",
    "ReportAddress",
    "ReportBccAddress",
    "RequestReports",
    "RequiredHeaders",
    "ResignAll",
    "ResignMailTo",
    "ResolverConfiguration",
    "ResolverTracing",
    "SelectCanonicalizationHeader",
    "SenderMacro",
    "SendReports",
    "SingleAuthResult",
    "SMTPURI",
    "SoftStart",
    "StrictHeaders",
    "StrictTestMode",
    "TemporaryDirectory",
    "TrustSignaturesFrom",
    "UnprotectedKey",
    "WeakSyntaxChecks",
  ].map((n) => [n, ""] as const),
  ...["ATPSDomains", "ATPSHashAlgorithm"].map((n) =>
    [n, "ATPS (RFC 6541) is experimental"] as const
  ),
  ...[
    "VBR-Certifiers",
    "VBR-PurgeFields",
    "VBR-TrustedCertifiers",
    "VBR-TrustedCertifiersOnly",
    "VBR-Type",
  ]
    .map((n) => [n, "VBR (RFC 5518) is not implemented"] as const),
  ...[
    "LDAPAuthMechanism",
    "LDAPAuthName",
    "LDAPAuthRealm",
    "LDAPAuthUser",
    "LDAPBindPassword",
    "LDAPBindUser",
    "LDAPDisableCache",
    "LDAPKeepaliveIdle",
    "LDAPKeepaliveInterval",
    "LDAPKeepaliveProbes",
    "LDAPSoftStart",
    "LDAPTimeout",
    "LDAPUseTLS",
  ].map((n) => [n, "LDAP data sets are not supported"] as const),
  ...[
    "FinalPolicyScript",
    "LuaOnlySigning",
    "ScreenPolicyScript",
    "SetupPolicyScript",
    "StatisticsPolicyScript",
  ].map((n) => [n, "Lua policy scripts are not supported"] as const),
  ...["Statistics", "StatisticsName", "StatisticsPrefix"].map((n) =>
    [n, "statistics are not collected"] as const
  ),
  ...["FlowData", "FlowDataFactor", "FlowDataTTL", "RateLimits"].map((n) =>
    [n, "rate limiting is not implemented"] as const
  ),
  ...[
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
  ].map((n) => [n, "reputation checks are not implemented"] as const),
  ...["TrustAnchorFile", "UnboundConfigFile"].map((n) =>
    [n, "dkimd does not validate DNSSEC; use a validating resolver in Nameservers"] as const
  ),
  ...[
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
  ].map((n) => [n, "removed in OpenDKIM 2.10 (ADSP, RFC 5617, is historic)"] as const),
]);

/** The opendkim.conf setting that reads another file: `Include` (opendkim.conf(5)). */
export const INCLUDE_SETTING = "Include";

const SUPPORTED_BY_LOWER = new Map(SUPPORTED_SETTINGS.map((s) => [s.name.toLowerCase(), s]));
const IGNORED_BY_LOWER = new Map([...IGNORED_SETTINGS.keys()].map((n) => [n.toLowerCase(), n]));

/** Finds an implemented setting by name, case-insensitively as OpenDKIM does. */
export function findSupportedSetting(name: string): SupportedSetting | undefined {
  return SUPPORTED_BY_LOWER.get(name.toLowerCase());
}

/** The OpenDKIM spelling of an ignored setting, found case-insensitively. */
export function findIgnoredSetting(name: string): string | undefined {
  return IGNORED_BY_LOWER.get(name.toLowerCase());
}

/** Every setting name OpenDKIM knows, in OpenDKIM's spelling: the candidates for "did you mean". */
export function knownSettingNames(): string[] {
  return [INCLUDE_SETTING, ...SUPPORTED_SETTINGS.map((s) => s.name), ...IGNORED_SETTINGS.keys()];
}

function editDistance(a: string, b: string): number {
  const prev = new Array(b.length + 1).fill(0).map((_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length];
}

/** Longest name compared for suggestions: bounds the quadratic edit distance. */
export const MAX_SUGGEST_LENGTH = 64;

/**
 * The known name closest to `name` (case-insensitive edit distance), when it is close enough
 * to be a likely typo: at most 2 edits, or a third of the name; failing that, the one name that
 * `name` abbreviates.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closestName, knownSettingNames } from "./schema.ts";
 * assert.equal(closestName("SigningTabel", knownSettingNames()), "SigningTable");
 * assert.equal(closestName("keytable", knownSettingNames()), "KeyTable");
 * assert.equal(closestName("Frobnicate", knownSettingNames()), undefined);
 * assert.equal(closestName("badSig", ["badSignature", "dnsError"]), "badSignature");
 * ```
 */
export function closestName(name: string, candidates: readonly string[]): string | undefined {
  if (name.length > MAX_SUGGEST_LENGTH) return undefined;
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(lower, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const limit = Math.max(2, Math.floor(name.length / 3));
  if (bestDistance <= limit) return best;
  // An abbreviation ("badSig") is far in edits but plain to a reader.
  const prefixed = lower.length >= 3
    ? candidates.filter((c) => c.toLowerCase().startsWith(lower))
    : [];
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/** The result of {@link buildConfig}. */
export interface BuiltConfig {
  /** The configuration, frozen. */
  readonly config: Config;
  /** Where each setting was set. */
  readonly origins: ConfigOrigins;
  /** Warnings about settings that are legal but probably wrong, or ignored. */
  readonly warnings: readonly ConfigWarning[];
  /** Errors in the rules between settings; the caller throws them. */
  readonly errors: readonly SourceError[];
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}

/**
 * Applies OpenDKIM's defaults and the rules between settings to what a reader produced, and
 * freezes the result. `file` names the configuration for rule errors that have no line of their
 * own. Rules (opendkim.conf(5), Mode, and OpenDKIM's `dkimf_config_load()`):
 * - with signing on: SigningTable requires KeyTable; KeyTable requires SigningTable; KeyFile and
 *   Selector go together; Domain requires both (all errors, as in OpenDKIM); Domain, KeyFile
 *   and Selector next to a KeyTable are ignored (a warning); no key at all means nothing is
 *   signed (a warning: Debian's stock configuration is like that);
 * - On-Default applies first, the other On-* settings after it, wherever they are written;
 * - X-Header is the old name of SoftwareHeader (a warning);
 * - rsa-sha1 signing draws a warning (RFC 8301 §3.1: signers MUST use rsa-sha256);
 * - DNSTimeout 0 ("wait forever") draws a warning and the default, since dkimd bounds every wait.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildConfig } from "./schema.ts";
 * const at = { file: "/etc/opendkim.conf", line: 1 };
 * const { config, errors } = buildConfig({
 *   onDefault: { value: "reject", origin: at },
 *   onDnsError: { value: "tempfail", origin: at },
 *   mode: { value: { sign: false, verify: true }, origin: at },
 * }, "/etc/opendkim.conf");
 * assert.equal(errors.length, 0);
 * assert.equal(config.actions.badSignature, "reject");
 * assert.equal(config.actions.dnsError, "tempfail");
 * assert.equal(config.canonicalization.header, "simple");
 * assert.ok(Object.isFrozen(config.actions));
 * ```
 */
export function buildConfig(raw: RawSettings, file: string): BuiltConfig {
  const warnings: ConfigWarning[] = [];
  const errors: SourceError[] = [];
  const origins: { [F in SettingField]?: Origin } = {};
  for (const [field, setting] of Object.entries(raw)) {
    origins[field as SettingField] = (setting as RawSetting<SettingField>).origin;
  }
  const get = <F extends SettingField>(f: F): SettingValues[F] | undefined => raw[f]?.value;
  const at = (f: SettingField): Origin => raw[f]?.origin ?? { file, line: 1 };
  const warn = (f: SettingField, setting: string, text: string) =>
    warnings.push({
      message: raw[f]
        ? `"${setting}" at ${formatOrigin(at(f))}: ${text}`
        : `"${setting}" (not set: the default applies) in ${file}: ${text}`,
      origin: at(f),
      setting,
    });
  const fail = (f: SettingField, setting: string, text: string) =>
    errors.push(new ConfigError(`Invalid "${setting}"`, at(f), text, { setting }));

  const actions: Record<keyof Actions, MilterAction> = { ...DEFAULT_ACTIONS };
  const onDefault = get("onDefault");
  if (onDefault) {
    for (const k of Object.keys(actions) as (keyof Actions)[]) {
      actions[k] = onDefault;
    }
  }
  const specific: [SettingField, keyof Actions][] = [
    ["onNoSignature", "noSignature"],
    ["onBadSignature", "badSignature"],
    ["onKeyNotFound", "keyNotFound"],
    ["onDnsError", "dnsError"],
    ["onInternalError", "internalError"],
    ["onSecurity", "security"],
    ["onSignatureError", "signatureError"],
  ];
  for (const [f, k] of specific) {
    const v = get(f) as MilterAction | undefined;
    if (v) actions[k] = v;
  }

  let softwareHeader = get("softwareHeader") ?? false;
  if (raw.xHeader) {
    warn("xHeader", "X-Header", 'is the deprecated name of "SoftwareHeader"; use that instead');
    if (raw.softwareHeader === undefined) softwareHeader = raw.xHeader.value;
  }

  const signatureAlgorithm = get("signatureAlgorithm") ?? DEFAULT_SIGNATURE_ALGORITHM;
  if (signatureAlgorithm === "rsa-sha1") {
    warn(
      "signatureAlgorithm",
      "SignatureAlgorithm",
      "signing with rsa-sha1 is allowed, as OpenDKIM allows it, but RFC 8301 §3.1 says " +
        "signers MUST use rsa-sha256, and many verifiers now fail rsa-sha1 signatures",
    );
  }

  let dnsTimeout = get("dnsTimeout") ?? DEFAULT_DNS_TIMEOUT;
  if (dnsTimeout === 0) {
    warn(
      "dnsTimeout",
      "DNSTimeout",
      `0 (wait forever) is not supported; dkimd bounds every DNS wait and uses ` +
        `${DEFAULT_DNS_TIMEOUT} seconds`,
    );
    dnsTimeout = DEFAULT_DNS_TIMEOUT;
  }

  const maximumKeyBits = get("maximumKeyBits") ?? DEFAULT_MAXIMUM_KEY_BITS;
  if (maximumKeyBits < RFC8301_VERIFIER_KEY_BITS) {
    warn(
      "maximumKeyBits",
      "MaximumKeyBits",
      `RFC 8301 §3.2 says verifiers MUST validate keys up to ${RFC8301_VERIFIER_KEY_BITS} bits; ` +
        `signatures with larger keys than ${maximumKeyBits} bits get permerror`,
    );
  }
  const minimumKeyBits = get("minimumKeyBits") ?? DEFAULT_MINIMUM_KEY_BITS;
  if (minimumKeyBits > maximumKeyBits) {
    warn(
      "minimumKeyBits",
      "MinimumKeyBits",
      `is above "MaximumKeyBits" (${maximumKeyBits}), so no RSA signature can pass`,
    );
  }

  const mode = get("mode") ?? DEFAULT_MODE;
  checkSigningSettings(raw, mode, warn, fail);

  for (const f of ["macroList"] as const) {
    const src = get(f);
    if (src && src.kind === "refile") {
      fail(f, "MacroList", 'must be a file or an inline list ("refile:" is not allowed)');
    }
  }
  const refileOnly: [SettingField, string][] = [
    ["domain", "Domain"],
    ["keyTable", "KeyTable"],
    ["internalHosts", "InternalHosts"],
    ["externalIgnoreList", "ExternalIgnoreList"],
    ["peerList", "PeerList"],
    ["mta", "MTA"],
    ["senderHeaders", "SenderHeaders"],
    ["dontSignMailTo", "DontSignMailTo"],
    ["exemptDomains", "ExemptDomains"],
    ["signHeaders", "SignHeaders"],
    ["omitHeaders", "OmitHeaders"],
    ["oversignHeaders", "OversignHeaders"],
    ["removeArFrom", "RemoveARFrom"],
    ["testDnsData", "TestDNSData"],
  ];
  for (const [f, name] of refileOnly) {
    const src = get(f) as DataSetSource | undefined;
    if (src && (src.kind === "refile" || (src.kind === "inline" && src.patterns))) {
      fail(f, name, 'wildcard patterns ("refile:") are supported only for SigningTable');
    }
  }

  const config: Config = {
    mode,
    ...opt("socket", get("socket")),
    ...opt("domain", get("domain")),
    ...opt("selector", get("selector")),
    ...opt("keyFile", get("keyFile")),
    ...opt("keyTable", get("keyTable")),
    ...opt("signingTable", get("signingTable")),
    subDomains: get("subDomains") ?? false,
    multipleSignatures: get("multipleSignatures") ?? false,
    internalHosts: get("internalHosts") ?? DEFAULT_INTERNAL_HOSTS_SOURCE,
    ...opt("externalIgnoreList", get("externalIgnoreList")),
    ...opt("peerList", get("peerList")),
    ...opt("mta", get("mta")),
    ...opt("macroList", get("macroList")),
    ...opt("senderHeaders", get("senderHeaders")),
    ...opt("dontSignMailTo", get("dontSignMailTo")),
    ...opt("exemptDomains", get("exemptDomains")),
    canonicalization: get("canonicalization") ?? DEFAULT_CANONICALIZATION,
    signatureAlgorithm,
    ...opt("signHeaders", get("signHeaders")),
    ...opt("omitHeaders", get("omitHeaders")),
    ...opt("oversignHeaders", get("oversignHeaders")),
    signatureTtl: get("signatureTtl") ?? 0,
    minimumKeyBits,
    maximumHeaders: get("maximumHeaders") ?? DEFAULT_MAXIMUM_HEADERS,
    maximumHeaderFields: get("maximumHeaderFields") ?? DEFAULT_MAXIMUM_HEADER_FIELDS,
    maximumSignaturesToVerify: get("maximumSignaturesToVerify") ??
      DEFAULT_MAXIMUM_SIGNATURES_TO_VERIFY,
    maximumKeyBits,
    ...opt("maximumSignedBytes", get("maximumSignedBytes")),
    removeOldSignatures: get("removeOldSignatures") ?? false,
    actions,
    alwaysAddArHeader: get("alwaysAddArHeader") ?? false,
    authservId: get("authservId") ?? { kind: "mta" },
    authservIdWithJobId: get("authservIdWithJobId") ?? false,
    noHeaderB: get("noHeaderB") ?? false,
    removeArAll: get("removeArAll") ?? false,
    ...opt("removeArFrom", get("removeArFrom")),
    softwareHeader,
    ...opt("nameservers", get("nameservers")),
    dnsTimeout,
    dnsMaxAnswerBytes: get("dnsMaxAnswerBytes") ?? DEFAULT_DNS_MAX_ANSWER_BYTES,
    queryCache: get("queryCache") ?? false,
    ...opt("testPublicKeys", get("testPublicKeys")),
    ...opt("testDnsData", get("testDnsData")),
    requireSafeKeys: get("requireSafeKeys") ?? DEFAULT_REQUIRE_SAFE_KEYS,
    clockDrift: get("clockDrift") ?? DEFAULT_CLOCK_DRIFT,
    fixCrlf: get("fixCrlf") ?? false,
    syslog: get("syslog") ?? false,
    syslogFacility: get("syslogFacility") ?? DEFAULT_SYSLOG_FACILITY,
    syslogName: get("syslogName") ?? DEFAULT_SYSLOG_NAME,
    syslogSuccess: get("syslogSuccess") ?? false,
    logWhy: get("logWhy") ?? false,
    logResults: get("logResults") ?? false,
    ...opt("umask", get("umask")),
    ...opt("userId", get("userId")),
    ...opt("pidFile", get("pidFile")),
    ...opt("metricsListen", get("metricsListen")),
    milterMaxFrameBytes: get("milterMaxFrameBytes") ?? DEFAULT_MILTER_MAX_FRAME_BYTES,
    milterMaxConnections: get("milterMaxConnections") ?? DEFAULT_MILTER_MAX_CONNECTIONS,
    milterIdleTimeout: get("milterIdleTimeout") ?? DEFAULT_MILTER_IDLE_TIMEOUT,
    milterShutdownTimeout: get("milterShutdownTimeout") ?? DEFAULT_MILTER_SHUTDOWN_TIMEOUT,
    autoRestart: get("autoRestart") ?? false,
    autoRestartCount: get("autoRestartCount") ?? 0,
    ...opt("autoRestartRate", get("autoRestartRate")),
    background: get("background") ?? DEFAULT_BACKGROUND,
    ...opt("baseDirectory", get("baseDirectory")),
  };
  return { config: deepFreeze(config), origins, warnings, errors };
}

function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function checkSigningSettings(
  raw: RawSettings,
  mode: Mode,
  warn: (f: SettingField, setting: string, text: string) => void,
  fail: (f: SettingField, setting: string, text: string) => void,
): void {
  const has = (f: SettingField) => raw[f] !== undefined;
  const single: [SettingField, string][] = [
    ["domain", "Domain"],
    ["keyFile", "KeyFile"],
    ["selector", "Selector"],
  ];
  if (!mode.sign) {
    for (
      const [f, name] of [...single, ["keyTable", "KeyTable"], [
        "signingTable",
        "SigningTable",
      ]] as [SettingField, string][]
    ) {
      if (has(f)) warn(f, name, 'has no effect: Mode does not include "s", so nothing is signed');
    }
    return;
  }
  if (has("signingTable") && !has("keyTable")) {
    fail("signingTable", "SigningTable", 'requires "KeyTable" (opendkim.conf(5), Mode)');
  }
  if (has("keyTable")) {
    if (!has("signingTable")) {
      fail("keyTable", "KeyTable", 'requires "SigningTable" (opendkim.conf(5), Mode)');
    }
    for (const [f, name] of single) {
      if (has(f)) warn(f, name, 'is ignored because "KeyTable" is set (opendkim.conf(5))');
    }
    return;
  }
  if (has("keyFile") !== has("selector")) {
    const [f, name, other] = has("keyFile")
      ? ["keyFile" as const, "KeyFile", "Selector"]
      : ["selector" as const, "Selector", "KeyFile"];
    fail(f, name, `requires "${other}": KeyFile and Selector go together (opendkim.conf(5), Mode)`);
    return;
  }
  if (has("domain") && !has("keyFile")) {
    fail("domain", "Domain", 'requires "KeyFile" and "Selector" (opendkim.conf(5), Mode)');
    return;
  }
  if (has("keyFile") && !has("domain")) {
    warn("keyFile", "KeyFile", 'and "Selector" are set but "Domain" is not, so no mail is signed');
    return;
  }
  if (!has("keyFile")) {
    warn(
      "mode",
      "Mode",
      'includes "s" but no signing key is configured (Domain, KeyFile and Selector, or ' +
        "KeyTable and SigningTable); mail is only verified",
    );
  }
}

/** What a configuration reader returns: the configuration, where each setting was set, warnings. */
export interface ReadResult {
  /** The configuration, frozen. */
  readonly config: Config;
  /** Where each setting was set. */
  readonly origins: ConfigOrigins;
  /** Warnings, each naming its place. */
  readonly warnings: readonly ConfigWarning[];
  /**
   * For inline data sets whose entries were written on lines of their own (YAML lists), the
   * place of each entry, by index; absent entries share the setting's origin.
   */
  readonly entryOrigins?: { readonly [F in SettingField]?: readonly Origin[] };
}
