import assert from "node:assert/strict";
import fc from "fast-check";
import { ConfigError, ConfigErrors } from "../../lib/config/config_error.ts";
import { DEFAULT_ACTIONS } from "../../lib/config/defaults.ts";
import {
  expandIncludes,
  MAX_INCLUDE_DEPTH,
  parseConfText,
  readOpendkimConf,
} from "../../lib/config/opendkim_conf.ts";
import type { Config } from "../../lib/config/schema.ts";
import { knownSettingNames, SETTING_LIST } from "../../lib/config/settings.ts";
import { UNIMPLEMENTED_SETTINGS } from "../../lib/config/unimplemented_settings.ts";
import { SourceError } from "../../lib/policy/origin.ts";
import { assertOnlySourceErrors } from "../helpers/source_errors.ts";
import { fuzzParams } from "../helpers/fuzz.ts";

const FILE = "/etc/opendkim.conf";

/** Reads a configuration of verify mode plus `line` (on line 2). */
function read(line: string) {
  return readOpendkimConf(`Mode v\n${line}\n`, FILE);
}

interface KeyCase {
  line: string;
  want: (c: Config) => unknown;
  value: unknown;
}

// Every setting of issue 4's list: a good value and what it becomes.
const good: KeyCase[] = [
  { line: "Mode sv", want: (c) => c.mode, value: { sign: true, verify: true } },
  {
    line: "SelectCanonicalizationHeader X-Canonicalization",
    want: (c) => c.selectCanonicalizationHeader,
    value: "X-Canonicalization",
  },
  { line: "SenderMacro {mail_addr}", want: (c) => c.senderMacro, value: "{mail_addr}" },
  {
    line: "DefaultSender postmaster@example.com",
    want: (c) => c.defaultSender,
    value: "postmaster@example.com",
  },
  { line: "IgnoreMalformedMail yes", want: (c) => c.ignoreMalformedMail, value: true },
  { line: "Quarantine yes", want: (c) => c.quarantine, value: true },
  { line: "Diagnostics yes", want: (c) => c.diagnostics, value: true },
  { line: "CaptureUnknownErrors yes", want: (c) => c.captureUnknownErrors, value: true },
  {
    line: "RedirectFailuresTo failures@example.com",
    want: (c) => c.redirectFailuresTo,
    value: "failures@example.com",
  },
  {
    line: "Socket inet:8891@localhost",
    want: (c) => c.socket,
    value: { kind: "inet", host: "127.0.0.1", port: 8891 },
  },
  {
    line: "Socket local:/run/opendkim/opendkim.sock",
    want: (c) => c.socket,
    value: { kind: "unix", path: "/run/opendkim/opendkim.sock" },
  },
  {
    line: "Domain example.com,example.net",
    want: (c) => c.domain,
    value: {
      kind: "inline",
      entries: [{ key: "example.com" }, { key: "example.net" }],
      patterns: false,
    },
  },
  { line: "Selector mail2024", want: (c) => c.selector, value: "mail2024" },
  {
    line: "KeyFile /etc/dkimkeys/example.private",
    want: (c) => c.keyFile,
    value: "/etc/dkimkeys/example.private",
  },
  {
    line: "KeyTable /etc/opendkim/key.table",
    want: (c) => c.keyTable,
    value: { kind: "file", path: "/etc/opendkim/key.table" },
  },
  {
    line: "SigningTable refile:/etc/opendkim/signing.table",
    want: (c) => c.signingTable,
    value: { kind: "refile", path: "/etc/opendkim/signing.table" },
  },
  { line: "SubDomains yes", want: (c) => c.subDomains, value: true },
  { line: "MultipleSignatures true", want: (c) => c.multipleSignatures, value: true },
  {
    line: "InternalHosts 192.168.0.0/16, 10.0.0.0/8",
    want: (c) => c.internalHosts,
    value: {
      kind: "inline",
      entries: [{ key: "192.168.0.0/16" }, { key: "10.0.0.0/8" }],
      patterns: false,
    },
  },
  {
    line: "ExternalIgnoreList file:/etc/opendkim/TrustedHosts",
    want: (c) => c.externalIgnoreList,
    value: { kind: "file", path: "/etc/opendkim/TrustedHosts" },
  },
  {
    line: "PeerList 192.0.2.25",
    want: (c) => c.peerList,
    value: { kind: "inline", entries: [{ key: "192.0.2.25" }], patterns: false },
  },
  {
    line: "MTA MSA",
    want: (c) => c.mta,
    value: { kind: "inline", entries: [{ key: "MSA" }], patterns: false },
  },
  {
    line: "MacroList daemon_name=MSA|ORIG",
    want: (c) => c.macroList,
    value: {
      kind: "inline",
      entries: [{ key: "daemon_name", value: "MSA|ORIG" }],
      patterns: false,
    },
  },
  {
    line: "SenderHeaders Sender,From",
    want: (c) => c.senderHeaders,
    value: { kind: "inline", entries: [{ key: "Sender" }, { key: "From" }], patterns: false },
  },
  {
    line: "DontSignMailTo boss@example.com",
    want: (c) => c.dontSignMailTo,
    value: { kind: "inline", entries: [{ key: "boss@example.com" }], patterns: false },
  },
  {
    line: "ExemptDomains example.org",
    want: (c) => c.exemptDomains,
    value: { kind: "inline", entries: [{ key: "example.org" }], patterns: false },
  },
  {
    line: "ReplaceRules /etc/dkimd/replace_rules",
    want: (c) => c.replaceRules,
    value: "/etc/dkimd/replace_rules",
  },
  {
    line: "ReplaceHeaders From",
    want: (c) => c.replaceHeaders,
    value: { kind: "inline", entries: [{ key: "From" }], patterns: false },
  },
  {
    line: "BodyLengthDB *@lists.example.org",
    want: (c) => c.bodyLengthDb,
    value: { kind: "inline", entries: [{ key: "*@lists.example.org" }], patterns: false },
  },
  {
    line: "ResignMailTo lists.example.org",
    want: (c) => c.resignMailTo,
    value: { kind: "inline", entries: [{ key: "lists.example.org" }], patterns: false },
  },
  {
    line: "TrustSignaturesFrom example.com,example.org",
    want: (c) => c.trustSignaturesFrom,
    value: {
      kind: "inline",
      entries: [{ key: "example.com" }, { key: "example.org" }],
      patterns: false,
    },
  },
  {
    line: "AuthorizedSigners refile:/etc/dkimd/authorized_signers",
    want: (c) => c.authorizedSigners,
    value: { kind: "refile", path: "/etc/dkimd/authorized_signers" },
  },
  {
    line: "Canonicalization relaxed/simple",
    want: (c) => c.canonicalization,
    value: { header: "relaxed", body: "simple" },
  },
  {
    line: "SignatureAlgorithm ed25519-sha256",
    want: (c) => c.signatureAlgorithm,
    value: "ed25519-sha256",
  },
  {
    line: "SignHeaders *,+List-Unsubscribe-Post",
    want: (c) => c.signHeaders,
    value: {
      kind: "inline",
      entries: [{ key: "*" }, { key: "+List-Unsubscribe-Post" }],
      patterns: false,
    },
  },
  {
    line: "OmitHeaders *,-Bcc",
    want: (c) => c.omitHeaders,
    value: { kind: "inline", entries: [{ key: "*" }, { key: "-Bcc" }], patterns: false },
  },
  {
    line: "OversignHeaders From",
    want: (c) => c.oversignHeaders,
    value: { kind: "inline", entries: [{ key: "From" }], patterns: false },
  },
  { line: "SignatureTTL 604800", want: (c) => c.signatureTtl, value: 604800 },
  { line: "MinimumKeyBits 2048", want: (c) => c.minimumKeyBits, value: 2048 },
  { line: "MaximumHeaders 0x20000", want: (c) => c.maximumHeaders, value: 131072 },
  { line: "MaximumHeaderFields 200", want: (c) => c.maximumHeaderFields, value: 200 },
  { line: "MaximumSignaturesToVerify 5", want: (c) => c.maximumSignaturesToVerify, value: 5 },
  { line: "MaximumKeyBits 8192", want: (c) => c.maximumKeyBits, value: 8192 },
  { line: "MaximumSignedBytes 1000", want: (c) => c.maximumSignedBytes, value: 1000 },
  { line: "RemoveOldSignatures yes", want: (c) => c.removeOldSignatures, value: true },
  { line: "PartialBodyResult Pass", want: (c) => c.partialBodyResult, value: "pass" },
  { line: "StrictHeaders yes", want: (c) => c.strictHeaders, value: true },
  { line: "RequiredHeaders true", want: (c) => c.requiredHeaders, value: true },
  {
    line: "MustBeSigned Reply-To,Subject",
    want: (c) => c.mustBeSigned,
    value: { kind: "inline", entries: [{ key: "Reply-To" }, { key: "Subject" }], patterns: false },
  },
  { line: "On-Default reject", want: (c) => c.actions.noSignature, value: "reject" },
  { line: "On-BadSignature q", want: (c) => c.actions.badSignature, value: "quarantine" },
  { line: "On-DNSError accept", want: (c) => c.actions.dnsError, value: "accept" },
  { line: "On-InternalError tempfail", want: (c) => c.actions.internalError, value: "tempfail" },
  { line: "On-KeyNotFound discard", want: (c) => c.actions.keyNotFound, value: "discard" },
  { line: "On-NoSignature r", want: (c) => c.actions.noSignature, value: "reject" },
  { line: "On-Security a", want: (c) => c.actions.security, value: "accept" },
  { line: "On-SignatureError t", want: (c) => c.actions.signatureError, value: "tempfail" },
  { line: "On-UnauthorizedSigner d", want: (c) => c.onUnauthorizedSigner, value: "discard" },
  { line: "AlwaysAddARHeader yes", want: (c) => c.alwaysAddArHeader, value: true },
  { line: "AuthservID HOSTNAME", want: (c) => c.authservId, value: { kind: "hostname" } },
  {
    line: "AuthservID mx.example.com",
    want: (c) => c.authservId,
    value: { kind: "name", name: "mx.example.com" },
  },
  { line: "AuthservIDWithJobID 1", want: (c) => c.authservIdWithJobId, value: true },
  { line: "NoHeaderB yes", want: (c) => c.noHeaderB, value: true },
  { line: "RemoveARAll yes", want: (c) => c.removeArAll, value: true },
  {
    line: "RemoveARFrom mx.example.com,.example.net",
    want: (c) => c.removeArFrom,
    value: {
      kind: "inline",
      entries: [{ key: "mx.example.com" }, { key: ".example.net" }],
      patterns: false,
    },
  },
  { line: "SoftwareHeader yes", want: (c) => c.softwareHeader, value: true },
  { line: "SendReports yes", want: (c) => c.sendReports, value: true },
  {
    line: "ReportAddress DKIM <dkim@example.net>",
    want: (c) => c.reportAddress,
    value: "DKIM <dkim@example.net>",
  },
  {
    line: "ReportBccAddress a@example.net",
    want: (c) => c.reportBccAddress,
    value: "a@example.net",
  },
  { line: "RequestReports yes", want: (c) => c.requestReports, value: true },
  { line: "MTACommand /usr/lib/sendmail", want: (c) => c.mtaCommand, value: "/usr/lib/sendmail" },
  {
    line: "Nameservers 127.0.0.1, ::1@5353",
    want: (c) => c.nameservers,
    value: [{ address: "127.0.0.1", port: 53, family: 4 }, {
      address: "::1",
      port: 5353,
      family: 6,
    }],
  },
  {
    line: "Nameservers [::1]:5353",
    want: (c) => c.nameservers,
    value: [{ address: "::1", port: 5353, family: 6 }],
  },
  { line: "DNSTimeout 10", want: (c) => c.dnsTimeout, value: 10 },
  { line: "DataSetCacheTTL 30", want: (c) => c.dataSetCacheTtl, value: 30 },
  { line: "DataSetStaleLimit 0", want: (c) => c.dataSetStaleLimit, value: 0 },
  { line: "DataSetQueryTimeout 2", want: (c) => c.dataSetQueryTimeout, value: 2 },
  { line: "DataSetConnectTimeout 3", want: (c) => c.dataSetConnectTimeout, value: 3 },
  { line: "DataSetPasswordFile dkim-db", want: (c) => c.dataSetPasswordFile, value: "dkim-db" },
  { line: "DataSetTLS Verify", want: (c) => c.dataSetTls, value: "verify" },
  {
    line: "DataSetTLSCAFile /etc/dkimd/ca.pem",
    want: (c) => c.dataSetTlsCaFile,
    value: "/etc/dkimd/ca.pem",
  },
  { line: "DNSMaxAnswerBytes 4096", want: (c) => c.dnsMaxAnswerBytes, value: 4096 },
  { line: "DNSConnect yes", want: (c) => c.dnsConnect, value: true },
  {
    line: "TrustAnchorFile /usr/share/dns/root.key",
    want: (c) => c.trustAnchorFile,
    value: "/usr/share/dns/root.key",
  },
  {
    line: "ResolverConfiguration /etc/unbound/unbound.conf",
    want: (c) => c.resolverConfiguration,
    value: "/etc/unbound/unbound.conf",
  },
  {
    line: "UnboundConfigFile /etc/unbound/unbound.conf",
    want: (c) => c.resolverConfiguration,
    value: "/etc/unbound/unbound.conf",
  },
  { line: "BogusKey Neutral", want: (c) => c.bogusKey, value: "neutral" },
  { line: "UnprotectedKey fail", want: (c) => c.unprotectedKey, value: "fail" },
  { line: "QueryCache yes", want: (c) => c.queryCache, value: true },
  { line: "RotationInterval 7776000", want: (c) => c.rotationInterval, value: 7776000 },
  { line: "RotationKeyTypes ed25519", want: (c) => c.rotationKeyTypes, value: ["ed25519"] },
  { line: "RotationSelectorFormat k%Y", want: (c) => c.rotationSelectorFormat, value: "k%Y" },
  {
    line: "DNSUpdateKey /etc/dkimd/update.key",
    want: (c) => c.dnsUpdateKey,
    value: "/etc/dkimd/update.key",
  },
  {
    line: "DNSUpdateServer 192.0.2.53@5353",
    want: (c) => c.dnsUpdateServer,
    value: { address: "192.0.2.53", port: 5353, family: 4 },
  },
  {
    line: "DNSProofServers 192.0.2.53,192.0.2.54",
    want: (c) => c.dnsProofServers?.map((n) => n.address),
    value: ["192.0.2.53", "192.0.2.54"],
  },
  { line: "RotationOverlap 0", want: (c) => c.rotationOverlap, value: 0 },
  { line: "RotationRetireAfter 86400", want: (c) => c.rotationRetireAfter, value: 86400 },
  { line: "RotationDeleteAfter 172800", want: (c) => c.rotationDeleteAfter, value: 172800 },
  {
    line: "RotationDataSetUser dkimd_rotate",
    want: (c) => c.rotationDataSetUser,
    value: "dkimd_rotate",
  },
  {
    line: "RotationDataSetPasswordFile rotate-db",
    want: (c) => c.rotationDataSetPasswordFile,
    value: "rotate-db",
  },
  {
    line: "RotationStateFile /tmp/rotation.json",
    want: (c) => c.rotationStateFile,
    value: "/tmp/rotation.json",
  },
  { line: "TestPublicKeys /tmp/testkeys", want: (c) => c.testPublicKeys, value: "/tmp/testkeys" },
  {
    line: "TestDNSData csl:s._domainkey.example.com=v=DKIM1",
    want: (c) => c.testDnsData,
    value: {
      kind: "inline",
      entries: [{ key: "s._domainkey.example.com", value: "v=DKIM1" }],
      patterns: false,
    },
  },
  {
    line: "LDAPBindUser cn=dkim,dc=example,dc=com",
    want: (c) => c.ldapBindUser,
    value: "cn=dkim,dc=example,dc=com",
  },
  { line: "LDAPBindPassword s3cret", want: (c) => c.ldapBindPassword, value: "s3cret" },
  { line: "LDAPAuthMechanism simple", want: (c) => c.ldapAuthMechanism, value: "simple" },
  { line: "LDAPAuthName dkim", want: (c) => c.ldapAuthName, value: "dkim" },
  { line: "LDAPAuthRealm EXAMPLE", want: (c) => c.ldapAuthRealm, value: "EXAMPLE" },
  { line: "LDAPAuthUser dkim", want: (c) => c.ldapAuthUser, value: "dkim" },
  { line: "LDAPUseTLS yes", want: (c) => c.ldapUseTls, value: true },
  { line: "LDAPTimeout 2", want: (c) => c.ldapTimeout, value: 2 },
  { line: "LDAPDisableCache yes", want: (c) => c.ldapDisableCache, value: true },
  { line: "LDAPKeepaliveIdle 60", want: (c) => c.ldapKeepaliveIdle, value: 60 },
  { line: "LDAPKeepaliveInterval 10", want: (c) => c.ldapKeepaliveInterval, value: 10 },
  { line: "LDAPKeepaliveProbes 3", want: (c) => c.ldapKeepaliveProbes, value: 3 },
  { line: "LDAPSoftStart yes", want: (c) => c.ldapSoftStart, value: true },
  { line: "RequireSafeKeys no", want: (c) => c.requireSafeKeys, value: false },
  { line: "CryptoBackend OpenSSL", want: (c) => c.cryptoBackend, value: "openssl" },
  { line: "CryptoBackendRequired yes", want: (c) => c.cryptoBackendRequired, value: true },
  { line: "ClockDrift 60", want: (c) => c.clockDrift, value: 60 },
  { line: "FixCRLF yes", want: (c) => c.fixCrlf, value: true },
  {
    line: "SetupPolicyScript /etc/opendkim/setup.lua",
    want: (c) => c.setupPolicyScript,
    value: "/etc/opendkim/setup.lua",
  },
  {
    line: "ScreenPolicyScript /etc/opendkim/screen.lua",
    want: (c) => c.screenPolicyScript,
    value: "/etc/opendkim/screen.lua",
  },
  {
    line: "StatisticsPolicyScript /etc/opendkim/stats.lua",
    want: (c) => c.statisticsPolicyScript,
    value: "/etc/opendkim/stats.lua",
  },
  {
    line: "FinalPolicyScript /etc/opendkim/final.lua",
    want: (c) => c.finalPolicyScript,
    value: "/etc/opendkim/final.lua",
  },
  { line: "LuaOnlySigning yes", want: (c) => c.luaOnlySigning, value: true },
  { line: "ResignAll yes", want: (c) => c.resignAll, value: true },
  { line: "IdentityHeader X-Identity", want: (c) => c.identityHeader, value: "X-Identity" },
  { line: "IdentityHeaderRemove yes", want: (c) => c.identityHeaderRemove, value: true },
  { line: "ARCMode v", want: (c) => c.arcMode, value: { seal: false, verify: true } },
  { line: "ARCDomain lists.example.net", want: (c) => c.arcDomain, value: "lists.example.net" },
  { line: "ARCSelector arc", want: (c) => c.arcSelector, value: "arc" },
  {
    line: "ARCKeyFile /etc/dkimkeys/arc.private",
    want: (c) => c.arcKeyFile,
    value: "/etc/dkimkeys/arc.private",
  },
  {
    line: "ARCSignHeaders *,+List-Id",
    want: (c) => c.arcSignHeaders,
    value: { kind: "inline", entries: [{ key: "*" }, { key: "+List-Id" }], patterns: false },
  },
  { line: "Syslog yes", want: (c) => c.syslog, value: true },
  { line: "SyslogFacility local3", want: (c) => c.syslogFacility, value: "local3" },
  { line: "SyslogName opendkim-out", want: (c) => c.syslogName, value: "opendkim-out" },
  { line: "SyslogSuccess Yes", want: (c) => c.syslogSuccess, value: true },
  { line: "LogWhy Yes", want: (c) => c.logWhy, value: true },
  { line: "LogResults yes", want: (c) => c.logResults, value: true },
  { line: "UMask 002", want: (c) => c.umask, value: 0o002 },
  {
    line: "UserID opendkim:opendkim",
    want: (c) => c.userId,
    value: { user: "opendkim", group: "opendkim" },
  },
  {
    line: "PidFile /var/run/opendkim/opendkim.pid",
    want: (c) => c.pidFile,
    value: "/var/run/opendkim/opendkim.pid",
  },
  {
    line: "MetricsListen 127.0.0.1:9891",
    want: (c) => c.metricsListen,
    value: { host: "127.0.0.1", port: 9891 },
  },
  { line: "MilterMaxFrameBytes 131072", want: (c) => c.milterMaxFrameBytes, value: 131072 },
  { line: "MilterMaxConnections 64", want: (c) => c.milterMaxConnections, value: 64 },
  { line: "MilterIdleTimeout 600", want: (c) => c.milterIdleTimeout, value: 600 },
  { line: "MilterShutdownTimeout 40", want: (c) => c.milterShutdownTimeout, value: 40 },
  { line: "AutoRestart Yes", want: (c) => c.autoRestart, value: true },
  { line: "AutoRestartCount 10", want: (c) => c.autoRestartCount, value: 10 },
  {
    line: "AutoRestartRate 10/1h",
    want: (c) => c.autoRestartRate,
    value: { count: 10, seconds: 3600 },
  },
  { line: "Background no", want: (c) => c.background, value: false },
  {
    line: "BaseDirectory /var/run/opendkim",
    want: (c) => c.baseDirectory,
    value: "/var/run/opendkim",
  },
];

