/**
 * Loading a configuration: the one place in lib/config that touches files. It reads the
 * configuration (opendkim.conf or YAML, told apart by config_format.ts), follows `Include`,
 * reads every data set file, Lua script and ReplaceRules file, opens the data sets kept in
 * databases (database_data_sets.ts) and imports every signing key once (key_loader.ts, checking
 * RequireSafeKeys first); build_policy.ts then assembles the policy the filter uses from what was
 * read, without I/O. Every mistake found anywhere is collected and thrown together, each naming
 * `file:line`, so `dkimd check-config` reports them all in one run.
 *
 * The I/O is passed in ({@link LoadIo}, in load_io.ts), so tests can load from memory and the
 * key importer is lib/crypto's `importPrivateKey`; {@link denoLoadIo} is the real one.
 *
 * @module
 */

import { parseReplaceRules, type ReplaceRule } from "../policy/replace_rules.ts";
import { fileErrorMessage } from "../error_message.ts";
import { dirname, isAbsolute, join, normalize } from "node:path";
import {
  type DataSet,
  type DataSetSource,
  MAX_DATA_SET_FILE_BYTES,
  parseDataSetFile,
  withOrigin,
} from "../policy/dataset.ts";
import type { BackendOptions } from "../tables/backend_options.ts";
import type { CachedTable } from "../tables/cached_table.ts";
import { scriptDataSetOpener } from "./script_data_sets.ts";
import type { PrivateKeyInfo } from "../policy/key_table.ts";
import { type Origin, SourceError } from "../policy/origin.ts";
import { buildPolicy, keysToOpen, type OpenedDataSets, type Policy } from "./build_policy.ts";
import { ConfigError, type ConfigWarning, throwIfErrors } from "./config_error.ts";
import { type ConfigFormat, detectFormat } from "./config_format.ts";
import {
  DATA_SET_SETTINGS,
  databaseOptions,
  openDatabase,
  openDatabases,
} from "./database_data_sets.ts";
import { openKeys } from "./key_loader.ts";
import { cannotRead, type LoadContext } from "./load_context.ts";
import type { LoadIo } from "./load_io.ts";
import {
  expandIncludes,
  MAX_CONFIG_BYTES,
  parseConfText,
  readConfLines,
  sortByPlace,
} from "./opendkim_conf.ts";
import { MAX_YAML_BYTES, readLimited } from "./limited_read.ts";
import type { Config, ConfigOrigins, ReadResult, SettingField } from "./schema.ts";
import { SETTING_LIST } from "./settings.ts";
import type { LuaHook, PolicyScripts } from "../lua/odkim_api.ts";

export { denoLoadIo, type FileInfo, type LoadIo } from "./load_io.ts";

/**
 * Everything the server and the filter need, built from one configuration: the policy, with
 * what tools and reloads need besides (where each setting came from, the warnings, the data
 * sets as read and every file read).
 */
export interface LoadedConfig<K extends PrivateKeyInfo> extends Policy<K> {
  /** Where each setting was set. */
  readonly origins: ConfigOrigins;
  /** Every warning, each naming its place. */
  readonly warnings: readonly ConfigWarning[];
  /** The data sets as read, by setting field (for `dkimd config convert`). */
  readonly dataSets: OpenedDataSets;
  /**
   * The data sets kept in databases, with their caches: for `check-config`, for the server to
   * attach its logger and metrics, and to close when a reload replaces them.
   */
  readonly tables: readonly CachedTable[];
  /**
   * The options `dsn:` data sets were opened with (DataSetPasswordFile's password, TLS, CA,
   * timeouts), when one is: for `dkimd rotate`, which opens the KeyTable again to write it.
   */
  readonly dsnOptions?: BackendOptions;
  /** Every file read: the configuration, includes, data sets and keys (for reload). */
  readonly files: readonly string[];
}

const decoder = new TextDecoder();

