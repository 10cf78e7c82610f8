/**
 * Loading a configuration: the one place in lib/config that touches files. It reads the
 * configuration (opendkim.conf or YAML, told apart by name or content), follows `Include`,
 * reads every data set file and imports every signing key once (checking RequireSafeKeys
 * first); build_policy.ts then assembles the policy the filter uses from what was read, without
 * I/O. Every mistake found anywhere is collected and thrown together, each naming `file:line`,
 * so `dkimd check-config` reports them all in one run.
 *
 * The I/O is passed in ({@link LoadIo}), so tests can load from memory and the key importer
 * is lib/crypto's `importPrivateKey`; {@link denoLoadIo} is the real one.
 *
 * @module
 */

import { parseReplaceRules, type ReplaceRule } from "../policy/replace_rules.ts";
import { fileErrorMessage } from "../error_message.ts";
import { dirname, isAbsolute, join, normalize } from "node:path";
import {
  type DatabaseSource,
  type DataSet,
  type DataSetSource,
  MAX_DATA_SET_FILE_BYTES,
  parseDataSetFile,
  withOrigin,
} from "../policy/dataset.ts";
import { MIN_RSA_BITS } from "../crypto/key_type.ts";
import type { BackendOptions } from "../tables/backend_options.ts";
import { CachedTable } from "../tables/cached_table.ts";
import { scriptDataSetOpener } from "./script_data_sets.ts";
import { parseDsn, redactDsnText } from "../tables/dsn.ts";
import type { LdapOptions } from "../tables/ldap_backend.ts";
import { openDsn, openLdapUri } from "../tables/open_backend.ts";
import type { TableBackend } from "../tables/table_backend.ts";
import type {
  KeySource,
  KeyTableEntry,
  PrivateKeyInfo,
  TemplateKeyLoader,
} from "../policy/key_table.ts";
import { algorithmFitsKey } from "../policy/key_table.ts";
import type { Origin } from "../policy/origin.ts";
import { formatOrigin, SourceError } from "../policy/origin.ts";
import {
  buildPolicy,
  type KeyOpening,
  keysToOpen,
  type OpenedDatabases,
  type OpenedDataSets,
  type OpenedKeys,
  type Policy,
} from "./build_policy.ts";
import { ConfigError, type ConfigWarning, throwIfErrors } from "./config_error.ts";
import {
  expandIncludes,
  MAX_CONFIG_BYTES,
  parseConfText,
  readConfLines,
  sortByPlace,
} from "./opendkim_conf.ts";
import { type FileInfo, MAX_YAML_BYTES, readLimited } from "./limited_read.ts";
import { readPrivateKeyFile, UnsafeKeyError } from "./private_key_file.ts";
import type { Config, ConfigOrigins, ReadResult, SettingField } from "./schema.ts";
import { SETTING_LIST } from "./settings.ts";
import { UserDb } from "./user_db.ts";
import type { CryptoBackendName } from "../crypto/crypto_backend.ts";
import type { LuaHook, PolicyScripts } from "../lua/odkim_api.ts";

export type { FileInfo } from "./limited_read.ts";

/** The capabilities loading needs. */
export interface LoadIo<K extends PrivateKeyInfo> {
  /** Reads a whole file. */
  readFile(path: string): Promise<Uint8Array>;
  /** stat(2), following symbolic links. */
  stat(path: string): Promise<FileInfo>;
  /** realpath(3). */
  realPath(path: string): Promise<string>;
  /**
   * Imports a private key (lib/crypto's `importPrivateKey`) with the configuration's
   * CryptoBackend; rejects with a `KeyError`.
   */
  importKey(input: Uint8Array | string, source?: string, backend?: CryptoBackendName): Promise<K>;
  /** The effective uid, or null where there is none. */
  euid(): number | null;
  /** The working directory, against which relative paths resolve without BaseDirectory. */
  cwd(): string;
  /** The account database, or undefined when it cannot be read. */
  accounts(): Promise<UserDb | undefined>;
  /** systemd's `$CREDENTIALS_DIRECTORY` (LoadCredential=), when set and readable. */
  credentialsDirectory?(): string | undefined;
  /**
   * Opens the back end of a `dsn:` or `ldap:` data set; `directory` is where a relative SQLite
   * file lives, and `warn` takes what the load should warn about (a SQLite file that is not
   * the one OpenDKIM opens). Default: lib/tables' {@link openDatabase}.
   */
  openTable?(
    source: DatabaseSource,
    options: BackendOptions & LdapOptions,
    directory: string,
    warn?: (message: string) => void,
  ): TableBackend | Promise<TableBackend>;
}

