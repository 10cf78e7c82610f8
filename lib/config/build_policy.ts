/**
 * Assembling the policy the filter runs with from a configuration, its data sets and its keys:
 * the pure half of loading. The loader (load.ts) reads files and imports keys; this builds the
 * host lists, header lists, name sets, KeyTable, SigningTable and single key from what it read,
 * checks that they fit together (a SigningTable entry naming a key the KeyTable lacks, a key too
 * small to sign, an algorithm that cannot use its key) and says what is wrong, each problem
 * naming its `file:line`. No file, network or clock is touched, so a whole policy can be built
 * from text in memory, with any object standing for a key:
 *
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildPolicy } from "./build_policy.ts";
 * import { readOpendkimConf } from "./opendkim_conf.ts";
 * import { parseDataSetFile } from "../policy/dataset.ts";
 * import { chooseSigners } from "../policy/signers.ts";
 * const read = readOpendkimConf("Mode s\nKeyTable /etc/dkimd/keys\nSigningTable /etc/dkimd/signers\n", "dkimd.conf");
 * const file = (path: string, text: string) =>
 *   ({ source: { kind: "file" as const, path }, patterns: false, entries: parseDataSetFile(text, path) });
 * const key = { type: "ed25519" as const, bits: 256 };
 * const { policy, errors } = buildPolicy(read, {
 *   keyTable: file("/etc/dkimd/keys", "ed example.com:ed:/keys/ed.pem\n"),
 *   signingTable: file("/etc/dkimd/signers", "example.com ed\n"),
 * }, { files: new Map([["/keys/ed.pem", { key, problems: [] }]]), inline: new Map() });
 * assert.deepEqual(errors, []);
 * const { signers } = await chooseSigners(policy, "joe", "example.com");
 * assert.equal(signers[0].selector, "ed");
 * ```
 *
 * @module
 */

import { AuthorizedSigners } from "../policy/authorized_signers.ts";
import type { ReplaceRule } from "../policy/replace_rules.ts";
import type { DataSet, DataSetEntry } from "../policy/dataset.ts";
import { DEFAULT_OVERSIGNED_HEADERS, DEFAULT_SIGNED_HEADERS } from "../dkim/signed_headers.ts";
import {
  DEFAULT_OMIT_HEADERS,
  DEFAULT_SENDER_HEADERS,
  enforceRequiredHeaders,
  type HeaderLists,
  resolveHeaderList,
} from "../policy/header_list.ts";
import { DEFAULT_INTERNAL_HOSTS, HostList } from "../policy/host_list.ts";
import type { DataSetLookup } from "../policy/data_set_lookup.ts";
import { KeyedHostList } from "../policy/keyed_host_list.ts";
import { KeyedKeyTable, type RowKeyImporter } from "../policy/keyed_key_table.ts";
import {
  algorithmFitsKey,
  type KeySource,
  KeyTable,
  type KeyTableEntry,
  type LoadedKeyEntry,
  parseKeyTable,
  type PrivateKeyInfo,
  type TemplateKeyLoader,
} from "../policy/key_table.ts";
import { MacroList } from "../policy/macro_list.ts";
import { NameSet } from "../policy/name_set.ts";
import { formatOrigin, type Origin, SourceError, type SourceWarning } from "../policy/origin.ts";
import type { SingleKeyPolicy } from "../policy/signers.ts";
import { SigningDomains } from "../policy/signing_domains.ts";
import { SigningTable } from "../policy/signing_table.ts";
import { MIN_RSA_BITS, RECOMMENDED_RSA_BITS } from "../crypto/key_type.ts";
import { ConfigError, type ConfigWarning } from "./config_error.ts";
import type { Config, ReadResult, SettingField } from "./schema.ts";
import type { PolicyScripts, ScriptDataSet } from "../lua/odkim_api.ts";

/** The data sets a configuration names in files or inline, by setting field, read whole. */
export type OpenedDataSets = { readonly [F in SettingField]?: DataSet };

/**
 * A data set kept in a database, as the policy asks it (lib/tables' `CachedTable`): by key,
 * and with a place to report a bad row once (the outage log's logger).
 */
export interface DatabaseLookup extends DataSetLookup {
  /** Logs `message` about this data set. */
  report(level: "warning" | "info", message: string): void;
}

/** The data sets a configuration keeps in databases (`dsn:`, `ldap:`), by setting field. */
export type OpenedDatabases = { readonly [F in SettingField]?: DatabaseLookup };

