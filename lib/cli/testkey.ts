/**
 * `dkimd testkey`: checks that a key is published right, a drop-in for `opendkim-testkey`:
 * it looks up `SELECTOR._domainkey.DOMAIN` (RFC 6376 §3.6.2.1), checks the record tag by tag
 * (§3.6.1), checks that its public key is the private key's, its size (RFC 8301 §3.2), testing
 * mode (`t=y`) and `h=`/`k=` agreement, and says what is wrong in one plain line per problem.
 * The record is read by the verifier's own parser (`readKeyRecord()`), and the private key file
 * as `dkimd serve` reads it (`readPrivateKeyFile()`): a file others can read or change gives a
 * warning line in RequireSafeKeys' words, never a failure.
 * Exit statuses are opendkim-testkey's (sysexits.h): 0 when the key is fine, 65 when the
 * published key is not the private key's, 69 when the record cannot be found or used, 71 when
 * the key file cannot be read, 78 for a usage or configuration error.
 *
 * @module
 */
import { errorMessage } from "../error_message.ts";
import { isAbsolute, join, normalize } from "node:path";
import { ConfigErrors } from "../config/config_error.ts";
import { denoLoadIo, loadConfig, type LoadedConfig, type LoadIo } from "../config/load.ts";
import { type KeyFileIo, keyFileSafety, readPrivateKeyFile } from "../config/private_key_file.ts";
import type { SafetyContext } from "../config/safe_keys.ts";
import type { Config } from "../config/schema.ts";
import { KeyError } from "../crypto/key_error.ts";
import { importPrivateKey, type SigningKey } from "../crypto/private_key.ts";
import { keyRecordName } from "../dkim/key_record.ts";
import { isDomainName, isSelector } from "../dkim/signature.ts";
import { formatNameserver } from "../dns/nameserver.ts";
import { DnsError, type TxtResolver } from "../dns/resolver.ts";
import {
  type LoadedKeyEntry,
  parseKeyTableEntry,
  type PrivateKeyInfo,
} from "../policy/key_table.ts";
import { SourceError } from "../policy/origin.ts";
import { intFlag, parseCommandArgs, UsageError } from "./args.ts";
import { checkKeyRecord, KEY_CHECK_STATUS } from "./key_record_check.ts";
import { makeResolver } from "./resolver.ts";

/**
 * opendkim-testkey's exit statuses, the sysexits.h codes: a record check's
 * ({@link KEY_CHECK_STATUS}: `ok` 0, `mismatch` 65, `unavailable` 69), then `os` 71 (EX_OSERR:
 * the key file cannot be read) and `config` 78 (EX_CONFIG: a usage or configuration error).
 */
export const TESTKEY_EXIT = { ...KEY_CHECK_STATUS, os: 71, config: 78 } as const;

/**
 * The line for a failed lookup (RFC 6376 §6.1.2 tells "no such key", a permanent failure,
 * from "could not ask", a temporary one).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeDnsError } from "./testkey.ts";
 * import { DnsError } from "../dns/resolver.ts";
 * assert.equal(describeDnsError(new DnsError("nxdomain", "s._domainkey.example.com")),
 *   "record not found (no such name)");
 * assert.match(describeDnsError(new DnsError("servfail", "s._domainkey.example.com")), /^DNS error: SERVFAIL/);
 * ```
 */
export function describeDnsError(e: DnsError): string {
  switch (e.code) {
    case "nxdomain":
      return "record not found (no such name)";
    case "nodata":
      return "record not found (the name has no TXT record)";
    case "servfail":
      return "DNS error: SERVFAIL from the server (a temporary failure; is the zone loaded and its DNSSEC valid?)";
    case "refused":
      return "DNS error: REFUSED by the server (is it the right server, and does it allow queries from here?)";
    case "timeout":
      return "DNS error: the query timed out";
    default:
      return `DNS error: ${e.message}`;
  }
}

/** A key file that cannot be read: exit status {@link TESTKEY_EXIT} `os`. */
class KeyFileReadError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KeyFileReadError";
  }
}

function why(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  return errorMessage(e);
}

/** How testkey reads private key files: the loader's I/O, and who may own a key. */
interface KeyFiles {
  /** The file system, as the loader sees it. */
  readonly io: KeyFileIo;
  /** Root, the user running testkey and the configuration's UserID, found once. */
  safety(): Promise<SafetyContext>;
  /** True when a configuration names UserID, the user the signing service runs as. */
  readonly serviceKnown: boolean;
}