/**
 * Opens the back end of a `dsn:` or `ldap:` data set with lib/tables (connections are made at
 * the first query, not here; a relative SQLite file is chosen here, once, and `warn` is told
 * when it is not the file OpenDKIM opens). The client of a PostgreSQL, MySQL or LDAP back end
 * is loaded here, when first needed, so the promise may take a moment.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openDatabase } from "./load.ts";
 * const t = await openDatabase(
 *   { kind: "dsn", text: "dsn:sqlite3://%/dkim.db/table=t?keycol=k?datacol=v" },
 *   { queryTimeoutMs: 1000, connectTimeoutMs: 1000 },
 *   "/var/lib/dkimd",
 * );
 * assert.match(t.describe, /^dsn:sqlite3:\/\/\/var\/lib\/dkimd\/%dkim\.db\//);
 * ```
 */
export async function openDatabase(
  source: DatabaseSource,
  options: BackendOptions & LdapOptions,
  directory: string,
  warn?: (message: string) => void,
): Promise<TableBackend> {
  // Awaited here so a DSN that does not parse rejects, as every other mistake, not throws.
  return source.kind === "dsn"
    ? await openDsn(parseDsn(source.text), options, directory, warn)
    : await openLdapUri(source.uri, options);
}

/**
 * The real I/O: Deno's file system, `/etc/passwd` and `/etc/group`, and the given importer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { denoLoadIo } from "./load.ts";
 * const io = denoLoadIo(() => Promise.reject(new Error("no keys here")));
 * assert.equal(typeof io.cwd(), "string");
 * ```
 */
export function denoLoadIo<K extends PrivateKeyInfo>(
  importKey: (
    input: Uint8Array | string,
    source?: string,
    backend?: CryptoBackendName,
  ) => Promise<K>,
): LoadIo<K> {
  return {
    readFile: (path) => Deno.readFile(path),
    stat: (path) => Deno.stat(path),
    realPath: (path) => Deno.realPath(path),
    importKey,
    euid: () => Deno.uid(),
    cwd: () => Deno.cwd(),
    credentialsDirectory: () => {
      try {
        return Deno.env.get("CREDENTIALS_DIRECTORY");
      } catch {
        return undefined; // not in --allow-env: as if unset
      }
    },
    accounts: async () => {
      try {
        const [passwd, group] = await Promise.all([
          Deno.readTextFile("/etc/passwd"),
          Deno.readTextFile("/etc/group"),
        ]);
        return UserDb.parse(passwd, group);
      } catch {
        return undefined;
      }
    },
  };
}

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

/** The two configuration formats. */
export type ConfigFormat = "opendkim" | "yaml";

/**
 * Tells YAML from opendkim.conf: by the extension `.yaml`/`.yml`, else by the first line that
 * is not blank or a comment (`---` or `name:` is YAML; opendkim.conf never has a colon right
 * after the setting name).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { detectFormat } from "./load.ts";
 * assert.equal(detectFormat("/etc/dkimd.yaml", ""), "yaml");
 * assert.equal(detectFormat("/etc/opendkim.conf", "Socket inet:8891@localhost\n"), "opendkim");
 * assert.equal(detectFormat("/etc/dkimd", "# x\nmode: sv\n"), "yaml");
 * ```
 */
