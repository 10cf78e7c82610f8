/**
 * Drives the real DKIM peers — Mail::DKIM (libmail-dkim-perl), dkimpy (python3-dkim) and
 * OpenDKIM (opendkim) — from Deno tests, so interop tests can sign with one implementation and
 * verify with another (DESIGN.md, "Real peers for interop": the truth is what they accept).
 *
 * Every peer runs as a child process through `Deno.Command` with arguments, never a shell
 * string; messages travel in temporary files that are removed afterwards; every run is bounded
 * by {@link PEER_TIMEOUT_MS}. Public keys never come from the internet: a {@link KeySource}
 * either lists the TXT records (answered from a file by each peer) or names a local DNS server.
 *
 * How each peer is driven:
 * - Mail::DKIM: `tests/helpers/peers/mail_dkim.pl` takes a JSON list of jobs (verify or sign),
 *   replaces `Mail::DKIM::DNS::query` to answer from the records (split into 255-byte
 *   character-strings as DNS does), or points Net::DNS at the named server.
 * - dkimpy: `tests/helpers/peers/dkimpy.py`, the same job format, run by `/usr/bin/python3`
 *   (the `python3` on PATH may be a pyenv interpreter without the dkim module); a `dnsfunc`
 *   answers from the records, or dnspython asks the named server.
 * - OpenDKIM: `opendkim -t FILE` test mode, one process per message, with a generated
 *   configuration: `TestPublicKeys` for records, or `ResolverConfiguration` (an Unbound
 *   configuration forwarding to the named server, since this build uses libunbound and its
 *   `Nameservers` cannot take a port). With `-vv` it prints the Authentication-Results field it
 *   would add, one `dkim=` result per signature; in signing mode it prints the DKIM-Signature.
 *
 * Test mode reads the message file line by line, so a bare LF ends a line as CRLF would, and
 * it rebuilds each header field as `Name: value` (one space after the colon; whitespace and a
 * fold right after the colon dropped). Under simple header canonicalization its results on
 * fields without exactly one space after the colon therefore differ from OpenDKIM as a milter
 * behind Postfix, which offers SMFIP_HDR_LEADSPC and passes fields as sent; see
 * `PEER_DISAGREEMENTS` in tests/interop/peers_test.ts and tests/testdata/messages/README.md.
 *
 * @module
 */

import { concat, fromBase64, fromUtf8, toBase64, utf8 } from "../../lib/bytes.ts";

/** Longest a single peer process may run: a batch of large messages on a loaded 2-core CI. */
export const PEER_TIMEOUT_MS = 60_000;
/** DNS timeout given to each peer, in seconds: a local server answers at once or never. */
export const PEER_DNS_TIMEOUT_SECONDS = 5;
/** Most bytes read from one peer's stdout or stderr: a batch of signed 200 KB messages fits. */
export const PEER_OUTPUT_MAX_BYTES = 64 * 1024 * 1024;
/** OpenDKIM test-mode processes run at once: one message each, two cores to share. */
export const OPENDKIM_CONCURRENCY = 4;
/**
 * `MaximumSignedBytes` given to OpenDKIM when `length` is asked for: larger than any test body,
 * so `l=` covers the whole body (the setting turns on `l=` for every recipient).
 */
export const OPENDKIM_LENGTH_ALL = 1_000_000_000;
/**
 * Longest TXT record OpenDKIM's `TestPublicKeys` reader takes: it reads each line into a buffer
 * of this size (libopendkim `dkim_get_key_file`, BUFRSZ), so longer records are cut.
 */
export const OPENDKIM_TEST_KEY_MAX = 1024;

/** Where each peer's program lives on Debian; absolute, so PATH (pyenv) cannot interfere. */
export const PEER_PROGRAMS = {
  perl: "/usr/bin/perl",
  python: "/usr/bin/python3",
  opendkim: "/usr/sbin/opendkim",
  openssl: "/usr/bin/openssl",
} as const;

/** The peers this harness drives. */
export type PeerName = "Mail::DKIM" | "dkimpy" | "OpenDKIM";

/** The Debian package that installs each peer (and what CI installs). */
export const PEER_PACKAGES: Readonly<Record<PeerName, string>> = {
  "Mail::DKIM": "libmail-dkim-perl",
  dkimpy: "python3-dkim",
  OpenDKIM: "opendkim",
};

const HELPER_DIR = new URL("./peers/", import.meta.url);
const MAIL_DKIM_SCRIPT = new URL("mail_dkim.pl", HELPER_DIR).pathname;
const DKIMPY_SCRIPT = new URL("dkimpy.py", HELPER_DIR).pathname;

/**
 * Where the peers get public keys (RFC 6376 §3.6.2.1: the TXT record at
 * `selector._domainkey.domain`). `records` maps such names to the record text and is answered
 * without any network; `nameserver` (`"127.0.0.1@5353"`, `"::1@5353"`) sends every peer to that
 * local DNS server instead.
 */
export type KeySource =
  | { readonly records: Readonly<Record<string, string>> }
  | { readonly nameserver: string };

/**
 * One signature's result exactly as the peer reports it: Mail::DKIM's `result` and
 * `result_detail` ("pass", "fail", "invalid", "temperror", "none", ...); dkimpy's pass/fail
 * with its exception or log text; OpenDKIM's `dkim=` result with the rest of that
 * Authentication-Results entry (RFC 8601 §2.7.1).
 */
