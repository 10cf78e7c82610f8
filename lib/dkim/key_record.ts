/**
 * DKIM key records, the TXT records at `selector._domainkey.domain` (RFC 6376 §3.6.1).
 *
 * @module
 */
import { asciiLower, fromBase64 } from "../bytes.ts";
import type { HashAlgorithm } from "../crypto/hash.ts";
import type { KeyType } from "../crypto/key_type.ts";
import { DkimError } from "./result.ts";
import { parseTagList, stripWhitespace, TagListError, trimFws } from "./tag_list.ts";

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

/** The DNS name of a key record: `selector._domainkey.domain` (RFC 6376 §3.6.2.1). */
export function keyRecordName(selector: string, domain: string): string {
  return `${selector}._domainkey.${domain}`;
}

/**
 * Parses a key record. Throws {@link DkimError} (`permerror`) for a record that is not a usable
 * DKIM key: bad tag-list syntax, `v=` other than `DKIM1` or not first, missing `p=`, `p=` not
 * base64, an unknown `k=`, or an `s=` that excludes email. An empty `p=` parses (the key is
 * revoked) so the caller can say so.
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
  let tags: Map<string, string>;
  try {
    tags = parseTagList(text);
  } catch (e) {
    if (e instanceof TagListError) {
      throw new DkimError("permerror", `key syntax error: ${e.message}`, { cause: e });
    }
    throw e;
  }
  const version = tags.get("v");
  if (version !== undefined) {
    // §3.6.1: v= must be first and "DKIM1"; other records "MUST be discarded".
    if (version !== "DKIM1" || tags.keys().next().value !== "v") {
      throw new DkimError("permerror", `key syntax error: invalid v= "${version}"`);
    }
  }
  const k = asciiLower(tags.get("k") ?? "rsa");
  if (k !== "rsa" && k !== "ed25519") {
    throw new DkimError("permerror", `unknown key type "k=${k}"`);
  }
  const p = tags.get("p");
  if (p === undefined) throw new DkimError("permerror", "key syntax error: missing p=");
  let publicKey: Uint8Array;
  try {
    publicKey = fromBase64(stripWhitespace(p));
  } catch (e) {
    throw new DkimError("permerror", "key syntax error: p= is not base64", { cause: e });
  }
  const list = (value: string): string[] =>
    value.split(":").map((s) => asciiLower(trimFws(s))).filter((s) => s !== "");
  const h = tags.get("h");
  const services = list(tags.get("s") ?? "*");
  if (!services.includes("*") && !services.includes("email")) {
    throw new DkimError("permerror", "key not for email (s= excludes email)");
  }
  return {
    keyType: k,
    publicKey,
    hashes: h === undefined ? undefined : list(h),
    services,
    flags: list(tags.get("t") ?? ""),
    text,
  };
}

/** True when the record's `h=` allows `hash` (all hashes are allowed without `h=`). */
export function keyAllowsHash(record: KeyRecord, hash: HashAlgorithm): boolean {
  return record.hashes === undefined || record.hashes.includes(hash);
}