Deno.test("readOpendkimConf() reads a good value of every implemented setting", () => {
  for (const c of good) {
    assert.deepEqual(c.want(read(c.line).config), c.value, c.line);
  }
  const covered = new Set(good.map((c) => c.line.split(" ")[0].toLowerCase()));
  for (const s of SETTING_LIST) {
    // ChangeRootDirectory has no good value: dkimd refuses it (below).
    if (s.name === "X-Header" || s.name === "ChangeRootDirectory") continue;
    assert.ok(covered.has(s.name.toLowerCase()), `no test for ${s.name}`);
  }
});

// Bad values: each error names the setting and /etc/opendkim.conf:2.
const bad: [string, RegExp][] = [
  ["Mode sx", /unknown mode "x"/],
  ["DefaultSender postmaster", /"postmaster" is not an address \(user@domain\)/],
  ["LDAPAuthMechanism GSSAPI", /unsupported mechanism "GSSAPI": dkimd binds with simple/],
  ["ChangeRootDirectory /var/lib/dkimd", /no chroot.*RootDirectory=\/var\/lib\/dkimd/],
  ["PartialBodyResult fail", /unknown result "fail" \(expected "policy" or "pass"\)/],
  ["BogusKey reject", /unknown key action "reject" \(expected "none", "neutral" or "fail"\)/],
  ["UnprotectedKey yes", /unknown key action "yes"/],
  ["MetricsListen 9891", /expected "HOST:PORT"/],
  ["Socket inet:99999@localhost", /port "99999"/],
  ["Socket tcp:8891", /Cannot parse "Socket"/],
  ["MacroList ldap://ldap/dc=example", /dkimd reads "MacroList" whole, from a file or an inline/],
  ["KeyTable db:/etc/opendkim/keys.db", /data set type "db" is not supported/],
  ["SigningTable dsn:mysql://x/y", /"dsn:mysql:\/\/x\/y": no "\/" between the database name/],
  [
    "KeyTable dsn:pgsql://u:s3cret@h/d/table=t?keycol=k",
    /"dsn:pgsql:\/\/u:\*\*\*@h\/d\/table=t\?keycol=k": no "datacol="/,
  ],
  ["InternalHosts lua:/etc/x.lua", /data set type "lua"/],
  ["PeerList memcache:localhost/k", /data set type "memcache"/],
  ["ExternalIgnoreList mdb:/var/db", /data set type "mdb"/],
  ["ExemptDomains erlang:n@h:c:m:f", /data set type "erlang"/],
  ["DontSignMailTo foo:bar", /unknown data set type "foo"/],
  ["SubDomains maybe", /expected a Boolean/],
  ["MultipleSignatures 2", /expected a Boolean/],
  ["Canonicalization relaxed/loose", /unknown canonicalization "loose"/],
  ["SignatureAlgorithm rsa-sha512", /unknown signing algorithm "rsa-sha512"/],
  ["SignatureTTL 1h", /expected a whole number/],
  ["SignatureTTL -1", /from 0 to/],
  ["MinimumKeyBits 99999", /from 0 to 16384/],
  ["MaximumHeaders 64k", /expected a whole number/],
  ["MaximumSignaturesToVerify -3", /from 0 to/],
  ["MaximumHeaderFields many", /expected a whole number/],
  ["MaximumKeyBits 512", /from 1024 to 16384/],
  ["DNSMaxAnswerBytes 70000", /from 512 to 65535/],
  ["MilterMaxFrameBytes 4096", /from 65536 to 16777216/],
  ["MilterMaxConnections 0", /from 1 to/],
  ["MilterIdleTimeout 0", /from 1 to 2147483/],
  ["MilterShutdownTimeout 0", /from 1 to 2147483/],
  ["MaximumSignedBytes 1e6", /expected a whole number/],
  ["On-Default bounce", /unknown action "bounce"/],
  ["On-BadSignature x", /unknown action "x"/],
  ["On-UnauthorizedSigner quarantine", /expected accept, reject, tempfail or discard/],
  ["SignHeaders ldaps://ldap/dc=example", /dkimd reads "SignHeaders" whole/],
  ["DataSetCacheTTL 1m", /expected a whole number/],
  ["DataSetQueryTimeout 0", /from 1 to 86400/],
  ["AuthservID mx; evil", /not a valid authserv-id/],
  ["Nameservers ns.example.com", /not an IPv4 or IPv6 address/],
  ["Nameservers 127.0.0.1@99999", /port "99999"/],
  ["DNSTimeout 5s", /expected a whole number/],
  ["ClockDrift forever", /expected a whole number/],
  ["RequireSafeKeys sure", /expected a Boolean/],
  ["CryptoBackend nss", /expected "webcrypto" or "openssl"/],
  ["SyslogFacility mailer", /unknown syslog facility "mailer"/],
  ["UMask 0999", /expected an octal mask/],
  ["UMask 01000", /larger than 0777|expected an octal mask/],
  ["UserID open dkim", /not a (user|group) name/],
  ["AutoRestartCount lots", /expected a whole number/],
  ["AutoRestartRate 10/1y", /expected "count\/time\[unit\]"/],
  ["AutoRestartRate 10/0", /greater than 0/],
  ["Background sometimes", /expected a Boolean/],
];

