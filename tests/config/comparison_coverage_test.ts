/**
 * Issue 18's "the comparison tests cover every implemented setting": every setting of the table
 * that OpenDKIM also has is named in an opendkim.conf line of a test that runs Debian's opendkim
 * beside dkimd (COVERED), or is exempted here with the reason (EXEMPT). A new OpenDKIM setting
 * fails this test until a comparison covers it or an exemption says why none can.
 *
 * @module
 */
import assert from "node:assert/strict";
import { SETTING_LIST } from "../../lib/config/settings.ts";

/** Setting → the comparison test file (under tests/) whose opendkim.conf lines vary it. */
const COVERED: Record<string, string> = {
  Mode: "interop/opendkim_coverage_test.ts",
  Socket: "interop/opendkim_dsn_compare_test.ts",
  Canonicalization: "interop/opendkim_coverage_test.ts",
  SelectCanonicalizationHeader: "interop/opendkim_settings_test.ts",
  SignatureAlgorithm: "interop/opendkim_coverage_test.ts",
  Domain: "interop/opendkim_coverage_test.ts",
  Selector: "interop/opendkim_coverage_test.ts",
  KeyFile: "interop/opendkim_coverage_test.ts",
  SubDomains: "interop/opendkim_coverage_test.ts",
  KeyTable: "interop/opendkim_coverage_test.ts",
  SigningTable: "interop/opendkim_coverage_test.ts",
  MultipleSignatures: "interop/opendkim_coverage_test.ts",
  Diagnostics: "interop/opendkim_results_test.ts",
  BodyLengthDB: "interop/opendkim_signatures_test.ts",
  // Compiled out of Debian's build: the comparison shows opendkim refusing them.
  ResignMailTo: "filter/compiled_out_settings_test.ts",
  DefaultSender: "filter/compiled_out_settings_test.ts",
  LuaOnlySigning: "filter/compiled_out_settings_test.ts",
  IdentityHeader: "filter/identity_header_test.ts",
  ReplaceRules: "interop/opendkim_signatures_test.ts",
  ReplaceHeaders: "interop/opendkim_signatures_test.ts",
  InternalHosts: "interop/opendkim_coverage_test.ts",
  ExternalIgnoreList: "interop/opendkim_coverage_test.ts",
  PeerList: "interop/opendkim_coverage_test.ts",
  MTA: "interop/opendkim_coverage_test.ts",
  MacroList: "interop/opendkim_coverage_test.ts",
  "On-DNSError": "interop/opendkim_coverage_test.ts",
  DNSConnect: "interop/opendkim_coverage_test.ts",
  TestDNSData: "interop/opendkim_coverage_test.ts",
  SenderHeaders: "interop/opendkim_coverage_test.ts",
  SenderMacro: "interop/opendkim_settings_test.ts",
  DontSignMailTo: "interop/opendkim_coverage_test.ts",
  ExemptDomains: "interop/opendkim_coverage_test.ts",
  SignHeaders: "interop/opendkim_coverage_test.ts",
  OmitHeaders: "interop/opendkim_coverage_test.ts",
  OversignHeaders: "interop/opendkim_coverage_test.ts",
  SignatureTTL: "interop/opendkim_coverage_test.ts",
  MinimumKeyBits: "interop/opendkim_coverage_test.ts",
  MaximumHeaders: "interop/opendkim_coverage_test.ts",
  MaximumSignaturesToVerify: "interop/opendkim_signatures_test.ts",
  TrustSignaturesFrom: "interop/opendkim_signatures_test.ts",
  MaximumSignedBytes: "interop/opendkim_coverage_test.ts",
  RemoveOldSignatures: "interop/opendkim_coverage_test.ts",
  "On-Default": "interop/opendkim_coverage_test.ts",
  "On-BadSignature": "interop/opendkim_coverage_test.ts",
  "On-KeyNotFound": "interop/opendkim_coverage_test.ts",
  "On-NoSignature": "interop/opendkim_coverage_test.ts",
  "On-SignatureError": "interop/opendkim_coverage_test.ts",
  AlwaysAddARHeader: "interop/opendkim_coverage_test.ts",
  AuthservID: "interop/opendkim_coverage_test.ts",
  AuthservIDWithJobID: "interop/opendkim_coverage_test.ts",
  NoHeaderB: "interop/opendkim_coverage_test.ts",
  StrictHeaders: "interop/opendkim_signatures_test.ts",
  RequiredHeaders: "interop/opendkim_settings_test.ts",
  IgnoreMalformedMail: "interop/opendkim_settings_test.ts",
  MustBeSigned: "interop/opendkim_settings_test.ts",
  Quarantine: "interop/opendkim_results_test.ts",
  RedirectFailuresTo: "interop/opendkim_results_test.ts",
  CaptureUnknownErrors: "interop/opendkim_results_test.ts",
  RemoveARAll: "interop/opendkim_coverage_test.ts",
  RemoveARFrom: "interop/opendkim_coverage_test.ts",
  SoftwareHeader: "interop/opendkim_coverage_test.ts",
  "X-Header": "interop/opendkim_coverage_test.ts",
  SendReports: "interop/failure_reports_test.ts",
  ReportAddress: "interop/failure_reports_test.ts",
  ReportBccAddress: "interop/failure_reports_test.ts",
  RequestReports: "interop/failure_reports_test.ts",
  MTACommand: "interop/failure_reports_test.ts",
  Nameservers: "helpers/dnssec_world.ts",
  DNSTimeout: "dns/dnssec_test.ts",
  TrustAnchorFile: "helpers/dnssec_world.ts",
  ResolverConfiguration: "helpers/dnssec_world.ts",
  BogusKey: "dns/dnssec_test.ts",
  TestPublicKeys: "interop/opendkim_coverage_test.ts",
  RequireSafeKeys: "interop/opendkim_coverage_test.ts",
  ClockDrift: "interop/opendkim_coverage_test.ts",
  FixCRLF: "interop/opendkim_coverage_test.ts",
  SetupPolicyScript: "lua/lua_policy_interop_test.ts",
  ScreenPolicyScript: "lua/lua_policy_interop_test.ts",
  FinalPolicyScript: "lua/lua_policy_interop_test.ts",
  ChangeRootDirectory: "interop/opendkim_settings_test.ts",
  BaseDirectory: "interop/opendkim_dsn_compare_test.ts",
  "On-InternalError": "interop/opendkim_errors_compare_test.ts",
  // Signing from slapd with both; departures asserted there (AuthMechanism, SoftStart).
  LDAPBindUser: "interop/opendkim_ldap_compare_test.ts",
  LDAPBindPassword: "interop/opendkim_ldap_compare_test.ts",
  LDAPAuthMechanism: "interop/opendkim_ldap_compare_test.ts",
  LDAPAuthName: "interop/opendkim_ldap_compare_test.ts",
  LDAPAuthRealm: "interop/opendkim_ldap_compare_test.ts",
  LDAPAuthUser: "interop/opendkim_ldap_compare_test.ts",
  LDAPUseTLS: "interop/opendkim_ldap_compare_test.ts",
  LDAPDisableCache: "interop/opendkim_ldap_compare_test.ts",
  LDAPKeepaliveIdle: "interop/opendkim_ldap_compare_test.ts",
  LDAPKeepaliveInterval: "interop/opendkim_ldap_compare_test.ts",
  LDAPKeepaliveProbes: "interop/opendkim_ldap_compare_test.ts",
  LDAPSoftStart: "interop/opendkim_ldap_compare_test.ts",
  // Expiry against a paused slapd: tempfail in both within the bound, signing again after.
  LDAPTimeout: "interop/opendkim_ldap_compare_test.ts",
  "On-Security": "interop/opendkim_errors_compare_test.ts",
  UnprotectedKey: "interop/opendkim_unprotected_key_test.ts",
};

