/**
 * The YAML form of the configuration (`dkimd serve --config dkimd.yaml`): the same settings as
 * opendkim.conf under the {@link Config} field names, with nested structure for the tables.
 *
 * ```yaml
 * mode: sv
 * socket: inet:8891@localhost
 * canonicalization: relaxed/relaxed      # or {header: relaxed, body: relaxed}
 * keyTable:                               # or a data set: /etc/opendkim/key.table
 *   mail:
 *     domain: example.com
 *     selector: mail
 *     keyFile: /etc/opendkim/keys/mail.private   # or key: (PEM or base64 DER)
 *     algorithm: rsa-sha256                      # optional
 * signingTable:                           # a list is tried in order, "*" a wildcard
 *   - {from: "*@example.com", key: mail}  # (or refile:/etc/opendkim/signing.table)
 * internalHosts: [127.0.0.1, localhost]
 * authorizedSigners:                      # login: what it may put in From
 *   "*": "%"                              # every login: its own domain
 *   postmaster@example.com: [example.com, .example.com]
 * actions: {default: accept, badSignature: reject}
 * dnsTimeout: 5s
 * ```
 *
 * Scalars are read by the same value readers as opendkim.conf, so every check is the same;
 * errors name the YAML path and line (`dkimd.yaml:7 (keyTable.mail.selector)`).
 *
 * @module
 */

import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  type Scalar,
  type YAMLMap,
  type YAMLSeq,
} from "yaml";
import { type DataSetSource, type InlineEntry, parseDataSetSpec } from "../policy/dataset.ts";
import { formatOrigin, type Origin, type SourceError } from "../policy/origin.ts";
import { buildConfig } from "./build_config.ts";
import { ConfigError, type ConfigWarning, throwIfErrors } from "./config_error.ts";
import { DEFAULT_ACTIONS } from "./defaults.ts";
import { closestName } from "./did_you_mean.ts";
import { MAX_YAML_BYTES } from "./limited_read.ts";
import { toConfigError } from "./opendkim_conf.ts";
import type { RawSetting, RawSettings, ReadResult, SettingField, SettingValues } from "./schema.ts";
import type { ValueContext } from "./setting_kind.ts";
import { SETTING_LIST, type SettingEntry } from "./settings.ts";
import { parseBoolean, ValueError } from "./values.ts";

export { MAX_YAML_BYTES } from "./limited_read.ts";

/** The settings at the top of a YAML configuration, by key (the Config field names). */
const TOP_LEVEL: ReadonlyMap<string, SettingEntry> = new Map(
  SETTING_LIST.filter((s) => s.yaml !== undefined && !s.yaml.includes("."))
    .map((s) => [s.yaml!, s]),
);

/** The On-* settings under `actions`, by key, in the Actions type's order (`default` first). */
const ACTION_KEYS: ReadonlyMap<string, SettingEntry> = new Map(
  ["default", ...Object.keys(DEFAULT_ACTIONS)].map((key) => [
    key,
    SETTING_LIST.find((s) => s.yaml === `actions.${key}`)!,
  ]),
);

/** Every key accepted at the top of a YAML configuration. */
export const YAML_KEYS: readonly string[] = [...TOP_LEVEL.keys(), "actions"];

interface Ctx {
  readonly file: string;
  readonly text: string;
  readonly lines: LineCounter;
  readonly errors: SourceError[];
  readonly warnings: ConfigWarning[];
}

function originOf(ctx: Ctx, node: Node | null | undefined, path: string): Origin {
  const offset = node?.range?.[0] ?? 0;
  return { file: ctx.file, line: ctx.lines.linePos(offset).line, path };
}

/** The text of a scalar as OpenDKIM would read it: booleans and numbers as written. */
function scalarText(ctx: Ctx, node: Scalar): string {
  const v = node.value;
  if (typeof v === "string") return v;
  if (v === null) return "";
  if (typeof v === "number" && node.range) {
    return ctx.text.slice(node.range[0], node.range[1]).trim();
  }
  return String(v);
}

class ShapeError extends ValueError {}

