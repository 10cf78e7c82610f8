/**
 * The typed shape of dkimd's configuration (DESIGN.md, "Config has one source of truth"):
 * {@link Config}, what the readers produce before defaults ({@link RawSettings}), and what they
 * return ({@link ReadResult}). Every field of {@link SettingValues} has exactly one entry in
 * `settings.ts` (the table's type says so), which holds everything else about the setting;
 * `build_config.ts` applies the defaults and the rules between settings.
 *
 * @module
 */

import type { Nameserver } from "../dns/nameserver.ts";
import type { KeyType } from "../crypto/key_type.ts";
import type { CryptoBackendName } from "../crypto/crypto_backend.ts";
import type { PartialBodyResult } from "../dkim/acceptance.ts";
import type { KeySecurityAction } from "../dkim/key_security.ts";
import type { DataSetSource } from "../policy/dataset.ts";
import type { SigningAlgorithm } from "../policy/key_table.ts";
import type { Origin } from "../policy/origin.ts";
import type { ConfigWarning } from "./config_error.ts";
import type { ArcMode } from "./arc_mode.ts";
import type { Actions } from "./defaults.ts";
import type { ListenAddress } from "./listen_address.ts";
import type { SocketSpec } from "../milter/socket_spec.ts";
import type {
  AuthservId,
  Canonicalization,
  MilterAction,
  Mode,
  RestartRate,
  SyslogFacility,
  UnauthorizedSignerAction,
  UserId,
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
  /** SenderMacro: a milter macro naming the sender, used before SenderHeaders when not empty. */
  readonly senderMacro?: string;
  /** DefaultSender: the sender assumed when the message names none dkimd can read. */
  readonly defaultSender?: string;
  /** DontSignMailTo: recipients whose mail is never signed. */
  readonly dontSignMailTo?: DataSetSource;
  /** ExemptDomains: sender domains whose mail is ignored entirely. */
  readonly exemptDomains?: DataSetSource;
  /**
   * BodyLengthDB: recipients whose mail is signed with `l=` (appended content then keeps the
   * signature valid: RFC 6376 §8.2).
   */
  readonly bodyLengthDb?: DataSetSource;
  /** ResignMailTo: recipients whose mail is verified and signed again (value: the key name). */
  readonly resignMailTo?: DataSetSource;
  /** ResignAll: re-sign mail that arrived signed even when it does not verify. */
  readonly resignAll: boolean;
  /**
   * IdentityHeader: the field whose address is `i=` of signatures without one (else `@` and the
   * sender's domain).
   */
  readonly identityHeader?: string;
  /** IdentityHeaderRemove: with IdentityHeader, that field is not signed and its first is deleted. */
  readonly identityHeaderRemove: boolean;
  /** ReplaceRules: a file of replacements applied to header values before signing or verifying. */
  readonly replaceRules?: string;
  /** ReplaceHeaders: the header fields ReplaceRules applies to (default: every field). */
  readonly replaceHeaders?: DataSetSource;
  /**
   * AuthorizedSigners (dkimd's own): SASL logins to what they may put in From; absent, any
   * authenticated client gets a signature for every domain, as with OpenDKIM.
   */
  readonly authorizedSigners?: DataSetSource;
  /** Canonicalization for signing (default simple/simple). */
  readonly canonicalization: Canonicalization;
  /**
   * SelectCanonicalizationHeader: a field of the message that overrides `canonicalization`;
   * absent, none does (OpenDKIM 2.11 always obeys a field named `Canonicalization`).
   */
  readonly selectCanonicalizationHeader?: string;
  /** SignatureAlgorithm (default rsa-sha256); Ed25519 keys always sign ed25519-sha256. */
  readonly signatureAlgorithm: SigningAlgorithm;
  /** SignHeaders: fields to sign (default `dkimd sign`'s list, DEFAULT_SIGNED_HEADERS). */
  readonly signHeaders?: DataSetSource;
  /** OmitHeaders: fields never to sign (default opendkim.conf(5)'s list). */
  readonly omitHeaders?: DataSetSource;
  /** OversignHeaders: fields signed once more than present (default From). */
  readonly oversignHeaders?: DataSetSource;
  /** SignatureTTL in seconds; 0 (the default) adds no `x=`. */
  readonly signatureTtl: number;
  /** MinimumKeyBits for verification (default 1024). */
  readonly minimumKeyBits: number;
  /** MaximumHeaders: header block limit in bytes (default 65536; 0 means OpenDKIM's "no limit"). */
  readonly maximumHeaders: number;
  /** MaximumHeaderFields (dkimd's own): most header fields per message (default 1000; 0: no limit). */
  readonly maximumHeaderFields: number;
  /**
   * MaximumSignaturesToVerify (default 3; above 50 means the ceiling of 50); 0 verifies only
   * first-party and TrustSignaturesFrom signatures, as OpenDKIM does (at most 50 of them).
   */
  readonly maximumSignaturesToVerify: number;
  /**
   * TrustSignaturesFrom: signing domains whose signatures are always verified, beside the
   * MaximumSignaturesToVerify count (OpenDKIM's prescreen).
   */
  readonly trustSignaturesFrom?: DataSetSource;
  /** MaximumKeyBits (dkimd's own): larger RSA keys give permerror unimported (default 4096). */
  readonly maximumKeyBits: number;
  /** MaximumSignedBytes: sign at most this much body, adding `l=`; absent signs it all; never 0. */
  readonly maximumSignedBytes?: number;
  /** RemoveOldSignatures when signing. */
  readonly removeOldSignatures: boolean;
  /** The On-* actions, On-Default already applied. */
  readonly actions: Actions;
  /**
   * On-UnauthorizedSigner (dkimd's own): what an authenticated message whose From
   * AuthorizedSigners refuses gets (default accept: passed on unsigned).
   */
  readonly onUnauthorizedSigner: UnauthorizedSignerAction;
  /** AlwaysAddARHeader: add Authentication-Results to unsigned mail too. */
  readonly alwaysAddArHeader: boolean;
  /** AuthservID (default: the MTA's name). */
  readonly authservId: AuthservId;
  /** AuthservIDWithJobID: append `/jobid` to the authserv-id. */
  readonly authservIdWithJobId: boolean;
  /** NoHeaderB: leave `header.b` out of Authentication-Results. */
  readonly noHeaderB: boolean;
  /**
   * PartialBodyResult (dkimd's own): the result of a valid signature whose `l=` leaves body
   * bytes unsigned (RFC 6376 §8.2): `policy` (the default) or `pass` (OpenDKIM's).
   */
  readonly partialBodyResult: PartialBodyResult;
  /**
   * StrictHeaders: a message breaking RFC 5322 §3.6's field counts gets `policy` instead of
   * `pass` and is not signed (opendkim.conf(5): "refuse processing of a message if the header
   * field count does not conform to RFC5322 Section 3.6").
   */
  readonly strictHeaders: boolean;
  /**
   * RequiredHeaders: a message breaking RFC 5322 §3.6's field counts is rejected
   * (opendkim.conf(5): "Non-compliant messages are rejected").
   */
  readonly requiredHeaders: boolean;
  /**
   * IgnoreMalformedMail: mail without a usable sender passes untouched instead of getting
   * `dkim=permerror (bad message format)`. RequiredHeaders still rejects, as Debian's OpenDKIM
   * 2.11 does (opendkim.conf(5) says it would pass such mail too).
   */
  readonly ignoreMalformedMail: boolean;
  /**
   * MustBeSigned: header fields that, if present, every signature must cover; a signature that
   * does not gets `policy` instead of `pass` (opendkim.conf(5)).
   */
  readonly mustBeSigned?: DataSetSource;
  /**
   * Diagnostics: signatures carry `z=`, copies of the fields they sign (RFC 6376 §3.5), with `|`
   * encoded as §3.5 requires (OpenDKIM leaves it bare).
   */
  readonly diagnostics: boolean;
  /**
   * Quarantine: mail whose signatures fail to verify is quarantined as well as given its
   * On-BadSignature action (opendkim.conf(5); Debian's OpenDKIM 2.11 ignores the setting).
   */
  readonly quarantine: boolean;
  /**
   * RedirectFailuresTo: mail whose signatures fail to verify loses its recipients to this address;
   * each original recipient is written into an `Original-Recipient: rfc822;ADDRESS` field.
   */
  readonly redirectFailuresTo?: string;
  /**
   * CaptureUnknownErrors: a message that meets an internal error at end of message is quarantined
   * ("capture requested") and accepted rather than given On-InternalError's action.
   */
  readonly captureUnknownErrors: boolean;
  /** RemoveARAll: remove every Authentication-Results field from RemoveARFrom hosts, not just DKIM ones. */
  readonly removeArAll: boolean;
  /** RemoveARFrom: hosts and `.domains` whose Authentication-Results fields are removed. */
  readonly removeArFrom?: DataSetSource;
  /** SoftwareHeader: add `DKIM-Filter:`. */
  readonly softwareHeader: boolean;
  /** SendReports: send RFC 6651 failure reports for failed signatures that ask with `r=y`. */
  readonly sendReports: boolean;
  /** ReportAddress: the From of failure reports and their envelope sender (default USER@HOST). */
  readonly reportAddress?: string;
  /** ReportBccAddress: Bcc of every failure report (comma-separated addresses). */
  readonly reportBccAddress?: string;
  /** RequestReports: write `r=y` in new signatures (RFC 6651 §4). */
  readonly requestReports: boolean;
  /** MTACommand: the sendmail-compatible program reports are sent through. */
  readonly mtaCommand: string;
  /** Nameservers to query instead of resolv.conf's. */
  readonly nameservers?: readonly Nameserver[];
  /** DNSTimeout in seconds (default 5). */
  readonly dnsTimeout: number;
  /** DataSetCacheTTL (dkimd's own): seconds a dsn:/ldap: answer, found or not, is cached. */
  readonly dataSetCacheTtl: number;
  /** DataSetStaleLimit (dkimd's own): seconds past the TTL an answer is served during an outage. */
  readonly dataSetStaleLimit: number;
  /** DataSetQueryTimeout (dkimd's own): seconds a database query may take. */
  readonly dataSetQueryTimeout: number;
  /** DataSetConnectTimeout (dkimd's own): seconds a database connection may take. */
  readonly dataSetConnectTimeout: number;
  /** DataSetPasswordFile (dkimd's own): the dsn: password, relative to $CREDENTIALS_DIRECTORY. */
  readonly dataSetPasswordFile?: string;
  /** DataSetTLS (dkimd's own): TLS to dsn:pgsql and dsn:mysql servers (default no). */
  readonly dataSetTls: "no" | "prefer" | "require" | "verify";
  /** DataSetTLSCAFile (dkimd's own): a private CA (PEM) for DataSetTLS verify and LDAP TLS. */
  readonly dataSetTlsCaFile?: string;
  /**
   * DNSMaxAnswerBytes (dkimd's own): most bytes of TXT record text in one key answer; more is a
   * permerror (default 8192).
   */
  readonly dnsMaxAnswerBytes: number;
  /**
   * DNSConnect: key queries go over TCP from the start (opendkim.conf(5): "start using TCP
   * immediately rather than using UDP until TCP is required").
   */
  readonly dnsConnect: boolean;
  /**
   * TrustAnchorFile: OpenDKIM hands it to libunbound; to dkimd it says DNSSEC is wanted (ask the
   * resolver, which validates with its own anchors).
   */
  readonly trustAnchorFile?: string;
  /** ResolverConfiguration: OpenDKIM's libunbound configuration file; to dkimd, as TrustAnchorFile. */
  readonly resolverConfiguration?: string;
  /** BogusKey: what a pass with a key DNSSEC found bogus becomes (default fail). */
  readonly bogusKey: KeySecurityAction;
  /** UnprotectedKey: what a pass with a key not protected by DNSSEC becomes (default none). */
  readonly unprotectedKey: KeySecurityAction;
  /** RotationInterval (dkimd's own): seconds after which a key is rotated; 0 (default): off. */
  readonly rotationInterval: number;
  /** RotationKeyTypes (dkimd's own): the key types `dkimd rotate` rotates. */
  readonly rotationKeyTypes: readonly KeyType[];
  /** RotationSelectorFormat (dkimd's own): the pattern of new selectors. */
  readonly rotationSelectorFormat: string;
  /** DNSUpdateKey (dkimd's own): the TSIG key file for DNS UPDATE; absent: print mode. */
  readonly dnsUpdateKey?: string;
  /** DNSUpdateServer (dkimd's own): where updates go; absent: the zone's SOA MNAME. */
  readonly dnsUpdateServer?: Nameserver;
  /** DNSProofServers (dkimd's own): the servers that must serve a record; absent: the NS. */
  readonly dnsProofServers?: readonly Nameserver[];
  /** RotationOverlap (dkimd's own): seconds of signing with both keys before the switch. */
  readonly rotationOverlap: number;
  /** RotationRetireAfter (dkimd's own): seconds from activation to revoking the old record. */
  readonly rotationRetireAfter: number;
  /** RotationDeleteAfter (dkimd's own): seconds from activation to deleting the old key. */
  readonly rotationDeleteAfter: number;
  /** RotationDataSetUser (dkimd's own): the database user rotate writes a dsn: KeyTable as. */
  readonly rotationDataSetUser?: string;
  /** RotationDataSetPasswordFile (dkimd's own): that user's password file. */
  readonly rotationDataSetPasswordFile?: string;
  /** RotationStateFile (dkimd's own): the JSON state of every rotation. */
  readonly rotationStateFile: string;
  /** QueryCache: cache keys beyond the resolver's own cache. */
  readonly queryCache: boolean;
  /** TestPublicKeys: a file of keys to use instead of DNS (testing only). */
  readonly testPublicKeys?: string;
  /** TestDNSData: names and TXT records to use instead of DNS (testing only). */
  readonly testDnsData?: DataSetSource;
  /** LDAPBindUser: the DN LDAP data sets bind as (absent: anonymous). */
  readonly ldapBindUser?: string;
  /** LDAPBindPassword: LDAPBindUser's password. */
  readonly ldapBindPassword?: string;
  /** LDAPAuthMechanism: a simple bind, the only one dkimd makes. */
  readonly ldapAuthMechanism?: "simple";
  /** LDAPAuthName: SASL only; not used. */
  readonly ldapAuthName?: string;
  /** LDAPAuthRealm: SASL only; not used. */
  readonly ldapAuthRealm?: string;
  /** LDAPAuthUser: SASL only; not used. */
  readonly ldapAuthUser?: string;
  /** LDAPUseTLS: StartTLS to LDAP servers, required (default false). */
  readonly ldapUseTls: boolean;
  /** LDAPTimeout in seconds: the longest one LDAP operation may take (default 5). */
  readonly ldapTimeout: number;
  /** LDAPDisableCache: OpenDKIM's own LDAP cache off; not used (default false). */
  readonly ldapDisableCache: boolean;
  /** LDAPKeepaliveIdle: TCP keepalive idle seconds; not used. */
  readonly ldapKeepaliveIdle?: number;
  /** LDAPKeepaliveInterval: TCP keepalive interval seconds; not used. */
  readonly ldapKeepaliveInterval?: number;
  /** LDAPKeepaliveProbes: TCP keepalive probes; not used. */
  readonly ldapKeepaliveProbes?: number;
  /** LDAPSoftStart: start while LDAP is down; always so in dkimd (default false). */
  readonly ldapSoftStart: boolean;
  /** ARCMode: verify ARC chains (v) and seal (s) the mail dkimd verifies (default none). */
  readonly arcMode: ArcMode;
  /** ARCDomain: the sealing domain. */
  readonly arcDomain?: string;
  /** ARCSelector: the sealing key's selector. */
  readonly arcSelector?: string;
  /** SetupPolicyScript: the Lua setup script's file. */
  readonly setupPolicyScript?: string;
  /** ScreenPolicyScript: the Lua screen script's file. */
  readonly screenPolicyScript?: string;
  /** StatisticsPolicyScript: the Lua statistics script's file. */
  readonly statisticsPolicyScript?: string;
  /** FinalPolicyScript: the Lua final script's file. */
  readonly finalPolicyScript?: string;
  /** LuaOnlySigning: only the setup script decides what is signed. */
  readonly luaOnlySigning: boolean;
  /** ARCKeyFile: the sealing key's file. */
  readonly arcKeyFile?: string;
  /** ARCSignHeaders: the fields the ARC-Message-Signature signs (default SignHeaders' default). */
  readonly arcSignHeaders?: DataSetSource;
  /** RequireSafeKeys: refuse key files others can read or replace (default true). */
  readonly requireSafeKeys: boolean;
  /** CryptoBackend (dkimd's own): the engine for RSA signing and verifying (default webcrypto). */
  readonly cryptoBackend: CryptoBackendName;
  /** CryptoBackendRequired (dkimd's own): refuse to start without the chosen backend. */
  readonly cryptoBackendRequired: boolean;
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
  /** ChangeRootDirectory: never set; reading it refuses the configuration (no chroot in Deno). */
  readonly changeRootDirectory?: string;
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
    /** UnboundConfigFile, OpenDKIM's name for ResolverConfiguration before 2.7. */
    unboundConfigFile: string;
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