Deno.test("readOpendkimConf() refuses a bad value of each setting naming file:line", () => {
  for (const [line, re] of bad) {
    assert.throws(() => read(line), (e: unknown) => {
      assert.ok(e instanceof SourceError, `${line}: ${e}`);
      assert.equal(e.file, FILE, line);
      assert.equal(e.line, 2, line);
      assert.match(
        e.message,
        new RegExp(`^Cannot (parse|use) "${line.split(" ")[0]}" at /etc/opendkim\\.conf:2: `),
        line,
      );
      assert.match(e.message, re, line);
      return true;
    });
  }
});

Deno.test("readOpendkimConf() reads OpenDKIM's syntax: comments, CR, case, spacing", () => {
  const text = [
    "# comment",
    "  mode\t\tv # trailing comment",
    "SYSLOG yes\r",
    "syslogsuccess\tno",
    "",
    "\t",
    "canonicalization   relaxed/relaxed   ",
    "AuthservID mx.example.com#comment-without-space",
  ].join("\n");
  const { config } = readOpendkimConf(text, FILE);
  assert.equal(config.mode.sign, false);
  assert.equal(config.syslog, true);
  assert.equal(config.syslogSuccess, false);
  assert.deepEqual(config.canonicalization, { header: "relaxed", body: "relaxed" });
  assert.deepEqual(config.authservId, { kind: "name", name: "mx.example.com" });
});