/** The outcome of opening one key: the key, or why there is none. */
export type KeyOpening<K extends PrivateKeyInfo> =
  | {
    /** The imported key. */
    readonly key: K;
    /** The file it was read from, resolved (for the KeyFile's description). */
    readonly path?: string;
    /** What the RequireSafeKeys checks found, each a sentence for a warning. */
    readonly problems: readonly string[];
  }
  | {
    /** Why the key could not be opened, naming the file when there is one. */
    readonly failure: string;
    /** True when the key was refused as unsafe (RequireSafeKeys). */
    readonly unsafe: boolean;
    /** The error behind `failure`. */
    readonly cause?: unknown;
  };

/**
 * The keys a configuration names, opened by the loader (or given by a test): the ones
 * {@link keysToOpen} lists, and a way to open the key of a `%` path at signing time.
 */
export interface OpenedKeys<K extends PrivateKeyInfo> {
  /** The key in each file, by the path as written (`%` replaced by the entry's domain). */
  readonly files: ReadonlyMap<string, KeyOpening<K>>;
  /** Each key written into the KeyTable, by its text. */
  readonly inline: ReadonlyMap<string, KeyOpening<K>>;
  /** Opens the key of a `%` path once the domain is known; without it such entries cannot sign. */
  readonly loadTemplate?: TemplateKeyLoader<K>;
  /** Imports the key of a database KeyTable row at first use; without it such a table cannot sign. */
  readonly importRow?: RowKeyImporter<K>;
}

/** No keys: for a configuration that signs nothing. */
export const NO_KEYS: OpenedKeys<never> = { files: new Map(), inline: new Map() };