/**
 * Reads a private key file as the loader does (`readPrivateKeyFile()`): the same path walk and
 * RequireSafeKeys rule, each problem it finds a warning line here, never a failure, as
 * opendkim-testkey only warns. A file that is missing, not a regular file or too large cannot
 * be read (71); its safety warnings are then left out, the read error being what to fix first.
 */
async function readKeyFileChecked(
  path: string,
  files: KeyFiles,
  report: Report,
): Promise<Uint8Array> {
  const warnings: string[] = [];
  let bytes: Uint8Array;
  try {
    bytes = await readPrivateKeyFile(files.io, path, {
      safety: await files.safety(),
      requireSafe: false,
      // A problem that is not fatal is a group read by users besides the service (the seed's
      // root:opendkim 0640 with postfix added): without UserID testkey cannot tell the service
      // from the others, so it reports only what is unsafe whoever the service is.
      warn: (p, text) => {
        if (p.fatal || files.serviceKnown) warnings.push(text);
      },
    });
  } catch (e) {
    throw new KeyFileReadError(`"${path}": ${why(e)}`, { cause: e });
  }
  for (const warning of warnings) report.err(0, `WARNING: ${warning}`);
  return bytes;
}

/** Lines to print, kept in order and printed at once, so keys tested together do not mix. */
class Report {
  readonly #lines: { stream: "err" | "out"; level: number; text: string }[] = [];

  /** A line for standard error, shown with `level` or more -v. */
  err(level: number, text: string): void {
    this.#lines.push({ stream: "err", level, text });
  }

  /** A line for standard output, shown with `level` or more -v. */
  out(level: number, text: string): void {
    this.#lines.push({ stream: "out", level, text });
  }

  /** Appends the lines of `other`. */
  absorb(other: Report): void {
    this.#lines.push(...other.#lines);
  }

  /** Prints the lines `verbose` asks for. */
  print(verbose: number): void {
    for (const line of this.#lines) {
      if (verbose < line.level) continue;
      if (line.stream === "err") console.error(`dkimd testkey: ${line.text}`);
      else console.log(`dkimd testkey: ${line.text}`);
    }
  }
}

/** One key to test: where to look, and the private key to compare, if there is one. */
interface KeyTarget {
  readonly domain: string;
  readonly selector: string;
  /** The private key. */
  readonly key?: SigningKey;
  /** The KeyTable key name, in KeyTable mode. */
  readonly name?: string;
}

/**
 * Tests one key as opendkim-testkey's dkim_test_key() does: look the record up, check it, and
 * compare it with the private key. Returns the exit status.
 */
async function testKey(target: KeyTarget, resolver: TxtResolver, report: Report): Promise<number> {
  const name = keyRecordName(target.selector, target.domain);
  const subject = target.name !== undefined ? `key "${target.name}" ("${name}")` : `"${name}"`;
  report.err(2, `checking key "${name}"`);
  let records: string[];
  try {
    records = await resolver.resolveTxt(name);
  } catch (e) {
    if (!(e instanceof DnsError)) throw e;
    report.err(0, `${subject}: ${describeDnsError(e)}`);
    return TESTKEY_EXIT.unavailable;
  }
  // dkimd does not validate DNSSEC, so no answer is secure: said as opendkim-testkey says it
  // when its resolver has no trust anchor.
  report.err(1, target.name !== undefined ? `key ${target.name} not secure` : "key not secure");
  if (records.length !== 1) {
    report.err(
      0,
      `${subject}: ${records.length} TXT records found; publish exactly one key record (RFC 6376 §3.6.2.2)`,
    );
    return TESTKEY_EXIT.unavailable;
  }
  const check = await checkKeyRecord(records[0], target.key);
  for (const f of check.findings) {
    report.err(f.severity === "info" ? 2 : 0, `${subject}: ${f.message}`);
  }
  if (check.status === TESTKEY_EXIT.ok) {
    report.out(3, target.name !== undefined ? `key ${target.name}: OK` : "key OK");
  }
  return check.status;
}

function keyLabel(key: SigningKey): string {
  return key.type === "rsa" ? `RSA, ${key.bits} bits` : "Ed25519";
}

/**
 * The configuration opendkim-testkey reads when given no `-x` and none of `-d`, `-s`, `-k`,
 * if it can be read: the KeyTable in it is then tested.
 */
export const TESTKEY_DEFAULT_CONFIG = "/etc/opendkim.conf";

/** KeyTable keys looked up at once: parallel enough for a big table, gentle on the server. */
export const KEYTABLE_CONCURRENCY = 8;

