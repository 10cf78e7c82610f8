/**
 * `dkimd check-config [FILE]` (OpenDKIM's `-n`): loads everything the server would, prints the
 * effective settings with where each came from and every warning, and exits 0 only when the
 * server would start; with `--settings`, every setting dkimd knows, from the settings table.
 * Also `dkimd config convert FILE`: the same configuration as YAML.
 *
 * @module
 */
import type { LoadedConfig } from "../config/load.ts";
import { formatListenAddress } from "../config/listen_address.ts";
import { formatSocketSpec } from "../milter/socket_spec.ts";
import { configToYaml } from "../config/to_yaml.ts";
import type { SettingField } from "../config/schema.ts";
import { settingsMarkdown, settingsText } from "../config/settings_reference.ts";
import type { SigningKey } from "../crypto/private_key.ts";
import { MAX_SIGNATURES_CEILING } from "../dkim/verify.ts";
import { formatNameserver } from "../dns/nameserver.ts";
import { formatOrigin } from "../policy/origin.ts";
import type { HostList } from "../policy/host_list.ts";
import { SETTING_LIST } from "../config/settings.ts";
import { errorMessage } from "../error_message.ts";
import { parseCommandArgs, UsageError } from "./args.ts";
import { BUILTIN_CONFIG, loadRuntime, RuntimeConfigError } from "./runtime.ts";
import { securityWarnings } from "./security_warnings.ts";
import { rotationConfigLines } from "./rotation_summary.ts";
import { readKeyAges } from "../ops/key_ages.ts";
import { groupIgnoredSettings } from "../config/unimplemented_settings.ts";
import { EXIT_CONFIG } from "./serve.ts";

/** The help text of `dkimd check-config`. */
export const CHECK_CONFIG_USAGE = `Usage: dkimd check-config [FILE]
       dkimd check-config --settings [--markdown]

Loads the configuration (opendkim.conf format or YAML; default: the built-in one) with its
tables and keys as the server would, and prints the effective settings, each with the file
and line it came from, then the OpenDKIM settings it ignores grouped by reason, then every
other warning. Exit status 0 when the server would start,
78 when it would not (every problem is listed with its file and line).

With --settings, lists every setting instead: its YAML key, value, default and what it does,
and the OpenDKIM settings dkimd ignores; --markdown writes the list as the README's tables.
`;

/** The help text of `dkimd config convert`. */
export const CONVERT_USAGE = `Usage: dkimd config convert FILE [--files]

Prints the configuration in FILE as YAML, the tables (KeyTable, SigningTable, host lists)
written out inline; with --files, data sets stay references to their files.
`;

