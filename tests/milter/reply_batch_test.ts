import assert from "node:assert/strict";
import { concat } from "../../lib/bytes.ts";
import { type Command, encodeCommand } from "../../lib/milter/command.ts";
import { SMFI_CURR_ACTS, SMFI_CURR_PROT, SMFIF_ADDHDRS } from "../../lib/milter/constants.ts";
import type { Filter, FilterNeeds } from "../../lib/milter/filter.ts";
import { FrameDecoder } from "../../lib/milter/frame.ts";
import { decodeReply, encodeReply, type Reply } from "../../lib/milter/reply.ts";
import {
  answerBurst,
  type BurstIo,
  type BurstResult,
  ReplyBatch,
} from "../../lib/milter/reply_batch.ts";
import { MilterSession } from "../../lib/milter/session.ts";
import { MemoryLogger } from "../helpers/milter_logger.ts";

// Every event answered: several replies owed per burst.
const ALL_EVENTS: FilterNeeds = {
  actions: SMFIF_ADDHDRS,
  events: ["helo", "envFrom", "envRcpt", "header", "endOfHeaders", "body"],
};

const OPENING: Command[] = [
  { type: "optneg", version: 6, actions: SMFI_CURR_ACTS, protocol: SMFI_CURR_PROT },
  { type: "connect", hostname: "mx", family: "inet", port: 25, address: "192.0.2.1" },
  { type: "helo", name: "mx.example" },
  { type: "mail", args: ["<a@example.org>"] },
  { type: "rcpt", args: ["<b@example.org>"] },
];

function decoderOf(commands: readonly Command[]): FrameDecoder {
  const decoder = new FrameDecoder();
  decoder.push(concat(commands.map(encodeCommand)));
  return decoder;
}

function repliesIn(bytes: Uint8Array): Reply[] {
  const decoder = new FrameDecoder();
  decoder.push(bytes);
  const out: Reply[] = [];
  for (let f = decoder.next(); f; f = decoder.next()) out.push(decodeReply(f));
  return out;
}

// A connection that records each write (a copy: the batch reuses its buffer) and what had been
// written when the burst started waiting on the filter.
function recorder(stop = () => false) {
  const writes: Uint8Array[] = [];
  const writtenAtWait: number[] = [];
  const io: BurstIo = {
    write: (bytes) => {
      writes.push(bytes.slice());
      return Promise.resolve();
    },
    wait: (replies) => {
      writtenAtWait.push(writes.length);
      return replies;
    },
    stop,
  };
  return { writes, writtenAtWait, io };
}

// What the server does with a read: answerBurst(), then one write of what the batch holds.
async function burst(
  decoder: FrameDecoder,
  session: MilterSession,
  batch: ReplyBatch,
  io: BurstIo,
): Promise<BurstResult> {
  const result = await answerBurst(decoder, session, batch, io);
  if (result.end !== "abandoned" && batch.length > 0) await io.write(batch.take());
  return result;
}

function session(filter: Filter): MilterSession {
  return new MilterSession(filter, { logger: new MemoryLogger() });
}

// A session past OPTNEG and CONNECT (the session answers CONNECT with a promise: the filter's
// connect() may be async).
async function connected(filter: Filter): Promise<MilterSession> {
  const s = session(filter);
  await s.receive(OPENING[0]);
  await s.receive(OPENING[1]);
  return s;
}

const syncFilter: Filter = {
  needs: ALL_EVENTS,
  connect: () => ({
    endOfMessage: () => ({
      modifications: [{ type: "addheader", name: "X-Seen", value: "yes" }],
      action: "accept",
    }),
  }),
};

Deno.test("answerBurst() answers several frames of one read in one write, in order", async () => {
  const decoder = decoderOf([
    ...OPENING.slice(2),
    { type: "header", name: "Subject", value: new TextEncoder().encode(" Hi") },
    { type: "eoh" },
    { type: "bodyeob" },
  ]);
  const { writes, io } = recorder();
  const s = await connected(syncFilter);
  const result = await burst(decoder, s, new ReplyBatch(), io);
  assert.deepEqual(result, { frames: 6, end: "more" });
  assert.equal(writes.length, 1);
  assert.deepEqual(repliesIn(writes[0]).map((r) => r.type), [
    "continue", // helo
    "continue", // mail
    "continue", // rcpt
    "continue", // header
    "continue", // eoh
    "addheader",
    "accept",
  ]);
});

Deno.test("answerBurst() has a lone frame's reply ready at once, for the write after it", async () => {
  const s = session(syncFilter);
  const batch = new ReplyBatch();
  for (const command of OPENING) {
    const decoder = decoderOf([command]);
    const { writes, io } = recorder();
    const result = await burst(decoder, s, batch, io);
    assert.deepEqual(result, { frames: 1, end: "more" });
    assert.equal(writes.length, 1, command.type);
    assert.equal(repliesIn(writes[0]).length, 1, command.type);
  }
});