Deno.test("readOpendkimConf() applies OpenDKIM's defaults", () => {
  const { config } = readOpendkimConf("Socket inet:8891@localhost\n", FILE);
  assert.deepEqual(config.mode, { sign: true, verify: true });
  assert.deepEqual(config.canonicalization, { header: "simple", body: "simple" });
  assert.equal(config.signatureAlgorithm, "rsa-sha256");
  assert.equal(config.clockDrift, 300);
  assert.equal(config.dnsTimeout, 5);
  assert.equal(config.minimumKeyBits, 1024);
  assert.equal(config.maximumHeaders, 65536);
  assert.equal(config.maximumSignaturesToVerify, 3);
  assert.equal(config.maximumHeaderFields, 1000);
  assert.equal(config.maximumKeyBits, 4096);
  assert.equal(config.dnsMaxAnswerBytes, 8192);
  assert.equal(config.milterMaxFrameBytes, 1048576);
  assert.equal(config.milterMaxConnections, 512);
  assert.equal(config.milterIdleTimeout, 7210);
  assert.equal(config.milterShutdownTimeout, 15);
  assert.equal(config.requireSafeKeys, true);
  assert.equal(config.background, true);
  assert.equal(config.syslog, false);
  assert.equal(config.syslogFacility, "mail");
  assert.equal(config.signatureTtl, 0);
  assert.deepEqual(config.authservId, { kind: "mta" });
  assert.deepEqual(config.internalHosts, {
    kind: "inline",
    entries: [{ key: "127.0.0.1" }, { key: "::1" }],
    patterns: false,
  });
  assert.deepEqual(config.actions, DEFAULT_ACTIONS);
  assert.equal(config.actions.badSignature, "accept");
  assert.equal(config.actions.dnsError, "tempfail");
  assert.equal(config.actions.signatureError, "reject");
  // opendkim.conf(5): "On-InternalError ... The default is tempfail."
  assert.equal(config.actions.internalError, "tempfail");
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.mode));
});

