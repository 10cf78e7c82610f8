/**
 * A small message sent to a running dkimd through the milter, as Postfix would hand it over,
 * and what came back: the DKIM-Signature fields added, whether the mail was deferred, and the
 * delivered message verified against chosen key records.
 *
 * @module
 */
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { verifyMessage } from "../../lib/dkim/verify.ts";
import { type MessageResult, MilterClient } from "../../lib/milter/client.ts";
import type { Reply } from "../../lib/milter/reply.ts";
import { applyModifications, buildMessage, type HeaderPair } from "./milter_apply.ts";
import { mtaMessage } from "./mta_message.ts";
import { ZoneResolver } from "./zone_resolver.ts";

/** The body of every message sent. */
export const BODY = "Hello.\r\n";

/** One message sent, and dkimd's answer. */
export interface Sent {
  /** The header fields sent. */
  readonly headers: HeaderPair[];
  /** dkimd's answer. */
  readonly result: MessageResult;
}

/** The header fields of a message from `from` (an address, written `<from>`). */
export function messageHeaders(from: string, subject: string): HeaderPair[] {
  return [
    ["From", ` <${from}>`],
    ["To", " <bob@example.org>"],
    ["Subject", ` ${subject}`],
    ["Date", " Fri, 27 Nov 2026 12:00:00 +0000"],
  ];
}

/** Sends a message from `from` to dkimd on `port`, as a client at `address` (default internal). */
export async function sendFrom(
  port: number,
  from: string,
  qid: string,
  address = "127.0.0.1",
  extra: readonly HeaderPair[] = [],
): Promise<Sent> {
  const head = [...extra, ...messageHeaders(from, qid)];
  const client = await MilterClient.connect({ kind: "inet", host: "127.0.0.1", port });
  try {
    const bytes = fromLatin1(`${head.map(([n, v]) => `${n}:${v}\r\n`).join("")}\r\n${BODY}`);
    const result = await client.sendMessage(mtaMessage(bytes, { qid, address }));
    return { headers: head, result };
  } finally {
    client.close();
  }
}

/** The values of the header fields named `name` that dkimd inserted or added. */
export function added(r: MessageResult, name: string): string[] {
  return r.modifications
    .filter((m): m is Extract<Reply, { type: "insheader" | "addheader" }> =>
      (m.type === "insheader" || m.type === "addheader") &&
      m.name.toLowerCase() === name.toLowerCase()
    )
    .map((m) => (typeof m.value === "string" ? m.value : latin1(m.value)));
}

/** The DKIM-Signature fields dkimd added. */
export function signatures(r: MessageResult): string[] {
  return added(r, "DKIM-Signature");
}

/** The tag `name` of a DKIM-Signature value, whitespace removed. */
export function tag(signature: string, name: string): string | undefined {
  return new RegExp(`(?:^|;)\\s*${name}=([^;]*)`).exec(signature)?.[1].replace(/\s+/g, "");
}

/** The delivered message: the fields sent with dkimd's changes, and the body. */
export function delivered(sent: Sent): Uint8Array {
  return buildMessage(applyModifications(sent.headers, sent.result.modifications), BODY);
}

/**
 * Verifies the delivered message with dkimd's verifier against `records` (name → TXT), so
 * only the key a record publishes passes: "d s result" per signature.
 */
export async function verifiedWith(
  sent: Sent,
  records: Readonly<Record<string, string>>,
): Promise<string[]> {
  const zone = new ZoneResolver(
    Object.fromEntries(Object.entries(records).map(([n, r]) => [n, [r]])),
  );
  const verdicts = await verifyMessage(delivered(sent), {
    resolver: zone,
    now: () => Date.now() / 1000,
  });
  return verdicts.map((v) => `${v.domain} ${v.selector} ${v.result}`);
}

/** Deferred: On-InternalError tempfail, a 451 4.7.1 reply. */
export function deferred(r: MessageResult): boolean {
  return r.final.type === "replycode" && r.final.code === 451 &&
    r.final.text.startsWith("4.7.1");
}

/** Lines of `text` matching `re`. */
export function countLines(text: string, re: RegExp): number {
  return text.split("\n").filter((l) => re.test(l)).length;
}