function expectScalar(ctx: Ctx, node: unknown, what: string): string {
  if (isScalar(node)) return scalarText(ctx, node);
  // Aliases are never expanded, so a "billion laughs" document costs nothing.
  if (isAlias(node)) throw new ShapeError("YAML aliases (*name) are not supported here");
  throw new ShapeError(`expected ${what}, not a ${isSeq(node) ? "list" : "map"}`);
}

/**
 * Reads a YAML configuration. Throws a `ConfigError` (or `ConfigErrors`) naming each mistake's
 * `file:line (yaml.path)`: YAML syntax errors, unknown keys (with the closest known one),
 * values of the wrong shape or type, and the rules between settings.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readYamlConf } from "./yaml_conf.ts";
 * const { config } = readYamlConf(
 *   "mode: v\ninternalHosts: [127.0.0.1, localhost]\nactions: {badSignature: reject}\n",
 *   "dkimd.yaml",
 * );
 * assert.equal(config.mode.sign, false);
 * assert.equal(config.actions.badSignature, "reject");
 * assert.throws(
 *   () => readYamlConf("mode: v\nkeytabel: /k\n", "dkimd.yaml"),
 *   /dkimd\.yaml:2 \(keytabel\): unknown setting; did you mean "keyTable"\?/,
 * );
 * ```
 */
export function readYamlConf(text: string, file: string): ReadResult {
  const ctx: Ctx = { file, text, lines: new LineCounter(), errors: [], warnings: [] };
  if (text.length > MAX_YAML_BYTES) {
    throw new ConfigError(
      "Cannot read configuration",
      { file, line: 1 },
      `the file is larger than ${MAX_YAML_BYTES} bytes`,
    );
  }
  const doc = parseDocument(text, {
    lineCounter: ctx.lines,
    uniqueKeys: true,
    prettyErrors: false,
  });
  for (const e of doc.errors) {
    const line = e.linePos?.[0]?.line ?? ctx.lines.linePos(e.pos[0]).line;
    ctx.errors.push(
      new ConfigError("Cannot parse YAML", { file, line }, e.message.split("\n")[0], { cause: e }),
    );
  }
  throwIfErrors(ctx.errors);
  const raw: RawSettings = {};
  const entryOrigins: { [F in SettingField]?: Origin[] } = {};
  const root = doc.contents;
  if (root !== null && !(isScalar(root) && root.value === null)) {
    if (!isMap(root)) {
      throwIfErrors([
        new ConfigError(
          "Cannot read configuration",
          originOf(ctx, root, ""),
          "the YAML document must be a map of settings",
        ),
      ]);
    } else {
      for (const pair of root.items) {
        const keyNode = pair.key as Node;
        const key = isScalar(keyNode) ? String(keyNode.value) : "";
        const origin = originOf(ctx, keyNode, key);
        if (key === "actions") {
          readActions(ctx, pair.value as Node, raw);
          continue;
        }
        const setting = TOP_LEVEL.get(key);
        if (!setting) {
          const guess = closestName(key, YAML_KEYS);
          ctx.errors.push(
            new ConfigError(
              `Unknown setting "${key}"`,
              origin,
              guess ? `unknown setting; did you mean "${guess}"?` : "unknown setting",
            ),
          );
          continue;
        }
        const valueNode = pair.value as Node | null;
        const at = originOf(ctx, valueNode ?? keyNode, key);
        try {
          const { value, entries } = readField(ctx, setting, valueNode, key);
          (raw as Record<SettingField, RawSetting<SettingField>>)[setting.field] = {
            value,
            origin: at,
          };
          if (entries) entryOrigins[setting.field] = entries;
        } catch (e) {
          ctx.errors.push(
            e instanceof ConfigError
              ? e
              : toConfigError(e, key, e instanceof PathError ? e.origin : at),
          );
        }
      }
    }
  }
  const built = buildConfig(raw, file);
  throwIfErrors([...ctx.errors, ...built.errors]);
  return {
    config: built.config,
    origins: built.origins,
    warnings: [...ctx.warnings, ...built.warnings],
    entryOrigins,
  };
}

