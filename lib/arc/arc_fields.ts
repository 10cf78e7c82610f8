/**
 * The ARC header fields already on a message, grouped by instance (RFC 8617 §4.1, §4.2.1): just
 * enough for a sealer to number the next ARC set and to feed the earlier sets to its seal. Chain
 * validation (cv=) is not decided here; the verifier's parser takes over when both land.
 *
 * @module
 */
import { asciiLower } from "../bytes.ts";
import { fieldValueText, type HeaderField } from "../dkim/header.ts";
import { parseTagList } from "../dkim/tag_list.ts";

/** The ARC-Authentication-Results field name (RFC 8617 §4.1.1). */
export const ARC_AUTH_RESULTS_FIELD = "ARC-Authentication-Results";
/** The ARC-Message-Signature field name (RFC 8617 §4.1.2). */
export const ARC_MESSAGE_SIGNATURE_FIELD = "ARC-Message-Signature";
/** The ARC-Seal field name (RFC 8617 §4.1.3). */
export const ARC_SEAL_FIELD = "ARC-Seal";

/** Highest instance number an ARC set may have: RFC 8617 §4.2.1 limits `i=` to 1..50. */
export const MAX_ARC_INSTANCES = 50;

/** The three fields of one ARC set as found; a member is absent when the message lacks it. */
export interface ArcFieldSet {
  /** ARC-Authentication-Results. */
  aar?: HeaderField;
  /** ARC-Message-Signature. */
  ams?: HeaderField;
  /** ARC-Seal. */
  seal?: HeaderField;
}

/** What {@link findArcFields} found. */
export interface ArcFields {
  /** The sets by instance. */
  readonly sets: ReadonlyMap<number, ArcFieldSet>;
  /** The highest instance number seen (0 when there are no ARC fields). */
  readonly highest: number;
  /**
   * Why the sets do not form a chain 1..highest with exactly one of each field (RFC 8617
   * §4.2.1, §5.2 step 2), or undefined when they do.
   */
  readonly problem?: string;
}

const MEMBERS: Readonly<Record<string, keyof ArcFieldSet>> = {
  "arc-authentication-results": "aar",
  "arc-message-signature": "ams",
  "arc-seal": "seal",
};

/**
 * Groups the message's ARC fields by their `i=` instance and says whether they form a
 * structurally complete chain. A field whose instance cannot be read, or is outside 1..50,
 * makes the chain broken; the sealer then may only seal with `cv=fail` (RFC 8617 §5.1.2).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findArcFields } from "./arc_fields.ts";
 * import { splitMessage } from "../dkim/header.ts";
 * import { utf8 } from "../bytes.ts";
 * const { fields } = splitMessage(utf8(
 *   "ARC-Seal: i=1; a=rsa-sha256; cv=none; d=a.example; s=s; b=AA\r\n" +
 *     "ARC-Message-Signature: i=1; a=rsa-sha256; d=a.example; s=s; h=from; bh=AA; b=AA\r\n" +
 *     "ARC-Authentication-Results: i=1; mx.a.example; dkim=pass\r\nFrom: x@a.example\r\n\r\n",
 * ));
 * const found = findArcFields(fields);
 * assert.equal(found.highest, 1);
 * assert.equal(found.problem, undefined);
 * assert.equal(findArcFields(fields.slice(1)).problem, "ARC set 1 has no ARC-Seal");
 * ```
 */
export function findArcFields(fields: readonly HeaderField[]): ArcFields {
  const sets = new Map<number, ArcFieldSet>();
  let highest = 0;
  let problem: string | undefined;
  for (const field of fields) {
    const member = MEMBERS[asciiLower(field.name)];
    if (!member) continue;
    const instance = instanceOf(field, member);
    if (instance === undefined) {
      problem ??= `${field.name} has no valid instance (i=)`;
      continue;
    }
    if (instance > MAX_ARC_INSTANCES) {
      problem ??= `${field.name} has instance ${instance}, above ${MAX_ARC_INSTANCES}`;
      continue;
    }
    highest = Math.max(highest, instance);
    let set = sets.get(instance);
    if (!set) sets.set(instance, set = {});
    if (set[member]) problem ??= `ARC set ${instance} has more than one ${field.name}`;
    else set[member] = field;
  }
  for (let i = 1; i <= highest && problem === undefined; i++) {
    const set = sets.get(i);
    if (!set) problem = `ARC set ${i} is missing`;
    else if (!set.aar) problem = `ARC set ${i} has no ${ARC_AUTH_RESULTS_FIELD}`;
    else if (!set.ams) problem = `ARC set ${i} has no ${ARC_MESSAGE_SIGNATURE_FIELD}`;
    else if (!set.seal) problem = `ARC set ${i} has no ${ARC_SEAL_FIELD}`;
  }
  return { sets, highest, problem };
}

/** The `cv=` of an ARC-Seal field, lower-cased, or undefined when it cannot be read. */
export function sealChainValidation(seal: HeaderField): string | undefined {
  try {
    const cv = parseTagList(fieldValueText(seal)).get("cv");
    return cv === undefined ? undefined : asciiLower(cv);
  } catch {
    return undefined;
  }
}

// The AAR is `i=N; authserv-id; results` (RFC 8617 §4.1.1), not a tag list: read its leading
// i=. The AMS and AS are tag lists whose i= may be anywhere.
function instanceOf(field: HeaderField, member: keyof ArcFieldSet): number | undefined {
  let text: string | undefined;
  if (member === "aar") {
    text = /^i[ \t]*=[ \t]*([0-9]+)[ \t]*;/.exec(fieldValueText(field))?.[1];
  } else {
    try {
      text = parseTagList(fieldValueText(field)).get("i");
    } catch {
      return undefined;
    }
  }
  if (text === undefined || !/^[0-9]{1,3}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 ? n : undefined;
}