Deno.test("readOpendkimConf(): the last of a repeated setting wins, with a warning", () => {
  const { config, warnings } = readOpendkimConf("Mode v\nSyslog no\nsyslog yes\n", FILE);
  assert.equal(config.syslog, true);
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0].message,
    /"Syslog" at \/etc\/opendkim\.conf:3 replaces the value set at \/etc\/opendkim\.conf:2/,
  );
});

Deno.test("readOpendkimConf() refuses unknown settings with the closest name", () => {
  const cases: [string, string | undefined][] = [
    ["SigingTable refile:/x", "SigningTable"],
    ["KeyTabel /x", "KeyTable"],
    ["InternalHost 127.0.0.1", "InternalHosts"],
    ["Canonicalisation relaxed", "Canonicalization"],
    ["Sokcet inet:1@localhost", "Socket"],
    ["Frobnicate yes", undefined],
  ];
  for (const [line, guess] of cases) {
    assert.throws(() => read(line), (e: unknown) => {
      assert.ok(e instanceof ConfigError, line);
      assert.equal(e.line, 2);
      assert.match(
        e.message,
        new RegExp(
          `^Unknown setting "${line.split(" ")[0]}" at /etc/opendkim\\.conf:2: unknown setting`,
        ),
      );
      if (guess) assert.match(e.message, new RegExp(`did you mean "${guess}"\\?$`), line);
      else assert.doesNotMatch(e.message, /did you mean/);
      return true;
    });
  }
});

