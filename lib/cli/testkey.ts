/**
 * `dkimd testkey`: checks that a key is published right, a drop-in for `opendkim-testkey`:
 * it looks up `SELECTOR._domainkey.DOMAIN` (RFC 6376 §3.6.2.1), checks the record tag by tag
 * (§3.6.1), checks that its public key is the private key's, its size (RFC 8301 §3.2), testing
 * mode (`t=y`) and `h=`/`k=` agreement, and says what is wrong in one plain line per problem.
 * Exit statuses are opendkim-testkey's (sysexits.h): 0 when the key is fine, 65 when the
 * published key is not the private key's, 69 when the record cannot be found or used, 71 when
 * the key file cannot be read, 78 for a usage or configuration error.
 *
 * @module
 */
import { asciiLower, equals, fromBase64 } from "../bytes.ts";
import {
  importPrivateKey,
  importPublicKey,
  KeyError,
  type KeyType,
  MAX_PRIVATE_KEY_INPUT_BYTES,
  MIN_RSA_BITS_GENERATE,
  type SigningKey,
  type VerifyingKey,
} from "../crypto/keys.ts";
import { keyRecordName, parseKeyRecord } from "../dkim/key_record.ts";
import { DkimError } from "../dkim/result.ts";
import { isDomainName, isSelector } from "../dkim/signature.ts";
import { parseTagList, stripWhitespace, TagListError } from "../dkim/tag_list.ts";
import { DnsError, type TxtResolver } from "../dns/resolver.ts";
import { intFlag, parseCommandArgs, UsageError } from "./args.ts";
import { RSA_BITS_RECOMMENDED } from "./genkey.ts";
import { makeResolver } from "./resolver.ts";

/**
 * opendkim-testkey's exit statuses, the sysexits.h codes: `ok` 0 (EX_OK), `mismatch` 65
 * (EX_DATAERR: the published key is not the private key's), `unavailable` 69 (EX_UNAVAILABLE:
 * no usable record), `os` 71 (EX_OSERR: the key file cannot be read), `config` 78 (EX_CONFIG:
 * a usage or configuration error).
 */
export const TESTKEY_EXIT = {
  ok: 0,
  mismatch: 65,
  unavailable: 69,
  os: 71,
  config: 78,
} as const;

/** Largest RSA key testkey imports: far above any real key (RFC 8301 stops at 4096), a cost bound. */
export const TESTKEY_MAX_RSA_BITS = 16384;

/** RSA keys above this many bits get a warning: verifiers need handle only 4096 (RFC 8301 §3.2). */
export const RSA_BITS_VERIFIERS_HANDLE = 4096;

/** How bad a finding is: an `error` fails the test, a `warning` does not, `info` is detail. */
export type Severity = "error" | "warning" | "info";

/** One thing found about a key record, as one line of text. */
export interface Finding {
  /** How bad it is. */
  readonly severity: Severity;
  /** What was found, in one plain line. */
  readonly message: string;
  /** The exit status an `error` gives: {@link TESTKEY_EXIT} `mismatch` or `unavailable`. */
  readonly status?: number;
}

/** The outcome of {@link checkKeyRecord}. */
export interface KeyCheck {
  /** 0, or the exit status of the worst error: `unavailable` before `mismatch`. */
  readonly status: number;
  /** Everything found, in the order of the checks. */
  readonly findings: readonly Finding[];
  /** The published key, when it could be read. */
  readonly publicKey?: VerifyingKey;
}

const HASHES = ["sha1", "sha256"];
const KNOWN_TAGS = ["v", "g", "h", "k", "n", "p", "s", "t"];

function describeType(type: KeyType): string {
  return type === "rsa" ? "an RSA" : "an Ed25519";
}

/**
 * Checks the text of one key record tag by tag (RFC 6376 §3.6.1), and, given the private key,
 * that the record publishes its public half. Pure: no I/O. Every problem is a {@link Finding};
 * the same record always gives the same findings, so the command's output is predictable.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkKeyRecord } from "./testkey.ts";
 * const ok = await checkKeyRecord(
 *   "v=DKIM1; k=ed25519; t=y; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
 * );
 * assert.equal(ok.status, 0);
 * assert.ok(ok.findings.some((f) => f.severity === "warning" && /t=y/.test(f.message)));
 * const revoked = await checkKeyRecord("v=DKIM1; k=rsa; p=");
 * assert.equal(revoked.status, 69);
 * assert.ok(revoked.findings.some((f) => f.message === "key is revoked (p= empty)"));
 * ```
 */
