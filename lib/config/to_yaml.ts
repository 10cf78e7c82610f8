/**
 * Writes a loaded configuration as the YAML form (`dkimd config convert`): every setting the
 * source set, under its YAML name, with the data sets inlined (the KeyTable as a map of keys,
 * the SigningTable as its ordered rules, host lists as lists), so one file says everything.
 * Reading the output with `readYamlConf()` gives the same settings and the same tables.
 *
 * @module
 */

import { Document } from "yaml";
import { formatNameserver } from "../dns/nameserver.ts";
import { type DataSet, formatDataSetSource } from "../policy/dataset.ts";
import { parseKeyTableEntry, type PrivateKeyInfo } from "../policy/key_table.ts";
import type { LoadedConfig } from "./load.ts";
import type { Config, SettingField } from "./schema.ts";
import { formatListenAddress } from "./listen_address.ts";
import { formatSocketSpec } from "../milter/socket_spec.ts";
import { formatMode, formatRestartRate, formatUmask } from "./values.ts";

/** Options of {@link configToYaml}. */
export interface ToYamlOptions {
  /** Write data sets' entries instead of their file names (default true). */
  readonly inlineTables?: boolean;
  /** A comment for the top of the document, such as where the configuration came from. */
  readonly comment?: string;
}

const ORDER: readonly SettingField[] = [
  "mode",
  "socket",
  "userId",
  "umask",
  "pidFile",
  "metricsListen",
  "milterMaxFrameBytes",
  "milterMaxConnections",
  "milterIdleTimeout",
  "milterShutdownTimeout",
  "baseDirectory",
  "background",
  "autoRestart",
  "autoRestartCount",
  "autoRestartRate",
  "syslog",
  "syslogFacility",
  "syslogName",
  "syslogSuccess",
  "logWhy",
  "logResults",
  "canonicalization",
  "signatureAlgorithm",
  "domain",
  "selector",
  "keyFile",
  "subDomains",
  "keyTable",
  "signingTable",
  "multipleSignatures",
  "internalHosts",
  "externalIgnoreList",
  "peerList",
  "mta",
  "macroList",
  "senderHeaders",
  "dontSignMailTo",
  "exemptDomains",
  "signHeaders",
  "omitHeaders",
  "oversignHeaders",
  "signatureTtl",
  "minimumKeyBits",
  "maximumHeaders",
  "maximumHeaderFields",
  "maximumSignaturesToVerify",
  "maximumKeyBits",
  "maximumSignedBytes",
  "removeOldSignatures",
  "alwaysAddArHeader",
  "authservId",
  "authservIdWithJobId",
  "noHeaderB",
  "removeArAll",
  "removeArFrom",
  "softwareHeader",
  "nameservers",
  "dnsTimeout",
  "dnsMaxAnswerBytes",
  "queryCache",
  "testPublicKeys",
  "testDnsData",
  "requireSafeKeys",
  "clockDrift",
  "fixCrlf",
];

const ACTION_FIELDS: readonly SettingField[] = [
  "onDefault",
  "onNoSignature",
  "onBadSignature",
  "onKeyNotFound",
  "onDnsError",
  "onInternalError",
  "onSecurity",
  "onSignatureError",
];

function dataSetValue(field: SettingField, ds: DataSet): unknown {
  if (field === "keyTable") {
    const out: Record<string, Record<string, string>> = {};
    for (const e of ds.entries) {
      if (out[e.key]) continue;
      const k = parseKeyTableEntry(e);
      out[e.key] = {
        domain: k.domain,
        selector: k.selector,
        ...(k.source.kind === "file" ? { keyFile: k.source.path } : { key: k.source.data }),
        ...(k.algorithm ? { algorithm: k.algorithm } : {}),
      };
    }
    return out;
  }
  if (field === "signingTable") {
    const rules = ds.entries.map((e) => {
      const v = e.value ?? "";
      const colon = v.indexOf(":");
      const key = colon < 0 ? v : v.slice(0, colon);
      const signer = colon < 0 ? undefined : v.slice(colon + 1);
      return signer ? { from: e.key, key, signer } : { from: e.key, key };
    });
    return ds.patterns ? rules : { patterns: false, rules };
  }
  if (field === "macroList") {
    const out: Record<string, string[] | null> = {};
    for (const e of ds.entries) {
      const values = e.value?.split("|").map((v) => v.trim()).filter((v) => v !== "");
      out[e.key] = values && values.length > 0 ? values : null;
    }
    return out;
  }
  return ds.entries.map((e) => (e.value === undefined ? e.key : { [e.key]: e.value }));
}