Deno.test("readOpendkimConf() warns about each OpenDKIM setting dkimd ignores, naming the line", () => {
  for (const { name } of UNIMPLEMENTED_SETTINGS) {
    const { warnings } = read(`${name} something`);
    assert.equal(warnings.length, 1, name);
    assert.match(
      warnings[0].message,
      new RegExp(
        `^"${name}" at /etc/opendkim\\.conf:2 is an OpenDKIM setting dkimd does not implement`,
      ),
      name,
    );
    assert.equal(warnings[0].origin.line, 2);
  }
  const { warnings } = read("adspaction discard");
  assert.match(warnings[0].message, /removed in OpenDKIM 2\.10/);
});

// Issue 13 item 7: KeepAuthResults stays ignored, and the warning says why that is the safe side.
Deno.test("readOpendkimConf() ignores KeepAuthResults, warning that forged Authentication-Results are always removed (RFC 8601 §5)", () => {
  const { config, warnings } = read("KeepAuthResults yes");
  assert.deepEqual(warnings.map((w) => w.message), [
    '"KeepAuthResults" at /etc/opendkim.conf:2 is an OpenDKIM setting dkimd does not implement ' +
    "(forged Authentication-Results are always removed, per RFC 8601 §5); ignored",
  ]);
  assert.deepEqual(config, read("").config);
});