export async function checkKeyRecord(text: string, privateKey?: SigningKey): Promise<KeyCheck> {
  const findings: Finding[] = [];
  const info = (message: string) => findings.push({ severity: "info", message });
  const warn = (message: string) => findings.push({ severity: "warning", message });
  const fail = (message: string, status: number = TESTKEY_EXIT.unavailable) =>
    findings.push({ severity: "error", message, status });
  const done = (publicKey?: VerifyingKey): KeyCheck => {
    const statuses = findings.map((f) => f.status ?? 0);
    const status = statuses.includes(TESTKEY_EXIT.unavailable)
      ? TESTKEY_EXIT.unavailable
      : statuses.includes(TESTKEY_EXIT.mismatch)
      ? TESTKEY_EXIT.mismatch
      : TESTKEY_EXIT.ok;
    return { status, findings, ...(publicKey ? { publicKey } : {}) };
  };

  let tags: Map<string, string>;
  try {
    tags = parseTagList(text);
  } catch (e) {
    if (!(e instanceof TagListError)) throw e;
    fail(`key record syntax error at character ${e.offset + 1}: ${e.message}`);
    return done();
  }
  const list = (value: string) =>
    value.split(":").map((s) => asciiLower(s.trim())).filter((s) => s !== "");

  // v= (§3.6.1): optional, but when present it is first and exactly "DKIM1".
  const v = tags.get("v");
  if (v === undefined) info("no v= tag (allowed; v=DKIM1 first is usual)");
  else if (v !== "DKIM1") fail(`invalid key version v=${v}: a key record has v=DKIM1`);
  else if (tags.keys().next().value !== "v") fail("v=DKIM1 is not the first tag, as it must be");
  else info("v=DKIM1");

  // k=: rsa when absent.
  const kText = asciiLower(tags.get("k") ?? "rsa");
  let keyType: KeyType | undefined;
  if (kText === "rsa" || kText === "ed25519") {
    keyType = kText;
    info(tags.has("k") ? `k=${kText}` : "no k= tag: the key is RSA");
  } else {
    fail(`unknown key type k=${kText}: DKIM keys are rsa (RFC 6376) or ed25519 (RFC 8463)`);
  }

  // h=: the hashes this key may sign with. Verifiers refuse sha1 (RFC 8301 §3.1), so a list
  // without sha256 leaves the key nothing it can verify; Ed25519 signs SHA-256 only (RFC 8463).
  const h = tags.get("h");
  if (h !== undefined) {
    const hashes = list(h);
    for (const name of hashes.filter((x) => !HASHES.includes(x))) {
      warn(`h= names unknown hash "${name}", which verifiers ignore`);
    }
    if (!hashes.includes("sha256")) {
      fail(
        keyType === "ed25519"
          ? `h=${h} leaves out sha256, the only hash Ed25519 signs (RFC 8463 §3): no signature can verify`
          : `h=${h} leaves out sha256, and RFC 8301 §3.1 verifiers refuse sha1: no signature can verify`,
      );
    } else info(`h=${hashes.join(":")}`);
  }

  // s=: service types; must allow email.
  const s = tags.get("s");
  if (s !== undefined) {
    const services = list(s);
    if (!services.includes("*") && !services.includes("email")) {
      fail(`key not for email: s=${s} excludes "email"`);
    } else info(`s=${services.join(":")}`);
  }

  // t=: flags. Unknown flags are ignored by verifiers (§3.6.1).
  const t = tags.get("t");
  if (t !== undefined) {
    for (const flag of list(t)) {
      if (flag === "y") {
        warn(
          "testing mode (t=y): verifiers may treat failed signatures as unsigned; remove t=y once signing works",
        );
      } else if (flag === "s") info("t=s: the i= domain must be d= itself, not a subdomain");
      else info(`t= flag "${flag}" is unknown and ignored`);
    }
  }

  // g= was dropped by RFC 6376 but older verifiers still match it against i=.
  const g = tags.get("g");
  if (g !== undefined && g !== "*") {
    warn(`g=${g} is obsolete (RFC 4871); verifiers that still honour it refuse other i= users`);
  }
  if (tags.has("n")) info(`n=${tags.get("n")}`);
  for (const name of tags.keys()) {
    if (!KNOWN_TAGS.includes(name)) info(`unknown tag ${name}= is ignored`);
  }

  // p=: the key.
  const p = tags.get("p");
  let publicKey: VerifyingKey | undefined;
  let pBytes: Uint8Array | undefined;
  if (p === undefined) fail("p= is missing: a key record must publish a key");
  else if (stripWhitespace(p) === "") fail("key is revoked (p= empty)");
  else {
    try {
      pBytes = fromBase64(stripWhitespace(p));
    } catch {
      fail("p= is not valid base64");
    }
  }
  if (pBytes !== undefined && keyType !== undefined) {
    try {
      publicKey = await importPublicKey(keyType, pBytes, { maxBits: TESTKEY_MAX_RSA_BITS });
    } catch (e) {
      if (!(e instanceof KeyError)) throw e;
      fail(`p= is not a usable ${keyType} key: ${e.message.replace(/^Cannot use [^:]*: /, "")}`);
    }
  }
  if (publicKey !== undefined) {
    if (publicKey.type === "rsa") {
      if (publicKey.bits < MIN_RSA_BITS_GENERATE) {
        fail(
          `the RSA key has ${publicKey.bits} bits: RFC 8301 §3.2 verifiers refuse keys under ${MIN_RSA_BITS_GENERATE}`,
        );
      } else if (publicKey.bits < RSA_BITS_RECOMMENDED) {
        warn(
          `the RSA key has ${publicKey.bits} bits; RFC 8301 §3.2 recommends ${RSA_BITS_RECOMMENDED} or more`,
        );
      } else if (publicKey.bits > RSA_BITS_VERIFIERS_HANDLE) {
        warn(
          `the RSA key has ${publicKey.bits} bits; verifiers need handle only ${RSA_BITS_VERIFIERS_HANDLE} (RFC 8301 §3.2), so some will refuse it`,
        );
      } else info(`p= holds a ${publicKey.bits}-bit RSA key`);
    } else info("p= holds an Ed25519 key");
    if (privateKey !== undefined) {
      if (privateKey.type !== publicKey.type) {
        fail(
          `public key does not match private key: the record holds ${
            describeType(publicKey.type)
          } key, the private key is ${privateKey.type === "rsa" ? "RSA" : "Ed25519"}`,
          TESTKEY_EXIT.mismatch,
        );
      } else if (!equals(privateKey.spki, publicKey.spki)) {
        fail("public key does not match private key", TESTKEY_EXIT.mismatch);
      } else info("p= is the public half of the private key");
    }
  }

  // The verifier's own parser has the last word, so testkey never passes what it refuses.
  if (!findings.some((f) => f.severity === "error")) {
    try {
      parseKeyRecord(text);
    } catch (e) {
      if (!(e instanceof DkimError)) throw e;
      fail(e.message);
    }
  }
  return done(publicKey);
}

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