/** What the filter uses, built from one configuration. */
export interface Policy<K extends PrivateKeyInfo> {
  /** The configuration. */
  readonly config: Config;
  /**
   * The KeyTable, its keys imported when the configuration signs; for a table in a database,
   * {@link KeyTable.keyed}: rows asked by key name, keys imported at first use.
   */
  readonly keyTable?: KeyTable<K>;
  /** The SigningTable. */
  readonly signingTable?: SigningTable;
  /** The single key of Domain/Selector/KeyFile, when that is how signing is set up. */
  readonly singleKey?: SingleKeyPolicy<K>;
  /** ARCMode's sealing key and header list, when ARCMode includes `s`. */
  readonly arcSealer?: ArcSealerPolicy<K>;
  /** The host lists. */
  readonly hosts: {
    /** InternalHosts (default 127.0.0.1 and ::1); in a database, {@link HostList.keyed}. */
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
  /** MTA: `{daemon_name}` values (case-sensitive); a {@link NameSet} or a database's set. */
  readonly mta?: DataSetLookup;
  /** MacroList. */
  readonly macroList?: MacroList;
  /** DontSignMailTo. */
  readonly dontSignMailTo?: DataSetLookup;
  /** ExemptDomains. */
  readonly exemptDomains?: DataSetLookup;
  /** TrustSignaturesFrom. */
  readonly trustSignaturesFrom?: DataSetLookup;
  /** BodyLengthDB. */
  readonly bodyLengthDb?: DataSetLookup;
  /** ResignMailTo: values are KeyTable names. */
  readonly resignMailTo?: DataSetLookup;
  /** ReplaceHeaders: lower-case names; absent, ReplaceRules applies to every field. */
  readonly replaceHeaders?: ReadonlySet<string>;
  /** ReplaceRules, read and compiled at load, in the order they apply. */
  readonly replaceRules?: readonly ReplaceRule[];
  /** AuthorizedSigners: what each SASL login may put in From. */
  readonly authorizedSigners?: AuthorizedSigners;
  /** The Lua policy scripts, compiled (SetupPolicyScript and the others), when any is set. */
  readonly luaScripts?: PolicyScripts;
  /** Opens a data set a script names (`odkim.db_open()`), when a script is set. */
  readonly openScriptDataSet?: (name: string, ignoreCase: boolean) => Promise<ScriptDataSet>;
  /** TestDNSData: record name (lower case) to TXT text. */
  readonly testDnsData?: ReadonlyMap<string, string>;
}

/** The ARC sealer of ARCDomain, ARCSelector, ARCKeyFile and ARCSignHeaders. */
export interface ArcSealerPolicy<K extends PrivateKeyInfo> {
  /** ARCDomain, lower case. */
  readonly domain: string;
  /** ARCSelector. */
  readonly selector: string;
  /** The key of ARCKeyFile. */
  readonly key: K;
  /** The key's file, resolved. */
  readonly keyFile: string;
  /** The fields the ARC-Message-Signature signs when present (lower case). */
  readonly signHeaders: readonly string[];
}

/** What {@link buildPolicy} found: the policy, and whether it can be used. */
export interface PolicyBuild<K extends PrivateKeyInfo> {
  /** The policy; usable only when `errors` is empty. */
  readonly policy: Policy<K>;
  /** The reader's warnings, then the assembly's, in order. */
  readonly warnings: readonly ConfigWarning[];
  /** Every mistake found, each naming its place (not sorted). */
  readonly errors: readonly SourceError[];
}

/**
 * The keys {@link buildPolicy} will look for in its {@link OpenedKeys}, in table order: in a
 * configuration that signs, the key of each KeyTable entry but those whose path waits for the
 * sender's domain (OpenDKIM reads KeyTable keys only when it signs); and the KeyFile, when
 * there is no KeyTable. A KeyTable that does not parse names none (the build reports it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keysToOpen } from "./build_policy.ts";
 * import { readOpendkimConf } from "./opendkim_conf.ts";
 * import { parseDataSetFile } from "../policy/dataset.ts";
 * const read = readOpendkimConf("Mode s\nKeyTable /kt\nSigningTable csl:*=%\n", "dkimd.conf");
 * const text = "a example.com:s:/keys/%.pem\nb %:s:/keys/%.pem\nc example.org:s:MC4CAQAwBQYDK2VwBCIEIA==\n";
 * const keyTable = { source: { kind: "file" as const, path: "/kt" }, patterns: false, entries: parseDataSetFile(text, "/kt") };
 * assert.deepEqual(keysToOpen(read, { keyTable }), [
 *   { kind: "file", path: "/keys/example.com.pem" },
 *   { kind: "inline", data: "MC4CAQAwBQYDK2VwBCIEIA==" },
 * ]);
 * ```
 */
export function keysToOpen(read: ReadResult, dataSets: OpenedDataSets): KeySource[] {
  const { config } = read;
  // The ARC sealing key is read like the KeyFile (RequireSafeKeys), when ARCMode seals.
  const arc: KeySource[] = config.arcMode.seal && config.arcKeyFile !== undefined
    ? [{ kind: "file", path: config.arcKeyFile }]
    : [];
  return [...dkimKeysToOpen(read, dataSets), ...arc];
}

function dkimKeysToOpen(read: ReadResult, dataSets: OpenedDataSets): KeySource[] {
  const { config } = read;
  if (config.keyFile !== undefined && config.keyTable === undefined) {
    return [{ kind: "file", path: config.keyFile }];
  }
  const entries = dataSets.keyTable?.entries;
  if (!config.mode.sign || !entries) return [];
  let parsed: KeyTableEntry[];
  try {
    parsed = parseKeyTableOnce(entries).entries;
  } catch {
    return [];
  }
  return parsed.map(keySourceOf).filter((s) => s !== undefined);
}

// The loader asks keysToOpen() and then buildPolicy() about the same KeyTable: it is parsed once
// (a table of 10^5 lines takes about 0.1 s).
const parsedKeyTables = new WeakMap<readonly DataSetEntry[], ReturnType<typeof parseKeyTable>>();

function parseKeyTableOnce(entries: readonly DataSetEntry[]): ReturnType<typeof parseKeyTable> {
  let parsed = parsedKeyTables.get(entries);
  if (!parsed) {
    parsed = parseKeyTable(entries);
    parsedKeyTables.set(entries, parsed);
  }
  return parsed;
}

// Where an entry's key is read from at load, or undefined when its path waits for the domain.
function keySourceOf(entry: KeyTableEntry): KeySource | undefined {
  if (entry.source.kind === "inline") return entry.source;
  if (entry.domain === "%" && entry.source.path.includes("%")) return undefined;
  return { kind: "file", path: entry.source.path.replaceAll("%", entry.domain) };
}

interface Collector {
  readonly errors: SourceError[];
  readonly warnings: ConfigWarning[];
}

// What every step reads: the configuration, the data sets and the collector of problems.
interface Assembly {
  readonly config: Config;
  readonly originOf: (field: SettingField) => Origin;
  readonly entriesOf: (field: SettingField) => readonly DataSetEntry[] | undefined;
  readonly dataSets: OpenedDataSets;
  readonly databases: OpenedDatabases;
  readonly c: Collector;
}

/**
 * Builds the policy from a configuration as read, its data sets opened and its keys opened.
 * Never throws for a mistake in them: every one is in `errors`, so a caller can report them all
 * with its own (load.ts adds the files it could not read) and refuse the configuration.
 */
export function buildPolicy<K extends PrivateKeyInfo>(
  read: ReadResult,
  dataSets: OpenedDataSets,
  keys: OpenedKeys<K>,
  databases: OpenedDatabases = {},
): PolicyBuild<K> {
  const { config, origins } = read;
  const a: Assembly = {
    config,
    originOf: (f) => origins[f] ?? { file: "(configuration)", line: 0 },
    entriesOf: (f) => dataSets[f]?.entries,
    dataSets,
    databases,
    c: { errors: [], warnings: [...read.warnings] },
  };
  // The order of the steps is the order of the warnings each adds.
  const hosts = hostLists(a, origins.internalHosts !== undefined);
  const headers = headerLists(a);
  const nameSet = (f: SettingField, ignoreCase: boolean): DataSetLookup | undefined => {
    const database = databases[f];
    if (database) return database;
    const entries = a.entriesOf(f);
    return entries ? new NameSet(entries, ignoreCase) : undefined;
  };
  const macroEntries = a.entriesOf("macroList");
  const macroList = macroEntries
    ? attempt(a.c, () => MacroList.fromEntries(macroEntries, "MacroList"))
    : undefined;
  const testEntries = a.entriesOf("testDnsData");
  const testDnsData = testEntries
    ? new Map(testEntries.map((e) => [e.key.toLowerCase(), e.value ?? ""]))
    : undefined;
  const checker = new KeyChecker(a, keys);
  const keyTable = databases.keyTable
    ? keyedKeyTableOf(a, databases.keyTable, keys.importRow)
    : keyTableOf(a, checker, keys.loadTemplate);
  const signingTable = signingTableOf(a, keyTable);
  const singleKey = singleKeyOf(a, checker);
  const arcSealer = arcSealerOf(a, checker);
  const authorizedSigners = authorizedSignersOf(a);
  const policy: Policy<K> = {
    config,
    ...opt("keyTable", keyTable),
    ...opt("signingTable", signingTable),
    ...opt("singleKey", singleKey),
    ...opt("arcSealer", arcSealer),
    hosts,
    headers,
    ...opt("mta", nameSet("mta", false)),
    ...opt("macroList", macroList),
    ...opt("dontSignMailTo", nameSet("dontSignMailTo", true)),
    ...opt("exemptDomains", nameSet("exemptDomains", true)),
    ...opt("trustSignaturesFrom", nameSet("trustSignaturesFrom", true)),
    ...opt("bodyLengthDb", nameSet("bodyLengthDb", true)),
    ...opt("resignMailTo", nameSet("resignMailTo", true)),
    ...opt(
      "replaceHeaders",
      a.entriesOf("replaceHeaders") &&
        new Set(a.entriesOf("replaceHeaders")!.map((e) => e.key.toLowerCase())),
    ),
    ...opt("authorizedSigners", authorizedSigners),
    ...opt("testDnsData", testDnsData),
  };
  return { policy, warnings: a.c.warnings, errors: a.c.errors };
}

function opt<N extends string, V>(name: N, value: V | undefined): { [P in N]?: V } {
  return (value === undefined ? {} : { [name]: value }) as { [P in N]?: V };
}

// Runs a step that may throw a SourceError, recording it.
function attempt<T>(c: Collector, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (e instanceof SourceError) c.errors.push(e);
    else throw e;
    return undefined;
  }
}

