/**
 * How many times RFC 5322 §3.6 lets a header field appear: Date and From exactly once, Sender,
 * Reply-To, To, Cc, Bcc, Message-ID, In-Reply-To, References and Subject at most once. A
 * message that breaks this is ambiguous (a reader shows one From, DMARC may take another: RFC
 * 6376 §8.15), so the verifier does not vouch for it and the filter can refuse it.
 *
 * @module
 */
import { asciiLower } from "../bytes.ts";
import type { HeaderField } from "./header.ts";

/** One field's count rule from RFC 5322 §3.6's table, in its spelling. */
export interface FieldCountRule {
  /** The field name as RFC 5322 spells it. */
  readonly name: string;
  /** Fewest instances allowed (0 or 1). */
  readonly min: 0 | 1;
}

/**
 * The fields RFC 5322 §3.6 allows once, each at most once; Date and From also at least once.
 * The order is the order problems are reported in: From first, the field DKIM is about.
 */
export const FIELD_COUNT_RULES: readonly FieldCountRule[] = [
  { name: "From", min: 1 },
  { name: "Date", min: 1 },
  { name: "Sender", min: 0 },
  { name: "Reply-To", min: 0 },
  { name: "To", min: 0 },
  { name: "Cc", min: 0 },
  { name: "Bcc", min: 0 },
  { name: "Message-ID", min: 0 },
  { name: "In-Reply-To", min: 0 },
  { name: "References", min: 0 },
  { name: "Subject", min: 0 },
];

/** How many fields named `lowerName` (lower case) a message has. */
function countFields(fields: readonly HeaderField[], lowerName: string): number {
  // Only the names the rules ask about: no map of every name in the message, which verifying
  // built for each signature (SINGLE_FROM) and signing once more (StrictHeaders).
  let n = 0;
  for (const f of fields) {
    if (f.name.length === lowerName.length && asciiLower(f.name) === lowerName) n++;
  }
  return n;
}

/**
 * The first count rule of `rules` the message's fields break, in words (`message has 2 From
 * fields`, `message has no Date field`), or undefined when it keeps them all.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FIELD_COUNT_RULES, fieldCountProblem } from "./field_counts.ts";
 * import { splitMessage } from "./header.ts";
 * import { utf8 } from "../bytes.ts";
 * const two = splitMessage(utf8("From: a@x\r\nfrom: b@y\r\n\r\n")).fields;
 * assert.equal(fieldCountProblem(two, [{ name: "From", min: 0 }]), "message has 2 From fields");
 * const ok = splitMessage(utf8("From: a@x\r\nDate: Fri, 27 Nov 2026 12:00 +0000\r\n\r\n")).fields;
 * assert.equal(fieldCountProblem(ok, FIELD_COUNT_RULES), undefined);
 * assert.equal(fieldCountProblem(two.slice(1), FIELD_COUNT_RULES), "message has no Date field");
 * ```
 */
export function fieldCountProblem(
  fields: readonly HeaderField[],
  rules: readonly FieldCountRule[],
): string | undefined {
  for (const rule of rules) {
    const n = countFields(fields, asciiLower(rule.name));
    if (n > 1) return `message has ${n} ${rule.name} fields`;
    if (n < rule.min) return `message has no ${rule.name} field`;
  }
  return undefined;
}

/** The rule RFC 6376 §8.15 makes the verifier apply to every message: at most one From. */
export const SINGLE_FROM: readonly FieldCountRule[] = [{ name: "From", min: 0 }];
