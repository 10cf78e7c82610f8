/**
 * Entry points for bounded runs (tests/helpers/fuzz.ts `boundedCall`): each takes a
 * structured-cloneable input (text with one character per byte, or bytes), runs one parser in a
 * worker, and returns a small summary of what it made, so a hostile input's result can be
 * checked for size without sending it back. The regression files in this directory and
 * tests/fuzz/limits_test.ts name these functions.
 *
 * @module
 */

import { fromLatin1 } from "../../../lib/bytes.ts";
import { readOpendkimConf } from "../../../lib/config/opendkim_conf.ts";
import { parseSeconds } from "../../../lib/config/values.ts";
import { readYamlConf } from "../../../lib/config/yaml_conf.ts";
import { readDer } from "../../../lib/crypto/der.ts";
import { importPrivateKey } from "../../../lib/crypto/private_key.ts";
import { parsePem } from "../../../lib/crypto/pem.ts";
import { formatAuthResults, parseAuthservId } from "../../../lib/dkim/auth_results.ts";
import { BodyCanonicalizer } from "../../../lib/dkim/canon_body.ts";
import type { Canonicalization } from "../../../lib/dkim/canon_header.ts";
import { makeHeaderField, splitMessage as split } from "../../../lib/dkim/header.ts";
import { parseKeyRecord as keyRecord } from "../../../lib/dkim/key_record.ts";
import {
  parseSignature as signature,
  SIGNATURE_FIELD,
  withoutSignatureValue,
} from "../../../lib/dkim/signature.ts";
import { parseTagList as tagList } from "../../../lib/dkim/tag_list.ts";
import { verifyMessage } from "../../../lib/dkim/verify.ts";
import { parseKeyFile } from "../../../lib/dns/key_file.ts";
import { parseNameserverList } from "../../../lib/dns/nameserver.ts";
import { parseResolvConf } from "../../../lib/dns/resolv_conf.ts";
import { FrameDecoder } from "../../../lib/milter/frame.ts";
import { parseDataSetFile } from "../../../lib/policy/dataset.ts";
import { HostList } from "../../../lib/policy/host_list.ts";
import { wildcardMatch } from "../../../lib/policy/signing_table.ts";
import { ZoneResolver } from "../../helpers/zone_resolver.ts";

/** parseTagList(): the number of tags. */
export function parseTagList(text: string): number {
  return tagList(text).size;
}

/** splitMessage(): the number of fields and the body offset. */
export function splitMessage(text: string): { fields: number; bodyOffset: number } {
  const { fields, bodyOffset } = split(fromLatin1(text));
  return { fields: fields.length, bodyOffset };
}

/** makeHeaderField() as the milter session calls it: the name the field gets. */
export function milterFieldName(name: string): string {
  return makeHeaderField(name, fromLatin1(" x")).name;
}

/** parseSignature() of a DKIM-Signature field with this value: its d=. */
export function parseSignature(value: string): string {
  return signature({ name: SIGNATURE_FIELD, raw: fromLatin1(`${SIGNATURE_FIELD}:${value}`) })
    .domain;
}

/** withoutSignatureValue() of a DKIM-Signature field with this value: the length left. */
export function signatureWithoutB(value: string): number {
  return withoutSignatureValue({
    name: SIGNATURE_FIELD,
    raw: fromLatin1(`${SIGNATURE_FIELD}:${value}`),
  }).raw.length;
}

/** parseKeyRecord(): the key type. */
export function parseKeyRecord(text: string): string {
  return keyRecord(text).keyType;
}

/**
 * verifyMessage() with no keys published, then formatAuthResults() of the verdicts for
 * "mx.example": the Authentication-Results value a filter would add.
 */
export async function authResultsFor(message: string): Promise<string> {
  const verdicts = await verifyMessage(fromLatin1(message), { resolver: new ZoneResolver({}) });
  return formatAuthResults("mx.example", verdicts);
}