function warnAll(c: Collector, warnings: readonly SourceWarning[], setting: string): void {
  for (const w of warnings) c.warnings.push({ ...w, setting });
}

function hostLists(a: Assembly, internalSet: boolean): Policy<PrivateKeyInfo>["hosts"] {
  const hostList = (f: SettingField, name: string): HostList | undefined => {
    const entries = a.entriesOf(f);
    if (!entries) return undefined;
    return attempt(a.c, () => {
      const { list, warnings } = HostList.fromEntries(entries, name);
      warnAll(a.c, warnings, name);
      return list;
    });
  };
  // The default list gets a place that says where it came from, for explain and LogWhy.
  // A list in a database is asked OpenDKIM's way, by the client's candidate keys.
  const lookup = (f: SettingField, name: string): HostList | undefined => {
    const database = a.databases[f];
    return database ? HostList.keyed(new KeyedHostList(database)) : hostList(f, name);
  };
  const internal = (internalSet ? lookup("internalHosts", "InternalHosts") : undefined) ??
    HostList.fromStrings(DEFAULT_INTERNAL_HOSTS, "InternalHosts", {
      file: "(OpenDKIM's default InternalHosts)",
      line: 0,
    }).list;
  return {
    internal,
    ...opt("externalIgnore", lookup("externalIgnoreList", "ExternalIgnoreList")),
    ...opt("peers", lookup("peerList", "PeerList")),
    ...opt("removeArFrom", hostList("removeArFrom", "RemoveARFrom")),
  };
}