/** The help text of `dkimd testkey`. */
export const TESTKEY_USAGE = `Usage: dkimd testkey -d DOMAIN -s SELECTOR [-k KEYFILE] [options]
       dkimd testkey -x CONFIG

Looks up the key record SELECTOR._domainkey.DOMAIN, checks it tag by tag and, with
-k, that it publishes the public half of the private key in KEYFILE, as
opendkim-testkey does. With -x and no -d, -s or -k, tests every KeyTable entry of
CONFIG (opendkim.conf or dkimd YAML); with neither, /etc/opendkim.conf if readable.
Prints nothing when all is well (add -vvv for "key OK").
Exit status: 0 when the key is fine, 65 when the published key is not the private
key's, 69 when the record is missing, unusable or the lookup failed, 71 when the
key file cannot be read, 78 for a usage or configuration error.

Options:
  -d, --domain DOMAIN       the signing domain (d=); default: Domain of CONFIG
  -s, --selector SELECTOR   the selector (s=); default: Selector of CONFIG
  -k, --key FILE            the private key to compare; default: KeyFile of CONFIG
  -x, --config CONFIG       read Domain, Selector, KeyFile, KeyTable, Nameservers
                            and TestPublicKeys from CONFIG
  -v, --verbose             say more; repeat for more (-vvv)
      --nameserver SPEC     DNS server(s) to ask: IP, IP@PORT, [IPv6]:PORT, or a
                            comma list (default: Nameservers of CONFIG, else
                            /etc/resolv.conf); may be repeated
      --test-keys FILE      take key records from FILE (OpenDKIM's TestPublicKeys
                            format) instead of DNS
      --timeout SECONDS     time for each lookup (default 5)
  -h, --help                show this help
`;

/**
 * Runs `dkimd testkey` with `args` (the words after "testkey"), printing as opendkim-testkey
 * does; resolves to the exit status (see {@link TESTKEY_EXIT}). A usage mistake prints one line
 * and gives 78 (EX_CONFIG), as opendkim-testkey's usage().
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runTestkey } from "./testkey.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/keys`, "s._domainkey.example.com v=DKIM1; k=rsa; p=\n");
 * assert.equal(await runTestkey(["-d", "example.com", "-s", "s", "--test-keys", `${dir}/keys`]), 69);
 * assert.equal(await runTestkey(["-s", "s"]), 78);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function runTestkey(args: readonly string[]): Promise<number> {
  try {
    return await testkey(args);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`dkimd ${e.message}`);
      return TESTKEY_EXIT.config;
    }
    throw e;
  }
}

async function readable(path: string): Promise<boolean> {
  try {
    (await Deno.open(path)).close();
    return true;
  } catch {
    return false;
  }
}

/** Loads CONFIG with the loader `dkimd serve` uses; undefined after printing its errors. */
async function loadTestConfig(
  path: string,
  io: LoadIo<SigningKey>,
): Promise<LoadedConfig<SigningKey> | undefined> {
  try {
    return await loadConfig(path, io);
  } catch (e) {
    if (e instanceof ConfigErrors) {
      for (const error of e.errors) console.error(`dkimd testkey: ${error.message}`);
      return undefined;
    }
    if (e instanceof SourceError) {
      console.error(`dkimd testkey: ${e.message}`);
      return undefined;
    }
    throw e;
  }
}

