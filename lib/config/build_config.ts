/**
 * From what a reader produced to the {@link Config}: each setting's default from the table in
 * `settings.ts`, then the rules between settings (Mode with Domain/KeyFile/Selector/KeyTable/
 * SigningTable, On-Default before the other On-* settings, X-Header, the data-set types each
 * setting accepts), and a deep freeze. The opendkim.conf and YAML readers both end here.
 *
 * @module
 */

import { MAX_RSA_BITS_REQUIRED } from "../crypto/key_type.ts";
import { MAX_SIGNATURES_CEILING } from "../dkim/verify.ts";
import { isDomainName, isSelector } from "../dkim/signature.ts";
import type { DataSetSource } from "../policy/dataset.ts";
import { parseDsn, redactDsnText } from "../tables/dsn.ts";
import { parseLdapUri } from "../tables/ldap_uri.ts";
import { errorMessage } from "../error_message.ts";
import { formatOrigin, type Origin, type SourceError } from "../policy/origin.ts";
import { ConfigError, type ConfigWarning } from "./config_error.ts";
import { type Actions, DEFAULT_ACTIONS } from "./defaults.ts";
import type { Config, ConfigOrigins, RawSetting, RawSettings, SettingField } from "./schema.ts";
import { CONFIG_SETTINGS, SETTING_LIST, SETTINGS } from "./settings.ts";
import type { MilterAction, Mode } from "./values.ts";

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

/** Records a warning or an error about a setting, worded from its table name. */
type Report = (field: SettingField, text: string) => void;

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
 * - DNSTimeout 0 ("wait forever") draws a warning and the default, since dkimd bounds every wait;
 * - MaximumSignedBytes 0 is an error (it would sign none of the body); MaximumSignaturesToVerify
 *   0 or above the hard ceiling of 50 draws a warning;
 * - a data set of a type its setting does not accept (`refile:` outside SigningTable and
 *   AuthorizedSigners) is an error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildConfig } from "./build_config.ts";
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
  const at = (f: SettingField): Origin => raw[f]?.origin ?? { file, line: 1 };
  const warn: Report = (f, text) => {
    const setting = SETTINGS[f].name;
    warnings.push({
      message: raw[f]
        ? `"${setting}" at ${formatOrigin(at(f))}: ${text}`
        : `"${setting}" (not set: the default applies) in ${file}: ${text}`,
      origin: at(f),
      setting,
    });
  };
  const fail: Report = (f, text) => {
    const setting = SETTINGS[f].name;
    errors.push(new ConfigError(`Invalid "${setting}"`, at(f), text, { setting }));
  };

  const values: Record<string, unknown> = {};
  for (const s of CONFIG_SETTINGS) {
    const value = raw[s.field]?.value ?? s.default;
    if (value !== undefined) values[s.field] = value;
  }
  const config = values as { -readonly [K in keyof Config]: Config[K] };

  if (raw.xHeader) {
    warn("xHeader", 'is the deprecated name of "SoftwareHeader"; use that instead');
    if (raw.softwareHeader === undefined) config.softwareHeader = raw.xHeader.value;
  }
  if (raw.unboundConfigFile) {
    warn(
      "unboundConfigFile",
      'is the name OpenDKIM used before 2.7 for "ResolverConfiguration" (OpenDKIM 2.11 refuses ' +
        "it); use that instead",
    );
    config.resolverConfiguration ??= raw.unboundConfigFile.value;
  }
  if (config.signatureAlgorithm === "rsa-sha1") {
    warn(
      "signatureAlgorithm",
      "signing with rsa-sha1 is allowed, as OpenDKIM allows it, but RFC 8301 §3.1 says " +
        "signers MUST use rsa-sha256, and many verifiers now fail rsa-sha1 signatures",
    );
  }
  if (config.dnsTimeout === 0) {
    const fallback = SETTINGS.dnsTimeout.default!;
    warn(
      "dnsTimeout",
      `0 (wait forever) is not supported; dkimd bounds every DNS wait and uses ` +
        `${fallback} seconds`,
    );
    config.dnsTimeout = fallback;
  }
  checkKeySizes(config, warn);
  checkBodyAndSignatureLimits(config, warn, fail);
  checkSigningSettings(raw, config.mode, warn, fail);
  checkArcSettings(raw, config, warn, fail);
  checkDataSetTypes(raw, fail);
  config.actions = actionsOf(raw);
  return { config: deepFreeze(config), origins, warnings, errors };
}

