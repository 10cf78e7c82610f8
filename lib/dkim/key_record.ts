/**
 * DKIM key records, the TXT records at `selector._domainkey.domain` (RFC 6376 §3.6.1): the one
 * parser of their tags. The verifier takes a record or its first problem
 * ({@link parseKeyRecord}); `dkimd testkey` reads every tag and every problem of the same
 * reading ({@link readKeyRecord}), so the two never disagree on what a record says.
 *
 * @module
 */
import { asciiLower, fromBase64 } from "../bytes.ts";
import type { HashAlgorithm } from "../crypto/hash.ts";
import type { KeyType } from "../crypto/key_type.ts";
import { DkimError } from "./dkim_error.ts";
import { parseTagList, stripWhitespace, TagListError, trimFws } from "./tag_list.ts";

/** The tags RFC 6376 §3.6.1 defines for a key record; verifiers ignore any other. */
export const KEY_RECORD_TAGS: readonly string[] = ["v", "g", "h", "k", "n", "p", "s", "t"];

/** A parsed key record. */
export interface KeyRecord {
  /** `k=` (default `rsa`). */
  readonly keyType: KeyType;
  /** `p=`, decoded; empty when the key is revoked. */
  readonly publicKey: Uint8Array;
  /** `h=`: acceptable hash algorithms; undefined means all (RFC 6376 §3.6.1). */
  readonly hashes?: readonly string[];
  /** `s=`: service types (default `*`). */
  readonly services: readonly string[];
  /** `t=` flags, lower-cased (`y` testing, `s` strict identity). */
  readonly flags: readonly string[];
  /** The record text it came from. */
  readonly text: string;
}

/**
 * What makes a key record unusable (RFC 6376 §3.6.1), each a permerror for a verifier:
 * - `syntax`: the tag list cannot be parsed (RFC 6376 §3.2);
 * - `version`: `v=` is not `DKIM1`;
 * - `version-place`: `v=DKIM1` is not the first tag;
 * - `key-type`: `k=` names a type other than `rsa` and `ed25519`;
 * - `no-key`: there is no `p=`;
 * - `key-encoding`: `p=` is not base64;
 * - `service`: `s=` excludes `email`.
 */
export type KeyRecordFault =
  | "syntax"
  | "version"
  | "version-place"
  | "key-type"
  | "no-key"
  | "key-encoding"
  | "service";

/** One problem of a key record. */
export interface KeyRecordProblem {
  /** What is wrong. */
  readonly fault: KeyRecordFault;
  /** The verifier's words for it: the reason of its permerror. */
  readonly message: string;
  /** The error behind it: the `TagListError` of a `syntax` fault, the base64 error of `p=`. */
  readonly cause?: unknown;
}

/** A key record read tag by tag: what each tag says, and every problem, in the verifier's order. */
export interface KeyRecordReading {
  /** Every tag, in record order, value as written; empty when the tag list cannot be parsed. */
  readonly tags: ReadonlyMap<string, string>;
  /** `k=` (default `rsa`), unless it names an unknown type. */
  readonly keyType?: KeyType;
  /** `p=`, decoded, when it is present and base64; empty when the key is revoked. */
  readonly publicKey?: Uint8Array;
  /** `h=`, lower-cased; undefined without `h=` (all hashes allowed). */
  readonly hashes?: readonly string[];
  /** `s=`, lower-cased (default `*`). */
  readonly services: readonly string[];
  /** `t=` flags, lower-cased. */
  readonly flags: readonly string[];
  /** Every problem, in the order a verifier meets them; empty for a usable record. */
  readonly problems: readonly KeyRecordProblem[];
  /** The record as a verifier uses it, when there is no problem. */
  readonly record?: KeyRecord;
}

/** The DNS name of a key record: `selector._domainkey.domain` (RFC 6376 §3.6.2.1). */
export function keyRecordName(selector: string, domain: string): string {
  return `${selector}._domainkey.${domain}`;
}

/** A colon-separated list of a key record (`h=`, `s=`, `t=`), trimmed and lower-cased. */
function tagValues(value: string): string[] {
  return value.split(":").map((s) => asciiLower(trimFws(s))).filter((s) => s !== "");
}