Deno.test("answerBurst() returns without a promise when no answer was one", async () => {
  const s = await connected(syncFilter);
  const decoder = decoderOf([OPENING[2]]);
  const batch = new ReplyBatch();
  const { writes, io } = recorder();
  const result = answerBurst(decoder, s, batch, io);
  assert.ok(!(result instanceof Promise));
  assert.deepEqual(result, { frames: 1, end: "more" });
  assert.deepEqual(writes, []); // nothing written early: the caller writes the batch
  assert.deepEqual(repliesIn(batch.take()), [{ type: "continue" }]);
});

Deno.test("answerBurst() writes what is owed before waiting on the filter", async () => {
  const release = Promise.withResolvers<void>();
  const filter: Filter = {
    needs: ALL_EVENTS,
    connect: () => ({
      envFrom: async () => {
        await release.promise;
        return "continue" as const;
      },
      endOfMessage: () => ({ modifications: [], action: "accept" }),
    }),
  };
  const decoder = decoderOf(OPENING.slice(2)); // HELO, then MAIL (answered later), then RCPT
  const { writes, writtenAtWait, io } = recorder();
  const s = await connected(filter);
  const running = burst(decoder, s, new ReplyBatch(), io);
  // The HELO reply went out before the wait for MAIL's answer began.
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(writtenAtWait, [1]);
  assert.deepEqual(repliesIn(writes[0]).map((r) => r.type), ["continue"]);
  release.resolve();
  assert.deepEqual(await running, { frames: 3, end: "more" });
  assert.equal(writes.length, 2);
  assert.deepEqual(repliesIn(writes[1]).map((r) => r.type), ["continue", "continue"]);
});

Deno.test("answerBurst() writes the replies owed before a quit or a stop", async () => {
  const quitting = decoderOf([...OPENING.slice(0, 3), { type: "quit" }, {
    type: "helo",
    name: "x",
  }]);
  const q = recorder();
  const quit = await burst(
    quitting,
    session(syncFilter),
    new ReplyBatch(),
    q.io,
  );
  assert.deepEqual(quit, { frames: 4, end: "closed" });
  assert.equal(repliesIn(concat(q.writes)).length, 3);
  const stopping = decoderOf(OPENING);
  const s = recorder(() => true);
  const stop = await burst(
    stopping,
    session(syncFilter),
    new ReplyBatch(),
    s.io,
  );
  assert.deepEqual(stop, { frames: 1, end: "stopped" });
  assert.deepEqual(repliesIn(concat(s.writes)).map((r) => r.type), ["optneg"]);
  assert.equal(stopping.buffered > 0, true);
});

Deno.test("answerBurst() gives up without writing when the wait is abandoned", async () => {
  const filter: Filter = {
    needs: ALL_EVENTS,
    connect: () => ({
      helo: () => new Promise<never>(() => {}),
      endOfMessage: () => ({ modifications: [], action: "accept" }),
    }),
  };
  const decoder = decoderOf([{ type: "abort" }, ...OPENING.slice(2)]);
  const { writes, io } = recorder();
  const s = await connected(filter);
  const result = await burst(decoder, s, new ReplyBatch(), {
    ...io,
    wait: () => Promise.resolve("abandoned"),
  });
  assert.deepEqual(result, { frames: 2, end: "abandoned" });
  assert.deepEqual(writes, []);
});

Deno.test("ReplyBatch encodes as encodeReply() does, growing and reusing its buffer", () => {
  const replies: Reply[] = [
    { type: "continue" },
    { type: "addheader", name: "X-Long", value: "v".repeat(1000) },
    { type: "insheader", index: 0, name: "X-First", value: new Uint8Array([0x20, 0xe9]) },
    { type: "chgheader", index: 2, name: "X-Old", value: "" },
    { type: "replycode", code: 550, text: "5.7.1 No" },
    { type: "quarantine", reason: "held" },
    { type: "skip" },
    { type: "progress" },
    { type: "tempfail" },
    { type: "reject" },
    { type: "discard" },
    { type: "accept" },
  ];
  const batch = new ReplyBatch();
  for (let round = 0; round < 3; round++) {
    batch.add(replies.slice(0, 2));
    batch.add(replies.slice(2));
    assert.deepEqual(batch.take(), concat(replies.map(encodeReply)));
    assert.equal(batch.length, 0);
  }
});

Deno.test("ReplyBatch.add() leaves the batch as it was when a reply cannot be encoded", () => {
  const batch = new ReplyBatch();
  batch.add([{ type: "continue" }]);
  assert.throws(() =>
    batch.add([{ type: "accept" }, { type: "addheader", name: "A:B", value: "" }])
  );
  assert.deepEqual(batch.take(), encodeReply({ type: "continue" }));
});