/** The On-* actions: a specific On-* setting, else On-Default, else the action's default. */
function actionsOf(raw: RawSettings): Actions {
  // Start from the defaults for the Actions type's order, which `config convert` writes.
  const actions: Record<keyof Actions, MilterAction> = { ...DEFAULT_ACTIONS };
  for (const s of SETTING_LIST) {
    if (s.action === undefined || s.action === "default") continue;
    const given = raw[s.field]?.value ?? raw.onDefault?.value;
    if (given !== undefined) actions[s.action] = given as MilterAction;
  }
  return actions;
}

function checkKeySizes(config: Config, warn: Report): void {
  if (config.maximumKeyBits < MAX_RSA_BITS_REQUIRED) {
    warn(
      "maximumKeyBits",
      `RFC 8301 §3.2 says verifiers MUST validate keys up to ${MAX_RSA_BITS_REQUIRED} bits; ` +
        `signatures with larger keys than ${config.maximumKeyBits} bits get permerror`,
    );
  }
  if (config.minimumKeyBits > config.maximumKeyBits) {
    warn(
      "minimumKeyBits",
      `is above "MaximumKeyBits" (${config.maximumKeyBits}), so no RSA signature can pass`,
    );
  }
}

/**
 * BodyLengthDB's `l=` lets anyone append content under a valid signature: a warning says so.
 * MaximumSignedBytes 0 would put `l=0` in every signature, which then covers none of the body:
 * anyone could replace it (RFC 6376 §8.2), so it is refused (OpenDKIM accepts it). Past
 * {@link MAX_SIGNATURES_CEILING} signatures, and for OpenDKIM's 0 ("no limit"), dkimd verifies
 * at most that many: said once here, and in the log whenever a message reaches it.
 */
function checkBodyAndSignatureLimits(config: Config, warn: Report, fail: Report): void {
  if (config.maximumSignedBytes === 0) {
    fail(
      "maximumSignedBytes",
      "0 would add l=0 to every signature, which then signs none of the body " +
        "(RFC 6376 §8.2); set the number of body bytes to sign, or remove the setting to sign " +
        "the whole body",
    );
  }
  if (config.bodyLengthDb !== undefined) {
    // Said at every load, as opendkim.conf(5) says it: the setting is legal and sometimes
    // wanted (a list that appends a footer), but whoever reads the configuration should know.
    warn(
      "bodyLengthDb",
      "mail to these recipients is signed with l=: anyone may append content (a link, a new " +
        "ending) and the signature stays valid (RFC 6376 §8.2)",
    );
  }
  const max = config.maximumSignaturesToVerify;
  if (max === 0 || max > MAX_SIGNATURES_CEILING) {
    warn(
      "maximumSignaturesToVerify",
      `${
        max === 0 ? "0 (every first-party and trusted signature, in OpenDKIM)" : max
      } is above dkimd's hard ceiling: at most ` +
        `${MAX_SIGNATURES_CEILING} signatures per message are verified`,
    );
  }
}

function checkSigningSettings(raw: RawSettings, mode: Mode, warn: Report, fail: Report): void {
  const has = (f: SettingField) => raw[f] !== undefined;
  const single: SettingField[] = ["domain", "keyFile", "selector"];
  if (!mode.sign) {
    for (const f of [...single, "keyTable", "signingTable"] as const) {
      if (has(f)) warn(f, 'has no effect: Mode does not include "s", so nothing is signed');
    }
    return;
  }
  if (has("signingTable") && !has("keyTable")) {
    fail("signingTable", 'requires "KeyTable" (opendkim.conf(5), Mode)');
  }
  if (has("keyTable")) {
    // A setup script may sign with KeyTable names itself (OpenDKIM: "KeyTable requires either
    // SigningTable or SetupPolicyScript").
    if (!has("signingTable") && !has("setupPolicyScript")) {
      fail("keyTable", 'requires "SigningTable" or "SetupPolicyScript" (opendkim.conf(5), Mode)');
    }
    for (const f of single) {
      if (has(f)) warn(f, 'is ignored because "KeyTable" is set (opendkim.conf(5))');
    }
    return;
  }
  if (has("keyFile") !== has("selector")) {
    const [f, other] = has("keyFile") ? ["keyFile", "Selector"] as const : [
      "selector",
      "KeyFile",
    ] as const;
    fail(f, `requires "${other}": KeyFile and Selector go together (opendkim.conf(5), Mode)`);
    return;
  }
  if (has("domain") && !has("keyFile")) {
    fail("domain", 'requires "KeyFile" and "Selector" (opendkim.conf(5), Mode)');
    return;
  }
  if (has("keyFile") && !has("domain")) {
    warn("keyFile", 'and "Selector" are set but "Domain" is not, so no mail is signed');
    return;
  }
  if (!has("keyFile")) {
    warn(
      "mode",
      'includes "s" but no signing key is configured (Domain, KeyFile and Selector, or ' +
        "KeyTable and SigningTable); mail is only verified",
    );
  }
}