/** Setting → why no comparison runs it (each reason is a fact, or says what is still missing). */
const EXEMPT: Record<string, string> = {
  // Process and logging: nothing the MTA sees over the milter changes with them.
  Syslog: "logging only",
  SyslogFacility: "logging only",
  SyslogName: "logging only",
  SyslogSuccess: "logging only",
  LogWhy: "logging only",
  LogResults: "logging only",
  UserID: "process: tests/ops/worker_start_test.ts runs the worker as the user",
  UMask: "process: the socket's mode, tested in tests/milter/socket_exposure_test.ts",
  PidFile: "process: no milter-visible behaviour",
  Background: "process: no milter-visible behaviour (the comparisons run both in the foreground)",
  AutoRestart: "process: the supervisor's restart, tested in tests/ops",
  AutoRestartCount: "process: the supervisor's restart, tested in tests/ops",
  AutoRestartRate: "process: the supervisor's restart, tested in tests/ops",
  // No opendkim to compare with: Debian's build refuses these (compiled out, or an old name 2.11
  // refuses), or nothing shows at the milter; dkimd's own tests cover them, as each says.
  ResignAll: "compiled out of Debian's build; compiled_out_settings_test.ts runs ResignMailTo",
  IdentityHeaderRemove:
    "compiled out of Debian's build; identity_header_test.ts shows opendkim refusing IdentityHeader",
  StatisticsPolicyScript: "compiled out of Debian's build (no statistics): dkimd runs it alone",
  UnboundConfigFile: "an old name OpenDKIM 2.11 refuses; dkimd reads it as ResolverConfiguration",
  QueryCache: "a cache: no milter-visible behaviour",
};