// The SignHeaders and OversignHeaders defaults are dkim's, the lists `dkimd sign` uses, so the
// milter and the command sign the same fields; the lists here are lower-case.
const DEFAULT_SIGN = DEFAULT_SIGNED_HEADERS.map((n) => n.toLowerCase());
const DEFAULT_OVERSIGN = DEFAULT_OVERSIGNED_HEADERS.map((n) => n.toLowerCase());

function headerLists(a: Assembly): HeaderLists {
  const headerList = (
    f: SettingField,
    name: string,
    fallback: readonly string[],
    base?: readonly string[],
  ): string[] => {
    const entries = a.entriesOf(f);
    if (!entries) return [...fallback];
    return attempt(a.c, () => {
      const { names, warnings } = resolveHeaderList(entries, name, base);
      warnAll(a.c, warnings, name);
      return names;
    }) ?? [...fallback];
  };
  const required = enforceRequiredHeaders(
    headerList("signHeaders", "SignHeaders", DEFAULT_SIGN, DEFAULT_SIGN),
    headerList("omitHeaders", "OmitHeaders", DEFAULT_OMIT_HEADERS, DEFAULT_OMIT_HEADERS),
  );
  if (required.removedFromOmit.length > 0) {
    const at = a.originOf("omitHeaders");
    a.c.warnings.push({
      message: `"OmitHeaders" at ${formatOrigin(at)} lists "${
        required.removedFromOmit.join('", "')
      }", which every signature must cover (RFC 6376 §5.4); the entry is ignored`,
      origin: at,
      setting: "OmitHeaders",
    });
  }
  const oversign = headerList(
    "oversignHeaders",
    "OversignHeaders",
    DEFAULT_OVERSIGN,
    DEFAULT_OVERSIGN,
  );
  // A list replaces the default, so "OversignHeaders Subject" stops oversigning From: say so,
  // since a second From is what replays and forgeries use (RFC 6376 §8.15); "*,-From" says
  // it on purpose.
  const oversignEntries = a.entriesOf("oversignHeaders");
  if (
    oversignEntries && !oversign.includes("from") &&
    !oversignEntries.some((e) => e.key.toLowerCase() === "-from")
  ) {
    const at = a.originOf("oversignHeaders");
    a.c.warnings.push({
      message: `"OversignHeaders" at ${formatOrigin(at)} does not list "From", so a From ` +
        `added after signing is not caught (RFC 6376 §8.15); "*,+NAME" adds to the default ` +
        `(From) instead of replacing it`,
      origin: at,
      setting: "OversignHeaders",
    });
  }
  for (const name of oversign) {
    if (!required.sign.includes(name)) {
      const at = a.originOf("oversignHeaders");
      a.c.warnings.push({
        message: `"OversignHeaders" at ${formatOrigin(at)} lists "${name}", which ` +
          `"SignHeaders" does not; opendkim.conf(5): "likely to generate invalid signatures"`,
        origin: at,
        setting: "OversignHeaders",
      });
    }
  }
  return {
    sign: required.sign,
    omit: required.omit,
    oversign,
    sender: headerList("senderHeaders", "SenderHeaders", DEFAULT_SENDER_HEADERS),
    mustBeSigned: headerList("mustBeSigned", "MustBeSigned", []),
  };
}