/**
 * ARC runs on the mail dkimd verifies, so ARCMode needs Mode v; sealing needs its domain,
 * selector and key (OpenARC refuses to start without them in sign mode); the sealing settings
 * without ARCMode s do nothing, which is said.
 */
function checkArcSettings(raw: RawSettings, config: Config, warn: Report, fail: Report): void {
  const has = (f: SettingField) => raw[f] !== undefined;
  const { arcMode } = config;
  const sealing: SettingField[] = ["arcDomain", "arcSelector", "arcKeyFile", "arcSignHeaders"];
  if ((arcMode.seal || arcMode.verify) && !config.mode.verify) {
    warn("arcMode", 'has no effect: Mode does not include "v", and ARC runs on verified mail');
  }
  if (!arcMode.seal) {
    for (const f of sealing) {
      if (has(f)) warn(f, 'has no effect: ARCMode does not include "s", so nothing is sealed');
    }
    return;
  }
  const missing = (["arcDomain", "arcSelector", "arcKeyFile"] as const).filter((f) => !has(f));
  if (missing.length > 0) {
    const names = missing.map((f) => `"${SETTINGS[f].name}"`).join(", ");
    fail("arcMode", `includes "s", which requires ${names} (the sealing domain, selector and key)`);
  }
  if (config.arcDomain !== undefined && !isDomainName(config.arcDomain.toLowerCase())) {
    fail("arcDomain", `"${config.arcDomain}" is not a domain name`);
  }
  if (config.arcSelector !== undefined && !isSelector(config.arcSelector)) {
    fail("arcSelector", `"${config.arcSelector}" is not a selector`);
  }
}

/**
 * Refuses data sets of a type their setting does not accept: `refile:` outside SigningTable and
 * AuthorizedSigners, a database (`dsn:`, `ldap:`) for a set dkimd reads whole (header lists,
 * MacroList...); and a `dsn:` that does not parse (its password never quoted).
 */
function checkDataSetTypes(raw: RawSettings, fail: Report): void {
  const dataSets = SETTING_LIST.flatMap((s) =>
    s.kind.type === "dataSet" ? [{ ...s, kind: s.kind }] : []
  );
  const patterns = dataSets.filter((s) => s.kind.accepts.includes("refile")).map((s) => s.name);
  const refused = dataSets.filter((s) => !s.kind.accepts.includes("refile"));
  // A refusal of the setting's own (MacroList's) is reported first, as it always was.
  const checked = [
    ...refused.filter((s) => s.kind.refusal),
    ...refused.filter((s) => !s.kind.refusal),
  ];
  for (const s of checked) {
    const src = raw[s.field]?.value as DataSetSource | undefined;
    if (src && (src.kind === "refile" || (src.kind === "inline" && src.patterns))) {
      fail(
        s.field,
        s.kind.refusal ??
          `wildcard patterns ("refile:") are supported only for ${patterns.join(", ")}`,
      );
    }
  }
  const databases = dataSets.filter((s) => s.kind.accepts.includes("dsn")).map((s) => s.name);
  for (const s of dataSets) {
    const src = raw[s.field]?.value as DataSetSource | undefined;
    if (!src || (src.kind !== "dsn" && src.kind !== "ldap")) continue;
    if (!s.kind.accepts.includes(src.kind)) {
      fail(
        s.field,
        `a database ("dsn:" or an LDAP URI) is supported only for ${databases.join(", ")}; ` +
          `dkimd reads "${s.name}" whole, from a file or an inline list`,
      );
    } else if (src.kind === "dsn") {
      try {
        parseDsn(src.text);
      } catch (e) {
        fail(s.field, `"${redactDsnText(src.text)}": ${errorMessage(e)}`);
      }
    } else {
      try {
        parseLdapUri(src.uri);
      } catch (e) {
        fail(s.field, `"${src.uri}": ${errorMessage(e)}`);
      }
    }
  }
}
