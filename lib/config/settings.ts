/**
 * The one table of settings: every setting dkimd reads, with every fact about it (the
 * opendkim.conf name, the `Config` field it sets, its kind of value, its default, a line
 * of documentation). Everything else is derived from this table: lookup by name, the defaults
 * `buildConfig()` applies, the data-set list the loader reads, which settings accept `refile:`,
 * the YAML keys both ways, the order `config convert` writes, the On-* names, "did you mean",
 * and `dkimd check-config --settings` (and with it the README's reference). OpenDKIM settings
 * dkimd does not implement are in `unimplemented_settings.ts`.
 *
 * A new setting is one entry here (plus its line in `Config`, which the table's type demands)
 * and the code that uses it.
 *
 * @module
 */

import { MIN_RSA_BITS } from "../crypto/key_type.ts";
import { formatNameserver, parseNameserver, parseNameserverList } from "../dns/nameserver.ts";
import { MAX_ROTATION_SECONDS, parseRotationKeyTypes } from "../rotate/rotation_settings.ts";
import { SIGNING_ALGORITHMS } from "../policy/key_table.ts";
import {
  DEFAULT_TABLE_CACHE_TTL_SECONDS,
  DEFAULT_TABLE_QUERY_TIMEOUT_SECONDS,
  DEFAULT_TABLE_STALE_SECONDS,
} from "../tables/cached_table.ts";
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
  DEFAULT_MTA_COMMAND,
  DEFAULT_REQUIRE_SAFE_KEYS,
  DEFAULT_SIGNATURE_ALGORITHM,
  DEFAULT_SYSLOG_FACILITY,
  DEFAULT_SYSLOG_NAME,
} from "./defaults.ts";
import { PARTIAL_BODY_RESULT_DEFAULT, PARTIAL_BODY_RESULTS } from "../dkim/acceptance.ts";
import {
  BOGUS_KEY_DEFAULT,
  KEY_SECURITY_ACTIONS,
  UNPROTECTED_KEY_DEFAULT,
} from "../dkim/key_security.ts";
import { ARC_MODE_NONE, formatArcMode, parseArcMode } from "./arc_mode.ts";
import { formatListenAddress, parseListenAddress } from "./listen_address.ts";
import type { SettingField, SettingValues } from "./schema.ts";
import {
  ACTION,
  BOOL,
  custom,
  dataSet,
  type DataSetType,
  integer,
  oneOf,
  seconds,
  type SettingKind,
  TEXT,
} from "./setting_kind.ts";
import { formatSocketSpec, parseSocketSpec } from "../milter/socket_spec.ts";
import { UNIMPLEMENTED_SETTINGS } from "./unimplemented_settings.ts";
import { CRYPTO_BACKEND_DEFAULT, CRYPTO_BACKENDS } from "../crypto/crypto_backend.ts";
import {
  formatAuthservId,
  formatCanonicalization,
  formatMode,
  formatRestartRate,
  formatUmask,
  formatUserId,
  parseAuthservId,
  parseCanonicalization,
  parseCryptoBackend,
  parseKeySecurityAction,
  parseMode,
  parsePartialBodyResult,
  parseRestartRate,
  parseSignatureAlgorithm,
  parseSyslogFacility,
  parseUmask,
  parseUnauthorizedSignerAction,
  parseUserId,
  SYSLOG_FACILITIES,
  UNAUTHORIZED_SIGNER_ACTIONS,
  ValueError,
} from "./values.ts";

/** Where the reference lists a setting; `config convert` writes service, process, logging first. */
export type SettingGroup =
  | "service"
  | "signing"
  | "hosts"
  | "signatures"
  | "limits"
  | "results"
  | "dns"
  | "tables"
  | "ldap"
  | "rotation"
  | "other"
  | "arc"
  | "logging"
  | "process";

/** How every OpenDKIM On-* setting departs: the enhanced status codes of its replies. */
const ON_REPLY_CODES =
  "reject says 5.7.1 and tempfail 4.7.1 (RFC 3463: delivery not authorized); OpenDKIM says 5.7.0 and 4.7.0";

/** Everything about one setting. The table is keyed by the field it sets. */
export interface Setting<F extends SettingField = SettingField> {
  /** The opendkim.conf name in OpenDKIM's spelling; looked up case-insensitively. */
  readonly name: string;
  /** Where the reference lists it. */
  readonly group: SettingGroup;
  /** How its value is written and read. */
  readonly kind: SettingKind<SettingValues[F]>;
  /** The value when the setting is not given; absent: `Config` leaves the field out. */
  readonly default?: SettingValues[F];
  /** The default for people, where the value does not say it (or code applies one). */
  readonly defaultText?: string;
  /** One line for people. */
  readonly doc: string;
  /** True for dkimd's own settings, which OpenDKIM does not have. */
  readonly dkimd?: true;
  /**
   * Where dkimd departs from OpenDKIM 2.11's setting of the name, on purpose or as a limit: the
   * reference reads "same, except" and this. Absent on an OpenDKIM setting: the same as OpenDKIM.
   */
  readonly opendkim?: string;
  /** On-* settings: the action they set (`default`: On-Default, every action at once). */
  readonly action?: keyof Actions | "default";
  /** An old name: the setting it stands for (X-Header is SoftwareHeader). */
  readonly aliasOf?: SettingField;
}

/** Longest integer accepted for byte and count limits: C's INT_MAX, as OpenDKIM's `int`. */
const INT_MAX = 2147483647;

/** Largest MinimumKeyBits: a bigger floor would refuse every key verifiers can import (RFC 8301 §3.2 stops at 4096). */
export const MAX_MINIMUM_KEY_BITS = 16384;

/** Largest DNSTimeout in seconds: an MTA gives up on a milter long before an hour. */
export const MAX_DNS_TIMEOUT = 3600;

/** LDAPTimeout's default in seconds (`DKIMF_LDAP_DEFTIMEOUT` in OpenDKIM's opendkim-db.c). */
const DEFAULT_LDAP_TIMEOUT_SECONDS = 5;

/**
 * Reads LDAPAuthMechanism: empty, `none` and `simple` are a simple bind, as OpenDKIM reads them
 * (`dkimf_db_open_ldap()`); a SASL mechanism is refused here, at load, not at the first lookup.
 */
function parseLdapAuthMechanism(text: string): "simple" {
  if (["", "none", "simple"].includes(text.trim().toLowerCase())) return "simple";
  throw new ValueError(
    `unsupported mechanism "${text}": dkimd binds with simple authentication only (no SASL)`,
  );
}

/** Smallest MaximumKeyBits: RFC 8301 §3.2 forbids accepting RSA keys under 1024 bits anyway. */
export const MIN_MAXIMUM_KEY_BITS = MIN_RSA_BITS;

/** Smallest DNSMaxAnswerBytes: what a DNS message over UDP without EDNS0 holds (RFC 1035 §4.2.1). */
export const MIN_DNS_MAX_ANSWER_BYTES = 512;

/** Largest DNSMaxAnswerBytes: a TCP length prefix cannot announce a larger message (RFC 1035 §4.2.2). */
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

const FILE_OR_LIST: readonly DataSetType[] = ["file", "csl"];

/** DataSetTLS's values, from none to libpq's verify-full. */
const DATA_SET_TLS_MODES = ["no", "prefer", "require", "verify"] as const;

/** Reads DataSetTLS, in any case. */
function parseDataSetTls(text: string): typeof DATA_SET_TLS_MODES[number] {
  const t = text.trim().toLowerCase();
  const found = DATA_SET_TLS_MODES.find((m) => m === t);
  if (!found) {
    throw new ValueError(`unknown mode "${text}": expected ${DATA_SET_TLS_MODES.join(", ")}`);
  }
  return found;
}