/** A shape error deeper in a value, carrying the exact node's place. */
class PathError extends ValueError {
  readonly origin: Origin;
  constructor(detail: string, origin: Origin) {
    super(detail);
    this.origin = origin;
  }
}

function readActions(ctx: Ctx, node: Node | null, raw: RawSettings): void {
  if (!isMap(node)) {
    ctx.errors.push(
      new ConfigError(
        'Cannot parse "actions"',
        originOf(ctx, node, "actions"),
        "expected a map such as {badSignature: reject}",
      ),
    );
    return;
  }
  for (const pair of node.items) {
    const keyNode = pair.key as Node;
    const key = isScalar(keyNode) ? String(keyNode.value) : "";
    const path = `actions.${key}`;
    const setting = ACTION_KEYS.get(key);
    if (!setting) {
      const guess = closestName(key, [...ACTION_KEYS.keys()]);
      ctx.errors.push(
        new ConfigError(
          `Unknown action "${key}"`,
          originOf(ctx, keyNode, path),
          guess
            ? `unknown action; did you mean "${guess}"?`
            : `expected one of ${[...ACTION_KEYS.keys()].join(", ")}`,
        ),
      );
      continue;
    }
    const at = originOf(ctx, (pair.value as Node) ?? keyNode, path);
    try {
      const text = expectScalar(ctx, pair.value, "an action");
      const value = setting.kind.parse(text, valueContext(ctx, at, path));
      (raw as Record<SettingField, RawSetting<SettingField>>)[setting.field] = {
        value,
        origin: at,
      };
    } catch (e) {
      ctx.errors.push(toConfigError(e, path, at));
    }
  }
}

/** What a value reader gets for the YAML value at `path`: its warnings name the path. */
function valueContext(ctx: Ctx, origin: Origin, path: string): ValueContext {
  return {
    origin,
    name: path,
    warn: (message) =>
      ctx.warnings.push({
        message: `"${path}" at ${formatOrigin(origin)}: ${message}`,
        origin,
        setting: path,
      }),
  };
}

function readField(
  ctx: Ctx,
  setting: SettingEntry,
  node: Node | null,
  path: string,
): { value: SettingValues[SettingField]; entries?: Origin[] } {
  const { field, kind } = setting;
  const valueCtx = valueContext(ctx, originOf(ctx, node, path), path);
  if (kind.type === "dataSet") return readDataSet(ctx, field, node, path, valueCtx);
  // The settings with a structured YAML form besides their opendkim.conf text.
  if (field === "canonicalization" && isMap(node)) {
    const header = expectScalar(ctx, node.get("header", true), "header: simple or relaxed");
    const body = node.has("body") ? expectScalar(ctx, node.get("body", true), "body") : "simple";
    onlyKeys(ctx, node, path, ["header", "body"]);
    return { value: kind.parse(`${header}/${body}`, valueCtx) };
  }
  if (field === "userId" && isMap(node)) {
    onlyKeys(ctx, node, path, ["user", "group"]);
    const user = expectScalar(ctx, node.get("user", true), "user: a user name");
    const group = node.has("group")
      ? `:${expectScalar(ctx, node.get("group", true), "a group name")}`
      : "";
    return { value: kind.parse(user + group, valueCtx) };
  }
  if (field === "nameservers" && isSeq(node)) {
    const items = node.items.map((item, i) => expectScalar(ctx, item, `nameserver ${i + 1}`));
    return { value: kind.parse(items.join(","), valueCtx) };
  }
  const text = expectScalar(ctx, node, `a value for "${path}"`);
  // A unit (`5m`) or YAML's octal (`0o22`) is YAML's convenience; the checks are opendkim.conf's.
  return { value: kind.parse(kind.fromYaml ? kind.fromYaml(text) : text, valueCtx) };
}