/** The lines `check-config` prints for a loaded configuration. */
export function describeConfig(loaded: LoadedConfig<SigningKey>): string[] {
  const { config, origins } = loaded;
  const from = (field: SettingField) => origins[field] ? formatOrigin(origins[field]!) : "default";
  const row = (name: string, value: string, field?: SettingField) =>
    `  ${name.padEnd(20)} ${value}${field ? `  (${from(field)})` : ""}`;
  const out: string[] = [];
  const mode = [config.mode.sign ? "sign" : "", config.mode.verify ? "verify" : ""].filter(Boolean);
  out.push(row("Mode", mode.join(" and ") || "none", "mode"));
  out.push(
    row("Socket", config.socket ? formatSocketSpec(config.socket) : "(none: give -p)", "socket"),
  );
  out.push(
    row(
      "Canonicalization",
      `${config.canonicalization.header}/${config.canonicalization.body}`,
      "canonicalization",
    ),
  );
  out.push(row("SignatureAlgorithm", config.signatureAlgorithm, "signatureAlgorithm"));
  for (const t of loaded.tables) {
    out.push(row(t.setting, `in a database: ${t.backend.describe}`, settingField(t.setting)));
  }
  if (loaded.keyTable && !loaded.keyTable.keyed) {
    out.push(row("KeyTable", `${loaded.keyTable.entries.length} key(s)`, "keyTable"));
    for (const e of loaded.keyTable.entries) {
      const key = e.key ? `${e.key.type} ${e.key.bits} bits` : "loaded per sender domain";
      const where = e.source.kind === "file" ? e.source.path : "inline key";
      out.push(
        `    ${e.name}: d=${e.domain} s=${e.selector} ${key} (${where}; ${formatOrigin(e.origin)})`,
      );
    }
  }
  if (loaded.singleKey) {
    const s = loaded.singleKey;
    out.push(
      row("KeyFile", `${s.keyFile}: s=${s.selector} ${s.key.type} ${s.key.bits} bits`, "keyFile"),
    );
  }
  if (config.arcMode.seal || config.arcMode.verify) {
    const arc = [config.arcMode.verify ? "verify" : "", config.arcMode.seal ? "seal" : ""];
    out.push(row("ARCMode", arc.filter((w) => w).join(" and "), "arcMode"));
  }
  if (loaded.arcSealer) {
    const s = loaded.arcSealer;
    out.push(
      row(
        "ARCKeyFile",
        `${s.keyFile}: d=${s.domain} s=${s.selector} ${s.key.type} ${s.key.bits} bits`,
        "arcKeyFile",
      ),
    );
  }
  if (loaded.signingTable) {
    const t = loaded.signingTable;
    out.push(
      row(
        "SigningTable",
        `${t.rules.length} entr${t.rules.length === 1 ? "y" : "ies"}${
          t.patterns ? " (refile: patterns)" : ""
        }`,
        "signingTable",
      ),
    );
  }
  out.push(row("MultipleSignatures", String(config.multipleSignatures), "multipleSignatures"));
  if (loaded.authorizedSigners) {
    const n = loaded.authorizedSigners.rules.length;
    out.push(
      row(
        "AuthorizedSigners",
        `${n} entr${n === 1 ? "y" : "ies"}${
          loaded.authorizedSigners.patterns ? " (refile: patterns)" : ""
        }; otherwise On-UnauthorizedSigner ${config.onUnauthorizedSigner}`,
        "authorizedSigners",
      ),
    );
  }
  const hosts: [string, SettingField, HostList | undefined][] = [
    ["InternalHosts", "internalHosts", loaded.hosts.internal],
    ["ExternalIgnoreList", "externalIgnoreList", loaded.hosts.externalIgnore],
    ["PeerList", "peerList", loaded.hosts.peers],
  ];
  for (const [name, field, list] of hosts) {
    // A list in a database has its row above: it is asked per client, never listed.
    if (list && !list.keyed) {
      out.push(row(name, list.rules.map((r) => r.text).join(", "), field));
    }
  }
  out.push(row("SignHeaders", loaded.headers.sign.join(":"), "signHeaders"));
  out.push(row("OversignHeaders", loaded.headers.oversign.join(":") || "none", "oversignHeaders"));
  const a = config.actions;
  out.push(
    row(
      "On-*",
      `NoSignature ${a.noSignature}, BadSignature ${a.badSignature}, KeyNotFound ${a.keyNotFound}, ` +
        `DNSError ${a.dnsError}, InternalError ${a.internalError}, Security ${a.security}, ` +
        `SignatureError ${a.signatureError}`,
    ),
  );
  // The rules that keep a verified signature from passing (lib/dkim/acceptance.ts).
  out.push(
    row(
      "Verdicts",
      `PartialBodyResult ${config.partialBodyResult}, StrictHeaders ${
        yesNo(config.strictHeaders)
      }, ` +
        `RequiredHeaders ${yesNo(config.requiredHeaders)}; a second From is never a pass`,
    ),
  );
  if (loaded.headers.mustBeSigned.length > 0) {
    out.push(row("MustBeSigned", loaded.headers.mustBeSigned.join(":"), "mustBeSigned"));
  }
  const id = config.authservId.kind === "name"
    ? config.authservId.name
    : config.authservId.kind === "hostname"
    ? `this host's name (${Deno.hostname()})`
    : "the MTA's name (macro j), else this host's name";
  out.push(row("AuthservID", id, "authservId"));
  const dns = config.testPublicKeys
    ? `TestPublicKeys ${config.testPublicKeys}`
    : config.nameservers
    ? config.nameservers.map(formatNameserver).join(", ")
    : "/etc/resolv.conf";
  out.push(
    row(
      "DNS",
      `${dns}${config.dnsConnect ? " over TCP" : ""}, timeout ${config.dnsTimeout} s` +
        `${config.queryCache ? ", QueryCache" : ""}`,
    ),
  );
  out.push(
    row(
      "Key sizes",
      `MinimumKeyBits ${config.minimumKeyBits}, MaximumKeyBits ${config.maximumKeyBits}`,
      "minimumKeyBits",
    ),
  );
  out.push(
    row(
      "Header limits",
      `MaximumHeaders ${config.maximumHeaders} bytes, MaximumHeaderFields ${config.maximumHeaderFields}, ` +
        `MaximumSignaturesToVerify ${config.maximumSignaturesToVerify}` +
        (config.maximumSignaturesToVerify === 0 ||
            config.maximumSignaturesToVerify > MAX_SIGNATURES_CEILING
          ? ` (the ceiling: ${MAX_SIGNATURES_CEILING})`
          : ""),
    ),
  );
  out.push(
    row(
      "Milter limits",
      `MilterMaxFrameBytes ${config.milterMaxFrameBytes}, MilterMaxConnections ${config.milterMaxConnections}, ` +
        `MilterIdleTimeout ${config.milterIdleTimeout} s, ` +
        `MilterShutdownTimeout ${config.milterShutdownTimeout} s, ` +
        `DNSMaxAnswerBytes ${config.dnsMaxAnswerBytes}`,
    ),
  );
  if (config.metricsListen) {
    out.push(row("MetricsListen", formatListenAddress(config.metricsListen), "metricsListen"));
  }
  out.push(row("RequireSafeKeys", String(config.requireSafeKeys), "requireSafeKeys"));
  out.push(
    row(
      "Logging",
      `${config.syslog ? `syslog ${config.syslogFacility} as ${config.syslogName}` : "stderr"}` +
        `${config.syslogSuccess ? ", SyslogSuccess" : ""}${config.logWhy ? ", LogWhy" : ""}`,
      "syslog",
    ),
  );
  if (config.userId) {
    out.push(
      row(
        "UserID",
        `${config.userId.user}${config.userId.group ? `:${config.userId.group}` : ""}`,
        "userId",
      ),
    );
  }
  if (config.pidFile) out.push(row("PidFile", config.pidFile, "pidFile"));
  if (config.umask !== undefined) {
    out.push(row("UMask", `0${config.umask.toString(8).padStart(3, "0")}`, "umask"));
  }
  if (config.autoRestart) {
    const rate = config.autoRestartRate
      ? `, at most ${config.autoRestartRate.count} per ${config.autoRestartRate.seconds} s`
      : "";
    out.push(row("AutoRestart", `yes${rate}`, "autoRestart"));
  }
  return out;
}