export function detectFormat(path: string, text: string): ConfigFormat {
  if (/\.ya?ml$/i.test(path)) return "yaml";
  if (/\.conf$/i.test(path)) return "opendkim";
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (t === "" || t.startsWith("#")) continue;
    return t === "---" || /^[A-Za-z_][\w-]*:(\s|$)/.test(t) ? "yaml" : "opendkim";
  }
  return "opendkim";
}

const decoder = new TextDecoder();

/** Settings whose value is a data set, with their OpenDKIM names. */
const DATA_SET_SETTINGS: readonly [SettingField, string][] = SETTING_LIST
  .filter((s) => s.kind.type === "dataSet").map((s) => [s.field, s.name]);

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
      throw new ConfigError('Cannot read "Include"', from, `"${file}": ${fileErrorMessage(e)}`, {
        setting: "Include",
        cause: e,
      });
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
  const dataSets = await openDataSets(read, originOf, resolve, io, files, errors);
  const tableWarnings: ConfigWarning[] = [];
  const scriptsSet = LUA_SCRIPT_SETTINGS.some(([, field]) => config[field] !== undefined);
  const options = await databaseOptions(read, originOf, base, io, errors, scriptsSet);
  const databases = await openDatabases(read, originOf, base, io, errors, tableWarnings, options);
  const tables = Object.values(databases) as CachedTable[];
  const accounts = await io.accounts();
  const trusted = trustedUsers(config, originOf("userId"), io, accounts, errors);
  const loader = new KeyLoader(io, config, trusted, accounts, resolve, files);
  const keys = await loader.open(keysToOpen(read, dataSets));
  const built = buildPolicy(read, dataSets, keys, databases);
  const luaScripts = await openLuaScripts(config, originOf, resolve, io, files, errors);
  const replaceRules = await openReplaceRules(config, originOf, resolve, io, files, errors);
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

/** The options `dsn:` and LDAP back ends are opened with. */
interface DatabaseOptions {
  readonly dsnOptions: BackendOptions;
  readonly ldapOptions: BackendOptions & LdapOptions;
}

// The `dsn:` and `ldap:` data sets the configuration names.
function databaseSources(config: Config) {
  return DATA_SET_SETTINGS.flatMap(([field, name]) => {
    const source = config[field as keyof Config] as DataSetSource | undefined;
    return source && (source.kind === "dsn" || source.kind === "ldap")
      ? [{ field, name, source }]
      : [];
  });
}

/**
 * The DataSet* and LDAP* settings as back-end options, when a data set is kept in a database or
 * a Lua script may open one (`odkim.db_open()`). The DataSetPasswordFile, when set, is read once
 * here (a relative name from `$CREDENTIALS_DIRECTORY`) and overrides every DSN's password.
 */
async function databaseOptions<K extends PrivateKeyInfo>(
  read: ReadResult,
  originOf: (f: SettingField) => Origin,
  base: string,
  io: LoadIo<K>,
  errors: SourceError[],
  scriptsSet: boolean,
): Promise<DatabaseOptions | undefined> {
  const { config } = read;
  if (databaseSources(config).length === 0 && !scriptsSet) return undefined;
  const password = await readPasswordFile(config, originOf("dataSetPasswordFile"), io, errors);
  const ca = await readCaFile(config, originOf("dataSetTlsCaFile"), base, io, errors);
  const options: BackendOptions = {
    queryTimeoutMs: config.dataSetQueryTimeout * 1000,
    connectTimeoutMs: config.dataSetConnectTimeout * 1000,
  };
  // The password file is the SQL password; LDAP has LDAPBindPassword and the other LDAP*
  // settings (opendkim.conf(5)), applied to every LDAP data set as OpenDKIM applies them.
  // DataSetTLS is the SQL servers' TLS (OpenDBX has none: "no" leaves it off); the CA serves both.
  const tls = DATA_SET_TLS_OPTION[config.dataSetTls];
  const dsnOptions: BackendOptions = {
    ...options,
    ...(password === undefined ? {} : { password }),
    ...(tls === undefined ? {} : { tls }),
    ...(ca === undefined ? {} : { ca }),
  };
  const ldapOptions: BackendOptions & LdapOptions = {
    ...options,
    ...(ca === undefined ? {} : { tlsCa: ca }),
    ...(config.ldapBindUser === undefined ? {} : { bindDn: config.ldapBindUser }),
    ...(config.ldapBindPassword === undefined ? {} : { bindPassword: config.ldapBindPassword }),
    ...(config.ldapAuthMechanism === undefined ? {} : { authMechanism: config.ldapAuthMechanism }),
    useTls: config.ldapUseTls,
    timeoutMs: config.ldapTimeout * 1000,
  };
  return { dsnOptions, ldapOptions };
}