/** The OpenDKIM settings of the table (not dkimd's own). */
const OPENDKIM_SETTINGS = SETTING_LIST.filter((s) => !s.dkimd).map((s) => s.name);

// A comparison test starts Debian's opendkim (through one of the helpers or by its path).
const RUNS_OPENDKIM =
  /startPair|startOpenDkim|startOpendkim|startBoth|opendkim_milter\.ts|lua_compare\.ts|\/usr\/sbin\/opendkim|PEER_PROGRAMS\.opendkim/;

/** Whether `text` has an opendkim.conf line setting `name` (in a string, or a line of one). */
function namesInConfLine(text: string, name: string): boolean {
  const escaped = name.replace(/[-]/g, "\\-");
  return new RegExp(`(?:["'\`]|\\\\n|^[ \\t]*)${escaped}[ \\t]+\\S`, "m").test(text);
}

Deno.test("every OpenDKIM setting of the table is compared with opendkim or exempted with a reason", () => {
  const missing = OPENDKIM_SETTINGS.filter((n) => !(n in COVERED) && !(n in EXEMPT));
  assert.deepEqual(
    missing,
    [],
    "add a comparison (tests/interop/opendkim_coverage_test.ts) or an exemption",
  );
});

Deno.test("the coverage lists name only OpenDKIM settings of the table, each once", () => {
  const known = new Set(OPENDKIM_SETTINGS);
  for (const n of [...Object.keys(COVERED), ...Object.keys(EXEMPT)]) {
    assert.ok(known.has(n), `${n} is not an OpenDKIM setting of the table`);
  }
  for (const n of Object.keys(COVERED)) {
    assert.ok(!(n in EXEMPT), `${n} is both covered and exempt`);
  }
  for (const [n, why] of Object.entries(EXEMPT)) assert.ok(why.trim() !== "", `${n}: no reason`);
});

Deno.test("each covered setting is in an opendkim.conf line of a test that runs opendkim", async () => {
  const texts = new Map<string, string>();
  for (const [name, file] of Object.entries(COVERED)) {
    if (!texts.has(file)) {
      texts.set(file, await Deno.readTextFile(new URL(`../${file}`, import.meta.url)));
    }
    const text = texts.get(file)!;
    assert.match(text, RUNS_OPENDKIM, `${file} does not run opendkim`);
    assert.ok(namesInConfLine(text, name), `${file} has no opendkim.conf line for ${name}`);
  }
});

Deno.test("namesInConfLine() finds a setting at the start of a string or a line, not in prose", () => {
  assert.ok(namesInConfLine('["FixCRLF yes"]', "FixCRLF"));
  assert.ok(namesInConfLine("`KeyTable ${dir}/k`", "KeyTable"));
  assert.ok(namesInConfLine('"Mode sv\\nOn-Default reject\\n"', "On-Default"));
  assert.ok(!namesInConfLine("// FixCRLF turns bare LF", "FixCRLF"));
  assert.ok(!namesInConfLine('"SignHeaders From"', "Sign"));
});