export interface PeerVerdict {
  /** The peer's own word for the outcome. */
  readonly result: string;
  /** The peer's reason text ("" when it gives none). */
  readonly detail: string;
  /** The signature's `d=`, when the peer reports it. */
  readonly domain?: string;
  /** The signature's `s=`, when the peer reports it. */
  readonly selector?: string;
  /** The signature's `a=`, when the peer reports it. */
  readonly algorithm?: string;
}

/** Signing algorithms the peers know (RFC 6376 §3.3, RFC 8463). */
export type PeerAlgorithm = "rsa-sha256" | "rsa-sha1" | "ed25519-sha256";

/** Header/body canonicalization pairs (RFC 6376 §3.4). */
export type PeerCanonicalization =
  | "simple/simple"
  | "simple/relaxed"
  | "relaxed/simple"
  | "relaxed/relaxed";

/** Every canonicalization pair, for table-driven tests. */
export const PEER_CANONICALIZATIONS: readonly PeerCanonicalization[] = [
  "simple/simple",
  "simple/relaxed",
  "relaxed/simple",
  "relaxed/relaxed",
];

/**
 * How a peer should sign. The key is PEM text (`keyPem`) or a PEM file (`keyFile`): RSA as
 * PKCS#1 or PKCS#8, Ed25519 as PKCS#8 (RFC 8410), the forms `openssl genpkey` writes.
 * `headers` is the `h=` list (Mail::DKIM and dkimpy take it as given, duplicates oversign;
 * OpenDKIM takes it as its `SignHeaders` set and signs every instance present). `length` asks
 * for an `l=` tag covering the whole canonical body.
 */
export interface PeerSignOptions {
  /** The `d=` domain. */
  readonly domain: string;
  /** The `s=` selector. */
  readonly selector: string;
  /** The private key as PEM text. */
  readonly keyPem?: string;
  /** A file holding the private key as PEM. */
  readonly keyFile?: string;
  /** The `a=` algorithm. */
  readonly algorithm: PeerAlgorithm;
  /** The `c=` canonicalization pair. */
  readonly canonicalization: PeerCanonicalization;
  /** Header field names to sign; each peer's default when absent. */
  readonly headers?: readonly string[];
  /** Whether to add `l=`. */
  readonly length?: boolean;
}

/** Options for one peer call. */
export interface PeerRunOptions {
  /** Deadline for the peer process in milliseconds; {@link PEER_TIMEOUT_MS} when absent. */
  readonly timeoutMs?: number;
}

/**
 * A peer that is not installed. The message names the Debian package to install.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PeerMissingError } from "./peers.ts";
 * const e = new PeerMissingError("dkimpy", "python3-dkim", 'No module named "dkim"');
 * assert.match(e.message, /apt-get install python3-dkim/);
 * ```
 */
export class PeerMissingError extends Error {
  /** The peer that could not run. */
  readonly peer: string;
  /** The Debian package that provides it. */
  readonly debianPackage: string;

  /** Makes the error for `peer`, provided by `debianPackage`, with what was missing. */
  constructor(peer: string, debianPackage: string, detail: string, options?: ErrorOptions) {
    super(
      `Cannot run ${peer}: Debian package "${debianPackage}" is not installed ` +
        `(apt-get install ${debianPackage}): ${detail}`,
      options,
    );
    this.name = "PeerMissingError";
    this.peer = peer;
    this.debianPackage = debianPackage;
  }
}

/**
 * A peer that ran but failed: a bad exit, a timeout, output too large or unreadable, or a job
 * the peer refused (such as an algorithm it does not support).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PeerError } from "./peers.ts";
 * const e = new PeerError("OpenDKIM", "exited with status 78");
 * assert.equal(e.message, "OpenDKIM failed: exited with status 78");
 * ```
 */
export class PeerError extends Error {
  /** The peer that failed. */
  readonly peer: string;

  /** Makes the error for `peer` with what went wrong. */
  constructor(peer: string, detail: string, options?: ErrorOptions) {
    super(`${peer} failed: ${detail}`, options);
    this.name = "PeerError";
    this.peer = peer;
  }
}

interface ProcessResult {
  readonly code: number;
  readonly stdout: Uint8Array;
  readonly stderr: Uint8Array;
}