/** What to test: a domain and selector, and optionally the private key to compare. */
export interface KeyTarget {
  /** The signing domain. */
  readonly domain: string;
  /** The selector. */
  readonly selector: string;
  /** A private key file. */
  readonly keyPath?: string;
  /** The private key itself (a KeyTable inline key). */
  readonly keyData?: string;
  /** The KeyTable key name, in KeyTable mode. */
  readonly name?: string;
}

/** Where test output goes, with opendkim-testkey's verbosity levels. */
interface Output {
  readonly verbose: number;
  /** A line on standard error, shown at `level` -v or more. */
  err(level: number, text: string): void;
  /** A line on standard output, shown at `level` -v or more. */
  out(level: number, text: string): void;
}

function consoleOutput(verbose: number): Output {
  return {
    verbose,
    err: (level, text) => {
      if (verbose >= level) console.error(`dkimd testkey: ${text}`);
    },
    out: (level, text) => {
      if (verbose >= level) console.log(`dkimd testkey: ${text}`);
    },
  };
}

/** Group-write and every "other" bit: a private key file with any of them is unsafe. */
const UNSAFE_MODE_BITS = 0o027;

/**
 * The warning for a private key file whose mode lets others read or change it, or undefined.
 * Group read is allowed: the seed's `chown root:opendkim; chmod 640` is how a signing service
 * running as its own group reads a key root owns. (opendkim-testkey also warns about group
 * read, which makes that setup warn.)
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { unsafeModeWarning } from "./testkey.ts";
 * assert.equal(unsafeModeWarning("k.private", 0o640), undefined);
 * assert.equal(
 *   unsafeModeWarning("k.private", 0o644),
 *   'WARNING: "k.private" has unsafe permissions 0644 (readable by others); fix with: chmod 640 k.private',
 * );
 * ```
 */
