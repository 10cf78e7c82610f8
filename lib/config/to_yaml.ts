/**
 * Writes a loaded configuration as the YAML form (`dkimd config convert`): every setting the
 * source set, under its YAML name, with the data sets inlined (the KeyTable as a map of keys,
 * the SigningTable as its ordered rules, host lists as lists), so one file says everything.
 * Reading the output with `readYamlConf()` gives the same settings and the same tables.
 *
 * @module
 */

import { Document } from "yaml";
import { type DataSet, formatDataSetSource } from "../policy/dataset.ts";
import { parseKeyTableEntry, type PrivateKeyInfo } from "../policy/key_table.ts";
import type { LoadedConfig } from "./load.ts";
import type { SettingField, SettingValues } from "./schema.ts";
import { CONFIG_SETTINGS, SETTING_LIST, type SettingEntry, type SettingGroup } from "./settings.ts";

/** Options of {@link configToYaml}. */
export interface ToYamlOptions {
  /** Write data sets' entries instead of their file names (default true). */
  readonly inlineTables?: boolean;
  /** A comment for the top of the document, such as where the configuration came from. */
  readonly comment?: string;
}

/** Groups written first: how the daemon runs (socket, account, limits, logs), then what it does. */
const FIRST_GROUPS: readonly SettingGroup[] = ["service", "process", "logging"];

/** The settings written at the top level, in the order written; On-* go under `actions`. */
const ORDER: readonly SettingEntry[] = [
  ...FIRST_GROUPS.flatMap((g) => CONFIG_SETTINGS.filter((s) => s.group === g)),
  ...CONFIG_SETTINGS.filter((s) => !FIRST_GROUPS.includes(s.group)),
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
  if (field === "authorizedSigners") {
    // Wildcard logins stay in their refile: file: the YAML map holds exact logins only.
    if (ds.patterns) return formatDataSetSource(ds.source);
    // The first entry of a login wins, as when the set is read; logins compare ignoring case.
    const out: Record<string, string[]> = {};
    const seen = new Set<string>();
    for (const e of ds.entries) {
      if (seen.has(e.key.toLowerCase())) continue;
      seen.add(e.key.toLowerCase());
      out[e.key] = (e.value ?? "").split(/[,|\s]+/).filter((v) => v !== "");
    }
    return out;
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
  for (const { field, yaml, kind } of ORDER) {
    const set = origins[field] !== undefined ||
      SETTING_LIST.some((s) => s.aliasOf === field && origins[s.field] !== undefined);
    if (!set) continue;
    const ds = loaded.dataSets[field];
    if (ds) {
      // A list whose entries hold commas (a YAML one, such as AuthorizedSigners') has no csl:
      // spelling: it stays in its YAML form.
      const commas = ds.source.kind === "inline" &&
        ds.source.entries.some((e) => `${e.key}${e.value ?? ""}`.includes(","));
      out[yaml!] = inline || commas ? dataSetValue(field, ds) : formatDataSetSource(ds.source);
      continue;
    }
    const value = (config as Partial<SettingValues>)[field];
    const written = value === undefined ? undefined : kind.toYaml(value);
    if (written !== undefined) out[yaml!] = written;
  }
  if (SETTING_LIST.some((s) => s.action !== undefined && origins[s.field] !== undefined)) {
    out.actions = { ...config.actions };
  }
  const doc = new Document(out);
  if (options.comment) doc.commentBefore = ` ${options.comment.replaceAll("\n", "\n ")}`;
  return doc.toString({ lineWidth: 0 });
}