/** Longest DataSet* time in seconds: a day, past which an answer or a wait is surely a mistake. */
export const MAX_DATA_SET_SECONDS = 86_400;

/** Default DataSetConnectTimeout in seconds. */
export const DEFAULT_TABLE_CONNECT_TIMEOUT_SECONDS = 5;
/** The sets OpenDKIM asks by key while mail flows, which can live in a database (issue 14). */
const FILE_LIST_OR_DATABASE: readonly DataSetType[] = ["file", "csl", "dsn", "ldap"];
const PATTERNS_OR_DATABASE: readonly DataSetType[] = ["file", "refile", "csl", "dsn", "ldap"];
/**
 * ChangeRootDirectory's reader: a refusal. Deno has no chroot(2), and a warning would leave an
 * administrator believing the filter confined; systemd confines it better from outside.
 */
function refuseChroot(dir: string): never {
  throw new ValueError(
    `dkimd cannot change its root directory (Deno has no chroot); remove it and confine the ` +
      `service with systemd instead: RootDirectory=${dir} (with BindReadOnlyPaths= for the keys ` +
      `and configuration), or TemporaryFileSystem=/ with BindReadOnlyPaths=, in a drop-in for ` +
      `dkimd.service (systemd.exec(5))`,
  );
}
const COUNT = integer(0, INT_MAX);

/**
 * Every setting dkimd implements, keyed by the field it sets, in the reference's order. The
 * On-* settings keep opendkim.conf(5)'s order (On-Default, then alphabetical), as the
 * "did you mean" candidates always had it.
 */