function keyTableOf<K extends PrivateKeyInfo>(
  a: Assembly,
  checker: KeyChecker<K>,
  loadTemplate: TemplateKeyLoader<K> | undefined,
): KeyTable<K> | undefined {
  const entries = a.entriesOf("keyTable");
  if (!entries) return undefined;
  const parsed = attempt(a.c, () => parseKeyTableOnce(entries));
  if (!parsed) return undefined;
  warnAll(a.c, parsed.warnings, "KeyTable");
  // Verify-only mode never signs: the table is checked but its keys are not read, as OpenDKIM
  // reads KeyTable keys only when it signs.
  const loaded: LoadedKeyEntry<K>[] = parsed.entries.map((entry) => {
    const source = a.config.mode.sign ? keySourceOf(entry) : undefined;
    if (!source) return entry;
    const key = checker.key(
      source,
      entry.origin,
      `KeyTable entry "${entry.name}"`,
      entry.algorithm,
    );
    return key ? { ...entry, key } : entry;
  });
  return new KeyTable(loaded, loadTemplate);
}

// A KeyTable in a database: rows read by key name at signing time, keys imported at first use.
function keyedKeyTableOf<K extends PrivateKeyInfo>(
  a: Assembly,
  database: DatabaseLookup,
  importRow: RowKeyImporter<K> | undefined,
): KeyTable<K> | undefined {
  if (!a.config.mode.sign) return undefined;
  if (!importRow) {
    a.c.errors.push(
      new ConfigError(
        "Cannot use the KeyTable",
        a.originOf("keyTable"),
        "no key importer was given for a KeyTable kept in a database",
        { setting: "KeyTable" },
      ),
    );
    return undefined;
  }
  return KeyTable.keyed(
    new KeyedKeyTable(database, importRow, (m) => database.report("warning", m)),
  );
}

