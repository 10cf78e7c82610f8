/**
 * Checking a published DKIM key record as `dkimd testkey` does, without I/O: the record tag by
 * tag (RFC 6376 §3.6.1) as the verifier's own parser reads it (`readKeyRecord()`), its key's
 * size (RFC 8301 §3.2), testing mode (`t=y`), `h=`/`k=` agreement, and, given the private key,
 * that the record publishes its public half. Each problem is one plain line.
 *
 * @module
 */
import { asciiLower, equals } from "../bytes.ts";
import { isHashAlgorithm } from "../crypto/hash.ts";
import { KeyError } from "../crypto/key_error.ts";
import {
  type KeyType,
  MAX_RSA_BITS_REQUIRED,
  MIN_RSA_BITS,
  RECOMMENDED_RSA_BITS,
} from "../crypto/key_type.ts";
import { MAX_PRIVATE_KEY_BITS, type SigningKey } from "../crypto/private_key.ts";
import { importPublicKey, type VerifyingKey } from "../crypto/public_key.ts";
import { KEY_RECORD_TAGS, type KeyRecordFault, readKeyRecord } from "../dkim/key_record.ts";
import { TagListError } from "../dkim/tag_list.ts";

/**
 * The status of a check, opendkim-testkey's exit statuses (sysexits.h): `ok` 0 (EX_OK),
 * `mismatch` 65 (EX_DATAERR: the published key is not the private key's), `unavailable` 69
 * (EX_UNAVAILABLE: no usable record).
 */
export const KEY_CHECK_STATUS = {
  ok: 0,
  mismatch: 65,
  unavailable: 69,
} as const;

/** How bad a finding is: an `error` fails the test, a `warning` does not, `info` is detail. */
export type Severity = "error" | "warning" | "info";