function onlyKeys(ctx: Ctx, node: Node, path: string, allowed: readonly string[]): void {
  if (!isMap(node)) return;
  for (const pair of node.items) {
    const k = isScalar(pair.key) ? String(pair.key.value) : "";
    if (!allowed.includes(k)) {
      const guess = closestName(k, allowed);
      throw new PathError(
        guess
          ? `unknown key "${k}"; did you mean "${guess}"?`
          : `unknown key "${k}" (expected ${allowed.join(", ")})`,
        originOf(ctx, pair.key as Node, `${path}.${k}`),
      );
    }
  }
}

function readDataSet(
  ctx: Ctx,
  field: SettingField,
  node: Node | null,
  path: string,
  valueCtx: ValueContext,
): { value: DataSetSource; entries?: Origin[] } {
  if (isScalar(node)) {
    const spec = scalarText(ctx, node);
    return { value: parseDataSetSpec(spec, valueCtx.origin, path) };
  }
  if (field === "keyTable" && isMap(node)) return readKeyTableMap(ctx, node, path);
  if (field === "signingTable") {
    if (isSeq(node)) return readSigningRules(ctx, node, path, true);
    if (isMap(node)) {
      onlyKeys(ctx, node, path, ["patterns", "rules"]);
      const patternsNode = node.get("patterns", true) as Node | undefined;
      const patterns = patternsNode === undefined ||
        parseBoolean(expectScalar(ctx, patternsNode, "true or false"));
      const rules = node.get("rules", true) as Node | undefined;
      if (!isSeq(rules)) {
        throw new PathError(
          "expected rules: a list of {from, key, signer}",
          originOf(ctx, rules ?? node, `${path}.rules`),
        );
      }
      return readSigningRules(ctx, rules, `${path}.rules`, patterns);
    }
  }
  if (field === "authorizedSigners" && isMap(node)) {
    // login: an item, a list of items, or nothing (the login may sign for nothing).
    const out = new InlineEntries();
    for (const pair of node.items) {
      const login = isScalar(pair.key) ? scalarText(ctx, pair.key as Scalar).trim() : "";
      const at = originOf(ctx, pair.key as Node, `${path}.${login}`);
      if (login === "") throw new PathError("the login is empty", at);
      const v = pair.value as Node | null;
      let items: string[] = [];
      if (isSeq(v)) items = v.items.map((item) => expectScalar(ctx, item, "an address or domain"));
      else if (isScalar(v) && v.value !== null) items = [scalarText(ctx, v)];
      else if (v !== null && !isScalar(v)) {
        throw new PathError("expected an address or domain, or a list of them", at);
      }
      out.add(items.length ? { key: login, value: items.join(", ") } : { key: login }, at);
    }
    return out.result();
  }
  if (field === "macroList" && isMap(node)) {
    const out = new InlineEntries();
    for (const pair of node.items) {
      const name = isScalar(pair.key) ? String(pair.key.value) : "";
      const at = originOf(ctx, pair.key as Node, `${path}.${name}`);
      const v = pair.value as Node | null;
      let values: string[] = [];
      if (isSeq(v)) values = v.items.map((item) => expectScalar(ctx, item, "a macro value"));
      else if (isScalar(v) && v.value !== null) values = [scalarText(ctx, v)];
      out.add(values.length ? { key: name, value: values.join("|") } : { key: name }, at);
    }
    return out.result();
  }
  if (isSeq(node)) {
    const out = new InlineEntries();
    node.items.forEach((item, i) => {
      const at = originOf(ctx, item as Node, `${path}[${i}]`);
      if (isMap(item) && item.items.length === 1) {
        const pair = item.items[0];
        const key = isScalar(pair.key) ? scalarText(ctx, pair.key as Scalar) : "";
        out.add({ key, value: expectScalar(ctx, pair.value, "a value") }, at);
      } else if (isScalar(item)) {
        const key = scalarText(ctx, item);
        if (key.trim() === "") throw new PathError("the entry is empty", at);
        out.add({ key: key.trim() }, at);
      } else {
        throw new PathError("expected a string, or a map of one key to its value", at);
      }
    });
    if (out.entries.length === 0) throw new PathError("the list is empty", valueCtx.origin);
    return out.result();
  }
  throw new PathError(
    field === "keyTable"
      ? "expected a data set such as /etc/opendkim/key.table, or a map of key names"
      : "expected a data set such as /etc/opendkim/TrustedHosts, or a list",
    valueCtx.origin,
  );
}