function scalarValue(field: SettingField, config: Config): unknown {
  switch (field) {
    case "mode":
      return formatMode(config.mode);
    case "socket":
      return config.socket ? formatSocketSpec(config.socket) : undefined;
    case "metricsListen":
      return config.metricsListen ? formatListenAddress(config.metricsListen) : undefined;
    case "canonicalization":
      return `${config.canonicalization.header}/${config.canonicalization.body}`;
    case "authservId":
      return config.authservId.kind === "name"
        ? config.authservId.name
        : config.authservId.kind === "hostname"
        ? "HOSTNAME"
        : undefined;
    case "userId":
      return config.userId
        ? config.userId.group === undefined
          ? config.userId.user
          : `${config.userId.user}:${config.userId.group}`
        : undefined;
    case "umask":
      return config.umask === undefined ? undefined : formatUmask(config.umask);
    case "autoRestartRate":
      return config.autoRestartRate ? formatRestartRate(config.autoRestartRate) : undefined;
    case "nameservers":
      return config.nameservers?.map(formatNameserver);
    default:
      return (config as unknown as Record<string, unknown>)[field];
  }
}

/**
 * Writes `loaded` as a YAML configuration. Settings left at their defaults are left out,
 * except that the On-* actions are written in full when any was set.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig, type LoadIo } from "./load.ts";
 * import { configToYaml } from "./to_yaml.ts";
 * import { readYamlConf } from "./yaml_conf.ts";
 * const files: Record<string, string> = {
 *   "/etc/opendkim.conf": "Mode v\nInternalHosts /etc/hosts.internal\nOn-BadSignature r\n",
 *   "/etc/hosts.internal": "10.0.0.0/8\n.example.com\n",
 * };
 * const io: LoadIo<never> = {
 *   readFile: (p) => files[p] === undefined ? Promise.reject(new Error("absent")) : Promise.resolve(new TextEncoder().encode(files[p])),
 *   stat: (p) => Promise.resolve({ isFile: p in files, isDirectory: !(p in files), mode: 0o644, uid: 0, gid: 0, size: (files[p] ?? "").length }),
 *   realPath: (p) => Promise.resolve(p),
 *   importKey: () => Promise.reject(new Error("no keys")),
 *   euid: () => 0,
 *   cwd: () => "/",
 *   accounts: () => Promise.resolve(undefined),
 * };
 * const yaml = configToYaml(await loadConfig("/etc/opendkim.conf", io));
 * assert.match(yaml, /internalHosts:\n  - 10\.0\.0\.0\/8\n  - \.example\.com/);
 * assert.equal(readYamlConf(yaml, "dkimd.yaml").config.actions.badSignature, "reject");
 * ```
 */
export function configToYaml<K extends PrivateKeyInfo>(
  loaded: LoadedConfig<K>,
  options: ToYamlOptions = {},
): string {
  const inline = options.inlineTables ?? true;
  const { config, origins } = loaded;
  const out: Record<string, unknown> = {};
  for (const field of ORDER) {
    const set = origins[field] !== undefined ||
      (field === "softwareHeader" && origins.xHeader !== undefined);
    if (!set) continue;
    const ds = loaded.dataSets[field];
    if (ds) {
      out[field] = inline ? dataSetValue(field, ds) : formatDataSetSource(ds.source);
      continue;
    }
    const value = scalarValue(field, config);
    if (value !== undefined) out[field] = value;
  }
  if (ACTION_FIELDS.some((f) => origins[f] !== undefined)) {
    out.actions = { ...config.actions };
  }
  const doc = new Document(out);
  if (options.comment) doc.commentBefore = ` ${options.comment.replaceAll("\n", "\n ")}`;
  return doc.toString({ lineWidth: 0 });
}