/**
 * Reads a key record tag by tag without throwing: what each tag says and every problem found
 * (see {@link KeyRecordFault}), so a checker can report them all. An empty `p=` is not a
 * problem here (the key is revoked, which the caller says).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readKeyRecord } from "./key_record.ts";
 * const r = readKeyRecord("v=DKIM1; k=dsa; s=tlsrpt; p=AAAA");
 * assert.deepEqual(r.problems.map((p) => p.fault), ["key-type", "service"]);
 * assert.equal(r.publicKey?.length, 3);
 * assert.equal(r.record, undefined);
 * ```
 */
export function readKeyRecord(text: string): KeyRecordReading {
  let tags: Map<string, string>;
  try {
    tags = parseTagList(text);
  } catch (e) {
    if (!(e instanceof TagListError)) throw e;
    const problem: KeyRecordProblem = {
      fault: "syntax",
      message: `key syntax error: ${e.message}`,
      cause: e,
    };
    return { tags: new Map(), services: [], flags: [], problems: [problem] };
  }
  const problems: KeyRecordProblem[] = [];
  const version = tags.get("v");
  // §3.6.1: v= must be first and "DKIM1"; other records "MUST be discarded".
  if (version !== undefined && (version !== "DKIM1" || tags.keys().next().value !== "v")) {
    problems.push({
      fault: version !== "DKIM1" ? "version" : "version-place",
      message: `key syntax error: invalid v= "${version}"`,
    });
  }
  const k = asciiLower(tags.get("k") ?? "rsa");
  const keyType: KeyType | undefined = k === "rsa" || k === "ed25519" ? k : undefined;
  if (keyType === undefined) {
    problems.push({ fault: "key-type", message: `unknown key type "k=${k}"` });
  }
  const p = tags.get("p");
  let publicKey: Uint8Array | undefined;
  if (p === undefined) {
    problems.push({ fault: "no-key", message: "key syntax error: missing p=" });
  } else {
    try {
      publicKey = fromBase64(stripWhitespace(p));
    } catch (e) {
      problems.push({
        fault: "key-encoding",
        message: "key syntax error: p= is not base64",
        cause: e,
      });
    }
  }
  const h = tags.get("h");
  const hashes = h === undefined ? undefined : tagValues(h);
  const services = tagValues(tags.get("s") ?? "*");
  if (!services.includes("*") && !services.includes("email")) {
    problems.push({ fault: "service", message: "key not for email (s= excludes email)" });
  }
  const flags = tagValues(tags.get("t") ?? "");
  const reading: KeyRecordReading = {
    tags,
    ...(keyType === undefined ? {} : { keyType }),
    ...(publicKey === undefined ? {} : { publicKey }),
    ...(hashes === undefined ? {} : { hashes }),
    services,
    flags,
    problems,
  };
  if (problems.length > 0 || keyType === undefined || publicKey === undefined) return reading;
  return { ...reading, record: { keyType, publicKey, hashes, services, flags, text } };
}

/**
 * Parses a key record for a verifier. Throws {@link DkimError} (`permerror`) with the first
 * problem {@link readKeyRecord} finds: bad tag-list syntax, `v=` other than `DKIM1` or not
 * first, an unknown `k=`, missing `p=`, `p=` not base64, or an `s=` that excludes email. An
 * empty `p=` parses (the key is revoked) so the caller can say so.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseKeyRecord } from "./key_record.ts";
 * const rec = parseKeyRecord("v=DKIM1; k=ed25519; t=y:s; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
 * assert.equal(rec.keyType, "ed25519");
 * assert.deepEqual(rec.flags, ["y", "s"]);
 * assert.equal(rec.publicKey.length, 32);
 * ```
 */
export function parseKeyRecord(text: string): KeyRecord {
  const reading = readKeyRecord(text);
  if (reading.record !== undefined) return reading.record;
  const [first] = reading.problems;
  throw new DkimError(
    "permerror",
    first.message,
    first.cause === undefined ? undefined : { cause: first.cause },
  );
}

/** True when the record's `h=` allows `hash` (all hashes are allowed without `h=`). */
export function keyAllowsHash(record: KeyRecord, hash: HashAlgorithm): boolean {
  return record.hashes === undefined || record.hashes.includes(hash);
}