/** verifyMessage() with no keys published: the number of verdicts. */
export async function verdictCount(message: string): Promise<number> {
  return (await verifyMessage(fromLatin1(message), { resolver: new ZoneResolver({}) })).length;
}

/** parseAuthservId(): the authserv-id, or null. */
export function authservId(value: string): string | null {
  return parseAuthservId(value) ?? null;
}

/** formatAuthResults() of one failed verdict with this reason and identity: the length. */
export function authResultsLength(text: string): number {
  return formatAuthResults("mx.example", [{
    result: "permerror",
    reason: text,
    identity: text,
    domain: "example.com",
  }]).length;
}

/**
 * A FrameDecoder fed `bytes` in 64 KiB pieces, drained after each: frames out, the most bytes
 * it held after draining, and the error that stopped it, if any.
 */
export function frameStream(
  bytes: Uint8Array,
): { frames: number; maxBuffered: number; error: string | null } {
  const decoder = new FrameDecoder();
  let frames = 0;
  let maxBuffered = 0;
  try {
    for (let i = 0; i < bytes.length; i += 65536) {
      decoder.push(bytes.subarray(i, i + 65536));
      while (decoder.next()) frames++;
      maxBuffered = Math.max(maxBuffered, decoder.buffered);
    }
  } catch (error) {
    return { frames, maxBuffered, error: (error as Error).name };
  }
  return { frames, maxBuffered, error: null };
}

/** BodyCanonicalizer over `text` in 64 KiB chunks: bytes out and the largest piece. */
export function canonicalBody(
  text: string,
  canon: Canonicalization,
): { total: number; largest: number } {
  const c = new BodyCanonicalizer(canon);
  let total = 0;
  let largest = 0;
  const sink = (b: Uint8Array) => {
    total += b.length;
    largest = Math.max(largest, b.length);
  };
  const bytes = fromLatin1(text);
  for (let i = 0; i < bytes.length; i += 65536) c.push(bytes.subarray(i, i + 65536), sink);
  c.finish(sink);
  return { total, largest };
}

/** parsePem(): the number of blocks. */
export function pemBlocks(text: string): number {
  return parsePem(text).length;
}

/** importPrivateKey(): the key type. */
export async function privateKeyType(text: string): Promise<string> {
  return (await importPrivateKey(text)).type;
}

/** readDer() of bytes: the length of the element read. */
export function derLength(bytes: Uint8Array): number {
  return readDer(bytes).encoded.length;
}

/** parseKeyFile(): the number of names. */
export function keyFileNames(text: string): number {
  return parseKeyFile(text, "keys.txt").size;
}

/** parseResolvConf(): the number of nameservers. */
export function resolvConfServers(text: string): number {
  return parseResolvConf(text).nameservers.length;
}

/** parseNameserverList(): the number of servers. */
export function nameservers(text: string): number {
  return parseNameserverList(text).length;
}

/** readOpendkimConf(): the number of warnings. */
export function opendkimConfWarnings(text: string): number {
  return readOpendkimConf(text, "/etc/opendkim.conf").warnings.length;
}

/** readYamlConf(): the number of warnings. */
export function yamlConfWarnings(text: string): number {
  return readYamlConf(text, "/etc/dkimd.yaml").warnings.length;
}

/** parseDataSetFile(): the number of entries. */
export function dataSetEntries(text: string): number {
  return parseDataSetFile(text, "/etc/dkimd/table").length;
}

/** wildcardMatch() of a SigningTable pattern and an address. */
export function signingPatternMatches(pattern: string, address: string): boolean {
  return wildcardMatch(pattern, address);
}

/** HostList.fromStrings() of the lines of `text`, then one lookup: whether it matched. */
export async function hostListMatches(text: string, ip: string): Promise<boolean> {
  const { list } = HostList.fromStrings(text.split("\n"), "InternalHosts");
  return (await list.match(undefined, ip)).matched;
}

/** parseSeconds() as a configuration value. */
export function seconds(text: string): number {
  return parseSeconds(text);
}