/** A YAML list or map read as inline data-set entries, each with its own place. */
class InlineEntries {
  readonly entries: InlineEntry[] = [];
  readonly origins: Origin[] = [];

  add(entry: InlineEntry, at: Origin): void {
    this.entries.push(entry);
    this.origins.push(at);
  }

  /** The data set, and each entry's place for `ReadResult.entryOrigins`. */
  result(patterns = false): { value: DataSetSource; entries: Origin[] } {
    return { value: { kind: "inline", entries: this.entries, patterns }, entries: this.origins };
  }
}

function readKeyTableMap(
  ctx: Ctx,
  node: YAMLMap,
  path: string,
): { value: DataSetSource; entries: Origin[] } {
  const out = new InlineEntries();
  for (const pair of node.items) {
    const name = isScalar(pair.key) ? String(pair.key.value) : "";
    const p = `${path}.${name}`;
    const v = pair.value as Node | null;
    const at = originOf(ctx, v ?? (pair.key as Node), p);
    if (isScalar(v)) {
      out.add({ key: name, value: scalarText(ctx, v) }, at);
    } else if (isMap(v)) {
      onlyKeys(ctx, v, p, ["domain", "selector", "keyFile", "key", "algorithm"]);
      const get = (k: string, what: string): string => {
        const n = v.get(k, true) as Node | undefined;
        if (n === undefined) throw new PathError(`"${k}" is missing: ${what}`, at);
        return expectScalar(ctx, n, what).trim();
      };
      const domain = get("domain", "the signing domain, or % for the sender's");
      const selector = get("selector", "the selector");
      let keydata: string;
      if (v.has("keyFile") && v.has("key")) {
        throw new PathError('give "keyFile" or "key", not both', at);
      } else if (v.has("keyFile")) {
        keydata = get("keyFile", "the key file path");
        if (!/^\.{0,2}\//.test(keydata)) {
          throw new PathError(
            `keyFile "${keydata}" must start with "/", "./" or "../" (as OpenDKIM requires)`,
            originOf(ctx, v.get("keyFile", true) as Node, `${p}.keyFile`),
          );
        }
      } else if (v.has("key")) {
        keydata = get("key", "the key as PEM or base64 DER");
      } else {
        throw new PathError('"keyFile" or "key" is missing', at);
      }
      const algorithm = v.has("algorithm") ? `:${get("algorithm", "a signing algorithm")}` : "";
      out.add({ key: name, value: `${domain}:${selector}:${keydata}${algorithm}` }, at);
    } else {
      throw new PathError('expected {domain, selector, keyFile} or "domain:selector:keyfile"', at);
    }
  }
  return out.result();
}

function readSigningRules(
  ctx: Ctx,
  node: YAMLSeq,
  path: string,
  patterns: boolean,
): { value: DataSetSource; entries: Origin[] } {
  const out = new InlineEntries();
  node.items.forEach((item, i) => {
    const p = `${path}[${i}]`;
    const at = originOf(ctx, item as Node, p);
    if (!isMap(item)) throw new PathError("expected {from, key} (and optionally signer)", at);
    onlyKeys(ctx, item, p, ["from", "key", "signer"]);
    const from = item.get("from", true) as Node | undefined;
    const key = item.get("key", true) as Node | undefined;
    if (from === undefined) throw new PathError('"from" is missing: the sender pattern', at);
    if (key === undefined) throw new PathError('"key" is missing: the KeyTable name', at);
    const signerNode = item.get("signer", true) as Node | undefined;
    const signer = signerNode === undefined
      ? ""
      : `:${expectScalar(ctx, signerNode, "the signer")}`;
    out.add({
      key: expectScalar(ctx, from, "the sender pattern").trim(),
      value: expectScalar(ctx, key, "the KeyTable name").trim() + signer,
    }, at);
  });
  return out.result(patterns);
}
