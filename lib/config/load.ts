/**
 * Loading a configuration: the one place in lib/config that touches files. It reads the
 * configuration (opendkim.conf or YAML, told apart by name or content), follows `Include`,
 * reads every data set, imports every signing key once (checking RequireSafeKeys first), and
 * builds the policy tables the filter uses. Every mistake found anywhere is collected and
 * thrown together, each naming `file:line`, so `dkimd check-config` reports them all in one run.
 *
 * The I/O is passed in ({@link LoadIo}), so tests can load from memory and the key importer
 * is lib/crypto's `importPrivateKey`; {@link denoLoadIo} is the real one.
 *
 * @module
 */

import { dirname, isAbsolute, join, normalize } from "node:path";
import {
  type DataSet,
  type DataSetEntry,
  type DataSetSource,
  MAX_DATA_SET_FILE_BYTES,
  parseDataSetFile,
  withOrigin,
} from "../policy/dataset.ts";
import {
  DEFAULT_OMIT_HEADERS,
  DEFAULT_SENDER_HEADERS,
  DEFAULT_SIGN_HEADERS,
  enforceRequiredHeaders,
  resolveHeaderList,
} from "../policy/header_list.ts";
import { DEFAULT_INTERNAL_HOSTS, HostList } from "../policy/host_list.ts";
import {
  algorithmFitsKey,
  KeyTable,
  type KeyTableEntry,
  type LoadedKeyEntry,
  parseKeyTable,
  type PrivateKeyInfo,
} from "../policy/key_table.ts";
import { MacroList } from "../policy/macro_list.ts";
import { NameSet } from "../policy/name_set.ts";
import { formatOrigin, type Origin, SourceError, type SourceWarning } from "../policy/origin.ts";
import type { SigningPolicy, SingleKeyPolicy } from "../policy/signers.ts";
import { SigningDomains } from "../policy/signing_domains.ts";
import { SigningTable } from "../policy/signing_table.ts";
import { ConfigError, type ConfigWarning, throwIfErrors } from "./config_error.ts";
import {
  expandIncludes,
  MAX_CONFIG_BYTES,
  parseConfText,
  readConfLines,
  sortByPlace,
} from "./opendkim_conf.ts";
import { checkKeyPath, describeNode, type FsNode } from "./safe_keys.ts";
import type { Config, ConfigOrigins, ReadResult, SettingField } from "./schema.ts";
import { SETTING_LIST } from "./settings.ts";
import { UserDb } from "./user_db.ts";
import { MAX_YAML_BYTES, readYamlConf } from "./yaml_conf.ts";

/** Largest private key file read: a 4096-bit RSA PEM key is about 3.3 KB. */
export const MAX_KEY_FILE_BYTES = 64 * 1024;

/** RSA keys below this many bits cannot sign: "Signers MUST use RSA keys of at least 1024 bits" (RFC 8301 §3.2). */
export const MIN_SIGNING_RSA_BITS = 1024;

/** RSA keys below this many bits draw a warning: "Signers SHOULD use RSA keys of at least 2048 bits" (RFC 8301 §3.2). */
export const RECOMMENDED_SIGNING_RSA_BITS = 2048;

/** What {@link LoadIo.stat} reports: Deno.FileInfo's fields that matter here. */
export interface FileInfo {
  /** True for a regular file. */
  readonly isFile: boolean;
  /** True for a directory. */
  readonly isDirectory: boolean;
  /** st_mode, or null where the platform has none. */
  readonly mode: number | null;
  /** Owner uid, or null where the platform has none. */
  readonly uid: number | null;
  /** Group gid, or null where the platform has none. */
  readonly gid: number | null;
  /** Size in bytes. */
  readonly size: number;
}