/** Modules whose absence means a peer's package is missing, with the package to name. */
const MISSING_MODULES: readonly { pattern: RegExp; peer: string; pkg: string }[] = [
  { pattern: /Can't locate (Mail\/DKIM\S*)/, peer: "Mail::DKIM", pkg: "libmail-dkim-perl" },
  { pattern: /Can't locate (Net\/DNS\S*)/, peer: "Mail::DKIM", pkg: "libnet-dns-perl" },
  {
    pattern: /Can't locate (Crypt\/OpenSSL\/RSA\S*)/,
    peer: "Mail::DKIM",
    pkg: "libcrypt-openssl-rsa-perl",
  },
  { pattern: /No module named '(dkim)\b/, peer: "dkimpy", pkg: "python3-dkim" },
  { pattern: /No module named '(nacl)\b/, peer: "dkimpy", pkg: "python3-nacl" },
  { pattern: /No module named '(dns)\b/, peer: "dkimpy", pkg: "python3-dnspython" },
];

async function readBounded(
  stream: ReadableStream<Uint8Array>,
  max: number,
  onOverflow: () => void,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.length;
    if (size > max) {
      onOverflow();
      throw new RangeError(`Output exceeds ${max} bytes`);
    }
    parts.push(chunk);
  }
  return concat(parts);
}

/** Runs `program` with `args`, bounded in time and output; maps a missing program to its package. */
async function runProcess(
  peer: string,
  pkg: string,
  program: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<ProcessResult> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program, {
      args: [...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      // Keep the user's site-packages and bytecode files out of the dkimpy runs.
      env: { PYTHONNOUSERSITE: "1", PYTHONDONTWRITEBYTECODE: "1", LC_ALL: "C" },
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new PeerMissingError(peer, pkg, `"${program}" not found`, { cause: error });
    }
    throw error;
  }
  let timedOut = false;
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, timeoutMs);
  try {
    const [stdout, stderr, status] = await Promise.all([
      readBounded(child.stdout, PEER_OUTPUT_MAX_BYTES, kill),
      readBounded(child.stderr, PEER_OUTPUT_MAX_BYTES, kill),
      child.status,
    ]);
    if (timedOut) throw new PeerError(peer, `did not finish within ${timeoutMs} ms`);
    const text = fromUtf8(stderr);
    for (const { pattern, peer: who, pkg: missing } of MISSING_MODULES) {
      const m = pattern.exec(text);
      if (m) throw new PeerMissingError(who, missing, `module "${m[1]}" is missing`);
    }
    return { code: status.code, stdout, stderr };
  } catch (error) {
    kill();
    await child.status.catch(() => undefined);
    if (error instanceof PeerError || error instanceof PeerMissingError) throw error;
    if (timedOut) throw new PeerError(peer, `did not finish within ${timeoutMs} ms`);
    throw new PeerError(peer, `could not read its output`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}

async function withTempDir<T>(use: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-peer-" });
  try {
    return await use(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => undefined);
  }
}

function checkKeySource(keys: KeySource): void {
  if ("records" in keys) {
    for (const [name, text] of Object.entries(keys.records)) {
      if (!/^[!-~]+$/.test(name)) {
        throw new TypeError(`Invalid key record name "${name}": expected a DNS name`);
      }
      if (/[\r\n]/.test(text)) {
        throw new TypeError(`Invalid key record for "${name}": contains a line break`);
      }
    }
  } else if (!/^(\[?[0-9A-Fa-f.:]+\]?)@\d{1,5}$/.test(keys.nameserver)) {
    throw new TypeError(`Invalid nameserver "${keys.nameserver}": expected "IP@PORT"`);
  }
}

function splitNameserver(spec: string): { ip: string; port: number } {
  const at = spec.lastIndexOf("@");
  return { ip: spec.slice(0, at).replace(/^\[|\]$/g, ""), port: Number(spec.slice(at + 1)) };
}

async function readKeyPem(options: PeerSignOptions): Promise<string> {
  if (options.keyPem !== undefined) return options.keyPem;
  if (options.keyFile !== undefined) return await Deno.readTextFile(options.keyFile);
  throw new TypeError(`Missing signing key for "${options.selector}._domainkey.${options.domain}"`);
}

type ScriptResult =
  | { readonly verdicts: PeerVerdict[] }
  | { readonly signature: string }
  | { readonly error: string };

/** Runs one of the JSON-job scripts (mail_dkim.pl, dkimpy.py) over a batch of jobs. */
async function runJobScript(
  peer: "Mail::DKIM" | "dkimpy",
  keys: KeySource,
  jobs: readonly Record<string, unknown>[],
  options: PeerRunOptions,
): Promise<ScriptResult[]> {
  checkKeySource(keys);
  if (jobs.length === 0) return [];
  return await withTempDir(async (dir) => {
    const path = `${dir}/jobs.json`;
    await Deno.writeTextFile(
      path,
      JSON.stringify({ keys, dnsTimeout: PEER_DNS_TIMEOUT_SECONDS, jobs }),
    );
    const [program, script] = peer === "Mail::DKIM"
      ? [PEER_PROGRAMS.perl, MAIL_DKIM_SCRIPT]
      : [PEER_PROGRAMS.python, DKIMPY_SCRIPT];
    const run = await runProcess(
      peer,
      PEER_PACKAGES[peer],
      program,
      [script, path],
      options.timeoutMs ?? PEER_TIMEOUT_MS,
    );
    if (run.code !== 0) {
      throw new PeerError(peer, `exited with status ${run.code}: ${fromUtf8(run.stderr).trim()}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(fromUtf8(run.stdout));
    } catch (error) {
      throw new PeerError(peer, "printed output that is not JSON", { cause: error });
    }
    const results = (parsed as { results?: unknown }).results;
    if (!Array.isArray(results) || results.length !== jobs.length) {
      throw new PeerError(peer, `returned no result list for ${jobs.length} jobs`);
    }
    return results as ScriptResult[];
  });
}

function verdictsOf(peer: string, result: ScriptResult, index: number): PeerVerdict[] {
  if ("verdicts" in result) return result.verdicts;
  if ("error" in result) throw new PeerError(peer, `message ${index}: ${result.error}`);
  throw new PeerError(peer, `message ${index}: no verdicts`);
}

async function verifyAllWithScript(
  peer: "Mail::DKIM" | "dkimpy",
  messages: readonly Uint8Array[],
  keys: KeySource,
  options: PeerRunOptions,
): Promise<PeerVerdict[][]> {
  const jobs = messages.map((m) => ({ op: "verify", message: toBase64(m) }));
  const results = await runJobScript(peer, keys, jobs, options);
  return results.map((r, i) => verdictsOf(peer, r, i));
}

async function signAllWithScript(
  peer: "Mail::DKIM" | "dkimpy",
  messages: readonly Uint8Array[],
  sign: PeerSignOptions,
  options: PeerRunOptions,
): Promise<Uint8Array[]> {
  const key = await readKeyPem(sign);
  const jobs = messages.map((m) => ({
    op: "sign",
    message: toBase64(m),
    domain: sign.domain,
    selector: sign.selector,
    key,
    algorithm: sign.algorithm,
    canonicalization: sign.canonicalization,
    headers: sign.headers ?? null,
    length: sign.length ?? false,
  }));
  // Signing needs no keys; an empty record set keeps the scripts' argument shape.
  const results = await runJobScript(peer, { records: {} }, jobs, options);
  return results.map((r, i) => {
    if ("signature" in r) return concat([fromBase64(r.signature), messages[i]]);
    if ("error" in r) throw new PeerError(peer, `message ${i}: ${r.error}`);
    throw new PeerError(peer, `message ${i}: no signature`);
  });
}

/**
 * Verifies every DKIM-Signature of each message with Mail::DKIM::Verifier (RFC 6376 §6), all in
 * one Perl process. Returns, per message, one verdict per signature in header order (an empty
 * list when the message has none).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { verifyAllWithMailDkim } from "./peers.ts";
 * const unsigned = new TextEncoder().encode("From: a@example.com\r\n\r\nHi\r\n");
 * assert.deepEqual(await verifyAllWithMailDkim([unsigned], { records: {} }), [[]]);
 * ```
 */
export async function verifyAllWithMailDkim(
  messages: readonly Uint8Array[],
  keys: KeySource,
  options: PeerRunOptions = {},
): Promise<PeerVerdict[][]> {
  return await verifyAllWithScript("Mail::DKIM", messages, keys, options);
}

/**
 * Verifies every DKIM-Signature of one message with Mail::DKIM::Verifier; see
 * {@link verifyAllWithMailDkim}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateTestKey, signWithDkimpy, verifyWithMailDkim } from "./peers.ts";
 * const key = await generateTestKey("rsa-sha256");
 * const message = new TextEncoder().encode("From: a@example.com\r\n\r\nHi\r\n");
 * const signed = await signWithDkimpy(message, {
 *   domain: "example.com", selector: "s", keyPem: key.privatePem,
 *   algorithm: "rsa-sha256", canonicalization: "relaxed/relaxed",
 * });
 * const records = { "s._domainkey.example.com": key.record };
 * const [verdict] = await verifyWithMailDkim(signed, { records });
 * assert.equal(verdict.result, "pass");
 * ```
 */
export async function verifyWithMailDkim(
  message: Uint8Array,
  keys: KeySource,
  options: PeerRunOptions = {},
): Promise<PeerVerdict[]> {
  return (await verifyAllWithMailDkim([message], keys, options))[0];
}

/**
 * Verifies every DKIM-Signature of each message with dkimpy, `dkim.DKIM(m).verify(idx=i)` for
 * each signature i, all in one Python process. A verdict is "pass" or "fail"; the detail is
 * dkimpy's exception (`ValidationError: body hash mismatch ...`) or logged error text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { verifyAllWithDkimpy } from "./peers.ts";
 * const unsigned = new TextEncoder().encode("From: a@example.com\r\n\r\nHi\r\n");
 * assert.deepEqual(await verifyAllWithDkimpy([unsigned], { records: {} }), [[]]);
 * ```
 */
export async function verifyAllWithDkimpy(
  messages: readonly Uint8Array[],
  keys: KeySource,
  options: PeerRunOptions = {},
): Promise<PeerVerdict[][]> {
  return await verifyAllWithScript("dkimpy", messages, keys, options);
}

/**
 * Verifies every DKIM-Signature of one message with dkimpy; see {@link verifyAllWithDkimpy}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { verifyWithDkimpy } from "./peers.ts";
 * const message = new TextEncoder().encode(
 *   "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=AAAA; b=AAAA\r\n" +
 *     "From: a@example.com\r\n\r\nHi\r\n",
 * );
 * const [verdict] = await verifyWithDkimpy(message, { records: {} });
 * assert.equal(verdict.result, "fail");
 * ```
 */
export async function verifyWithDkimpy(
  message: Uint8Array,
  keys: KeySource,
  options: PeerRunOptions = {},
): Promise<PeerVerdict[]> {
  return (await verifyAllWithDkimpy([message], keys, options))[0];
}

/**
 * Signs each message with Mail::DKIM::Signer, all in one Perl process, and returns each message
 * with the DKIM-Signature field prepended. Mail::DKIM 1.20230212 (Debian 12) signs rsa-sha1 and
 * rsa-sha256 only; asking it for ed25519-sha256 throws a {@link PeerError} saying so.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateTestKey, signAllWithMailDkim } from "./peers.ts";
 * const key = await generateTestKey("rsa-sha256");
 * const message = new TextEncoder().encode("From: a@example.com\r\n\r\nHi\r\n");
 * const [signed] = await signAllWithMailDkim([message], {
 *   domain: "example.com", selector: "s", keyPem: key.privatePem,
 *   algorithm: "rsa-sha256", canonicalization: "simple/simple",
 * });
 * assert.match(new TextDecoder().decode(signed), /^DKIM-Signature: v=1; a=rsa-sha256;/);
 * ```
 */
export async function signAllWithMailDkim(
  messages: readonly Uint8Array[],
  sign: PeerSignOptions,
  options: PeerRunOptions = {},
): Promise<Uint8Array[]> {
  return await signAllWithScript("Mail::DKIM", messages, sign, options);
}

/**
 * Signs one message with Mail::DKIM::Signer; see {@link signAllWithMailDkim}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateTestKey, signWithMailDkim } from "./peers.ts";
 * const key = await generateTestKey("rsa-sha256");
 * const message = new TextEncoder().encode("From: a@example.com\r\n\r\nHi\r\n");
 * const signed = await signWithMailDkim(message, {
 *   domain: "example.com", selector: "s", keyPem: key.privatePem,
 *   algorithm: "rsa-sha256", canonicalization: "relaxed/simple", length: true,
 * });
 * assert.match(new TextDecoder().decode(signed), / l=4;/);
 * ```
 */
export async function signWithMailDkim(
  message: Uint8Array,
  sign: PeerSignOptions,
  options: PeerRunOptions = {},
): Promise<Uint8Array> {
  return (await signAllWithMailDkim([message], sign, options))[0];
}

/**
 * Signs each message with dkimpy's `DKIM.sign`, all in one Python process, and returns each
 * message with the DKIM-Signature field prepended. dkimpy's default `h=` oversigns From.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateTestKey, signAllWithDkimpy } from "./peers.ts";
 * const key = await generateTestKey("ed25519-sha256");
 * const message = new TextEncoder().encode("From: a@example.com\r\n\r\nHi\r\n");
 * const [signed] = await signAllWithDkimpy([message], {
 *   domain: "example.com", selector: "e", keyPem: key.privatePem,
 *   algorithm: "ed25519-sha256", canonicalization: "relaxed/relaxed",
 * });
 * assert.match(new TextDecoder().decode(signed), /a=ed25519-sha256/);
 * ```
 */
export async function signAllWithDkimpy(
  messages: readonly Uint8Array[],
  sign: PeerSignOptions,
  options: PeerRunOptions = {},
): Promise<Uint8Array[]> {
  return await signAllWithScript("dkimpy", messages, sign, options);
}

/**
 * Signs one message with dkimpy; see {@link signAllWithDkimpy}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateTestKey, signWithDkimpy } from "./peers.ts";
 * const key = await generateTestKey("rsa-sha256");
 * const message = new TextEncoder().encode("From: a@example.com\r\nTo: b@example.org\r\n\r\n");
 * const signed = await signWithDkimpy(message, {
 *   domain: "example.com", selector: "s", keyPem: key.privatePem,
 *   algorithm: "rsa-sha256", canonicalization: "simple/simple", headers: ["from", "to"],
 * });
 * assert.match(new TextDecoder().decode(signed), /h=from : to;/);
 * ```
 */
export async function signWithDkimpy(
  message: Uint8Array,
  sign: PeerSignOptions,
  options: PeerRunOptions = {},
): Promise<Uint8Array> {
  return (await signAllWithDkimpy([message], sign, options))[0];
}

/** Runs `work` over `items` with at most `limit` in flight, keeping the order of results. */
async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * An Unbound configuration for libunbound inside OpenDKIM: forward every query to the one local
 * server, with no DNSSEC validation and no root hints, so nothing leaves the machine.
 */
function unboundConfig(nameserver: string): string {
  const { ip, port } = splitNameserver(nameserver);
  return [
    "server:",
    "  do-not-query-localhost: no",
    '  module-config: "iterator"',
    "  qname-minimisation: no",
    "  use-syslog: no",
    '  chroot: ""',
    '  username: ""',
    '  directory: ""',
    "  verbosity: 0",
    "forward-zone:",
    '  name: "."',
    `  forward-addr: ${ip}@${port}`,
    "",
  ].join("\n");
}

/** Writes the key lines OpenDKIM needs for `keys` into `dir`; returns the configuration lines. */
async function openDkimKeyConfig(dir: string, keys: KeySource): Promise<string[]> {
  if ("records" in keys) {
    const lines = Object.entries(keys.records).map(([name, text]) => {
      if (text.length > OPENDKIM_TEST_KEY_MAX) {
        throw new RangeError(
          `Key record for "${name}" is ${text.length} bytes: OpenDKIM's TestPublicKeys reads ` +
            `at most ${OPENDKIM_TEST_KEY_MAX}; use a nameserver key source`,
        );
      }
      return `${name.replace(/\.$/, "")} ${text}\n`;
    });
    await Deno.writeTextFile(`${dir}/test_public_keys`, lines.join(""));
    return [`TestPublicKeys ${dir}/test_public_keys`];
  }
  await Deno.writeTextFile(`${dir}/unbound.conf`, unboundConfig(keys.nameserver));
  return [`ResolverConfiguration ${dir}/unbound.conf`];
}

/** `opendkim -t FILE` in `dir` with the configuration `lines`; returns its output. */
async function runOpenDkimTest(
  dir: string,
  lines: readonly string[],
  message: Uint8Array,
  verbose: boolean,
  options: PeerRunOptions,
): Promise<{ stdout: string; stderr: string; file: string }> {
  const conf = `${dir}/opendkim.conf`;
  const file = `${dir}/message.eml`;
  await Deno.writeTextFile(
    conf,
    ["# Written by tests/helpers/peers.ts for one opendkim -t run.", ...lines, "Syslog no", ""]
      .join("\n"),
  );
  await Deno.writeFile(file, message);
  const run = await runProcess(
    "OpenDKIM",
    PEER_PACKAGES.OpenDKIM,
    PEER_PROGRAMS.opendkim,
    ["-x", conf, ...(verbose ? ["-vv"] : []), "-t", file],
    options.timeoutMs ?? PEER_TIMEOUT_MS,
  );
  const stdout = fromUtf8(run.stdout);
  const stderr = fromUtf8(run.stderr);
  if (run.code !== 0) {
    throw new PeerError("OpenDKIM", `exited with status ${run.code}: ${stderr.trim()}`);
  }
  return { stdout, stderr, file };
}

/**
 * Reads the per-signature results from the Authentication-Results field OpenDKIM's test mode
 * prints (`### INSHEADER: ... hname='Authentication-Results' hvalue='...'`), one `dkim=` entry
 * per signature in header order (RFC 8601 §2.7.1).
 */
function parseOpenDkimResults(stdout: string): PeerVerdict[] {
  const m = /hname='Authentication-Results' hvalue='([\s\S]*?)'\n(?:###|opendkim: |$)/.exec(
    stdout,
  );
  if (!m) return [];
  const verdicts: PeerVerdict[] = [];
  // OpenDKIM puts each resinfo on its own folded line ending ";".
  for (const raw of m[1].split(/;\s*\n\s*/)) {
    const entry = raw.trim().replace(/;$/, "");
    const r = /^dkim=(\S+)\s*(.*)$/s.exec(entry);
    if (!r) continue;
    const props = r[2];
    const firstProp = props.search(/(?:^|\s)header\.[a-z]+=/);
    const detail = (firstProp === -1 ? props : props.slice(0, firstProp)).trim();
    const prop = (name: string) => new RegExp(`header\\.${name}=(\\S+)`).exec(props)?.[1];
    const verdict: { -readonly [K in keyof PeerVerdict]: PeerVerdict[K] } = {
      result: r[1],
      detail,
    };
    const domain = prop("d");
    const selector = prop("s");
    const algorithm = prop("a");
    if (domain) verdict.domain = domain;
    if (selector) verdict.selector = selector;
    if (algorithm) verdict.algorithm = algorithm;
    verdicts.push(verdict);
  }
  return verdicts;
}

/**
 * Verifies each message with OpenDKIM's test mode (`opendkim -t FILE -vv`, `Mode v`), one
 * process per message, {@link OPENDKIM_CONCURRENCY} at a time. Returns, per message, one verdict
 * per `dkim=` entry of the Authentication-Results field OpenDKIM adds ("pass", "fail",
 * "neutral", "permerror", "temperror", "policy"); the detail is the rest of that entry before
 * its `header.*` properties, such as `reason="signature verification failed" (2048-bit key)`.
 * A message without signatures gives an empty list.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { verifyAllWithOpenDkim } from "./peers.ts";
 * const unsigned = new TextEncoder().encode("From: a@example.com\r\n\r\nHi\r\n");
 * assert.deepEqual(await verifyAllWithOpenDkim([unsigned], { records: {} }), [[]]);
 * ```
 */
export async function verifyAllWithOpenDkim(
  messages: readonly Uint8Array[],
  keys: KeySource,
  options: PeerRunOptions = {},
): Promise<PeerVerdict[][]> {
  checkKeySource(keys);
  return await mapLimited(messages, OPENDKIM_CONCURRENCY, (message) =>
    withTempDir(async (dir) => {
      const lines = [
        "Mode v",
        ...(await openDkimKeyConfig(dir, keys)),
        `DNSTimeout ${PEER_DNS_TIMEOUT_SECONDS}`,
        "MinimumKeyBits 1024",
      ];
      const { stdout } = await runOpenDkimTest(dir, lines, message, true, options);
      return parseOpenDkimResults(stdout);
    }));
}

/**
 * Verifies one message with OpenDKIM's test mode; see {@link verifyAllWithOpenDkim}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateTestKey, signWithOpenDkim, verifyWithOpenDkim } from "./peers.ts";
 * const key = await generateTestKey("rsa-sha256");
 * const message = new TextEncoder().encode("From: a@example.com\r\n\r\nHi\r\n");
 * const signed = await signWithOpenDkim(message, {
 *   domain: "example.com", selector: "s", keyPem: key.privatePem,
 *   algorithm: "rsa-sha256", canonicalization: "simple/simple",
 * });
 * const [verdict] = await verifyWithOpenDkim(signed, { records: {} });
 * assert.notEqual(verdict.result, "pass"); // no key published
 * ```
 */
export async function verifyWithOpenDkim(
  message: Uint8Array,
  keys: KeySource,
  options: PeerRunOptions = {},
): Promise<PeerVerdict[]> {
  return (await verifyAllWithOpenDkim([message], keys, options))[0];
}

/**
 * Signs each message with OpenDKIM's test mode (`opendkim -t FILE`, `Mode s`, a KeyTable and a
 * SigningTable matching every sender), one process per message, and returns each message with
 * the DKIM-Signature field OpenDKIM prints prepended (its folds are CRLF and a tab). OpenDKIM
 * signs from the command line this way in every algorithm it lists in `opendkim -V`, including
 * ed25519-sha256; opendkim-testmsg is not needed. The message is signed as test mode reads it
 * (see the module notes), so a message that test mode rewrites may not verify as sent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateTestKey, signAllWithOpenDkim } from "./peers.ts";
 * const key = await generateTestKey("rsa-sha256");
 * const message = new TextEncoder().encode("From: a@example.com\r\nSubject: x\r\n\r\nHi\r\n");
 * const [signed] = await signAllWithOpenDkim([message], {
 *   domain: "example.com", selector: "s", keyPem: key.privatePem,
 *   algorithm: "rsa-sha256", canonicalization: "relaxed/relaxed", headers: ["From"],
 * });
 * assert.match(new TextDecoder().decode(signed), /h=From;/);
 * ```
 */
export async function signAllWithOpenDkim(
  messages: readonly Uint8Array[],
  sign: PeerSignOptions,
  options: PeerRunOptions = {},
): Promise<Uint8Array[]> {
  const key = await readKeyPem(sign);
  for (const [what, value] of [["domain", sign.domain], ["selector", sign.selector]]) {
    if (!/^[A-Za-z0-9._-]+$/.test(value)) {
      throw new TypeError(`Invalid ${what} "${value}": OpenDKIM's KeyTable needs a plain name`);
    }
  }
  const headers = sign.headers?.map((h) => {
    if (!/^[!-9;-~]+$/.test(h) || h.includes(",")) {
      throw new TypeError(`Invalid header name "${h}" for OpenDKIM's SignHeaders`);
    }
    return h;
  });
  return await mapLimited(
    messages,
    OPENDKIM_CONCURRENCY,
    (message, index) =>
      withTempDir(async (dir) => {
        const keyFile = `${dir}/private.pem`;
        await Deno.writeTextFile(keyFile, key, { mode: 0o600 });
        await Deno.writeTextFile(
          `${dir}/key_table`,
          `peer ${sign.domain}:${sign.selector}:${keyFile}\n`,
        );
        await Deno.writeTextFile(`${dir}/signing_table`, "* peer\n");
        const lines = [
          "Mode s",
          `KeyTable ${dir}/key_table`,
          `SigningTable refile:${dir}/signing_table`,
          `Canonicalization ${sign.canonicalization}`,
          `SignatureAlgorithm ${sign.algorithm}`,
          // Temp dirs live under /tmp, which OpenDKIM calls unsafe for keys.
          "RequireSafeKeys no",
          ...(headers ? [`SignHeaders ${[...new Set(headers)].join(",")}`] : []),
          ...(sign.length ? [`MaximumSignedBytes ${OPENDKIM_LENGTH_ALL}`] : []),
        ];
        const { stdout, stderr, file } = await runOpenDkimTest(dir, lines, message, false, options);
        const marker = `opendkim: ${file}:\n`;
        const at = stdout.indexOf(marker);
        const field = at === -1 ? "" : stdout.slice(at + marker.length).replace(/\n$/, "");
        if (!field.startsWith("DKIM-Signature:")) {
          const said = (stdout + stderr).trim() || "no output";
          throw new PeerError("OpenDKIM", `message ${index} not signed: ${said}`);
        }
        // Folds come out as CRLF; only the printf's final line end is a bare LF.
        const crlf = field.replace(/\r?\n/g, "\r\n") + "\r\n";
        return concat([utf8(crlf), message]);
      }),
  );
}

/**
 * Signs one message with OpenDKIM's test mode; see {@link signAllWithOpenDkim}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateTestKey, signWithOpenDkim } from "./peers.ts";
 * const key = await generateTestKey("ed25519-sha256");
 * const message = new TextEncoder().encode("From: a@example.com\r\n\r\nHi\r\n");
 * const signed = await signWithOpenDkim(message, {
 *   domain: "example.com", selector: "e", keyPem: key.privatePem,
 *   algorithm: "ed25519-sha256", canonicalization: "relaxed/simple", length: true,
 * });
 * assert.match(new TextDecoder().decode(signed), /a=ed25519-sha256; c=relaxed\/simple;/);
 * ```
 */
export async function signWithOpenDkim(
  message: Uint8Array,
  sign: PeerSignOptions,
  options: PeerRunOptions = {},
): Promise<Uint8Array> {
  return (await signAllWithOpenDkim([message], sign, options))[0];
}

/** A freshly generated key pair for tests, with the DNS TXT record that publishes it. */
export interface TestKey {
  /** The algorithm the key signs with. */
  readonly algorithm: PeerAlgorithm;
  /** The private key, PKCS#8 PEM as `openssl genpkey` writes it. */
  readonly privatePem: string;
  /** The key record text (RFC 6376 §3.6.1; RFC 8463 §4 for Ed25519's raw 32-byte `p=`). */
  readonly record: string;
}

/** Most RSA key bits accepted: 4096-bit keys already need records split across strings. */
export const TEST_KEY_MAX_BITS = 8192;

/**
 * Generates a key with `openssl genpkey` (Debian: openssl): RSA of `bits` bits (2048 by
 * default) for rsa-* algorithms, or Ed25519. The record is `v=DKIM1; k=rsa; p=<SPKI base64>`
 * or `v=DKIM1; k=ed25519; p=<raw public key base64>`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateTestKey } from "./peers.ts";
 * const key = await generateTestKey("ed25519-sha256");
 * assert.match(key.privatePem, /^-----BEGIN PRIVATE KEY-----/);
 * assert.match(key.record, /^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
 * ```
 */
export async function generateTestKey(
  algorithm: PeerAlgorithm,
  bits = 2048,
  options: PeerRunOptions = {},
): Promise<TestKey> {
  if (!Number.isInteger(bits) || bits < 512 || bits > TEST_KEY_MAX_BITS) {
    throw new RangeError(`Invalid RSA key size ${bits}: expected 512 to ${TEST_KEY_MAX_BITS}`);
  }
  const ed = algorithm === "ed25519-sha256";
  const timeoutMs = options.timeoutMs ?? PEER_TIMEOUT_MS;
  const openssl = (args: string[]) =>
    runProcess("OpenSSL", "openssl", PEER_PROGRAMS.openssl, args, timeoutMs);
  return await withTempDir(async (dir) => {
    const pem = `${dir}/private.pem`;
    const gen = await openssl(
      ed
        ? ["genpkey", "-algorithm", "ed25519", "-out", pem]
        : ["genpkey", "-algorithm", "RSA", "-pkeyopt", `rsa_keygen_bits:${bits}`, "-out", pem],
    );
    if (gen.code !== 0) throw new PeerError("OpenSSL", fromUtf8(gen.stderr).trim());
    const pub = await openssl(["pkey", "-in", pem, "-pubout", "-outform", "DER"]);
    if (pub.code !== 0) throw new PeerError("OpenSSL", fromUtf8(pub.stderr).trim());
    // An Ed25519 SubjectPublicKeyInfo ends with the 32-byte key RFC 8463 §4 publishes.
    const p = toBase64(ed ? pub.stdout.subarray(pub.stdout.length - 32) : pub.stdout);
    return {
      algorithm,
      privatePem: await Deno.readTextFile(pem),
      record: `v=DKIM1; k=${ed ? "ed25519" : "rsa"}; p=${p}`,
    };
  });
}

/** What one peer is and can do, as {@link describePeer} finds it on this machine. */
export interface PeerInfo {
  /** The peer. */
  readonly peer: PeerName;
  /** Its version as it reports it (Mail::DKIM 1.20230212, dkimpy 1.1.4, OpenDKIM 2.11.0). */
  readonly version: string;
  /** Algorithms it can sign and verify. */
  readonly algorithms: readonly PeerAlgorithm[];
}

/**
 * Asks a peer its version and which algorithms it handles: Mail::DKIM gained ed25519-sha256 in
 * 1.20230630 (Debian 12 ships 1.20230212), dkimpy needs PyNaCl for it, OpenDKIM lists its own
 * in `opendkim -V`. Throws {@link PeerMissingError} when the peer is not installed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describePeer } from "./peers.ts";
 * const info = await describePeer("OpenDKIM");
 * assert.ok(info.algorithms.includes("rsa-sha256"));
 * ```
 */
export async function describePeer(
  peer: PeerName,
  options: PeerRunOptions = {},
): Promise<PeerInfo> {
  const timeoutMs = options.timeoutMs ?? PEER_TIMEOUT_MS;
  const pkg = PEER_PACKAGES[peer];
  if (peer === "OpenDKIM") {
    const run = await runProcess(peer, pkg, PEER_PROGRAMS.opendkim, ["-V"], timeoutMs);
    const text = fromUtf8(run.stdout) + fromUtf8(run.stderr);
    const version = /OpenDKIM Filter v(\S+)/.exec(text)?.[1];
    if (!version) throw new PeerError(peer, `unexpected "opendkim -V" output: ${text.trim()}`);
    const listed = /Supported signing algorithms:\s*\n((?:\s+\S+\n)+)/.exec(text)?.[1] ?? "";
    const algorithms = listed.split(/\s+/).filter((a): a is PeerAlgorithm =>
      a === "rsa-sha1" || a === "rsa-sha256" || a === "ed25519-sha256"
    );
    return { peer, version: `OpenDKIM ${version}`, algorithms };
  }
  const [program, args] = peer === "Mail::DKIM"
    ? [PEER_PROGRAMS.perl, [
      "-MMail::DKIM",
      "-e",
      "print qq{$Mail::DKIM::VERSION\\n}; " +
      "print eval { require Mail::DKIM::Algorithm::ed25519_sha256; 1 } ? qq{ed25519\\n} : qq{\\n}",
    ]]
    : [PEER_PROGRAMS.python, [
      "-c",
      "import importlib.metadata, dkim\n" +
      "print(importlib.metadata.version('dkimpy'))\n" +
      "try:\n  import nacl.signing\n  print('ed25519')\nexcept ImportError:\n  print('')\n",
    ]];
  const run = await runProcess(peer, pkg, program, args, timeoutMs);
  if (run.code !== 0) throw new PeerError(peer, fromUtf8(run.stderr).trim());
  const [version, ed] = fromUtf8(run.stdout).split("\n");
  const algorithms: PeerAlgorithm[] = ["rsa-sha1", "rsa-sha256"];
  if (ed === "ed25519") algorithms.push("ed25519-sha256");
  return { peer, version: `${peer} ${version.trim()}`, algorithms };
}
