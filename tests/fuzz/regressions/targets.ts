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
import { formatAuthResults } from "../../../lib/dkim/auth_results.ts";
import { makeHeaderField, splitMessage as split } from "../../../lib/dkim/header.ts";
import { parseKeyRecord as keyRecord } from "../../../lib/dkim/key_record.ts";
import {
  parseSignature as signature,
  SIGNATURE_FIELD,
  withoutSignatureValue,
} from "../../../lib/dkim/signature.ts";
import { parseTagList as tagList } from "../../../lib/dkim/tag_list.ts";
import { verifyMessage } from "../../../lib/dkim/verify.ts";
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
