/**
 * Which header fields a signature covers (RFC 6376 §5.4): the one default list that the milter
 * and `dkimd sign` share, the default oversigned fields, and the `h=` list they make for a
 * message.
 *
 * @module
 */
import { asciiLower } from "../bytes.ts";
import type { HeaderField } from "./header.ts";

/**
 * The header fields signed by default, each as often as the message has it and only when it
 * has it: RFC 6376 §5.4.1's list (From, Reply-To, Subject, Date, To, Cc, Resent-Date,
 * Resent-From, Resent-To, Resent-Cc, In-Reply-To, References, List-*), which is OpenDKIM's
 * default SignHeaders with Resent-Sender, plus what RFC 4871 §5.5 listed and RFC 6376 §5.4.1
 * leaves to the signer: Sender, Message-ID (it tells one instance of a message from another),
 * the MIME fields (a rewritten Content-Type renders the same body as something else) and
 * Resent-Message-ID. Fields an MTA adds on the way (Received, Return-Path, ...) are not here,
 * so signatures survive relaying. The milter's SignHeaders default is this list; the README's
 * "Signed header fields" section documents it.
 */
export const DEFAULT_SIGNED_HEADERS: readonly string[] = [
  "From",
  "Sender",
  "Reply-To",
  "Subject",
  "Date",
  "Message-ID",
  "To",
  "Cc",
  "MIME-Version",
  "Content-Type",
  "Content-Transfer-Encoding",
  "Content-ID",
  "Content-Description",
  "Resent-Date",
  "Resent-From",
  "Resent-Sender",
  "Resent-To",
  "Resent-Cc",
  "Resent-Message-ID",
  "In-Reply-To",
  "References",
  "List-Id",
  "List-Help",
  "List-Unsubscribe",
  "List-Subscribe",
  "List-Post",
  "List-Owner",
  "List-Archive",
];

/**
 * The header fields oversigned by default (listed in `h=` once more than the message has them,
 * RFC 6376 §5.4.2), so that a From added after signing breaks the signature instead of being
 * what the reader sees (RFC 6376 §8.15). OpenDKIM's code still defaults to none, but its
 * development branch now ships `OversignHeaders From` in its sample configuration (OpenDKIM
 * #393), as Debian's opendkim.conf long has; dkimd makes that the default.
 */
export const DEFAULT_OVERSIGNED_HEADERS: readonly string[] = ["From"];

/**
 * The `h=` list for a message: each name of `signHeaders` (default {@link DEFAULT_SIGNED_HEADERS})
 * as many times as the message has it (so a name absent from the message is not listed, and a
 * Received added later by an MTA does not matter), From always, and each name of
 * `oversignHeaders` (default {@link DEFAULT_OVERSIGNED_HEADERS}) once more than the message has
 * it, which RFC 6376 §5.4.2 lets a verifier read as a null field: no instance can be added.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { signedHeaderList } from "./signed_headers.ts";
 * import { splitMessage } from "./header.ts";
 * import { utf8 } from "../bytes.ts";
 * const { fields } = splitMessage(utf8("From: a\r\nTo: b\r\nTo: c\r\nX-Mailer: m\r\n\r\n"));
 * assert.deepEqual(signedHeaderList(fields, ["To", "Subject"], ["From"]), ["From", "From", "To", "To"]);
 * assert.deepEqual(signedHeaderList(fields), ["From", "From", "To", "To"]);
 * assert.deepEqual(signedHeaderList(fields, ["To"], []), ["From", "To", "To"]);
 * ```
 */
export function signedHeaderList(
  fields: readonly HeaderField[],
  signHeaders: readonly string[] = DEFAULT_SIGNED_HEADERS,
  oversignHeaders: readonly string[] = DEFAULT_OVERSIGNED_HEADERS,
): string[] {
  return signedHeaderSelection(fields, signHeaders, oversignHeaders).names;
}

/** What {@link signedHeaderSelection} gives: the `h=` list and the fields it picks. */
export interface SignedHeaderSelection {
  /** The `h=` list, as {@link signedHeaderList} gives it. */
  readonly names: string[];
  /** The fields the list picks, in hash order: what `selectHeaders(fields, names)` gives. */
  readonly selected: HeaderField[];
}