export const SETTINGS: { readonly [F in SettingField]: Setting<F> } = {
  mode: {
    name: "Mode",
    group: "service",
    kind: custom({ syntax: "s, v or sv", parse: parseMode, format: formatMode }),
    default: DEFAULT_MODE,
    doc: "Sign mail from internal hosts and authenticated senders (s), verify the rest (v).",
  },
  socket: {
    name: "Socket",
    group: "service",
    kind: custom({
      syntax: "local:PATH, inet:PORT@HOST or inet6:PORT@HOST",
      parse: parseSocketSpec,
      format: formatSocketSpec,
    }),
    defaultText: "none: give -p",
    doc: "Where to listen for the MTA.",
  },
  canonicalization: {
    name: "Canonicalization",
    group: "signing",
    kind: custom({
      syntax: "HEADER[/BODY], each simple or relaxed",
      parse: parseCanonicalization,
      format: formatCanonicalization,
    }),
    default: DEFAULT_CANONICALIZATION,
    doc: "Canonicalization of new signatures (c=).",
  },
  selectCanonicalizationHeader: {
    name: "SelectCanonicalizationHeader",
    group: "signing",
    kind: TEXT,
    defaultText: "none: no field chooses",
    doc: "A header field (HEADER[/BODY]) that overrides Canonicalization for the mail it is in.",
    opendkim:
      "OpenDKIM 2.11 obeys a Canonicalization field whatever this names (keeping its leading space); dkimd obeys only the field named here, and none without it",
  },
  signatureAlgorithm: {
    name: "SignatureAlgorithm",
    group: "signing",
    kind: oneOf(SIGNING_ALGORITHMS, parseSignatureAlgorithm),
    default: DEFAULT_SIGNATURE_ALGORITHM,
    doc: "Algorithm of new signatures; Ed25519 keys always sign ed25519-sha256.",
    opendkim:
      "rsa-sha1 is refused (RFC 8301): dkimd signs rsa-sha256 where OpenDKIM signs rsa-sha1",
  },
  domain: {
    name: "Domain",
    group: "signing",
    kind: dataSet(FILE_LIST_OR_DATABASE),
    doc: "The domains the single key (KeyFile) signs for; ignored with a KeyTable.",
  },
  selector: {
    name: "Selector",
    group: "signing",
    kind: TEXT,
    doc: "Selector of the single key; ignored with a KeyTable.",
  },
  keyFile: {
    name: "KeyFile",
    group: "signing",
    kind: TEXT,
    doc: "File of the single private key; ignored with a KeyTable.",
  },
  subDomains: {
    name: "SubDomains",
    group: "signing",
    kind: BOOL,
    default: false,
    doc: "The single key signs for subdomains of the Domain entries too.",
    opendkim:
      "a subdomain's mail is signed with i= naming that subdomain (@mail.example.com); OpenDKIM's i= names d= (@example.com)",
  },
  keyTable: {
    name: "KeyTable",
    group: "signing",
    kind: dataSet(FILE_LIST_OR_DATABASE),
    doc: "Key names to DOMAIN:SELECTOR:KEYFILE; requires SigningTable.",
  },
  signingTable: {
    name: "SigningTable",
    group: "signing",
    kind: dataSet(PATTERNS_OR_DATABASE),
    doc: "Senders to KeyTable names; refile: keys are wildcard patterns, tried in order.",
  },
  multipleSignatures: {
    name: "MultipleSignatures",
    group: "signing",
    kind: BOOL,
    default: false,
    doc: "Every matching SigningTable entry signs, not only the first.",
  },
  diagnostics: {
    name: "Diagnostics",
    group: "signing",
    kind: BOOL,
    default: false,
    doc:
      "Add z=, copies of the signed header fields (RFC 6376 §3.5), to signatures; the bar is encoded as =7C.",
  },
  bodyLengthDb: {
    name: "BodyLengthDB",
    group: "signing",
    kind: dataSet(FILE_LIST_OR_DATABASE),
    defaultText: "none",
    doc: "Recipients (user@domain, *@domain, user@.parent, *@.parent, user@*, *) whose mail " +
      "is signed with l=. Unsafe: anyone may append content under the signature (RFC 6376 §8.2).",
    opendkim: "a warning at load names the risk of l= (appended content keeps the signature valid)",
  },
  resignMailTo: {
    name: "ResignMailTo",
    group: "signing",
    kind: dataSet(FILE_LIST_OR_DATABASE),
    defaultText: "none",
    doc: "Recipients (address, domain, .parent) whose mail is verified and signed again, " +
      "whoever sent it; the entry's value names the KeyTable key (none: KeyFile's key). A " +
      "message that arrived signed is signed only when it verifies; needs Mode sv.",
    opendkim: "dkimd's own, from opendkim.conf(5); Debian's build lacks it",
  },
  resignAll: {
    name: "ResignAll",
    group: "signing",
    kind: BOOL,
    default: false,
    doc: "With ResignMailTo, sign a message that arrived signed even when it does not verify.",
    opendkim: "dkimd's own, from opendkim.conf(5); Debian's build lacks it",
  },
  identityHeader: {
    name: "IdentityHeader",
    group: "signing",
    kind: TEXT,
    defaultText: "none",
    doc: "A header field whose address becomes i= of the signatures that have none; without " +
      "the field (or an address in it), i= is @ and the sender's domain.",
    opendkim: "dkimd's own, from opendkim.conf(5); Debian's build lacks it",
  },
  identityHeaderRemove: {
    name: "IdentityHeaderRemove",
    group: "signing",
    kind: BOOL,
    default: false,
    doc: "With IdentityHeader, leave that field out of what is signed and delete its first " +
      "instance from the message.",
    opendkim: "dkimd's own, from opendkim.conf(5); Debian's build lacks it",
  },
  replaceRules: {
    name: "ReplaceRules",
    group: "signing",
    kind: TEXT,
    defaultText: "none",
    doc: "A file of rules (a POSIX basic regular expression, a tab, the replacement) applied to " +
      "header values before they are signed or verified; the message is not changed.",
    opendkim: "a rule stops after 100 replacements in one field (OpenDKIM loops forever when the " +
      "replacement matches again); of alternatives the first that matches is taken, not the longest",
  },
  replaceHeaders: {
    name: "ReplaceHeaders",
    group: "signing",
    kind: dataSet(FILE_OR_LIST),
    defaultText: "every field",
    doc: "The header fields ReplaceRules applies to.",
    opendkim: "a file or a list: not a database (it is asked for every header field)",
  },
  internalHosts: {
    name: "InternalHosts",
    group: "hosts",
    kind: dataSet(FILE_LIST_OR_DATABASE),
    default: DEFAULT_INTERNAL_HOSTS_SOURCE,
    defaultText: "127.0.0.1, ::1",
    doc: "Clients (addresses, CIDR blocks, names) whose mail is signed.",
    opendkim: "localhost also covers 127.0.0.0/8 and ::1",
  },
  externalIgnoreList: {
    name: "ExternalIgnoreList",
    group: "hosts",
    kind: dataSet(FILE_LIST_OR_DATABASE),
    doc: "Hosts that may send as our domains: neither verified nor complained about.",
    opendkim:
      "its hosts' mail is not verified either (OpenDKIM only stops complaining); localhost also covers 127.0.0.0/8 and ::1",
  },
  peerList: {
    name: "PeerList",
    group: "hosts",
    kind: dataSet(FILE_LIST_OR_DATABASE),
    doc: "Clients whose mail is neither signed nor verified.",
    opendkim: "localhost also covers 127.0.0.0/8 and ::1",
  },
  mta: {
    name: "MTA",
    group: "hosts",
    kind: dataSet(FILE_LIST_OR_DATABASE),
    doc: "MTA names ({daemon_name}) whose mail is signed.",
  },
  macroList: {
    name: "MacroList",
    group: "hosts",
    kind: dataSet(FILE_OR_LIST, 'must be a file or an inline list ("refile:" is not allowed)'),
    doc: "Macros (NAME or NAME=V1|V2) that mark a sender as local, so its mail is signed.",
    opendkim:
      "OpenDKIM never matches a name written in braces ({daemon_name}), and a listed macro that is set with another value cancels an MTA match; dkimd accepts braces and signs when any step (InternalHosts, authentication, MTA, MacroList) says the sender is local",
  },
  senderHeaders: {
    name: "SenderHeaders",
    group: "hosts",
    kind: dataSet(FILE_OR_LIST),
    defaultText: "From",
    doc: "Header fields that name the sender, tried in order.",
  },
  senderMacro: {
    name: "SenderMacro",
    group: "hosts",
    kind: TEXT,
    defaultText: "none: the header fields",
    doc:
      "A macro ({mail_addr}...) naming the sender; SenderHeaders only when the MTA sends it empty.",
  },
  defaultSender: {
    name: "DefaultSender",
    group: "hosts",
    kind: custom({
      syntax: "an address such as postmaster@example.com",
      parse: (text) => {
        const value = text.trim();
        // The filter reads it as a From value; refusing what has no user@domain here means a
        // typo stops the load instead of leaving mail without a sender.
        if (!/^[^\s@<>]+@[^\s@<>.]+(\.[^\s@<>.]+)*\.?$/.test(value)) {
          throw new ValueError(`"${value}" is not an address (user@domain)`);
        }
        return value;
      },
      format: (value: string) => value,
    }),
    doc:
      "Address taken as the sender when no SenderHeaders field (or SenderMacro) gives one that can be read.",
    opendkim:
      "dkimd's own, from OpenDKIM's source (_FFR_DEFAULT_SENDER; opendkim.conf(5) of 2.11 does not list it); Debian's build lacks it. OpenDKIM uses it only for a From it cannot parse, dkimd also when there is none",
  },
  dontSignMailTo: {
    name: "DontSignMailTo",
    group: "hosts",
    kind: dataSet(FILE_LIST_OR_DATABASE),
    doc: "Recipients (addresses or domains) whose mail is never signed.",
  },
  exemptDomains: {
    name: "ExemptDomains",
    group: "hosts",
    kind: dataSet(FILE_LIST_OR_DATABASE),
    doc: "Sender domains whose mail is neither signed nor verified.",
  },
  authorizedSigners: {
    name: "AuthorizedSigners",
    group: "hosts",
    kind: dataSet(PATTERNS_OR_DATABASE),
    dkimd: true,
    defaultText: "none: no check, as in OpenDKIM",
    doc: "SASL logins ({auth_authen}, or *) to what they may put in From: " +
      "user@domain, domain, .domain, % (the login's domain), *.",
  },
  signHeaders: {
    name: "SignHeaders",
    group: "signatures",
    kind: dataSet(FILE_OR_LIST),
    defaultText: "RFC 4871 §5.5's list",
    doc: "Header fields to sign; with *, the default list with +NAME added and -NAME removed.",
    opendkim:
      "the default list adds Sender, Message-ID, Resent-Message-ID and the MIME fields (RFC 4871 §5.5)",
  },
  omitHeaders: {
    name: "OmitHeaders",
    group: "signatures",
    kind: dataSet(FILE_OR_LIST),
    defaultText: "opendkim.conf(5)'s list",
    doc: "Header fields never signed; * and +NAME/-NAME as for SignHeaders.",
  },
  oversignHeaders: {
    name: "OversignHeaders",
    group: "signatures",
    kind: dataSet(FILE_OR_LIST),
    defaultText: "From",
    doc: "Fields signed once more than present, so none can be added; * as for SignHeaders.",
    opendkim:
      "reads *, +NAME and -NAME as SignHeaders does; the default is From (Debian's opendkim.conf), not none",
  },
  signatureTtl: {
    name: "SignatureTTL",
    group: "signatures",
    kind: seconds(0, INT_MAX),
    default: 0,
    doc: "Lifetime of new signatures (x=); 0 adds no x=.",
  },
  minimumKeyBits: {
    name: "MinimumKeyBits",
    group: "limits",
    kind: integer(0, MAX_MINIMUM_KEY_BITS),
    default: DEFAULT_MINIMUM_KEY_BITS,
    doc: "Smaller RSA keys make a signature fail verification (policy).",
  },
  maximumHeaders: {
    name: "MaximumHeaders",
    group: "limits",
    kind: COUNT,
    default: DEFAULT_MAXIMUM_HEADERS,
    doc: "Largest header block in bytes (0: no limit); more is refused.",
    opendkim: "the tempfail reply carries 451 4.3.4; OpenDKIM leaves the MTA's default reply",
  },
  maximumHeaderFields: {
    name: "MaximumHeaderFields",
    group: "limits",
    kind: COUNT,
    default: DEFAULT_MAXIMUM_HEADER_FIELDS,
    dkimd: true,
    doc: "Most header fields in a message (0: no limit); more is refused.",
  },
  maximumSignaturesToVerify: {
    name: "MaximumSignaturesToVerify",
    group: "limits",
    kind: COUNT,
    default: DEFAULT_MAXIMUM_SIGNATURES_TO_VERIFY,
    doc: "Most signatures verified per message, from the top (over 50: 50); the rest ignored. " +
      "0: only first-party and TrustSignaturesFrom signatures.",
    opendkim: "never more than 50 (MAX_SIGNATURES_CEILING), even with 0 or TrustSignaturesFrom; " +
      "ignored signatures are left out of Authentication-Results (OpenDKIM: dkim=neutral)",
  },
  trustSignaturesFrom: {
    name: "TrustSignaturesFrom",
    group: "limits",
    kind: dataSet(FILE_LIST_OR_DATABASE),
    defaultText: "none",
    doc: "Signing domains whose signatures are always verified, beside " +
      "MaximumSignaturesToVerify's count (with 0: besides first-party ones).",
    opendkim: "at most 50 signatures are verified; ignored signatures are left out of " +
      "Authentication-Results (OpenDKIM: dkim=neutral)",
  },
  maximumKeyBits: {
    name: "MaximumKeyBits",
    group: "limits",
    kind: integer(MIN_MAXIMUM_KEY_BITS, MAX_MINIMUM_KEY_BITS),
    default: DEFAULT_MAXIMUM_KEY_BITS,
    dkimd: true,
    doc: "Larger RSA keys give permerror without being imported.",
  },
  maximumSignedBytes: {
    name: "MaximumSignedBytes",
    group: "limits",
    kind: COUNT,
    defaultText: "the whole body",
    doc: "Sign at most this many body bytes, adding l= (0 is refused).",
    opendkim: "0 is refused: l=0 would sign none of the body",
  },
  removeOldSignatures: {
    name: "RemoveOldSignatures",
    group: "results",
    kind: BOOL,
    default: false,
    doc: "Remove existing DKIM-Signature fields when signing.",
  },
  onDefault: {
    name: "On-Default",
    group: "results",
    kind: ACTION,
    action: "default",
    defaultText: "each On-* setting's own",
    doc: "The action for every outcome; the specific On-* settings override it.",
    opendkim: ON_REPLY_CODES,
  },
  onBadSignature: {
    name: "On-BadSignature",
    group: "results",
    kind: ACTION,
    action: "badSignature",
    default: DEFAULT_ACTIONS.badSignature,
    doc: "A signature that does not verify (its body hash or b= fails, or its key is unusable); " +
      "not one RFC 6376 §6.1.1 ignores (a syntax error, an unknown a=): see On-NoSignature.",
    opendkim: `${ON_REPLY_CODES}; a malformed signature field is dkim=permerror and ` +
      "On-NoSignature in dkimd, where OpenDKIM applies On-BadSignature to some (no b=, d=, h= or " +
      "s=: no result added; d= twice or bh= not base64: dkim=fail), no action to others (no bh=, " +
      "i= outside d=, h= without From, x= before t=: dkim=permerror) and passes a b= with " +
      "characters outside base64",
  },
  onDnsError: {
    name: "On-DNSError",
    group: "results",
    kind: ACTION,
    action: "dnsError",
    default: DEFAULT_ACTIONS.dnsError,
    doc: "A key lookup that failed for a while (temperror).",
    opendkim:
      `OpenDKIM 2.11 does not apply it when verifying (it computes the reply and drops it) and adds no result: the message is accepted; dkimd adds dkim=temperror and applies it. ${ON_REPLY_CODES}`,
  },
  onInternalError: {
    name: "On-InternalError",
    group: "results",
    kind: ACTION,
    action: "internalError",
    default: DEFAULT_ACTIONS.internalError,
    doc: "An internal error while handling the message.",
    opendkim: "same for a key that cannot be loaded at signing; except: a KeyTable row naming a " +
      "key file that cannot be opened gets OpenDKIM's fixed tempfail, dkimd's On-InternalError " +
      "(as any failed data-set lookup); quarantine accepts in both (nothing can be quarantined " +
      `at the end of the header). ${ON_REPLY_CODES}`,
  },
  onKeyNotFound: {
    name: "On-KeyNotFound",
    group: "results",
    kind: ACTION,
    action: "keyNotFound",
    default: DEFAULT_ACTIONS.keyNotFound,
    doc: "The key a signature names is not in the DNS.",
    opendkim: ON_REPLY_CODES,
  },
  onNoSignature: {
    name: "On-NoSignature",
    group: "results",
    kind: ACTION,
    action: "noSignature",
    default: DEFAULT_ACTIONS.noSignature,
    doc: "A message without a signature, or whose only signatures RFC 6376 §6.1.1 ignores: a " +
      "syntax error (a required tag missing, i= outside d=...) or an algorithm dkimd does not " +
      "implement (an unknown a=, rsa-sha1).",
    opendkim: `${ON_REPLY_CODES}; a message whose only signatures have an unknown a= is ` +
      "dkim=permerror in both, but OpenDKIM applies no action to it (it accepts); nor does it " +
      "apply On-NoSignature to a malformed signature (see On-BadSignature)",
  },
  onSecurity: {
    name: "On-Security",
    group: "results",
    kind: ACTION,
    action: "security",
    default: DEFAULT_ACTIONS.security,
    doc: "A message whose properties may be a security concern.",
    opendkim: "same trigger (a header block over MaximumHeaders); except: OpenDKIM answers " +
      "without a reply text (the MTA's own code), dkimd with 451 4.3.4 or 552 5.3.4 naming the " +
      "limit, and quarantine quarantines in dkimd where OpenDKIM, not allowed to, only accepts",
  },
  onSignatureError: {
    name: "On-SignatureError",
    group: "results",
    kind: ACTION,
    action: "signatureError",
    default: DEFAULT_ACTIONS.signatureError,
    doc: "A message that cannot be signed (message or key problems).",
    opendkim: ON_REPLY_CODES,
  },
  onUnauthorizedSigner: {
    name: "On-UnauthorizedSigner",
    group: "results",
    kind: oneOf(UNAUTHORIZED_SIGNER_ACTIONS, parseUnauthorizedSignerAction),
    default: "accept",
    dkimd: true,
    doc:
      "An authenticated message whose From AuthorizedSigners refuses; accept passes it unsigned.",
  },
  alwaysAddArHeader: {
    name: "AlwaysAddARHeader",
    group: "results",
    kind: BOOL,
    default: false,
    doc: "Add Authentication-Results to unsigned mail too.",
  },
  authservId: {
    name: "AuthservID",
    group: "results",
    kind: custom({
      syntax: "a name, or HOSTNAME",
      parse: parseAuthservId,
      format: formatAuthservId,
      toYaml: (id) => id.kind === "mta" ? undefined : formatAuthservId(id),
    }),
    default: { kind: "mta" },
    defaultText: "the MTA's name (macro j)",
    doc: "The authserv-id of Authentication-Results; HOSTNAME is this host's name.",
  },
  authservIdWithJobId: {
    name: "AuthservIDWithJobID",
    group: "results",
    kind: BOOL,
    default: false,
    doc: "Append /JOBID to the authserv-id.",
    opendkim:
      'the authserv-id with the job id is quoted ("/" is not allowed in a token); OpenDKIM writes it bare',
  },
  noHeaderB: {
    name: "NoHeaderB",
    group: "results",
    kind: BOOL,
    default: false,
    doc: "Leave header.b out of Authentication-Results.",
  },
  partialBodyResult: {
    name: "PartialBodyResult",
    group: "results",
    kind: oneOf(PARTIAL_BODY_RESULTS, parsePartialBodyResult),
    default: PARTIAL_BODY_RESULT_DEFAULT,
    dkimd: true,
    doc: "Result of a valid signature leaving body bytes after l= unsigned.",
  },
  strictHeaders: {
    name: "StrictHeaders",
    group: "results",
    kind: BOOL,
    default: false,
    doc: "Messages breaking RFC 5322 §3.6's field counts: policy, not pass; not signed.",
    opendkim:
      "a result per signature (policy; OpenDKIM: one permerror for the message); when signing, " +
      "On-SignatureError decides (OpenDKIM passes it on unsigned, with dkim=permerror)",
  },
  requiredHeaders: {
    name: "RequiredHeaders",
    group: "results",
    kind: BOOL,
    default: false,
    doc: "Reject messages breaking RFC 5322 §3.6's field counts (one From, one Date...).",
    opendkim: "also counts Sender, as RFC 5322 §3.6 does, and rejects with 5.6.0 (OpenDKIM: 5.0.0)",
  },
  ignoreMalformedMail: {
    name: "IgnoreMalformedMail",
    group: "results",
    kind: BOOL,
    default: false,
    doc: "Pass mail without a usable sender untouched, not with dkim=permerror; " +
      "RequiredHeaders still rejects, as in OpenDKIM 2.11.",
  },
  mustBeSigned: {
    name: "MustBeSigned",
    group: "results",
    kind: dataSet(FILE_OR_LIST),
    doc: "Header fields a signature must cover when present, or it gets policy.",
    opendkim:
      "every instance of a listed field must be covered, not only its name in h=; the result is policy (OpenDKIM: fail)",
  },
  quarantine: {
    name: "Quarantine",
    group: "results",
    kind: BOOL,
    default: false,
    doc:
      "Quarantine mail whose signatures fail to verify (Debian's OpenDKIM 2.11 reads it and does nothing).",
  },
  redirectFailuresTo: {
    name: "RedirectFailuresTo",
    group: "results",
    kind: TEXT,
    defaultText: "none: no redirection",
    doc:
      "Mail whose signatures fail goes to this address only; each recipient becomes an Original-Recipient field.",
  },
  captureUnknownErrors: {
    name: "CaptureUnknownErrors",
    group: "results",
    kind: BOOL,
    default: false,
    doc:
      "Quarantine and accept a message that meets an internal error at its end, not On-InternalError.",
  },
  removeArAll: {
    name: "RemoveARAll",
    group: "results",
    kind: BOOL,
    default: false,
    doc: "Remove every Authentication-Results field from RemoveARFrom hosts, not only DKIM's.",
  },
  removeArFrom: {
    name: "RemoveARFrom",
    group: "results",
    kind: dataSet(FILE_OR_LIST),
    doc: "Hosts and .domains whose Authentication-Results fields are removed.",
    opendkim:
      "forged fields with our authserv-id are removed whatever this says, however many (OpenDKIM#185)",
  },
  softwareHeader: {
    name: "SoftwareHeader",
    group: "results",
    kind: BOOL,
    default: false,
    doc: "Add a DKIM-Filter field naming dkimd to signed mail.",
    opendkim: "the DKIM-Filter field names dkimd",
  },
  xHeader: {
    name: "X-Header",
    group: "results",
    kind: BOOL,
    aliasOf: "softwareHeader",
    doc: "The deprecated name of SoftwareHeader (a warning).",
    opendkim: "the DKIM-Filter field names dkimd; a warning calls the name deprecated",
  },
  sendReports: {
    name: "SendReports",
    group: "results",
    kind: BOOL,
    default: false,
    doc: "Send a failure report (RFC 6651, ARF) for a failed signature with r=y to the ra= " +
      "address its domain publishes at _report._domainkey.",
    opendkim: "reports are queued (never delaying the reply), rate-limited per domain, and " +
      "obey rr= (RFC 6651) as well as OpenDKIM's ro=; the canonicalized header and body are " +
      "not attached",
  },
  reportAddress: {
    name: "ReportAddress",
    group: "results",
    kind: TEXT,
    defaultText: "USER@HOST: the user dkimd runs as, this host's name",
    doc: "The From of failure reports, and their envelope sender (MTACommand -f).",
  },
  reportBccAddress: {
    name: "ReportBccAddress",
    group: "results",
    kind: TEXT,
    doc: "Addresses (comma-separated) given a Bcc of every failure report.",
  },
  requestReports: {
    name: "RequestReports",
    group: "results",
    kind: BOOL,
    default: false,
    doc: "Write r=y in new signatures: ask verifiers for failure reports (RFC 6651 §4).",
  },
  mtaCommand: {
    name: "MTACommand",
    group: "results",
    kind: TEXT,
    default: DEFAULT_MTA_COMMAND,
    doc: "The sendmail-compatible program failure reports go through (run with -t -f ADDRESS).",
  },
  nameservers: {
    name: "Nameservers",
    group: "dns",
    kind: custom({
      syntax: "IP, IP@PORT or [IPv6]:PORT, comma-separated",
      parse: parseNameserverList,
      format: (list) => list.map(formatNameserver).join(","),
      toYaml: (list) => list.map(formatNameserver),
    }),
    defaultText: "resolv.conf's",
    doc: "Resolvers to query for keys.",
  },
  dnsTimeout: {
    name: "DNSTimeout",
    group: "dns",
    kind: seconds(0, MAX_DNS_TIMEOUT),
    default: DEFAULT_DNS_TIMEOUT,
    doc: "How long a key lookup may take.",
  },
  dnsMaxAnswerBytes: {
    name: "DNSMaxAnswerBytes",
    group: "dns",
    kind: integer(MIN_DNS_MAX_ANSWER_BYTES, MAX_DNS_MAX_ANSWER_BYTES),
    default: DEFAULT_DNS_MAX_ANSWER_BYTES,
    dkimd: true,
    doc: "Most bytes of TXT text in a key record answer; more is a permerror.",
  },
  dnsConnect: {
    name: "DNSConnect",
    group: "dns",
    kind: BOOL,
    default: false,
    doc: "Ask for keys over TCP from the start, not over UDP until an answer is truncated.",
    opendkim: "Debian's OpenDKIM 2.11 reads it and still asks over UDP; dkimd asks over TCP",
  },
  trustAnchorFile: {
    name: "TrustAnchorFile",
    group: "dns",
    kind: TEXT,
    doc: "Ask the resolver for DNSSEC: keys are reported secure, unprotected or bogus.",
    opendkim: "dkimd does not validate: the file is only checked to be readable (as OpenDKIM " +
      "checks it); give it to a validating resolver on 127.0.0.1 or ::1 (unbound's " +
      "trust-anchor-file) and list that in Nameservers, whose AD bit dkimd then believes",
  },
  resolverConfiguration: {
    name: "ResolverConfiguration",
    group: "dns",
    kind: TEXT,
    doc: "Ask the resolver for DNSSEC, as TrustAnchorFile does.",
    opendkim: "OpenDKIM's libunbound reads this unbound.conf; dkimd does not: run unbound " +
      "with it on 127.0.0.1 or ::1 and list that in Nameservers",
  },
  unboundConfigFile: {
    name: "UnboundConfigFile",
    group: "dns",
    kind: TEXT,
    aliasOf: "resolverConfiguration",
    doc: "The name of ResolverConfiguration before OpenDKIM 2.7 (a warning).",
    opendkim: "OpenDKIM 2.11 refuses the old name; dkimd reads it as ResolverConfiguration",
  },
  bogusKey: {
    name: "BogusKey",
    group: "dns",
    kind: oneOf(KEY_SECURITY_ACTIONS, parseKeySecurityAction),
    default: BOGUS_KEY_DEFAULT,
    doc: "What a signature that verified with a key DNSSEC found bogus gets: fail, neutral " +
      "or none (pass).",
    opendkim: "as documented; Debian's OpenDKIM never completes a bogus answer from " +
      "libunbound: it waits out DNSTimeout and adds no Authentication-Results (tested)",
  },
  unprotectedKey: {
    name: "UnprotectedKey",
    group: "dns",
    kind: oneOf(KEY_SECURITY_ACTIONS, parseKeySecurityAction),
    default: UNPROTECTED_KEY_DEFAULT,
    doc: "What a signature that verified with a key not protected by DNSSEC gets: fail " +
      "(policy), neutral or none (pass).",
    opendkim: "applied to passes only, as documented (OpenDKIM's code turns any result into " +
      "policy or neutral); keys are unprotected only when DNSSEC is asked for",
  },
  queryCache: {
    name: "QueryCache",
    group: "dns",
    kind: BOOL,
    default: false,
    doc: "Cache keys beyond the resolver's own cache.",
  },
  testPublicKeys: {
    name: "TestPublicKeys",
    group: "dns",
    kind: TEXT,
    doc: "A file of NAME RECORD lines used instead of DNS (testing only).",
    opendkim: "a selector missing from the file is dkim=permerror (no key); OpenDKIM says fail",
  },
  testDnsData: {
    name: "TestDNSData",
    group: "dns",
    kind: dataSet(FILE_OR_LIST),
    doc: "Names and TXT records used instead of DNS (testing only).",
    opendkim:
      "for a name the data set lacks, OpenDKIM adds no result and accepts, as for a failed key query; dkimd reports no key (dkim=permerror) and applies On-KeyNotFound",
  },
  dataSetCacheTtl: {
    name: "DataSetCacheTTL",
    group: "tables",
    kind: seconds(0, MAX_DATA_SET_SECONDS),
    default: DEFAULT_TABLE_CACHE_TTL_SECONDS,
    dkimd: true,
    doc: "How long an answer from a dsn: or ldap: data set, found or not, is used before " +
      "asking again; a changed row takes effect within this.",
  },
  dataSetStaleLimit: {
    name: "DataSetStaleLimit",
    group: "tables",
    kind: seconds(0, MAX_DATA_SET_SECONDS),
    default: DEFAULT_TABLE_STALE_SECONDS,
    dkimd: true,
    doc: "While a database cannot answer, how long past DataSetCacheTTL a cached answer is " +
      "still used; other lookups get On-InternalError.",
  },
  dataSetQueryTimeout: {
    name: "DataSetQueryTimeout",
    group: "tables",
    kind: seconds(1, MAX_DATA_SET_SECONDS),
    default: DEFAULT_TABLE_QUERY_TIMEOUT_SECONDS,
    dkimd: true,
    doc: "Longest a database query may take before the lookup fails.",
  },
  dataSetConnectTimeout: {
    name: "DataSetConnectTimeout",
    group: "tables",
    kind: seconds(1, MAX_DATA_SET_SECONDS),
    default: DEFAULT_TABLE_CONNECT_TIMEOUT_SECONDS,
    dkimd: true,
    doc: "Longest a connection to a database server may take.",
  },
  dataSetPasswordFile: {
    name: "DataSetPasswordFile",
    group: "tables",
    kind: TEXT,
    dkimd: true,
    doc: "File holding the password of every dsn: data set, instead of the DSN's; a " +
      "relative name is read from $CREDENTIALS_DIRECTORY (systemd LoadCredential=).",
  },
  dataSetTls: {
    name: "DataSetTLS",
    group: "tables",
    kind: oneOf(DATA_SET_TLS_MODES, parseDataSetTls),
    default: "no",
    dkimd: true,
    doc: "TLS to dsn:pgsql and dsn:mysql servers: no (plain text, as OpenDKIM's OpenDBX), " +
      "prefer, require (encrypted, the certificate not checked: libpq's sslmode=require) or " +
      "verify (the certificate checked against DataSetTLSCAFile or the default CAs, and for " +
      "the DSN's host: verify-full).",
  },
  dataSetTlsCaFile: {
    name: "DataSetTLSCAFile",
    group: "tables",
    kind: TEXT,
    dkimd: true,
    doc: "PEM certificates of a private CA that DataSetTLS verify and LDAP's TLS trust; read " +
      "at load.",
  },
  ldapBindUser: {
    name: "LDAPBindUser",
    group: "ldap",
    kind: TEXT,
    defaultText: "none: anonymous",
    doc: "The DN ldap:, ldaps: and ldapi: data sets bind as (a simple bind).",
  },
  ldapBindPassword: {
    name: "LDAPBindPassword",
    group: "ldap",
    kind: TEXT,
    doc: "LDAPBindUser's password; never logged.",
  },
  ldapAuthMechanism: {
    name: "LDAPAuthMechanism",
    group: "ldap",
    kind: oneOf(["simple"], parseLdapAuthMechanism),
    defaultText: "simple",
    doc: "Only a simple bind (also written empty or none); SASL mechanisms are refused.",
    opendkim: "SASL mechanisms are refused at load: dkimd binds simply; Debian's OpenDKIM " +
      "hands none and simple to a SASL bind, which fails (only unset binds simply there)",
  },
  ldapAuthName: {
    name: "LDAPAuthName",
    group: "ldap",
    kind: TEXT,
    doc: "Not used: SASL only, and dkimd binds simply (LDAPAuthMechanism).",
    opendkim: "read and not used: SASL only",
  },
  ldapAuthRealm: {
    name: "LDAPAuthRealm",
    group: "ldap",
    kind: TEXT,
    doc: "Not used: SASL only, and dkimd binds simply (LDAPAuthMechanism).",
    opendkim: "read and not used: SASL only",
  },
  ldapAuthUser: {
    name: "LDAPAuthUser",
    group: "ldap",
    kind: TEXT,
    doc: "Not used: SASL only, and dkimd binds simply (LDAPAuthMechanism).",
    opendkim: "read and not used: SASL only",
  },
  ldapUseTls: {
    name: "LDAPUseTLS",
    group: "ldap",
    kind: BOOL,
    default: false,
    doc: "StartTLS to ldap: and ldapi: servers, required: no plain-text fallback (ldaps: is TLS).",
    opendkim: "StartTLS is required: no plain-text fallback",
  },
  ldapTimeout: {
    name: "LDAPTimeout",
    group: "ldap",
    kind: seconds(1, MAX_DNS_TIMEOUT),
    default: DEFAULT_LDAP_TIMEOUT_SECONDS,
    doc: "The longest one LDAP operation (connect, bind, search) may take.",
  },
  ldapDisableCache: {
    name: "LDAPDisableCache",
    group: "ldap",
    kind: BOOL,
    default: false,
    doc: "Not used: OpenDKIM's own LDAP cache; dkimd caches every database data set alike.",
    opendkim: "read and not used: every database data set is cached alike (DataSetCacheTTL)",
  },
  ldapKeepaliveIdle: {
    name: "LDAPKeepaliveIdle",
    group: "ldap",
    kind: COUNT,
    doc: "Not used: Deno cannot set TCP keepalive timers; LDAPTimeout bounds every operation " +
      "and a broken connection is made again.",
    opendkim: "read and not used: Deno cannot set TCP keepalive timers",
  },
  ldapKeepaliveInterval: {
    name: "LDAPKeepaliveInterval",
    group: "ldap",
    kind: COUNT,
    doc: "Not used, as LDAPKeepaliveIdle.",
    opendkim: "read and not used: Deno cannot set TCP keepalive timers",
  },
  ldapKeepaliveProbes: {
    name: "LDAPKeepaliveProbes",
    group: "ldap",
    kind: COUNT,
    doc: "Not used, as LDAPKeepaliveIdle.",
    opendkim: "read and not used: Deno cannot set TCP keepalive timers",
  },
  ldapSoftStart: {
    name: "LDAPSoftStart",
    group: "ldap",
    kind: BOOL,
    default: false,
    doc: "Not needed: dkimd always starts while LDAP is down and connects at the first lookup.",
    opendkim: "OpenDKIM 2.11 refuses it (renamed SoftStart in 2.10; without that it exits at " +
      "start when it cannot bind): dkimd reads both and always starts while LDAP is down",
  },
  rotationInterval: {
    name: "RotationInterval",
    group: "rotation",
    kind: seconds(0, MAX_ROTATION_SECONDS),
    default: 0,
    dkimd: true,
    doc: "`dkimd rotate` starts a rotation for keys older than this; 0: only with --now.",
  },
  rotationKeyTypes: {
    name: "RotationKeyTypes",
    group: "rotation",
    kind: custom({
      syntax: "rsa, ed25519 or both, comma-separated",
      parse: parseRotationKeyTypes,
      format: (types) => types.join(","),
      toYaml: (types) => [...types],
    }),
    default: ["rsa", "ed25519"],
    dkimd: true,
    doc: "The KeyTable keys `dkimd rotate` rotates, by type; a new key has its old key's type.",
  },
  rotationSelectorFormat: {
    name: "RotationSelectorFormat",
    group: "rotation",
    kind: TEXT,
    default: "%Y%m-%k",
    dkimd: true,
    doc: "New selectors: %Y %m %d %H %M (UTC), %k the key type; a suffix keeps each unique.",
  },
  dnsUpdateKey: {
    name: "DNSUpdateKey",
    group: "rotation",
    kind: TEXT,
    dkimd: true,
    doc:
      'TSIG key file (BIND `key "name" {...};` or knot form) for DNS UPDATE; absent: print mode.',
  },
  dnsUpdateServer: {
    name: "DNSUpdateServer",
    group: "rotation",
    kind: custom({ syntax: "IP or IP@PORT", parse: parseNameserver, format: formatNameserver }),
    defaultText: "the zone's SOA MNAME",
    dkimd: true,
    doc: "The primary server DNS UPDATEs go to.",
  },
  dnsProofServers: {
    name: "DNSProofServers",
    group: "rotation",
    kind: custom({
      syntax: "IP, IP@PORT or [IPv6]:PORT, comma-separated",
      parse: parseNameserverList,
      format: (list) => list.map(formatNameserver).join(","),
      toYaml: (list) => list.map(formatNameserver),
    }),
    defaultText: "the zone's NS",
    dkimd: true,
    doc: "The authoritative servers that must serve a new record before it is used.",
  },
  rotationOverlap: {
    name: "RotationOverlap",
    group: "rotation",
    kind: seconds(0, MAX_ROTATION_SECONDS),
    default: 0,
    dkimd: true,
    doc:
      "Time to sign with both the old and the new key before the old one stops (needs MultipleSignatures and a SigningTable file); 0: switch at once.",
  },
  rotationRetireAfter: {
    name: "RotationRetireAfter",
    group: "rotation",
    kind: seconds(0, MAX_ROTATION_SECONDS),
    default: 7 * 86400,
    dkimd: true,
    doc: "Time after activation before the old record is revoked (p=); at least SignatureTTL.",
  },
  rotationDeleteAfter: {
    name: "RotationDeleteAfter",
    group: "rotation",
    kind: seconds(0, MAX_ROTATION_SECONDS),
    default: 30 * 86400,
    dkimd: true,
    doc: "Time after activation before the revoked record and the old key file are deleted.",
  },
  rotationDataSetUser: {
    name: "RotationDataSetUser",
    group: "rotation",
    kind: TEXT,
    dkimd: true,
    doc: "Database user `dkimd rotate` switches a dsn: KeyTable's row as (it needs UPDATE on " +
      "the table); absent: the DSN's user. The mail path keeps the DSN's (read-only) user.",
  },
  rotationDataSetPasswordFile: {
    name: "RotationDataSetPasswordFile",
    group: "rotation",
    kind: TEXT,
    dkimd: true,
    doc: "File holding RotationDataSetUser's password (a relative name: in " +
      "$CREDENTIALS_DIRECTORY); absent: DataSetPasswordFile, else the DSN's.",
  },
  rotationStateFile: {
    name: "RotationStateFile",
    group: "rotation",
    kind: TEXT,
    default: "/var/lib/dkimd/rotation.json",
    dkimd: true,
    doc: "Where `dkimd rotate` keeps the state of each rotation (JSON).",
  },
  requireSafeKeys: {
    name: "RequireSafeKeys",
    group: "other",
    kind: BOOL,
    default: DEFAULT_REQUIRE_SAFE_KEYS,
    doc: "Refuse key files others can read or replace.",
    opendkim:
      "an unsafe key stops the load (dkimd does not start, naming the chmod that fixes it); OpenDKIM starts and signs nothing with it",
  },
  cryptoBackend: {
    name: "CryptoBackend",
    group: "other",
    kind: oneOf(CRYPTO_BACKENDS, parseCryptoBackend),
    default: CRYPTO_BACKEND_DEFAULT,
    dkimd: true,
    doc:
      "RSA signing through webcrypto (Deno's) or openssl (the system's libcrypto 3, about 8 times faster); RSA verification in dkimd's own code or openssl.",
  },
  cryptoBackendRequired: {
    name: "CryptoBackendRequired",
    group: "other",
    kind: BOOL,
    default: false,
    dkimd: true,
    doc: "Refuse to start when CryptoBackend openssl cannot be used, instead of using webcrypto.",
  },
  clockDrift: {
    name: "ClockDrift",
    group: "other",
    kind: seconds(0, INT_MAX),
    default: DEFAULT_CLOCK_DRIFT,
    doc: "Clock difference allowed in the t= and x= checks of signatures.",
    opendkim:
      "a signature dated beyond the drift in the future is dkim=policy (OpenDKIM: permerror)",
  },
  fixCrlf: {
    name: "FixCRLF",
    group: "other",
    kind: BOOL,
    default: false,
    doc: "Turn bare CR and LF into CRLF when canonicalizing bodies.",
  },
  setupPolicyScript: {
    name: "SetupPolicyScript",
    group: "other",
    kind: TEXT,
    doc:
      "Lua script run at end of header (opendkim-lua(3) setup): may sign, verify or set the result.",
    opendkim:
      "compiled at load (a syntax error stops the load, naming the line); each call has a budget of 1 s and 16 MiB; see Lua policy scripts",
  },
  screenPolicyScript: {
    name: "ScreenPolicyScript",
    group: "other",
    kind: TEXT,
    doc: "Lua script run before verifying (opendkim-lua(3) screen): may ignore signatures.",
    opendkim:
      "runs only for mail that is verified; odkim.sig_ignore() also leaves the signature out of Authentication-Results",
  },
  statisticsPolicyScript: {
    name: "StatisticsPolicyScript",
    group: "other",
    kind: TEXT,
    doc:
      "Lua script run after verifying (opendkim-lua(3) statistics); odkim.stats records nothing, as Statistics is not kept.",
    opendkim: "runs, but nothing is recorded (Statistics is not kept)",
  },
  finalPolicyScript: {
    name: "FinalPolicyScript",
    group: "other",
    kind: TEXT,
    doc:
      "Lua script run at end of message (opendkim-lua(3) final): may add headers, change recipients, set the reply.",
    opendkim:
      "odkim.quarantine() acts whatever the settings; odkim.add_rcpt() and odkim.del_rcpt() change nothing",
  },
  luaOnlySigning: {
    name: "LuaOnlySigning",
    group: "other",
    kind: BOOL,
    default: false,
    doc: "Sign only what SetupPolicyScript asks for: the SigningTable and Domain are not applied.",
    opendkim: "dkimd's own, from opendkim.conf(5); Debian's build lacks it",
  },
  arcMode: {
    name: "ARCMode",
    group: "arc",
    kind: custom({ syntax: "none, s, v or sv", parse: parseArcMode, format: formatArcMode }),
    default: ARC_MODE_NONE,
    dkimd: true,
    doc: "ARC (RFC 8617) for the mail dkimd verifies: verify its chain (v), seal it (s).",
  },
  arcDomain: {
    name: "ARCDomain",
    group: "arc",
    kind: TEXT,
    dkimd: true,
    doc: "Sealing domain (d= of ARC-Message-Signature and ARC-Seal); required with ARCMode s.",
  },
  arcSelector: {
    name: "ARCSelector",
    group: "arc",
    kind: TEXT,
    dkimd: true,
    doc: "Selector of the sealing key; required with ARCMode s.",
  },
  arcKeyFile: {
    name: "ARCKeyFile",
    group: "arc",
    kind: TEXT,
    dkimd: true,
    doc:
      "File of the sealing private key (RSA or Ed25519), checked as KeyFile is; required with ARCMode s.",
  },
  arcSignHeaders: {
    name: "ARCSignHeaders",
    group: "arc",
    kind: dataSet(FILE_OR_LIST),
    defaultText: "SignHeaders' default list",
    dkimd: true,
    doc: "Header fields the ARC-Message-Signature signs; * as for SignHeaders.",
  },
  syslog: {
    name: "Syslog",
    group: "logging",
    kind: BOOL,
    default: false,
    doc: "Log to syslog (/dev/log) instead of standard error, outside systemd.",
  },
  syslogFacility: {
    name: "SyslogFacility",
    group: "logging",
    kind: oneOf(SYSLOG_FACILITIES, parseSyslogFacility),
    default: DEFAULT_SYSLOG_FACILITY,
    doc: "The syslog facility.",
  },
  syslogName: {
    name: "SyslogName",
    group: "logging",
    kind: TEXT,
    default: DEFAULT_SYSLOG_NAME,
    doc: "The name syslog lines carry.",
  },
  syslogSuccess: {
    name: "SyslogSuccess",
    group: "logging",
    kind: BOOL,
    default: false,
    doc: "Log each signature added and each successful verification.",
  },
  logWhy: {
    name: "LogWhy",
    group: "logging",
    kind: BOOL,
    default: false,
    doc: "Log why each message was or was not signed or verified.",
  },
  logResults: {
    name: "LogResults",
    group: "logging",
    kind: BOOL,
    default: false,
    doc: "Log every signature's result.",
  },
  userId: {
    name: "UserID",
    group: "process",
    kind: custom({ syntax: "USER[:GROUP]", parse: parseUserId, format: formatUserId }),
    doc: "The account to run as.",
  },
  changeRootDirectory: {
    name: "ChangeRootDirectory",
    group: "process",
    kind: custom({
      syntax: "a directory (refused)",
      parse: refuseChroot,
      format: (dir) => dir,
    }),
    defaultText: "none",
    doc: "Refused with systemd's equivalent: Deno cannot chroot(2); use RootDirectory= or " +
      "TemporaryFileSystem=/ with BindReadOnlyPaths= in dkimd.service.",
    opendkim: "refused: Deno cannot chroot(2); the error gives systemd's RootDirectory= equivalent",
  },
  umask: {
    name: "UMask",
    group: "process",
    kind: custom({
      syntax: "an octal mask such as 022",
      parse: (text, ctx) => {
        const { value, note } = parseUmask(text);
        if (note) ctx.warn(note);
        return value;
      },
      format: formatUmask,
      fromYaml: (text) => text.replace(/^0o/, "0"),
    }),
    doc: "The umask for the socket and the pid file.",
  },
  pidFile: {
    name: "PidFile",
    group: "process",
    kind: TEXT,
    doc: "The file to write the process id to.",
  },
  metricsListen: {
    name: "MetricsListen",
    group: "process",
    kind: custom({ syntax: "HOST:PORT", parse: parseListenAddress, format: formatListenAddress }),
    dkimd: true,
    doc: "Where /metrics (Prometheus) and /healthz are served; absent: off.",
  },
  milterMaxFrameBytes: {
    name: "MilterMaxFrameBytes",
    group: "process",
    kind: integer(MIN_MILTER_MAX_FRAME_BYTES, MAX_MILTER_MAX_FRAME_BYTES),
    default: DEFAULT_MILTER_MAX_FRAME_BYTES,
    dkimd: true,
    doc: "A larger milter frame closes its connection.",
  },
  milterMaxConnections: {
    name: "MilterMaxConnections",
    group: "process",
    kind: integer(1, INT_MAX),
    default: DEFAULT_MILTER_MAX_CONNECTIONS,
    dkimd: true,
    doc: "MTA connections served at once; more are closed at once.",
  },
  milterIdleTimeout: {
    name: "MilterIdleTimeout",
    group: "process",
    kind: seconds(1, MAX_MILTER_IDLE_TIMEOUT),
    default: DEFAULT_MILTER_IDLE_TIMEOUT,
    dkimd: true,
    doc: "How long an MTA connection may stay silent.",
  },
  milterShutdownTimeout: {
    name: "MilterShutdownTimeout",
    group: "process",
    kind: seconds(1, MAX_MILTER_IDLE_TIMEOUT),
    default: DEFAULT_MILTER_SHUTDOWN_TIMEOUT,
    dkimd: true,
    doc: "How long SIGTERM lets transactions in progress finish.",
  },
  baseDirectory: {
    name: "BaseDirectory",
    group: "process",
    kind: TEXT,
    doc: "Relative paths are read from here.",
  },
  background: {
    name: "Background",
    group: "process",
    kind: BOOL,
    default: DEFAULT_BACKGROUND,
    doc: "Run in the background (detach) at start.",
  },
  autoRestart: {
    name: "AutoRestart",
    group: "process",
    kind: BOOL,
    default: false,
    doc: "Restart the filter when it fails.",
  },
  autoRestartCount: {
    name: "AutoRestartCount",
    group: "process",
    kind: COUNT,
    default: 0,
    doc: "Most restarts (0: no limit).",
  },
  autoRestartRate: {
    name: "AutoRestartRate",
    group: "process",
    kind: custom({
      syntax: "COUNT/TIME[s|m|h|d]",
      parse: parseRestartRate,
      format: formatRestartRate,
    }),
    doc: "Most restarts within a time, such as 10/1h.",
  },
};