Deno.test("readOpendkimConf() reports every error at once, in line order", () => {
  assert.throws(
    () => readOpendkimConf("Mode x\nSocket\nSyslog maybe\nBogus 1\n", FILE),
    (e: unknown) => {
      assert.ok(e instanceof ConfigErrors);
      assert.deepEqual(e.errors.map((x) => x.line), [1, 2, 3, 4]);
      assert.match(
        e.errors[1].message,
        /"Socket" at \/etc\/opendkim\.conf:2: the value is missing/,
      );
      return true;
    },
  );
});

Deno.test("readOpendkimConf() warns about rsa-sha1, X-Header, DNSTimeout 0, UMask 22 and key bits", () => {
  const cases: [string, RegExp, (c: Config) => unknown, unknown][] = [
    ["SignatureAlgorithm rsa-sha1", /RFC 8301 §3\.1/, (c) => c.signatureAlgorithm, "rsa-sha1"],
    ["X-Header yes", /deprecated name of "SoftwareHeader"/, (c) => c.softwareHeader, true],
    ["DNSTimeout 0", /wait forever/, (c) => c.dnsTimeout, 5],
    ["UMask 22", /OpenDKIM reads "22" as decimal 22/, (c) => c.umask, 0o022],
    ["KeyTable key.table", /read as a one-element list/, (c) => c.keyTable?.kind, "inline"],
    ["MaximumKeyBits 2048", /RFC 8301 §3\.2 says verifiers MUST/, (c) => c.maximumKeyBits, 2048],
    ["MinimumKeyBits 8192", /above "MaximumKeyBits" \(4096\)/, (c) => c.minimumKeyBits, 8192],
  ];
  for (const [line, re, get, want] of cases) {
    const { config, warnings } = read(line);
    assert.ok(
      warnings.some((w) => re.test(w.message) && w.origin.line === 2),
      `${line}: ${warnings.map((w) => w.message)}`,
    );
    assert.deepEqual(get(config), want, line);
  }
});