const yesNo = (b: boolean) => b ? "yes" : "no";

function settingField(name: string): SettingField | undefined {
  return SETTING_LIST.find((s) => s.name === name)?.field;
}

/**
 * Asks every data set kept in a database for one row (the tools' `scan`), so a wrong host,
 * password, table or column shows now rather than as deferred mail: one line each, reachable
 * or why not (the password never shown).
 */
export async function probeTables(
  loaded: LoadedConfig<SigningKey>,
): Promise<{ setting: string; reachable: boolean; text: string }[]> {
  const timeoutMs = loaded.config.dataSetQueryTimeout * 1000 +
    loaded.config.dataSetConnectTimeout * 1000;
  return await Promise.all(loaded.tables.map(async (t) => {
    try {
      const rows = await t.backend.scan(1, AbortSignal.timeout(timeoutMs));
      const text = `reachable (${
        rows.length === 0 ? "no rows" : "has rows"
      }): ${t.backend.describe}`;
      return { setting: t.setting, reachable: true, text };
    } catch (e) {
      return { setting: t.setting, reachable: false, text: `NOT reachable: ${errorMessage(e)}` };
    }
  }));
}

/** Runs `dkimd check-config`; resolves to the exit status. */
export async function runCheckConfig(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs("check-config", args, {
    help: { type: "boolean", short: "h" },
    settings: { type: "boolean" },
    markdown: { type: "boolean" },
  });
  if (values.help) {
    console.log(CHECK_CONFIG_USAGE);
    return 0;
  }
  if (values.markdown && !values.settings) {
    throw new UsageError("check-config: --markdown goes with --settings");
  }
  if (values.settings) {
    if (positionals.length > 0) {
      throw new UsageError("check-config: --settings lists every setting; give no FILE");
    }
    console.log(values.markdown ? settingsMarkdown().trimEnd() : settingsText().join("\n"));
    return 0;
  }
  const path = positionals[0];
  try {
    const { loaded } = await loadRuntime(path);
    console.log(`Configuration ${path ?? BUILTIN_CONFIG}: OK`);
    for (const line of describeConfig(loaded)) console.log(line);
    const ages = await readKeyAges(
      loaded.config,
      loaded.keyTable && !loaded.keyTable.keyed ? loaded.keyTable : undefined,
    );
    const now = Math.floor(Date.now() / 1000);
    for (const line of rotationConfigLines(loaded.config, ages, now)) console.log(line);
    const probes = await probeTables(loaded);
    await Promise.all(loaded.tables.map((t) => t.close()));
    if (probes.length > 0) {
      console.log("Data sets in databases:");
      for (const p of probes) console.log(`  ${p.setting.padEnd(20)} ${p.text}`);
    }
    const { groups, others } = groupIgnoredSettings(loaded.warnings);
    if (groups.length > 0) {
      const count = groups.reduce((n, g) => n + g.settings.length, 0);
      console.log(`${count} OpenDKIM setting(s) ignored, by reason:`);
      for (const g of groups) {
        const where = g.settings.map((s) => `${s.name} (${formatOrigin(s.origin)})`);
        console.log(`  ${g.why}:\n    ${where.join(", ")}`);
      }
    }
    const warnings = [
      ...others.map((w) => w.message),
      ...securityWarnings(loaded),
      ...probes.filter((p) => !p.reachable).map((p) =>
        `${p.setting} ${p.text}; the server starts, and lookups in it get On-InternalError ` +
        `until it answers`
      ),
    ];
    if (warnings.length > 0) {
      console.log(`${warnings.length} warning(s):`);
      for (const w of warnings) console.log(`  ${w}`);
    }
    return 0;
  } catch (e) {
    if (e instanceof RuntimeConfigError) {
      console.error(`Configuration ${path ?? BUILTIN_CONFIG}: the server would not start:`);
      for (const p of e.problems) console.error(`  ${p}`);
      return EXIT_CONFIG;
    }
    throw e;
  }
}

/** Runs `dkimd config convert`; resolves to the exit status. */
export async function runConfig(args: readonly string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== "convert") {
    throw new UsageError(
      `config: unknown subcommand "${sub ?? ""}" (try "dkimd config convert FILE")`,
    );
  }
  const { values, positionals } = parseCommandArgs("config convert", rest, {
    files: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(CONVERT_USAGE);
    return 0;
  }
  const path = positionals[0];
  if (path === undefined) {
    throw new UsageError("config convert: give the configuration file to convert");
  }
  try {
    const { loaded } = await loadRuntime(path);
    console.log(
      configToYaml(loaded, {
        inlineTables: !values.files,
        comment: `dkimd configuration converted from ${path}`,
      }).trimEnd(),
    );
    return 0;
  } catch (e) {
    if (e instanceof RuntimeConfigError) {
      for (const p of e.problems) console.error(`dkimd: ${p}`);
      return EXIT_CONFIG;
    }
    throw e;
  }
}