/**
 * Loads the configuration at `path` and everything it refers to. Rejects with a `ConfigError`
 * (or `ConfigErrors` listing several) when anything is wrong: the server would not start.
 * `format` overrides {@link detectFormat}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { denoLoadIo, loadConfig } from "./load.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/opendkim.conf`, "Mode v\nSocket inet:8891@localhost\n");
 * const io = denoLoadIo(() => Promise.reject(new Error("no keys needed")));
 * const loaded = await loadConfig(`${dir}/opendkim.conf`, io);
 * assert.equal((await loaded.hosts.internal.match("localhost", "::1")).matched, true);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadConfig<K extends PrivateKeyInfo>(
  path: string,
  io: LoadIo<K>,
  format?: ConfigFormat,
): Promise<LoadedConfig<K>> {
  const files: string[] = [path];
  let text: string;
  try {
    text = decoder.decode(await readLimited(io, path, Math.max(MAX_CONFIG_BYTES, MAX_YAML_BYTES)));
  } catch (e) {
    throw new ConfigError(
      "Cannot read configuration",
      { file: path, line: 0 },
      fileErrorMessage(e),
      {
        cause: e,
      },
    );
  }
  // The YAML reader, and the npm `yaml` package under it, load only for a YAML file: Deno's npm
  // support alone adds about 10 MiB to the resident size of a service that never needs it.
  const read = (format ?? detectFormat(path, text)) === "yaml"
    ? (await import("./yaml_conf.ts")).readYamlConf(text, path)
    : await readOpendkim(text, path, io, files);
  return await buildLoaded(read, path, io, files);
}

async function readOpendkim<K extends PrivateKeyInfo>(
  text: string,
  path: string,
  io: LoadIo<K>,
  files: string[],
): Promise<ReadResult> {
  const top = parseConfText(text, path);
  const expanded = await expandIncludes(top.lines, async (name, from) => {
    const file = isAbsolute(name) ? name : join(dirname(from.file), name);
    try {
      return { text: decoder.decode(await readLimited(io, file, MAX_CONFIG_BYTES)), file };
    } catch (e) {
      throw cannotRead("Include", from, `"${file}": ${fileErrorMessage(e)}`, e);
    }
  });
  files.push(...expanded.files);
  const errors: SourceError[] = [...top.errors, ...expanded.errors];
  try {
    const result = readConfLines(expanded.lines, path);
    throwIfErrors(sortByPlace(errors));
    return result;
  } catch (e) {
    if (errors.length === 0) throw e;
    throwIfErrors(sortByPlace([...errors, ...(e instanceof AggregateError ? e.errors : [e])]));
    throw e;
  }
}

async function buildLoaded<K extends PrivateKeyInfo>(
  read: ReadResult,
  path: string,
  io: LoadIo<K>,
  files: string[],
): Promise<LoadedConfig<K>> {
  const { config, origins } = read;
  const errors: SourceError[] = [];
  const base = config.baseDirectory === undefined
    ? io.cwd()
    : isAbsolute(config.baseDirectory)
    ? config.baseDirectory
    : join(io.cwd(), config.baseDirectory);
  const resolve = (p: string) => normalize(isAbsolute(p) ? p : join(base, p));
  const originOf = (f: SettingField): Origin => origins[f] ?? { file: path, line: 0 };
  const ctx: LoadContext<K> = { io, base, resolve, originOf, files, errors };
  const dataSets = await openDataSets(read, ctx);
  const tableWarnings: ConfigWarning[] = [];
  const scriptsSet = LUA_SCRIPT_SETTINGS.some(([, field]) => config[field] !== undefined);
  const options = await databaseOptions(read, ctx, scriptsSet);
  const databases = await openDatabases(read, ctx, tableWarnings, options);
  const tables = Object.values(databases) as CachedTable[];
  const keys = await openKeys(ctx, config, keysToOpen(read, dataSets));
  const built = buildPolicy(read, dataSets, keys, databases);
  const luaScripts = await openLuaScripts(config, ctx);
  const replaceRules = await openReplaceRules(config, ctx);
  try {
    throwIfErrors(sortByPlace([...errors, ...built.errors]));
  } catch (e) {
    await Promise.all(tables.map((t) => t.close().catch(() => {})));
    throw e;
  }
  const openScriptDataSet = luaScripts && options
    ? scriptDataSetOpener({
      readFile: (p) => io.readFile(p),
      stat: (p) => io.stat(p),
      resolve,
      openTable: (source, o) => (io.openTable ?? openDatabase)(source, o, base),
      ...options,
    })
    : undefined;
  return {
    ...built.policy,
    ...(luaScripts ? { luaScripts } : {}),
    ...(openScriptDataSet ? { openScriptDataSet } : {}),
    ...(replaceRules ? { replaceRules } : {}),
    origins,
    warnings: [...built.warnings, ...tableWarnings],
    dataSets,
    tables,
    ...(options ? { dsnOptions: options.dsnOptions } : {}),
    files: [...new Set(files)],
  };
}

/**
 * Opens every data set the configuration names: a file is read and parsed (an error naming the
 * setting when it cannot be), an inline list gets the place of each entry.
 */