Deno.test("readOpendkimConf() limits refile: to SigningTable and MacroList to files and lists", () => {
  assert.throws(
    () => read("InternalHosts refile:/h"),
    /"InternalHosts" at \/etc\/opendkim\.conf:2: wildcard patterns/,
  );
  assert.throws(
    () => read("MacroList refile:/m"),
    /"MacroList" at \/etc\/opendkim\.conf:2: must be a file or an inline list/,
  );
});

Deno.test("expandIncludes() follows Include in place, at most five levels deep", async () => {
  const files: Record<string, string> = {
    "/etc/a.conf": "Include /etc/b.conf\nSyslog yes\n",
    "/etc/b.conf": "Mode v\nInclude /etc/c.conf\n",
    "/etc/c.conf": "LogWhy yes\n",
    "/etc/loop.conf": "Include /etc/loop.conf\n",
  };
  const reader = (path: string) =>
    files[path] === undefined
      ? Promise.reject(new Error("no such file"))
      : Promise.resolve({ text: files[path], file: path });
  const top = parseConfText(files["/etc/a.conf"], "/etc/a.conf").lines;
  const { lines, errors, files: read } = await expandIncludes(top, reader);
  assert.deepEqual(errors, []);
  assert.deepEqual(read, ["/etc/b.conf", "/etc/c.conf"]);
  assert.deepEqual(lines.map((l) => `${l.origin.file}:${l.origin.line} ${l.name}`), [
    "/etc/b.conf:1 Mode",
    "/etc/c.conf:1 LogWhy",
    "/etc/a.conf:2 Syslog",
  ]);
  const loop = await expandIncludes(
    parseConfText(files["/etc/loop.conf"], "/etc/loop.conf").lines,
    reader,
  );
  assert.equal(loop.errors.length, 1);
  assert.match(
    loop.errors[0].message,
    new RegExp(
      `"Include" at /etc/loop\\.conf:1: nesting is deeper than ${MAX_INCLUDE_DEPTH} levels`,
    ),
  );
  const missing = await expandIncludes(
    parseConfText("Include /etc/none.conf\n", "/etc/x.conf").lines,
    reader,
  );
  assert.ok(missing.errors[0] instanceof SourceError);
  assert.match(
    missing.errors[0].message,
    /"Include" at \/etc\/x\.conf:1: "\/etc\/none\.conf": no such file/,
  );
});

Deno.test("expandIncludes() allows exactly five levels of nesting", async () => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 6; i++) files[`/c${i}`] = i < 5 ? `Include /c${i + 1}\n` : "Syslog yes\n";
  const reader = (p: string) => Promise.resolve({ text: files[p], file: p });
  const ok = await expandIncludes(parseConfText(files["/c0"], "/c0").lines, reader);
  assert.deepEqual(ok.errors, []);
  assert.equal(ok.lines[0].name, "Syslog");
  files["/c5"] = "Include /c6\n";
  files["/c6"] = "Syslog yes\n";
  const deep = await expandIncludes(parseConfText(files["/c0"], "/c0").lines, reader);
  assert.equal(deep.errors.length, 1);
  assert.equal(deep.errors[0].file, "/c5");
});

// Every reader of configuration text either returns or throws a typed error naming a place,
// whatever the bytes.
const settingNames = knownSettingNames();
const confLine = fc.tuple(
  fc.oneof(fc.constantFrom(...settingNames), fc.string({ maxLength: 12 })),
  fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.constantFrom("yes", "no", "0x10", "refile:/x", "csl:a,b", "::1", "10/1h"),
  ),
).map(([k, v]) => `${k} ${v}`);

Deno.test("readOpendkimConf() returns or throws a SourceError for any text", () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(confLine, fc.string({ maxLength: 60 })), { maxLength: 20 }),
      (lines) => {
        assertOnlySourceErrors(() => readOpendkimConf(lines.join("\n"), "/etc/opendkim.conf"));
      },
    ),
    fuzzParams(300),
  );
});