/** One thing found about a key record, as one line of text. */
export interface Finding {
  /** How bad it is. */
  readonly severity: Severity;
  /** What was found, in one plain line. */
  readonly message: string;
  /** The exit status an `error` gives: {@link KEY_CHECK_STATUS} `mismatch` or `unavailable`. */
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

function describeType(type: KeyType): string {
  return type === "rsa" ? "an RSA" : "an Ed25519";
}

/**
 * Checks the text of one key record tag by tag (RFC 6376 §3.6.1), and, given the private key,
 * that the record publishes its public half. Pure: no I/O. Every problem is a {@link Finding};
 * the same record always gives the same findings, so `dkimd testkey`'s output is predictable.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkKeyRecord } from "./key_record_check.ts";
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
  const fail = (message: string, status: number = KEY_CHECK_STATUS.unavailable) =>
    findings.push({ severity: "error", message, status });
  const done = (publicKey?: VerifyingKey): KeyCheck => {
    const statuses = findings.map((f) => f.status ?? 0);
    const status = statuses.includes(KEY_CHECK_STATUS.unavailable)
      ? KEY_CHECK_STATUS.unavailable
      : statuses.includes(KEY_CHECK_STATUS.mismatch)
      ? KEY_CHECK_STATUS.mismatch
      : KEY_CHECK_STATUS.ok;
    return { status, findings, ...(publicKey ? { publicKey } : {}) };
  };

  const reading = readKeyRecord(text);
  const has = (fault: KeyRecordFault) => reading.problems.some((p) => p.fault === fault);
  const [first] = reading.problems;
  if (first?.fault === "syntax") {
    const e = first.cause;
    fail(
      e instanceof TagListError
        ? `key record syntax error at character ${e.offset + 1}: ${e.message}`
        : first.message,
    );
    return done();
  }
  const { tags, keyType } = reading;

  // v= (§3.6.1): optional, but when present it is first and exactly "DKIM1".
  const v = tags.get("v");
  if (v === undefined) info("no v= tag (allowed; v=DKIM1 first is usual)");
  else if (has("version")) fail(`invalid key version v=${v}: a key record has v=DKIM1`);
  else if (has("version-place")) fail("v=DKIM1 is not the first tag, as it must be");
  else info("v=DKIM1");

  // k=: rsa when absent.
  if (keyType !== undefined) info(tags.has("k") ? `k=${keyType}` : "no k= tag: the key is RSA");
  else {
    fail(
      `unknown key type k=${
        asciiLower(tags.get("k") ?? "")
      }: DKIM keys are rsa (RFC 6376) or ed25519 (RFC 8463)`,
    );
  }

  // h=: the hashes this key may sign with. Verifiers refuse sha1 (RFC 8301 §3.1), so a list
  // without sha256 leaves the key nothing it can verify; Ed25519 signs SHA-256 only (RFC 8463).
  const hashes = reading.hashes;
  if (hashes !== undefined) {
    const h = tags.get("h");
    for (const name of hashes.filter((x) => !isHashAlgorithm(x))) {
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
  if (has("service")) fail(`key not for email: s=${s} excludes "email"`);
  else if (s !== undefined) info(`s=${reading.services.join(":")}`);

  // t=: flags. Unknown flags are ignored by verifiers (§3.6.1).
  for (const flag of reading.flags) {
    if (flag === "y") {
      warn(
        "testing mode (t=y): verifiers may treat failed signatures as unsigned; remove t=y once signing works",
      );
    } else if (flag === "s") info("t=s: the i= domain must be d= itself, not a subdomain");
    else info(`t= flag "${flag}" is unknown and ignored`);
  }

  // g= was dropped by RFC 6376 but older verifiers still match it against i=.
  const g = tags.get("g");
  if (g !== undefined && g !== "*") {
    warn(`g=${g} is obsolete (RFC 4871); verifiers that still honour it refuse other i= users`);
  }
  if (tags.has("n")) info(`n=${tags.get("n")}`);
  for (const name of tags.keys()) {
    if (!KEY_RECORD_TAGS.includes(name)) info(`unknown tag ${name}= is ignored`);
  }

  // p=: the key.
  const pBytes = reading.publicKey;
  let publicKey: VerifyingKey | undefined;
  if (has("no-key")) fail("p= is missing: a key record must publish a key");
  else if (has("key-encoding")) fail("p= is not valid base64");
  else if (pBytes?.length === 0) fail("key is revoked (p= empty)");
  if (pBytes !== undefined && pBytes.length > 0 && keyType !== undefined) {
    try {
      // As large as any private key dkimd signs with, so a key it signs with is always read.
      publicKey = await importPublicKey(keyType, pBytes, { maxBits: MAX_PRIVATE_KEY_BITS });
    } catch (e) {
      if (!(e instanceof KeyError)) throw e;
      fail(`p= is not a usable ${keyType} key: ${e.message.replace(/^Cannot use [^:]*: /, "")}`);
    }
  }
  if (publicKey !== undefined) {
    if (publicKey.type === "rsa") {
      if (publicKey.bits < MIN_RSA_BITS) {
        fail(
          `the RSA key has ${publicKey.bits} bits: RFC 8301 §3.2 verifiers refuse keys under ${MIN_RSA_BITS}`,
        );
      } else if (publicKey.bits < RECOMMENDED_RSA_BITS) {
        warn(
          `the RSA key has ${publicKey.bits} bits; RFC 8301 §3.2 recommends ${RECOMMENDED_RSA_BITS} or more`,
        );
      } else if (publicKey.bits > MAX_RSA_BITS_REQUIRED) {
        warn(
          `the RSA key has ${publicKey.bits} bits; verifiers need handle only ${MAX_RSA_BITS_REQUIRED} (RFC 8301 §3.2), so some will refuse it`,
        );
      } else info(`p= holds a ${publicKey.bits}-bit RSA key`);
    } else info("p= holds an Ed25519 key");
    if (privateKey !== undefined) {
      if (privateKey.type !== publicKey.type) {
        fail(
          `public key does not match private key: the record holds ${
            describeType(publicKey.type)
          } key, the private key is ${privateKey.type === "rsa" ? "RSA" : "Ed25519"}`,
          KEY_CHECK_STATUS.mismatch,
        );
      } else if (!equals(privateKey.spki, publicKey.spki)) {
        fail("public key does not match private key", KEY_CHECK_STATUS.mismatch);
      } else info("p= is the public half of the private key");
    }
  }

  // The verifier's reading has the last word, so testkey never passes what it refuses.
  if (reading.record === undefined && !findings.some((f) => f.severity === "error")) {
    fail(first.message);
  }
  return done(publicKey);
}