/**
 * Opens every `dsn:` and `ldap:` data set: a back end each (no connection yet) behind a
 * {@link CachedTable} with the DataSet* settings. What opening warns about (a SQLite file other
 * than OpenDKIM's) goes to `warnings`.
 */
async function openDatabases<K extends PrivateKeyInfo>(
  read: ReadResult,
  originOf: (f: SettingField) => Origin,
  base: string,
  io: LoadIo<K>,
  errors: SourceError[],
  warnings: ConfigWarning[],
  options: DatabaseOptions | undefined,
): Promise<OpenedDatabases> {
  const { config } = read;
  const sources = databaseSources(config);
  if (sources.length === 0 || options === undefined) return {};
  const { dsnOptions, ldapOptions } = options;
  const open = io.openTable ?? openDatabase;
  const out: { [F in SettingField]?: CachedTable } = {};
  for (const { field, name, source } of sources) {
    const at = originOf(field);
    const warn = (message: string) =>
      warnings.push({
        message: `"${name}" at ${formatOrigin(at)}: ${message}`,
        origin: at,
        setting: name,
      });
    try {
      out[field] = new CachedTable(
        await open(source, source.kind === "dsn" ? dsnOptions : ldapOptions, base, warn),
        {
          setting: name,
          cacheTtlMs: config.dataSetCacheTtl * 1000,
          staleMs: config.dataSetStaleLimit * 1000,
          queryTimeoutMs: config.dataSetQueryTimeout * 1000,
        },
      );
    } catch (e) {
      const text = source.kind === "dsn" ? redactDsnText(source.text) : source.uri;
      errors.push(
        new ConfigError(`Cannot open "${name}" data set "${text}"`, at, errorText(e), {
          setting: name,
          cause: e,
        }),
      );
    }
  }
  return out;
}

// DataSetPasswordFile's first line: an absolute path, or a name in $CREDENTIALS_DIRECTORY.
async function readPasswordFile<K extends PrivateKeyInfo>(
  config: Config,
  at: Origin,
  io: LoadIo<K>,
  errors: SourceError[],
): Promise<string | undefined> {
  const name = config.dataSetPasswordFile;
  if (name === undefined) return undefined;
  let path = name;
  if (!isAbsolute(name)) {
    const dir = io.credentialsDirectory?.();
    if (dir === undefined || dir === "") {
      errors.push(
        new ConfigError(
          'Cannot read "DataSetPasswordFile"',
          at,
          `"${name}" is relative, so it names a systemd credential, but $CREDENTIALS_DIRECTORY ` +
            `is not set (use LoadCredential= in the unit, or an absolute path)`,
          { setting: "DataSetPasswordFile" },
        ),
      );
      return undefined;
    }
    path = join(dir, name);
  }
  try {
    const text = decoder.decode(await readLimited(io, path, MAX_PASSWORD_FILE_BYTES));
    return text.split(/\r?\n/)[0];
  } catch (e) {
    errors.push(
      new ConfigError(
        'Cannot read "DataSetPasswordFile"',
        at,
        `"${path}": ${fileErrorMessage(e)}`,
        {
          setting: "DataSetPasswordFile",
          cause: e,
        },
      ),
    );
    return undefined;
  }
}