async function openDataSets<K extends PrivateKeyInfo>(
  read: ReadResult,
  ctx: LoadContext<K>,
): Promise<OpenedDataSets> {
  const dataSets: { [F in SettingField]?: DataSet } = {};
  for (const [field, name] of DATA_SET_SETTINGS) {
    const source = read.config[field as keyof Config] as DataSetSource | undefined;
    if (!source || source.kind === "dsn" || source.kind === "ldap") continue;
    const at = ctx.originOf(field);
    if (source.kind === "inline") {
      const entryOrigins = read.entryOrigins?.[field];
      dataSets[field] = {
        source,
        patterns: source.patterns,
        entries: withOrigin(source.entries, entryOrigins ?? at),
      };
      continue;
    }
    const file = ctx.resolve(source.path);
    try {
      const bytes = await readLimited(ctx.io, file, MAX_DATA_SET_FILE_BYTES);
      ctx.files.push(file);
      dataSets[field] = {
        source,
        patterns: source.kind === "refile",
        entries: parseDataSetFile(decoder.decode(bytes), file),
      };
    } catch (e) {
      ctx.errors.push(
        e instanceof SourceError ? e : new ConfigError(
          `Cannot read "${name}" data set "${file}"`,
          at,
          fileErrorMessage(e),
          { setting: name, cause: e },
        ),
      );
    }
  }
  return dataSets;
}

/** The Lua policy script settings, by hook. */
const LUA_SCRIPT_SETTINGS: readonly [LuaHook, SettingField & keyof Config][] = [
  ["setup", "setupPolicyScript"],
  ["screen", "screenPolicyScript"],
  ["statistics", "statisticsPolicyScript"],
  ["final", "finalPolicyScript"],
];

/**
 * Reads and compiles each Lua policy script, so a syntax error stops the load naming the file
 * and line; undefined when none is set. The Lua VM is loaded only then.
 */
async function openLuaScripts<K extends PrivateKeyInfo>(
  config: Config,
  ctx: LoadContext<K>,
): Promise<PolicyScripts | undefined> {
  const set = LUA_SCRIPT_SETTINGS.filter(([, field]) => config[field] !== undefined);
  if (set.length === 0) return undefined;
  const { compileLuaScript, LUA_SCRIPT_MAX_BYTES } = await import("../lua/lua_vm.ts");
  const scripts: { -readonly [H in LuaHook]?: PolicyScripts[H] } = {};
  for (const [hook, field] of set) {
    const file = ctx.resolve(String(config[field]));
    const name = SETTING_LIST.find((s) => s.field === field)?.name ?? field;
    let source: string;
    try {
      source = decoder.decode(await readLimited(ctx.io, file, LUA_SCRIPT_MAX_BYTES));
      ctx.files.push(file);
    } catch (e) {
      ctx.errors.push(cannotRead(name, ctx.originOf(field), fileErrorMessage(e), e));
      continue;
    }
    try {
      scripts[hook] = await compileLuaScript(file, source);
    } catch (e) {
      if (!(e instanceof SourceError)) throw e;
      ctx.errors.push(e);
    }
  }
  return scripts;
}

/** Longest ReplaceRules file read: a list of rules, not a data set. */
const REPLACE_RULES_MAX_BYTES = 1 << 20;

/** Reads ReplaceRules, so a line OpenDKIM would refuse stops the load naming file and line. */
async function openReplaceRules<K extends PrivateKeyInfo>(
  config: Config,
  ctx: LoadContext<K>,
): Promise<ReplaceRule[] | undefined> {
  if (config.replaceRules === undefined) return undefined;
  const file = ctx.resolve(config.replaceRules);
  try {
    const text = decoder.decode(await readLimited(ctx.io, file, REPLACE_RULES_MAX_BYTES));
    ctx.files.push(file);
    return parseReplaceRules(text, file);
  } catch (e) {
    if (e instanceof SourceError) ctx.errors.push(e);
    else {ctx.errors.push(
        cannotRead("ReplaceRules", ctx.originOf("replaceRules"), fileErrorMessage(e), e),
      );}
    return undefined;
  }
}
