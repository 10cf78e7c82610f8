/**
 * The DKIM filter and the bytes the milter lends it (FilterConnection, "Borrowed bytes"): the
 * server hands each header value and body chunk over as a view of its read buffer, which its
 * next read overwrites. These sessions overwrite every value and chunk as soon as the call that
 * got it has settled, so a filter that kept one without a copy would sign, or verify, bytes that
 * are no longer the message's, and the signatures would not verify.
 */
import assert from "node:assert/strict";
import { latin1 } from "../../lib/bytes.ts";
import { verifyMessage } from "../../lib/dkim/verify.ts";
import { DkimFilter } from "../../lib/filter/dkim_filter.ts";
import type { Command } from "../../lib/milter/command.ts";
import type { Reply } from "../../lib/milter/reply.ts";
import type { MilterSession } from "../../lib/milter/session.ts";
import { MemoryMta, testMessage } from "../helpers/memory_mta.ts";
import { exampleSigning, memoryRuntime } from "../helpers/memory_runtime.ts";
import { applyModifications, buildMessage, type HeaderPair } from "../helpers/milter_apply.ts";
import { MemoryLogger } from "../helpers/milter_logger.ts";
import type { ZoneResolver } from "../helpers/zone_resolver.ts";

const NOW = 1_800_000_000;

const HEADERS: HeaderPair[] = [
  ["From", " Alice <alice@example.com>"],
  ["To", " Bob <bob@example.org>"],
  ["Subject", " Borrowed\r\n\tbytes"],
  ["Date", " Fri, 27 Nov 2026 12:00:00 +0000"],
  ["Message-ID", " <borrowed@example.com>"],
];

// Several chunks, each overwritten once the filter has had it.
const BODY_CHUNKS = ["Hi Bob,\r\n\r\n", "The  bytes\tare ", "lent.  \r\n", "Alice\r\n\r\n"];

/**
 * Hands `command` to the session as the server does, then overwrites its bytes (a header value,
 * a body chunk) once the call has settled, as the server's next read would.
 */
async function lend(session: MilterSession, command: Command): Promise<Reply[]> {
  const lent = command.type === "header"
    ? command.value
    : command.type === "body" || command.type === "bodyeob"
    ? command.chunk
    : undefined;
  const replies = await session.receive(command);
  lent?.fill(0x58);
  return replies;
}

async function filterWith(): Promise<{ filter: DkimFilter; zone: ZoneResolver }> {
  const signing = await exampleSigning();
  const runtime = await memoryRuntime(
    `Mode sv\n${signing.conf}` +
      "MultipleSignatures yes\nCanonicalization relaxed/relaxed\nAuthservID mx.example.net\n",
    { files: signing.files, zone: signing.zone },
  );
  const filter = new DkimFilter({
    runtime: () => runtime,
    logger: new MemoryLogger(),
    hostname: "mx.example.net",
    now: () => NOW,
  });
  return { filter, zone: runtime.resolver };
}

/** One message through a fresh connection, every byte lent; the end-of-message replies. */
async function run(
  filter: DkimFilter,
  address: string,
  headers: readonly HeaderPair[],
): Promise<Reply[]> {
  // The sender's address is ours, so mail from an internal address is signed.
  const r = await new MemoryMta(filter, { deliver: lend }).sendMessage(
    testMessage(address, headers, BODY_CHUNKS, "<alice@example.com>"),
  );
  return [...r.modifications, r.final];
}

Deno.test("DkimFilter signs and verifies from copies of the header values and chunks it is lent", async () => {
  const { filter, zone } = await filterWith();
  const signedReplies = await run(filter, "127.0.0.1", HEADERS);
  assert.deepEqual(signedReplies.at(-1), { type: "accept" });
  const delivered = applyModifications(HEADERS, signedReplies);
  assert.deepEqual(delivered.slice(0, 2).map(([name]) => name), [
    "DKIM-Signature",
    "DKIM-Signature",
  ]);
  const verdicts = await verifyMessage(buildMessage(delivered, BODY_CHUNKS.join("")), {
    resolver: zone,
    now: () => NOW,
  });
  assert.deepEqual(verdicts.map((v) => [v.selector, v.result]), [["rsa", "pass"], [
    "ed",
    "pass",
  ]]);

  const verifiedReplies = await run(filter, "192.0.2.25", delivered);
  const results = verifiedReplies.find((r) =>
    r.type === "insheader" && r.name === "Authentication-Results"
  );
  assert.ok(results && results.type === "insheader", "an Authentication-Results field");
  const text = typeof results.value === "string" ? results.value : latin1(results.value);
  assert.equal(text.match(/dkim=pass/g)?.length, 2, text);
});