/** Largest DataSetPasswordFile read: a password, not a document. */
const MAX_PASSWORD_FILE_BYTES = 4096;

/** Largest DataSetTLSCAFile read: room for a system CA bundle (about 200 KiB), not more. */
const MAX_CA_FILE_BYTES = 1024 * 1024;

/** What each DataSetTLS value asks of the dsn:pgsql and dsn:mysql back ends. */
const DATA_SET_TLS_OPTION: Record<Config["dataSetTls"], BackendOptions["tls"]> = {
  no: undefined,
  prefer: true,
  require: "require",
  verify: "verify",
};

// DataSetTLSCAFile: PEM certificates, read once here (relative to BaseDirectory, as data set
// files are), so a missing or wrong file fails the load, not every lookup.
async function readCaFile<K extends PrivateKeyInfo>(
  config: Config,
  at: Origin,
  base: string,
  io: LoadIo<K>,
  errors: SourceError[],
): Promise<string | undefined> {
  const name = config.dataSetTlsCaFile;
  if (name === undefined) return undefined;
  const path = isAbsolute(name) ? name : join(base, name);
  const refuse = (why: string, cause?: unknown) =>
    errors.push(
      new ConfigError('Cannot read "DataSetTLSCAFile"', at, `"${path}": ${why}`, {
        setting: "DataSetTLSCAFile",
        ...(cause === undefined ? {} : { cause }),
      }),
    );
  try {
    const text = decoder.decode(await readLimited(io, path, MAX_CA_FILE_BYTES));
    if (!text.includes("-----BEGIN CERTIFICATE-----")) {
      refuse("no PEM certificate (-----BEGIN CERTIFICATE-----) in it");
      return undefined;
    }
    return text;
  } catch (e) {
    refuse(fileErrorMessage(e), e);
    return undefined;
  }
}

/**
 * Opens every data set the configuration names: a file is read and parsed (an error naming the
 * setting when it cannot be), an inline list gets the place of each entry.
 */