/**
 * {@link signedHeaderList} and the fields it picks (header.ts `selectHeaders()`: each listing
 * takes the next instance from the bottom up) in one pass over the fields, for a signer, which
 * needs both for every message.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { signedHeaderSelection } from "./signed_headers.ts";
 * import { splitMessage } from "./header.ts";
 * import { latin1, utf8 } from "../bytes.ts";
 * const { fields } = splitMessage(utf8("To: 1\r\nFrom: f\r\nTo: 2\r\n\r\n"));
 * const { names, selected } = signedHeaderSelection(fields, ["To"], ["From"]);
 * assert.deepEqual(names, ["From", "From", "To", "To"]);
 * assert.deepEqual(selected.map((f) => latin1(f.raw)), ["From: f", "To: 2", "To: 1"]);
 * ```
 */
export function signedHeaderSelection(
  fields: readonly HeaderField[],
  signHeaders: readonly string[] = DEFAULT_SIGNED_HEADERS,
  oversignHeaders: readonly string[] = DEFAULT_OVERSIGNED_HEADERS,
): SignedHeaderSelection {
  const plan = planFor(signHeaders, oversignHeaders);
  // Per message only the counting: which names are listed, in what order and spelling, and
  // which once more, depends on the configuration's lists alone (planFor()).
  const counts = new Array<number>(plan.entries.length).fill(0);
  const entryOf = new Array<number>(fields.length);
  for (let f = 0; f < fields.length; f++) {
    const i = plan.index.get(asciiLower(fields[f].name)) ?? -1;
    entryOf[f] = i;
    if (i !== -1) counts[i]++;
  }
  const names: string[] = [];
  const selected: HeaderField[] = [];
  for (let i = 0; i < plan.entries.length; i++) {
    const { name, extra } = plan.entries[i];
    for (let n = counts[i] + extra; n > 0; n--) names.push(name);
    // The instances of this name, from the bottom up; an oversigned listing picks none.
    if (counts[i] === 0) continue;
    for (let f = fields.length - 1; f >= 0; f--) if (entryOf[f] === i) selected.push(fields[f]);
  }
  // From is listed even when absent, so the signature is valid (RFC 6376 §5.4).
  if (counts[plan.from] + plan.entries[plan.from].extra === 0) names.unshift("From");
  return { names, selected };
}

// What signedHeaderList() lists for a pair of lists, message aside: each distinct lower-case
// name once, in order (From first unless signHeaders has it, then signHeaders, then the
// oversigned names it lacks), spelt as first listed, with 1 extra listing when oversigned.
interface Plan {
  readonly entries: readonly { readonly name: string; readonly extra: number }[];
  readonly index: ReadonlyMap<string, number>;
  readonly from: number;
}

// Made once per pair of lists: the configuration's lists are the same arrays for every message.
const plans = new WeakMap<readonly string[], WeakMap<readonly string[], Plan>>();

function planFor(signHeaders: readonly string[], oversignHeaders: readonly string[]): Plan {
  let bySign = plans.get(signHeaders);
  if (!bySign) plans.set(signHeaders, bySign = new WeakMap());
  let plan = bySign.get(oversignHeaders);
  if (!plan) bySign.set(oversignHeaders, plan = makePlan(signHeaders, oversignHeaders));
  return plan;
}

function makePlan(signHeaders: readonly string[], oversignHeaders: readonly string[]): Plan {
  const oversigned = new Set(oversignHeaders.map(asciiLower));
  const entries: { name: string; extra: number }[] = [];
  const index = new Map<string, number>();
  const add = (name: string) => {
    const key = asciiLower(name);
    if (index.has(key)) return;
    index.set(key, entries.length);
    entries.push({ name, extra: oversigned.has(key) ? 1 : 0 });
  };
  if (!signHeaders.some((h) => asciiLower(h) === "from")) add("From");
  for (const name of signHeaders) add(name);
  for (const name of oversignHeaders) add(name);
  return { entries, index, from: index.get("from")! };
}