/** The capabilities loading needs. */
export interface LoadIo<K extends PrivateKeyInfo> {
  /** Reads a whole file. */
  readFile(path: string): Promise<Uint8Array>;
  /** stat(2), following symbolic links. */
  stat(path: string): Promise<FileInfo>;
  /** realpath(3). */
  realPath(path: string): Promise<string>;
  /** Imports a private key (lib/crypto's `importPrivateKey`); rejects with a `KeyError`. */
  importKey(input: Uint8Array | string, source?: string): Promise<K>;
  /** The effective uid, or null where there is none. */
  euid(): number | null;
  /** The working directory, against which relative paths resolve without BaseDirectory. */
  cwd(): string;
  /** The account database, or undefined when it cannot be read. */
  accounts(): Promise<UserDb | undefined>;
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
  importKey: (input: Uint8Array | string, source?: string) => Promise<K>,
): LoadIo<K> {
  return {
    readFile: (path) => Deno.readFile(path),
    stat: (path) => Deno.stat(path),
    realPath: (path) => Deno.realPath(path),
    importKey,
    euid: () => Deno.uid(),
    cwd: () => Deno.cwd(),
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

/** The header name lists, resolved against OpenDKIM's defaults. */
export interface HeaderLists {
  /** SignHeaders, From always included. */
  readonly sign: readonly string[];
  /** OmitHeaders, From never included. */
  readonly omit: readonly string[];
  /** OversignHeaders. */
  readonly oversign: readonly string[];
  /** SenderHeaders, in order. */
  readonly sender: readonly string[];
}

/** Everything the server and the filter need, built from one configuration. */
export interface LoadedConfig<K extends PrivateKeyInfo> {
  /** The configuration. */
  readonly config: Config;
  /** Where each setting was set. */
  readonly origins: ConfigOrigins;
  /** Every warning, each naming its place. */
  readonly warnings: readonly ConfigWarning[];
  /** The KeyTable with its keys imported. */
  readonly keyTable?: KeyTable<K>;
  /** The SigningTable. */
  readonly signingTable?: SigningTable;
  /** The single key of Domain/Selector/KeyFile, when that is how signing is set up. */
  readonly singleKey?: SingleKeyPolicy<K>;
  /** The inputs of `chooseSigners()`. */
  readonly signing: SigningPolicy<K>;
  /** The host lists. */
  readonly hosts: {
    /** InternalHosts (default 127.0.0.1 and ::1). */
    readonly internal: HostList;
    /** ExternalIgnoreList. */
    readonly externalIgnore?: HostList;
    /** PeerList. */
    readonly peers?: HostList;
    /** RemoveARFrom. */
    readonly removeArFrom?: HostList;
  };
  /** The header name lists. */
  readonly headers: HeaderLists;
  /** MTA: `{daemon_name}` values (case-sensitive). */
  readonly mta?: NameSet;
  /** MacroList. */
  readonly macroList?: MacroList;
  /** DontSignMailTo. */
  readonly dontSignMailTo?: NameSet;
  /** ExemptDomains. */
  readonly exemptDomains?: NameSet;
  /** TestDNSData: record name (lower case) to TXT text. */
  readonly testDnsData?: ReadonlyMap<string, string>;
  /** The data sets as read, by setting field (for `dkimd config convert`). */
  readonly dataSets: { readonly [F in SettingField]?: DataSet };
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

function ioDetail(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file or directory";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  return e instanceof Error ? e.message : String(e);
}

async function readLimited<K extends PrivateKeyInfo>(
  io: LoadIo<K>,
  path: string,
  limit: number,
): Promise<Uint8Array> {
  const info = await io.stat(path);
  if (!info.isFile) throw new Error("not a regular file");
  if (info.size > limit) throw new Error(`larger than ${limit} bytes`);
  const bytes = await io.readFile(path);
  if (bytes.length > limit) throw new Error(`larger than ${limit} bytes`);
  return bytes;
}

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
 * assert.equal(loaded.hosts.internal.match("localhost", "::1").matched, true);
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
    throw new ConfigError("Cannot read configuration", { file: path, line: 0 }, ioDetail(e), {
      cause: e,
    });
  }
  const read = (format ?? detectFormat(path, text)) === "yaml"
    ? readYamlConf(text, path)
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
      throw new ConfigError('Cannot read "Include"', from, `"${file}": ${ioDetail(e)}`, {
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

interface Collector {
  readonly errors: SourceError[];
  readonly warnings: ConfigWarning[];
}

function warnAll(c: Collector, warnings: readonly SourceWarning[], setting: string): void {
  for (const w of warnings) c.warnings.push({ ...w, setting });
}

async function buildLoaded<K extends PrivateKeyInfo>(
  read: ReadResult,
  path: string,
  io: LoadIo<K>,
  files: string[],
): Promise<LoadedConfig<K>> {
  const { config, origins } = read;
  const c: Collector = { errors: [], warnings: [...read.warnings] };
  const base = config.baseDirectory === undefined
    ? io.cwd()
    : isAbsolute(config.baseDirectory)
    ? config.baseDirectory
    : join(io.cwd(), config.baseDirectory);
  const resolve = (p: string) => normalize(isAbsolute(p) ? p : join(base, p));
  const originOf = (f: SettingField): Origin => origins[f] ?? { file: path, line: 0 };

  const dataSets: { [F in SettingField]?: DataSet } = {};
  for (const [field, name] of DATA_SET_SETTINGS) {
    const source = config[field as keyof Config] as DataSetSource | undefined;
    if (!source) continue;
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
      c.errors.push(
        e instanceof SourceError ? e : new ConfigError(
          `Cannot read "${name}" data set "${file}"`,
          at,
          ioDetail(e),
          { setting: name, cause: e },
        ),
      );
    }
  }
  const entriesOf = (f: SettingField): readonly DataSetEntry[] | undefined => dataSets[f]?.entries;
  const attempt = <T>(fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (e) {
      if (e instanceof SourceError) c.errors.push(e);
      else throw e;
      return undefined;
    }
  };

  const hostList = (f: SettingField, name: string): HostList | undefined => {
    const entries = entriesOf(f);
    if (!entries) return undefined;
    return attempt(() => {
      const { list, warnings } = HostList.fromEntries(entries, name);
      warnAll(c, warnings, name);
      return list;
    });
  };
  // The default list gets a place that says where it came from, for explain and LogWhy.
  const internal =
    (origins.internalHosts ? hostList("internalHosts", "InternalHosts") : undefined) ??
      HostList.fromStrings(DEFAULT_INTERNAL_HOSTS, "InternalHosts", {
        file: "(OpenDKIM's default InternalHosts)",
        line: 0,
      }).list;
  const hosts = {
    internal,
    ...opt("externalIgnore", hostList("externalIgnoreList", "ExternalIgnoreList")),
    ...opt("peers", hostList("peerList", "PeerList")),
    ...opt("removeArFrom", hostList("removeArFrom", "RemoveARFrom")),
  };

  const headerList = (
    f: SettingField,
    name: string,
    fallback: readonly string[],
    base?: readonly string[],
  ): string[] => {
    const entries = entriesOf(f);
    if (!entries) return [...fallback];
    return attempt(() => {
      const { names, warnings } = resolveHeaderList(entries, name, base);
      warnAll(c, warnings, name);
      return names;
    }) ?? [...fallback];
  };
  const required = enforceRequiredHeaders(
    headerList("signHeaders", "SignHeaders", DEFAULT_SIGN_HEADERS, DEFAULT_SIGN_HEADERS),
    headerList("omitHeaders", "OmitHeaders", DEFAULT_OMIT_HEADERS, DEFAULT_OMIT_HEADERS),
  );
  if (required.removedFromOmit.length > 0) {
    const at = originOf("omitHeaders");
    c.warnings.push({
      message: `"OmitHeaders" at ${formatOrigin(at)} lists "${
        required.removedFromOmit.join('", "')
      }", which every signature must cover (RFC 6376 §5.4); the entry is ignored`,
      origin: at,
      setting: "OmitHeaders",
    });
  }
  const oversign = headerList("oversignHeaders", "OversignHeaders", []);
  for (const name of oversign) {
    if (!required.sign.includes(name)) {
      const at = originOf("oversignHeaders");
      c.warnings.push({
        message: `"OversignHeaders" at ${formatOrigin(at)} lists "${name}", which ` +
          `"SignHeaders" does not; opendkim.conf(5): "likely to generate invalid signatures"`,
        origin: at,
        setting: "OversignHeaders",
      });
    }
  }
  const headers: HeaderLists = {
    sign: required.sign,
    omit: required.omit,
    oversign,
    sender: headerList("senderHeaders", "SenderHeaders", DEFAULT_SENDER_HEADERS),
  };

  const nameSet = (f: SettingField, ignoreCase: boolean) => {
    const entries = entriesOf(f);
    return entries ? new NameSet(entries, ignoreCase) : undefined;
  };
  const macroEntries = entriesOf("macroList");
  const macroList = macroEntries
    ? attempt(() => MacroList.fromEntries(macroEntries, "MacroList"))
    : undefined;
  const testEntries = entriesOf("testDnsData");
  const testDnsData = testEntries
    ? new Map(testEntries.map((e) => [e.key.toLowerCase(), e.value ?? ""]))
    : undefined;

  const accounts = await io.accounts();
  const trusted = trustedUsers(config, originOf("userId"), io, accounts, c);
  const keys = new KeyLoader(io, config, trusted, accounts, resolve, files, c);

  let keyTable: KeyTable<K> | undefined;
  const keyEntries = entriesOf("keyTable");
  if (keyEntries) {
    const parsed = attempt(() => parseKeyTable(keyEntries));
    if (parsed) {
      warnAll(c, parsed.warnings, "KeyTable");
      // Verify-only mode never signs: the table is checked but its keys are not read, as
      // OpenDKIM reads KeyTable keys only when it signs.
      const loaded: LoadedKeyEntry<K>[] = [];
      for (const entry of parsed.entries) {
        loaded.push(config.mode.sign ? await keys.loadEntry(entry) : entry);
      }
      keyTable = new KeyTable(loaded, (p, entry) => keys.loadTemplate(p, entry));
    }
  }

  let signingTable: SigningTable | undefined;
  const signingSet = dataSets.signingTable;
  if (signingSet) {
    const built = attempt(() => SigningTable.fromDataSet(signingSet));
    if (built) {
      warnAll(c, built.warnings, "SigningTable");
      signingTable = built.table;
      if (keyTable) {
        const names = keyTable.entries.map((e) => e.name);
        for (const rule of built.table.rules) {
          if (rule.keyName === "%" || keyTable.get(rule.keyName)) continue;
          const guess = names.find((n) => n.toLowerCase() === rule.keyName.toLowerCase());
          c.errors.push(
            new ConfigError(
              `Invalid SigningTable entry "${rule.pattern}"`,
              rule.origin,
              `key "${rule.keyName}" is not in the KeyTable` +
                (guess ? ` (KeyTable names are case-sensitive: "${guess}")` : ""),
              { setting: "SigningTable" },
            ),
          );
        }
      }
    }
  }

  let singleKey: SingleKeyPolicy<K> | undefined;
  if (config.keyFile !== undefined && config.keyTable === undefined) {
    const at = originOf("keyFile");
    const file = resolve(config.keyFile);
    const key = await keys.loadFile(file, at, `KeyFile "${config.keyFile}"`);
    if (key) {
      keys.checkAlgorithm(undefined, key, at, `KeyFile "${config.keyFile}"`);
      const domainEntries = entriesOf("domain");
      if (domainEntries && config.selector !== undefined) {
        singleKey = {
          domains: new SigningDomains(domainEntries),
          selector: config.selector,
          key,
          keyFile: file,
          origin: at,
        };
      }
    }
  }

  throwIfErrors(sortByPlace(c.errors));
  const signing: SigningPolicy<K> = {
    ...opt("signingTable", config.mode.sign ? signingTable : undefined),
    ...opt("keyTable", config.mode.sign ? keyTable : undefined),
    ...opt("singleKey", config.mode.sign ? singleKey : undefined),
    multipleSignatures: config.multipleSignatures,
    subDomains: config.subDomains,
    signatureAlgorithm: config.signatureAlgorithm,
  };
  return {
    config,
    origins,
    warnings: c.warnings,
    ...opt("keyTable", keyTable),
    ...opt("signingTable", signingTable),
    ...opt("singleKey", singleKey),
    signing,
    hosts,
    headers,
    ...opt("mta", nameSet("mta", false)),
    ...opt("macroList", macroList),
    ...opt("dontSignMailTo", nameSet("dontSignMailTo", true)),
    ...opt("exemptDomains", nameSet("exemptDomains", true)),
    ...opt("testDnsData", testDnsData),
    dataSets,
    files: [...new Set(files)],
  };
}

function opt<N extends string, V>(name: N, value: V | undefined): { [P in N]?: V } {
  return (value === undefined ? {} : { [name]: value }) as { [P in N]?: V };
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
  c: Collector,
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
      c.errors.push(
        new ConfigError('Invalid "UserID"', at, `no such user "${config.userId.user}"`, {
          setting: "UserID",
        }),
      );
    } else {
      uids.push(user.uid);
      names.push(user.name);
    }
    if (config.userId.group !== undefined && !accounts.group(config.userId.group)) {
      c.errors.push(
        new ConfigError('Invalid "UserID"', at, `no such group "${config.userId.group}"`, {
          setting: "UserID",
        }),
      );
    }
  }
  return { uids, names };
}

/** Imports keys once each, checking safety first, and records problems with their origin. */
class KeyLoader<K extends PrivateKeyInfo> {
  readonly #cache = new Map<string, Promise<K>>();

  constructor(
    readonly io: LoadIo<K>,
    readonly config: Config,
    readonly trusted: Trusted,
    readonly accounts: UserDb | undefined,
    readonly resolve: (p: string) => string,
    readonly files: string[],
    readonly c: Collector,
  ) {}

  /** Loads the key of a KeyTable entry, unless its path depends on the sender's domain. */
  async loadEntry(entry: KeyTableEntry): Promise<LoadedKeyEntry<K>> {
    const what = `KeyTable entry "${entry.name}"`;
    let key: K | undefined;
    if (entry.source.kind === "inline") {
      try {
        key = await this.io.importKey(entry.source.data);
      } catch (e) {
        this.c.errors.push(
          new ConfigError(`Cannot load the key of ${what}`, entry.origin, errorText(e), {
            setting: "KeyTable",
            cause: e,
          }),
        );
      }
    } else if (entry.domain === "%" && entry.source.path.includes("%")) {
      return entry;
    } else {
      const path = this.resolve(entry.source.path.replaceAll("%", entry.domain));
      key = await this.loadFile(path, entry.origin, what);
    }
    if (!key) return entry;
    this.checkAlgorithm(entry.algorithm, key, entry.origin, what);
    return { ...entry, key };
  }

  /** Loads a key file: safety check, read, import. Returns undefined after recording an error. */
  async loadFile(path: string, at: Origin, what: string): Promise<K | undefined> {
    try {
      return await this.#load(path, (problem) => {
        this.c.warnings.push({ message: `${what} at ${formatOrigin(at)}: ${problem}`, origin: at });
      });
    } catch (e) {
      this.c.errors.push(
        e instanceof UnsafeKeyError
          ? new ConfigError(`Unsafe key for ${what}`, at, e.message, {
            setting: "RequireSafeKeys",
          })
          : new ConfigError(`Cannot load the key of ${what}`, at, errorText(e, path), {
            cause: e,
          }),
      );
      return undefined;
    }
  }

  /** Loads the key of a `%` path for one domain, at signing time. */
  async loadTemplate(path: string, entry: KeyTableEntry): Promise<K> {
    const key = await this.#load(this.resolve(path), () => {});
    if (entry.algorithm && !algorithmFitsKey(entry.algorithm, key.type)) {
      throw new Error(`the key is ${key.type}, but the entry asks for ${entry.algorithm}`);
    }
    return key;
  }

  /** Errors for an algorithm that cannot use the key, warnings for weak or mismatched choices. */
  checkAlgorithm(own: KeyTableEntry["algorithm"], key: K, at: Origin, what: string): void {
    if (own && !algorithmFitsKey(own, key.type)) {
      this.c.errors.push(
        new ConfigError(
          `Invalid algorithm for ${what}`,
          at,
          `"${own}" cannot sign with an ${key.type === "rsa" ? "RSA" : "Ed25519"} key`,
        ),
      );
    }
    if (!own && key.type === "rsa" && this.config.signatureAlgorithm === "ed25519-sha256") {
      this.c.warnings.push({
        message: `${what} at ${formatOrigin(at)} holds an RSA key; it signs rsa-sha256, since ` +
          `SignatureAlgorithm ed25519-sha256 applies only to Ed25519 keys`,
        origin: at,
      });
    }
    if (key.type === "rsa" && key.bits < MIN_SIGNING_RSA_BITS) {
      this.c.errors.push(
        new ConfigError(
          `Key too small for ${what}`,
          at,
          `${key.bits}-bit RSA; RFC 8301 §3.2: signers MUST use at least ${MIN_SIGNING_RSA_BITS} bits`,
        ),
      );
    } else if (key.type === "rsa" && key.bits < RECOMMENDED_SIGNING_RSA_BITS) {
      this.c.warnings.push({
        message: `${what} at ${formatOrigin(at)} is a ${key.bits}-bit RSA key; RFC 8301 §3.2 ` +
          `says signers SHOULD use at least ${RECOMMENDED_SIGNING_RSA_BITS} bits`,
        origin: at,
      });
    }
  }

  #load(path: string, warn: (problem: string) => void): Promise<K> {
    let pending = this.#cache.get(path);
    if (!pending) {
      pending = this.#loadUncached(path, warn);
      this.#cache.set(path, pending);
    }
    return pending;
  }

  async #loadUncached(path: string, warn: (problem: string) => void): Promise<K> {
    const real = await this.io.realPath(path);
    const nodes = await this.#nodes(real);
    const problems = checkKeyPath(nodes, {
      trustedUids: this.trusted.uids,
      trustedNames: this.trusted.names,
      ...(this.accounts ? { users: this.accounts } : {}),
    });
    const describe = (p: (typeof problems)[number]) =>
      `${p.node.isDirectory ? "directory" : "file"} "${p.node.path}" ${p.problem} ` +
      `(${describeNode(p.node, this.accounts)}); fix: ${p.fix}`;
    const fatal = problems.filter((p) => p.fatal);
    if (fatal.length > 0 && this.config.requireSafeKeys) {
      throw new UnsafeKeyError(fatal.map(describe).join("; and "));
    }
    for (const p of problems) {
      warn(p.fatal ? `the key is not safe (RequireSafeKeys is off): ${describe(p)}` : describe(p));
    }
    const bytes = await readLimited(this.io, real, MAX_KEY_FILE_BYTES);
    this.files.push(path);
    return await this.io.importKey(bytes, path);
  }

  async #nodes(real: string): Promise<FsNode[]> {
    const parts = real.split("/").filter((p) => p !== "");
    const paths = ["/", ...parts.map((_, i) => "/" + parts.slice(0, i + 1).join("/"))];
    const out: FsNode[] = [];
    for (const p of paths) {
      const info = await this.io.stat(p);
      out.push({
        path: p,
        isFile: info.isFile,
        isDirectory: info.isDirectory,
        mode: info.mode ?? 0o700,
        uid: info.uid ?? 0,
        gid: info.gid ?? 0,
      });
    }
    return out;
  }
}

class UnsafeKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnsafeKeyError";
  }
}

function errorText(e: unknown, path?: string): string {
  if (e instanceof Deno.errors.NotFound) return `"${path}": no such file or directory`;
  if (e instanceof Deno.errors.PermissionDenied) return `"${path}": permission denied`;
  const text = e instanceof Error ? e.message : String(e);
  return path && !text.includes(path) ? `"${path}": ${text}` : text;
}