/** A setting with the field it sets and its YAML path. */
export interface SettingEntry extends Setting {
  /** The field it sets. */
  readonly field: SettingField;
  /** Its YAML path: the field, `actions.ACTION` for On-*, absent for an old name. */
  readonly yaml?: string;
}

/** Every setting in the table's order, with its field and YAML path. */
export const SETTING_LIST: readonly SettingEntry[] = Object.entries(SETTINGS).map(
  ([field, s]: [string, Setting]) => ({
    ...s,
    field: field as SettingField,
    ...(s.aliasOf ? {} : { yaml: s.action ? `actions.${s.action}` : field }),
  }),
);

/** The settings whose value is a `Config` field of the same name (not On-*, not old names). */
export const CONFIG_SETTINGS: readonly SettingEntry[] = SETTING_LIST.filter((s) =>
  s.action === undefined && s.aliasOf === undefined
);

/** The opendkim.conf setting that reads another file: `Include` (opendkim.conf(5)). */
export const INCLUDE_SETTING = "Include";

const BY_LOWER_NAME = new Map(SETTING_LIST.map((s) => [s.name.toLowerCase(), s]));

/** Finds an implemented setting by name, case-insensitively as OpenDKIM does. */
export function findSetting(name: string): SettingEntry | undefined {
  return BY_LOWER_NAME.get(name.toLowerCase());
}

/** Every setting name OpenDKIM knows, in OpenDKIM's spelling: the candidates for "did you mean". */
export function knownSettingNames(): string[] {
  return [
    INCLUDE_SETTING,
    ...SETTING_LIST.map((s) => s.name),
    ...UNIMPLEMENTED_SETTINGS.map((s) => s.name),
  ];
}

/**
 * The opendkim.conf name of the On-* setting for an outcome.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { actionSettingName } from "./settings.ts";
 * assert.equal(actionSettingName("dnsError"), "On-DNSError");
 * ```
 */
export function actionSettingName(action: keyof Actions): string {
  return SETTING_LIST.find((s) => s.action === action)!.name;
}