function signingTableOf(
  a: Assembly,
  keyTable: KeyTable<PrivateKeyInfo> | undefined,
): SigningTable | undefined {
  const database = a.databases.signingTable;
  if (database) return SigningTable.keyed(database);
  const signingSet = a.dataSets.signingTable;
  if (!signingSet) return undefined;
  const built = attempt(a.c, () => SigningTable.fromDataSet(signingSet));
  if (!built) return undefined;
  warnAll(a.c, built.warnings, "SigningTable");
  if (keyTable) {
    const names = keyTable.entries.map((e) => e.name);
    for (const rule of built.table.rules) {
      if (rule.keyName === "%" || keyTable.get(rule.keyName)) continue;
      const guess = names.find((n) => n.toLowerCase() === rule.keyName.toLowerCase());
      a.c.errors.push(
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
  return built.table;
}

function authorizedSignersOf(a: Assembly): AuthorizedSigners | undefined {
  const database = a.databases.authorizedSigners;
  if (database) return AuthorizedSigners.keyed(database);
  const set = a.dataSets.authorizedSigners;
  if (!set) return undefined;
  const built = attempt(a.c, () => AuthorizedSigners.fromDataSet(set));
  if (!built) return undefined;
  warnAll(a.c, built.warnings, "AuthorizedSigners");
  return built.signers;
}

function singleKeyOf<K extends PrivateKeyInfo>(
  a: Assembly,
  checker: KeyChecker<K>,
): SingleKeyPolicy<K> | undefined {
  const { config } = a;
  if (config.keyFile === undefined || config.keyTable !== undefined) return undefined;
  const at = a.originOf("keyFile");
  const source: KeySource = { kind: "file", path: config.keyFile };
  const key = checker.key(source, at, `KeyFile "${config.keyFile}"`, undefined);
  const domainEntries = a.entriesOf("domain");
  const domainSet = a.databases.domain ??
    (domainEntries ? new NameSet(domainEntries, true) : undefined);
  if (!key || !domainSet || config.selector === undefined) return undefined;
  return {
    domains: new SigningDomains(domainSet),
    selector: config.selector,
    key,
    keyFile: checker.path(source) ?? config.keyFile,
    origin: at,
  };
}

function arcSealerOf<K extends PrivateKeyInfo>(
  a: Assembly,
  checker: KeyChecker<K>,
): ArcSealerPolicy<K> | undefined {
  const { config } = a;
  const { arcKeyFile, arcDomain, arcSelector } = config;
  if (!config.arcMode.seal || arcKeyFile === undefined) return undefined;
  const source: KeySource = { kind: "file", path: arcKeyFile };
  const key = checker.key(
    source,
    a.originOf("arcKeyFile"),
    `ARCKeyFile "${arcKeyFile}"`,
    undefined,
  );
  if (!key || arcDomain === undefined || arcSelector === undefined) return undefined;
  // ARCSignHeaders starts from the same default as SignHeaders (and "*" means that default).
  const entries = a.entriesOf("arcSignHeaders");
  const signHeaders = entries
    ? attempt(a.c, () => {
      const { names, warnings } = resolveHeaderList(entries, "ARCSignHeaders", DEFAULT_SIGN);
      warnAll(a.c, warnings, "ARCSignHeaders");
      return names;
    }) ?? DEFAULT_SIGN
    : DEFAULT_SIGN;
  return {
    domain: arcDomain.toLowerCase(),
    selector: arcSelector,
    key,
    keyFile: checker.path(source) ?? arcKeyFile,
    signHeaders,
  };
}

/** Takes each opened key for the entry that needs it, reporting what opening found. */
class KeyChecker<K extends PrivateKeyInfo> {
  readonly #a: Assembly;
  readonly #keys: OpenedKeys<K>;
  // Files whose safety problems were reported: once each, for the first entry to use it.
  readonly #reported = new Set<string>();

  constructor(a: Assembly, keys: OpenedKeys<K>) {
    this.#a = a;
    this.#keys = keys;
  }

  /** The resolved file of a key the loader opened. */
  path(source: KeySource): string | undefined {
    const opening = this.#opening(source);
    return "key" in opening ? opening.path : undefined;
  }

  /** The key for `what` at `at`, or undefined after recording why it cannot sign. */
  key(
    source: KeySource,
    at: Origin,
    what: string,
    own: KeyTableEntry["algorithm"],
  ): K | undefined {
    const { c } = this.#a;
    const opening = this.#opening(source);
    if (!("key" in opening)) {
      c.errors.push(
        opening.unsafe
          ? new ConfigError(`Unsafe key for ${what}`, at, opening.failure, {
            setting: "RequireSafeKeys",
          })
          : new ConfigError(`Cannot load the key of ${what}`, at, opening.failure, {
            ...(source.kind === "inline" ? { setting: "KeyTable" } : {}),
            cause: opening.cause,
          }),
      );
      return undefined;
    }
    if (source.kind === "file" && !this.#reported.has(source.path)) {
      this.#reported.add(source.path);
      for (const problem of opening.problems) {
        c.warnings.push({ message: `${what} at ${formatOrigin(at)}: ${problem}`, origin: at });
      }
    }
    this.#checkAlgorithm(own, opening.key, at, what);
    return opening.key;
  }

  #opening(source: KeySource): KeyOpening<K> {
    const opening = source.kind === "file"
      ? this.#keys.files.get(source.path)
      : this.#keys.inline.get(source.data);
    return opening ??
      {
        failure: source.kind === "file"
          ? `"${source.path}": the key was not opened`
          : "the key was not opened",
        unsafe: false,
      };
  }

  // Errors for an algorithm that cannot use the key, warnings for weak or mismatched choices.
  #checkAlgorithm(own: KeyTableEntry["algorithm"], key: K, at: Origin, what: string): void {
    const { c, config } = this.#a;
    if (own && !algorithmFitsKey(own, key.type)) {
      c.errors.push(
        new ConfigError(
          `Invalid algorithm for ${what}`,
          at,
          `"${own}" cannot sign with an ${key.type === "rsa" ? "RSA" : "Ed25519"} key`,
        ),
      );
    }
    if (!own && key.type === "rsa" && config.signatureAlgorithm === "ed25519-sha256") {
      c.warnings.push({
        message: `${what} at ${formatOrigin(at)} holds an RSA key; it signs rsa-sha256, since ` +
          `SignatureAlgorithm ed25519-sha256 applies only to Ed25519 keys`,
        origin: at,
      });
    }
    if (key.type === "rsa" && key.bits < MIN_RSA_BITS) {
      c.errors.push(
        new ConfigError(
          `Key too small for ${what}`,
          at,
          `${key.bits}-bit RSA; RFC 8301 §3.2: signers MUST use at least ${MIN_RSA_BITS} bits`,
        ),
      );
    } else if (key.type === "rsa" && key.bits < RECOMMENDED_RSA_BITS) {
      c.warnings.push({
        message: `${what} at ${formatOrigin(at)} is a ${key.bits}-bit RSA key; RFC 8301 §3.2 ` +
          `says signers SHOULD use at least ${RECOMMENDED_RSA_BITS} bits`,
        origin: at,
      });
    }
  }
}