async function testkey(args: readonly string[]): Promise<number> {
  const { values } = parseCommandArgs("testkey", args, {
    domain: { type: "string", short: "d" },
    selector: { type: "string", short: "s" },
    key: { type: "string", short: "k" },
    config: { type: "string", short: "x" },
    verbose: { type: "boolean", short: "v", multiple: true },
    nameserver: { type: "string", multiple: true },
    "test-keys": { type: "string" },
    timeout: { type: "string" },
    help: { type: "boolean", short: "h" },
  }, 0);
  if (values.help) {
    console.log(TESTKEY_USAGE);
    return 0;
  }
  const verbose = values.verbose?.length ?? 0;
  const report = new Report();
  const timeout = intFlag("testkey", "timeout", values.timeout, 1);
  const given = values.domain !== undefined || values.selector !== undefined ||
    values.key !== undefined;

  let configPath = values.config;
  if (configPath === undefined && !given && await readable(TESTKEY_DEFAULT_CONFIG)) {
    configPath = TESTKEY_DEFAULT_CONFIG;
    report.err(2, `using default configfile ${TESTKEY_DEFAULT_CONFIG}`);
  }
  const io = denoLoadIo(importPrivateKey);
  let loaded: LoadedConfig<SigningKey> | undefined;
  if (configPath !== undefined) {
    loaded = await loadTestConfig(configPath, io);
    if (loaded === undefined) return TESTKEY_EXIT.config;
    // Warnings about keys (their files' safety, their size) are what testkey is for; the
    // others are about the configuration and wait for -v.
    const keyOrigins = new Set(
      [
        ...(loaded.keyTable?.entries.map((e) => e.origin) ?? []),
        ...(loaded.origins.keyFile ? [loaded.origins.keyFile] : []),
      ].map((o) => `${o.file}:${o.line}`),
    );
    for (const w of loaded.warnings) {
      report.err(keyOrigins.has(`${w.origin.file}:${w.origin.line}`) ? 0 : 1, w.message);
    }
  }
  const config = loaded?.config;
  let safety: Promise<SafetyContext> | undefined;
  const files: KeyFiles = {
    io,
    serviceKnown: config?.userId !== undefined,
    safety: () =>
      safety ??= io.accounts().then((accounts) =>
        keyFileSafety(io.euid(), accounts, config?.userId ? [config.userId.user] : [])
      ),
  };
  const resolver = await makeResolver("testkey", {
    nameservers: values.nameserver ??
      (values["test-keys"] === undefined && config?.nameservers
        ? config.nameservers.map(formatNameserver)
        : undefined),
    testKeys: values["test-keys"] ??
      (values.nameserver === undefined ? config?.testPublicKeys : undefined),
    timeoutMs: timeout === undefined ? undefined : timeout * 1000,
  });

  if (loaded?.keyTable && !given) {
    const rows = loaded.keyTable.keyed
      ? await databaseKeyTable(loaded, report)
      : { entries: loaded.keyTable.entries, bad: 0 };
    const tested = typeof rows === "number"
      ? rows
      : await testKeyTable(rows.entries, loaded.config, { files, resolver, report });
    // A row that does not parse is a configuration mistake, as a bad KeyTable line is.
    const status = typeof rows !== "number" && rows.bad > 0 && tested === TESTKEY_EXIT.ok
      ? TESTKEY_EXIT.config
      : tested;
    await Promise.all(loaded.tables.map((t) => t.close()));
    report.print(verbose);
    return status;
  }

  const domain = (values.domain ?? firstDomain(loaded))?.replace(/\.$/, "");
  const selector = values.selector ?? config?.selector;
  if (domain === undefined || selector === undefined) {
    report.print(verbose);
    throw new UsageError(
      `testkey: ${
        domain === undefined ? "-d DOMAIN" : "-s SELECTOR"
      } is required (see dkimd testkey --help)`,
    );
  }
  if (!isDomainName(domain)) throw new UsageError(`testkey: "${domain}" is not a domain name`);
  if (!isSelector(selector)) throw new UsageError(`testkey: "${selector}" is not a selector`);
  const keyPath = values.key ?? loaded?.singleKey?.keyFile ?? config?.keyFile;
  const name = keyRecordName(selector, domain);
  let key: SigningKey | undefined;
  if (keyPath !== undefined) {
    try {
      key = await importPrivateKey(await readKeyFileChecked(keyPath, files, report), keyPath);
      report.err(2, `key loaded from ${keyPath} (${keyLabel(key)})`);
    } catch (e) {
      if (e instanceof KeyFileReadError) {
        report.err(0, e.message);
        report.print(verbose);
        return TESTKEY_EXIT.os;
      }
      if (e instanceof KeyError) {
        report.err(0, `"${name}": ${e.message}`);
        report.print(verbose);
        return TESTKEY_EXIT.unavailable;
      }
      throw e;
    }
  }
  const status = await testKey({ domain, selector, key }, resolver, report);
  report.print(verbose);
  return status;
}

/** A key path as the loader resolves it: against BaseDirectory, else the working directory. */
function resolveKeyPath(path: string, config: Config): string {
  if (isAbsolute(path)) return path;
  const base = config.baseDirectory ?? ".";
  return normalize(join(isAbsolute(base) ? base : join(Deno.cwd(), base), path));
}

/** The Domain setting's first name, when it is a plain name (not a pattern). */
function firstDomain(loaded: LoadedConfig<SigningKey> | undefined): string | undefined {
  const set = loaded?.dataSets.domain;
  if (!set || set.patterns) return undefined;
  return set.entries[0]?.key;
}

/**
 * Tests every KeyTable entry, {@link KEYTABLE_CONCURRENCY} at a time, reporting in table order.
 * The status is the worst of them: unlike opendkim-testkey, which exits 0 whatever it found, a
 * failing key fails the run, so scripts and monitoring can rely on it.
 */