export function unsafeModeWarning(path: string, mode: number): string | undefined {
  const perms = mode & 0o7777;
  if ((perms & UNSAFE_MODE_BITS) === 0) return undefined;
  const what: string[] = [];
  if (perms & 0o020) what.push("writable by its group");
  if (perms & 0o004) what.push("readable by others");
  if (perms & 0o002) what.push("writable by others");
  if ((perms & 0o001) && !(perms & 0o006)) what.push("executable by others");
  const fixed = (perms & ~UNSAFE_MODE_BITS).toString(8);
  const octal = perms.toString(8).padStart(4, "0");
  const arg = /^[\w./@%+-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`;
  return `WARNING: "${path}" has unsafe permissions ${octal} (${
    what.join(", ")
  }); fix with: chmod ${fixed} ${arg}`;
}

/** Thrown for a key file that cannot be read: exit status {@link TESTKEY_EXIT} `os`. */
export class KeyFileReadError extends Error {
  /** Makes the error with `message`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KeyFileReadError";
  }
}

function why(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  return e instanceof Error ? e.message : String(e);
}

/**
 * Reads a private key file as opendkim-testkey does: it must be a regular file (71 otherwise),
 * and a mode that lets others read or change it gives a warning line.
 */
async function readKeyFileChecked(path: string, output: Output): Promise<Uint8Array> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    throw new KeyFileReadError(`"${path}": ${why(e)}`, { cause: e });
  }
  if (!info.isFile) throw new KeyFileReadError(`"${path}": not a regular file`);
  if (info.mode !== null) {
    const warning = unsafeModeWarning(path, info.mode);
    if (warning !== undefined) output.err(0, warning);
  }
  if (info.size > MAX_PRIVATE_KEY_INPUT_BYTES) {
    throw new KeyFileReadError(
      `"${path}": ${info.size} bytes is too large for a key (at most ${MAX_PRIVATE_KEY_INPUT_BYTES})`,
    );
  }
  try {
    using file = await Deno.open(path);
    const buffer = new Uint8Array(MAX_PRIVATE_KEY_INPUT_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const n = await file.read(buffer.subarray(length));
      if (n === null) break;
      length += n;
    }
    return buffer.slice(0, length);
  } catch (e) {
    throw new KeyFileReadError(`"${path}": cannot read: ${why(e)}`, { cause: e });
  }
}

/**
 * Tests one key as opendkim-testkey does, printing through `output`, and returns its exit
 * status: load the private key (if any), look the record up, check it.
 */
async function testKey(
  target: KeyTarget,
  resolver: TxtResolver,
  output: Output,
): Promise<number> {
  const name = keyRecordName(target.selector, target.domain);
  const subject = target.name !== undefined ? `key "${target.name}" ("${name}")` : `"${name}"`;
  let privateKey: SigningKey | undefined;
  try {
    let data: Uint8Array | string | undefined = target.keyData;
    if (target.keyPath !== undefined) data = await readKeyFileChecked(target.keyPath, output);
    if (data !== undefined) {
      privateKey = await importPrivateKey(data, target.keyPath);
      output.err(
        2,
        `key loaded from ${target.keyPath ?? "the KeyTable"} (${
          privateKey.type === "rsa" ? `RSA, ${privateKey.bits} bits` : "Ed25519"
        })`,
      );
    }
  } catch (e) {
    if (e instanceof KeyFileReadError) {
      output.err(0, e.message);
      return TESTKEY_EXIT.os;
    }
    if (e instanceof KeyError) {
      output.err(0, `${subject}: ${e.message}`);
      return TESTKEY_EXIT.unavailable;
    }
    throw e;
  }

  output.err(2, `checking key "${name}"`);
  let records: string[];
  try {
    records = await resolver.resolveTxt(name);
  } catch (e) {
    if (!(e instanceof DnsError)) throw e;
    output.err(0, `${subject}: ${describeDnsError(e)}`);
    return TESTKEY_EXIT.unavailable;
  }
  // dkimd does not validate DNSSEC, so no answer is secure: said as opendkim-testkey says it
  // when its resolver has no trust anchor.
  output.err(1, target.name !== undefined ? `key ${target.name} not secure` : "key not secure");
  if (records.length !== 1) {
    output.err(
      0,
      `${subject}: ${records.length} TXT records found; publish exactly one key record (RFC 6376 §3.6.2.2)`,
    );
    return TESTKEY_EXIT.unavailable;
  }
  const check = await checkKeyRecord(records[0], privateKey);
  for (const f of check.findings) {
    if (f.severity === "info") output.err(2, `${subject}: ${f.message}`);
    else output.err(0, `${subject}: ${f.message}`);
  }
  if (check.status === TESTKEY_EXIT.ok) {
    output.out(3, target.name !== undefined ? `key ${target.name}: OK` : "key OK");
  }
  return check.status;
}

/** The help text of `dkimd testkey`. */
export const TESTKEY_USAGE = `Usage: dkimd testkey -d DOMAIN -s SELECTOR [-k KEYFILE] [options]

Looks up the key record SELECTOR._domainkey.DOMAIN, checks it tag by tag and, with
-k, that it publishes the public half of the private key in KEYFILE, as
opendkim-testkey does. Prints nothing when all is well (add -vvv for "key OK").
Exit status: 0 when the key is fine, 65 when the published key is not the private
key's, 69 when the record is missing, unusable or the lookup failed, 71 when the
key file cannot be read, 78 for a usage or configuration error.

Options:
  -d, --domain DOMAIN       the signing domain (d=)
  -s, --selector SELECTOR   the selector (s=)
  -k, --key FILE            the private key to compare with the record
  -v, --verbose             say more; repeat for more (-vvv)
      --nameserver SPEC     DNS server(s) to ask: IP, IP@PORT, [IPv6]:PORT, or a
                            comma list (default: /etc/resolv.conf); may be repeated
      --test-keys FILE      take key records from FILE (OpenDKIM's TestPublicKeys
                            format) instead of DNS
      --timeout SECONDS     time for the lookup (default 5)
  -h, --help                show this help
`;

/** Runs `dkimd testkey`; resolves to the exit status (see {@link TESTKEY_EXIT}). */
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

async function testkey(args: readonly string[]): Promise<number> {
  const { values } = parseCommandArgs("testkey", args, {
    domain: { type: "string", short: "d" },
    selector: { type: "string", short: "s" },
    key: { type: "string", short: "k" },
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
  const output = consoleOutput(values.verbose?.length ?? 0);
  const domain = values.domain?.replace(/\.$/, "");
  const selector = values.selector;
  if (domain === undefined || selector === undefined) {
    throw new UsageError(
      `testkey: ${
        domain === undefined ? "-d DOMAIN" : "-s SELECTOR"
      } is required (see dkimd testkey --help)`,
    );
  }
  if (!isDomainName(domain)) throw new UsageError(`testkey: "${domain}" is not a domain name`);
  if (!isSelector(selector)) throw new UsageError(`testkey: "${selector}" is not a selector`);
  const timeout = intFlag("testkey", "timeout", values.timeout, 1);
  const resolver = await makeResolver("testkey", {
    nameservers: values.nameserver,
    testKeys: values["test-keys"],
    timeoutMs: timeout === undefined ? undefined : timeout * 1000,
  });
  return await testKey({ domain, selector, keyPath: values.key }, resolver, output);
}