async function openDataSets<K extends PrivateKeyInfo>(
  read: ReadResult,
  originOf: (f: SettingField) => Origin,
  resolve: (p: string) => string,
  io: LoadIo<K>,
  files: string[],
  errors: SourceError[],
): Promise<OpenedDataSets> {
  const dataSets: { [F in SettingField]?: DataSet } = {};
  for (const [field, name] of DATA_SET_SETTINGS) {
    const source = read.config[field as keyof Config] as DataSetSource | undefined;
    if (!source || source.kind === "dsn" || source.kind === "ldap") continue;
    const at = originOf(field);
    if (source.kind === "inline") {
      const entryOrigins = read.entryOrigins?.[field];
      dataSets[field] = {
        source,
        patterns: source.patterns,
        entries: withOrigin(source.entries, entryOrigins ?? at),
      };
      continue;
    }
    const file = resolve(source.path);
    try {
      const bytes = await readLimited(io, file, MAX_DATA_SET_FILE_BYTES);
      files.push(file);
      dataSets[field] = {
        source,
        patterns: source.kind === "refile",
        entries: parseDataSetFile(decoder.decode(bytes), file),
      };
    } catch (e) {
      errors.push(
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
  originOf: (f: SettingField) => Origin,
  resolve: (p: string) => string,
  io: LoadIo<K>,
  files: string[],
  errors: SourceError[],
): Promise<PolicyScripts | undefined> {
  const set = LUA_SCRIPT_SETTINGS.filter(([, field]) => config[field] !== undefined);
  if (set.length === 0) return undefined;
  const { compileLuaScript, LUA_SCRIPT_MAX_BYTES } = await import("../lua/lua_vm.ts");
  const scripts: { -readonly [H in LuaHook]?: PolicyScripts[H] } = {};
  for (const [hook, field] of set) {
    const file = resolve(String(config[field]));
    const name = SETTING_LIST.find((s) => s.field === field)?.name ?? field;
    let source: string;
    try {
      source = decoder.decode(await readLimited(io, file, LUA_SCRIPT_MAX_BYTES));
      files.push(file);
    } catch (e) {
      errors.push(
        new ConfigError(`Cannot read "${name}"`, originOf(field), fileErrorMessage(e), {
          setting: name,
          cause: e,
        }),
      );
      continue;
    }
    try {
      scripts[hook] = await compileLuaScript(file, source);
    } catch (e) {
      if (!(e instanceof SourceError)) throw e;
      errors.push(e);
    }
  }
  return scripts;
}

/** Longest ReplaceRules file read: a list of rules, not a data set. */
const REPLACE_RULES_MAX_BYTES = 1 << 20;

/** Reads ReplaceRules, so a line OpenDKIM would refuse stops the load naming file and line. */
async function openReplaceRules<K extends PrivateKeyInfo>(
  config: Config,
  originOf: (f: SettingField) => Origin,
  resolve: (p: string) => string,
  io: LoadIo<K>,
  files: string[],
  errors: SourceError[],
): Promise<ReplaceRule[] | undefined> {
  if (config.replaceRules === undefined) return undefined;
  const file = resolve(config.replaceRules);
  try {
    const text = decoder.decode(await readLimited(io, file, REPLACE_RULES_MAX_BYTES));
    files.push(file);
    return parseReplaceRules(text, file);
  } catch (e) {
    if (e instanceof SourceError) errors.push(e);
    else {
      errors.push(
        new ConfigError(
          `Cannot read "ReplaceRules"`,
          originOf("replaceRules"),
          fileErrorMessage(e),
          {
            setting: "ReplaceRules",
            cause: e,
          },
        ),
      );
    }
    return undefined;
  }
}

interface Trusted {
  readonly uids: number[];
  readonly names: string[];
}

/** Root, the current user, and UserID's user: who may own and read key files. */
function trustedUsers<K extends PrivateKeyInfo>(
  config: Config,
  at: Origin,
  io: LoadIo<K>,
  accounts: UserDb | undefined,
  errors: SourceError[],
): Trusted {
  const uids: number[] = [];
  const names: string[] = [];
  const euid = io.euid();
  if (euid !== null) {
    uids.push(euid);
    if (accounts) names.push(accounts.userName(euid));
  }
  if (config.userId && accounts) {
    const user = accounts.user(config.userId.user);
    if (!user) {
      errors.push(
        new ConfigError('Invalid "UserID"', at, `no such user "${config.userId.user}"`, {
          setting: "UserID",
        }),
      );
    } else {
      uids.push(user.uid);
      names.push(user.name);
    }
    if (config.userId.group !== undefined && !accounts.group(config.userId.group)) {
      errors.push(
        new ConfigError('Invalid "UserID"', at, `no such group "${config.userId.group}"`, {
          setting: "UserID",
        }),
      );
    }
  }
  return { uids, names };
}

// ---------------------------------------------------------------------------------------------
// Reading keys: the safety walk (RequireSafeKeys), the size-limited read and the import, once
// per file. Everything about key files the loader does is below.

/** Opens keys once each, checking safety first; what it finds goes to buildPolicy to report. */
class KeyLoader<K extends PrivateKeyInfo> {
  readonly #cache = new Map<string, Promise<LoadedKey<K>>>();

  constructor(
    readonly io: LoadIo<K>,
    readonly config: Config,
    readonly trusted: Trusted,
    readonly accounts: UserDb | undefined,
    readonly resolve: (p: string) => string,
    readonly files: string[],
  ) {}

  /** Opens `sources` in order, and keeps a way to open `%` paths at signing time. */
  async open(sources: readonly KeySource[]): Promise<OpenedKeys<K>> {
    const files = new Map<string, KeyOpening<K>>();
    const inline = new Map<string, KeyOpening<K>>();
    for (const source of sources) {
      if (source.kind === "inline") {
        if (!inline.has(source.data)) {
          inline.set(source.data, await this.#importInline(source.data));
        }
      } else if (!files.has(source.path)) {
        files.set(source.path, await this.#openFile(source.path));
      }
    }
    const loadTemplate: TemplateKeyLoader<K> = (p, entry) => this.#loadTemplate(p, entry);
    return { files, inline, loadTemplate, importRow: (source) => this.#importRow(source) };
  }

  /**
   * The key of a database KeyTable row, at first use: a file gets the RequireSafeKeys walk and
   * the size-limited read each time (the row's caller keeps the key), and every key the size
   * check a file key gets at load.
   */
  async #importRow(source: KeySource): Promise<K> {
    const key = source.kind === "file"
      ? (await this.#loadUncached(this.resolve(source.path))).key
      : await this.io.importKey(source.data);
    if (key.type === "rsa" && key.bits < MIN_RSA_BITS) {
      throw new Error(
        `${key.bits}-bit RSA; RFC 8301 §3.2: signers MUST use at least ${MIN_RSA_BITS} bits`,
      );
    }
    return key;
  }

  async #importInline(data: string): Promise<KeyOpening<K>> {
    try {
      return {
        key: await this.io.importKey(data, undefined, this.config.cryptoBackend),
        problems: [],
      };
    } catch (e) {
      return { failure: errorText(e), unsafe: false, cause: e };
    }
  }

  // A key file: its safety problems are reported for the first path that reads it only.
  async #openFile(written: string): Promise<KeyOpening<K>> {
    const path = this.resolve(written);
    const first = !this.#cache.has(path);
    try {
      const { key, problems } = await this.#load(path);
      return { key, path, problems: first ? problems : [] };
    } catch (e) {
      return e instanceof UnsafeKeyError
        ? { failure: e.message, unsafe: true }
        : { failure: errorText(e, path), unsafe: false, cause: e };
    }
  }

  /** Loads the key of a `%` path for one domain, at signing time. */
  async #loadTemplate(path: string, entry: KeyTableEntry): Promise<K> {
    const { key } = await this.#load(this.resolve(path));
    if (entry.algorithm && !algorithmFitsKey(entry.algorithm, key.type)) {
      throw new Error(`the key is ${key.type}, but the entry asks for ${entry.algorithm}`);
    }
    return key;
  }

  #load(path: string): Promise<LoadedKey<K>> {
    let pending = this.#cache.get(path);
    if (!pending) {
      pending = this.#loadUncached(path);
      this.#cache.set(path, pending);
    }
    return pending;
  }

  async #loadUncached(path: string): Promise<LoadedKey<K>> {
    const problems: string[] = [];
    const bytes = await readPrivateKeyFile(this.io, path, {
      safety: {
        trustedUids: this.trusted.uids,
        trustedNames: this.trusted.names,
        ...(this.accounts ? { users: this.accounts } : {}),
      },
      requireSafe: this.config.requireSafeKeys,
      warn: (p, text) =>
        problems.push(p.fatal ? `the key is not safe (RequireSafeKeys is off): ${text}` : text),
    });
    this.files.push(path);
    return { key: await this.io.importKey(bytes, path, this.config.cryptoBackend), problems };
  }
}

/** A key read from a file, with what the safety walk found. */
interface LoadedKey<K extends PrivateKeyInfo> {
  readonly key: K;
  readonly problems: readonly string[];
}

function errorText(e: unknown, path?: string): string {
  const text = fileErrorMessage(e);
  return path && !text.includes(path) ? `"${path}": ${text}` : text;
}