/** Most rows of a KeyTable in a database that `testkey -x` checks in one run. */
export const MAX_TESTKEY_ROWS = 100_000;

/**
 * Every row of a KeyTable kept in a database (TableBackend.scan, the tools' walk; the filter
 * never walks), parsed as KeyTable entries; a row that does not parse is reported and counted.
 * Returns an exit status when the table cannot be read.
 */
async function databaseKeyTable<K extends PrivateKeyInfo>(
  loaded: LoadedConfig<K>,
  report: Report,
): Promise<{ entries: LoadedKeyEntry<SigningKey>[]; bad: number } | number> {
  const table = loaded.tables.find((t) => t.setting === "KeyTable");
  if (!table) return { entries: [], bad: 0 };
  let rows;
  try {
    rows = await table.backend.scan(
      MAX_TESTKEY_ROWS,
      AbortSignal.timeout(loaded.config.dataSetQueryTimeout * 1000 * 10),
    );
  } catch (e) {
    report.err(0, `KeyTable ${table.backend.describe}: ${errorMessage(e)}`);
    return TESTKEY_EXIT.unavailable;
  }
  const out: LoadedKeyEntry<SigningKey>[] = [];
  let bad = 0;
  for (const row of rows) {
    const origin = { file: `KeyTable ${table.backend.describe} row "${row.key}"`, line: 0 };
    try {
      out.push(parseKeyTableEntry({ key: row.key, value: row.columns.join(":"), origin }));
    } catch (e) {
      report.err(0, errorMessage(e));
      bad++;
    }
  }
  if (rows.length >= MAX_TESTKEY_ROWS) {
    report.err(
      0,
      `KeyTable ${table.backend.describe}: only the first ${MAX_TESTKEY_ROWS} rows are checked`,
    );
  }
  return { entries: out, bad };
}

async function testKeyTable(
  entries: readonly LoadedKeyEntry<SigningKey>[],
  config: Config,
  { files, resolver, report }: { files: KeyFiles; resolver: TxtResolver; report: Report },
): Promise<number> {
  const reports = entries.map(() => new Report());
  const statuses: (number | "skipped")[] = new Array(entries.length);
  let next = 0;
  const worker = async () => {
    while (next < entries.length) {
      const i = next++;
      const entry = entries[i];
      const r = reports[i];
      r.err(2, `record ${i} for "${entry.name}" retrieved`);
      if (entry.domain === "%") {
        r.err(
          0,
          `key "${entry.name}": not tested: its domain is "%", the sender's domain at signing time; test one with -d DOMAIN -s ${entry.selector} -k FILE`,
        );
        statuses[i] = "skipped";
        continue;
      }
      const from = entry.source.kind === "file"
        ? resolveKeyPath(entry.source.path, config)
        : "the KeyTable (inline)";
      let key = entry.key;
      if (key === undefined) {
        // The loader skips keys that cannot sign (Mode v); opendkim-testkey loads them anyway.
        try {
          key = entry.source.kind === "inline"
            ? await importPrivateKey(entry.source.data)
            : await importPrivateKey(await readKeyFileChecked(from, files, r), from);
        } catch (e) {
          if (!(e instanceof KeyFileReadError) && !(e instanceof KeyError)) throw e;
          r.err(0, `key "${entry.name}": ${e.message}`);
          statuses[i] = e instanceof KeyFileReadError ? TESTKEY_EXIT.os : TESTKEY_EXIT.unavailable;
          continue;
        }
      }
      r.err(2, `key "${entry.name}" loaded from ${from} (${keyLabel(key)})`);
      statuses[i] = await testKey(
        { domain: entry.domain, selector: entry.selector, key, name: entry.name },
        resolver,
        r,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(KEYTABLE_CONCURRENCY, entries.length) }, worker));
  for (const r of reports) report.absorb(r);
  const tested = statuses.filter((s): s is number => s !== "skipped");
  const pass = tested.filter((s) => s === TESTKEY_EXIT.ok).length;
  const skipped = statuses.length - tested.length;
  report.out(
    1,
    `${tested.length} key${tested.length === 1 ? "" : "s"} checked; ${pass} pass, ${
      tested.length - pass
    } fail${skipped > 0 ? `, ${skipped} not tested` : ""}`,
  );
  return tested.includes(TESTKEY_EXIT.os)
    ? TESTKEY_EXIT.os
    : tested.includes(TESTKEY_EXIT.unavailable)
    ? TESTKEY_EXIT.unavailable
    : tested.includes(TESTKEY_EXIT.mismatch)
    ? TESTKEY_EXIT.mismatch
    : TESTKEY_EXIT.ok;
}
