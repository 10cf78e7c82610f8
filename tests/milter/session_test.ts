import fc from "fast-check";
import assert from "node:assert/strict";
import { utf8 } from "../../lib/bytes.ts";
import type { Command } from "../../lib/milter/command.ts";
import {
  SMFI_CURR_ACTS,
  SMFI_CURR_PROT,
  SMFIC_BODYEOB,
  SMFIC_CONNECT,
  SMFIC_HEADER,
  SMFIC_MAIL,
  SMFIF_ADDHDRS,
  SMFIF_CHGHDRS,
  SMFIP_HDR_LEADSPC,
  SMFIP_SKIP,
} from "../../lib/milter/constants.ts";
import type { FilterNeeds } from "../../lib/milter/filter.ts";
import { encodeReply, type Reply } from "../../lib/milter/reply.ts";
import { type ErrorAction, MilterSession } from "../../lib/milter/session.ts";
import { MemoryLogger } from "../helpers/milter_logger.ts";
import { type Behaviour, RecordingFilter } from "../helpers/milter_recording_filter.ts";
import { tagFilter } from "../helpers/milter_tag_filter.ts";
import { fuzzParams } from "../helpers/fuzz.ts";

const POSTFIX_OFFER: Command = {
  type: "optneg",
  version: 6,
  actions: SMFI_CURR_ACTS,
  protocol: SMFI_CURR_PROT,
};

// Every event, every reply: the easiest setting to follow replies in.
const ALL_EVENTS: FilterNeeds = {
  actions: SMFIF_ADDHDRS | SMFIF_CHGHDRS,
  events: ["helo", "envFrom", "envRcpt", "header", "endOfHeaders", "body"],
};

const CONNECT: Command = {
  type: "connect",
  hostname: "client.example.org",
  family: "inet",
  port: 54321,
  address: "192.0.2.7",
};

const C = { type: "continue" } as const;

function setup(
  needs: FilterNeeds,
  behaviour: Behaviour = {},
  onError?: ErrorAction,
): { session: MilterSession; filter: RecordingFilter; log: MemoryLogger } {
  const filter = new RecordingFilter(needs, behaviour);
  const log = new MemoryLogger();
  const session = new MilterSession(filter, { logger: log, onError, label: "test" });
  return { session, filter, log };
}

async function run(session: MilterSession, commands: readonly Command[]): Promise<Reply[][]> {
  const out: Reply[][] = [];
  for (const command of commands) out.push(await session.handle(command));
  return out;
}

function message(n: number, body = `Body ${n}\r\n`): Command[] {
  return [
    { type: "macro", forCommand: SMFIC_MAIL, macros: [["i", `Q${n}`]] },
    { type: "mail", args: [`<s${n}@example.org>`] },
    { type: "rcpt", args: [`<r${n}@example.net>`] },
    { type: "header", name: "Subject", value: utf8(` Message ${n}`) },
    { type: "eoh" },
    { type: "body", chunk: utf8(body) },
    { type: "bodyeob" },
  ];
}

const messageCalls = (n: number) => [
  `envFrom <s${n}@example.org>`,
  `envRcpt <r${n}@example.net>`,
  `header Subject: Message ${n}`,
  "eoh",
  `body Body ${n}\r\n`,
  "eom",
];

Deno.test("MilterSession.handle() runs several transactions on one connection", async () => {
  const { session, filter } = setup(ALL_EVENTS, {
    endOfMessage: (m) => ({
      modifications: [{
        type: "addheader",
        name: "X-Queue",
        value: ` ${m.get("i")} ${m.get("j")}`,
      }],
      action: "accept",
    }),
  });
  const [optneg, ...rest] = await run(session, [
    POSTFIX_OFFER,
    { type: "macro", forCommand: SMFIC_CONNECT, macros: [["j", "mx.example.org"]] },
    CONNECT,
    { type: "helo", name: "client.example.org" },
  ]);
  assert.equal(optneg[0].type, "optneg");
  assert.deepEqual(rest, [[], [C], [C]]);
  for (let n = 1; n <= 3; n++) {
    const replies = await run(session, [...message(n), { type: "abort" }]);
    assert.deepEqual(replies, [
      [],
      [C],
      [C],
      [C],
      [C],
      [C],
      [{ type: "addheader", name: "X-Queue", value: ` Q${n} mx.example.org` }, { type: "accept" }],
      [],
    ]);
  }
  assert.deepEqual(filter.take(), [
    "connect client.example.org inet 192.0.2.7 54321",
    "helo client.example.org",
    ...messageCalls(1),
    ...messageCalls(2),
    ...messageCalls(3),
  ]);
  assert.equal(session.busy, false);
});

Deno.test("MilterSession.handle() clears a transaction's macros when it ends", async () => {
  const seen: Array<string | undefined> = [];
  const { session } = setup(ALL_EVENTS, {
    envFrom: (_, m) => void seen.push(m.get("auth_type"), m.get("{auth_type}")),
    endOfMessage: (m) => {
      seen.push(m.get("i"), m.get("{daemon_name}"));
      return { modifications: [], action: "continue" };
    },
  });
  await run(session, [
    POSTFIX_OFFER,
    { type: "macro", forCommand: SMFIC_CONNECT, macros: [["{daemon_name}", "smtpd"]] },
    CONNECT,
    {
      type: "macro",
      forCommand: SMFIC_MAIL,
      macros: [["{auth_type}", "PLAIN"], ["i", "Q1"]],
    },
    { type: "mail", args: ["<a@example.org>"] },
    { type: "macro", forCommand: SMFIC_BODYEOB, macros: [["i", "Q1-eom"]] },
    { type: "bodyeob" },
    { type: "abort" },
    { type: "mail", args: ["<b@example.org>"] },
    { type: "bodyeob" },
  ]);
  assert.deepEqual(seen, [
    "PLAIN",
    "PLAIN",
    "Q1-eom", // the latest stage defining a name wins
    "smtpd",
    undefined, // the first transaction's {auth_type} is gone
    undefined,
    undefined,
    "smtpd", // connection macros stay
  ]);
});

Deno.test("MilterSession.handle() treats ABORT mid-body as the end of the transaction only", async () => {
  const { session, filter } = setup(ALL_EVENTS);
  await run(session, [POSTFIX_OFFER, CONNECT]);
  filter.take();
  const replies = await run(session, [
    ...message(1).slice(0, 6),
    { type: "abort" },
    ...message(2),
  ]);
  assert.deepEqual(replies.slice(6), [[], [], [C], [C], [C], [C], [C], [C]]);
  assert.deepEqual(filter.take(), [...messageCalls(1).slice(0, 5), "abort", ...messageCalls(2)]);
});

Deno.test("MilterSession.handle() starts over after QUIT_NC and keeps the negotiation", async () => {
  const { session, filter } = setup(ALL_EVENTS);
  await run(session, [POSTFIX_OFFER, CONNECT, ...message(1).slice(0, 3)]);
  const negotiation = session.negotiation;
  const replies = await run(session, [
    { type: "quit_nc" },
    { ...CONNECT, hostname: "second.example.org" } as Command,
    ...message(2),
  ]);
  assert.deepEqual(replies[0], []);
  assert.deepEqual(replies[1], [C]);
  assert.equal(session.negotiation, negotiation);
  assert.equal(session.closed, false);
  assert.deepEqual(filter.take(), [
    "connect client.example.org inet 192.0.2.7 54321",
    ...messageCalls(1).slice(0, 2),
    "abort",
    "close",
    "connect second.example.org inet 192.0.2.7 54321",
    ...messageCalls(2),
  ]);
});

Deno.test("MilterSession.handle() ends the connection at QUIT", async () => {
  const { session, filter, log } = setup(ALL_EVENTS);
  const replies = await run(session, [POSTFIX_OFFER, CONNECT, { type: "quit" }, CONNECT]);
  assert.deepEqual(replies.slice(2), [[], []]);
  assert.equal(session.closed, true);
  assert.deepEqual(filter.take().slice(1), ["close"]);
  assert.ok(log.find("warn", /after the connection closed/));
});

for (const onError of ["accept", "tempfail"] as const) {
  Deno.test(`MilterSession.handle() answers ${onError} when a callback throws, then recovers`, async () => {
    let throws = 1;
    const { session, filter, log } = setup(ALL_EVENTS, {
      header: () => {
        if (throws-- > 0) throw new Error("header exploded");
      },
    }, onError);
    await run(session, [POSTFIX_OFFER, CONNECT]);
    filter.take();
    const first = await run(session, [...message(1), { type: "abort" }]);
    assert.deepEqual(first, [
      [],
      [C],
      [C],
      [{ type: onError }],
      [{ type: onError }],
      [{
        type: onError,
      }],
      [{ type: onError }],
      [],
    ]);
    assert.deepEqual(filter.take(), [...messageCalls(1).slice(0, 3)]);
    assert.ok(log.find("error", /Filter failed at header: Error: header exploded/));
    const second = await run(session, message(2));
    assert.deepEqual(second.at(-1), [C]);
    assert.deepEqual(filter.take(), messageCalls(2));
  });
}

Deno.test("MilterSession.handle() answers onError when end of message rejects", async () => {
  let fail = true;
  const { session, filter, log } = setup(ALL_EVENTS, {
    endOfMessage: async () => {
      await Promise.resolve();
      if (fail) {
        fail = false;
        throw new TypeError("no key");
      }
      return { modifications: [], action: "accept" };
    },
  }, "tempfail");
  await run(session, [POSTFIX_OFFER, CONNECT]);
  assert.deepEqual((await run(session, message(1))).at(-1), [{ type: "tempfail" }]);
  assert.ok(log.find("error", /end of message: TypeError: no key; answering tempfail/));
  assert.deepEqual((await run(session, message(2))).at(-1), [{ type: "accept" }]);
  assert.equal(filter.calls.filter((c) => c === "eom").length, 2);
});

Deno.test("MilterSession.handle() holds an early accept until a reply is owed", async () => {
  const { session, filter } = setup(
    {
      actions: SMFIF_ADDHDRS,
      events: ["header", "endOfHeaders", "body"],
      noReply: ["header"],
    },
    { header: (name) => (name === "X-Trusted" ? "accept" : undefined) },
  );
  await run(session, [POSTFIX_OFFER, CONNECT]);
  filter.take();
  const replies = await run(session, [
    { type: "header", name: "From", value: utf8(" a@example.org") },
    { type: "header", name: "X-Trusted", value: utf8(" yes") },
    { type: "header", name: "Subject", value: utf8(" ignored") },
    { type: "eoh" },
    { type: "body", chunk: utf8("x") },
    { type: "bodyeob" },
  ]);
  assert.deepEqual(replies, [[], [], [], [{ type: "accept" }], [{ type: "accept" }], [{
    type: "accept",
  }]]);
  assert.deepEqual(filter.take(), ["header From: a@example.org", "header X-Trusted: yes"]);
});

Deno.test("MilterSession.handle() gives an early decision at end of message at the latest", async () => {
  const { session, filter } = setup(
    {
      actions: 0,
      events: ["header", "endOfHeaders", "body"],
      noReply: ["header", "endOfHeaders", "body"],
    },
    { body: () => ({ replycode: 550, xcode: "5.7.1", text: "100% spam" }) },
  );
  await run(session, [POSTFIX_OFFER, CONNECT]);
  const replies = await run(session, [
    { type: "header", name: "From", value: utf8(" a@example.org") },
    { type: "eoh" },
    { type: "body", chunk: utf8("one") },
    { type: "body", chunk: utf8("two") },
    { type: "bodyeob" },
  ]);
  assert.deepEqual(replies, [[], [], [], [], [{
    type: "replycode",
    code: 550,
    text: "5.7.1 100%% spam",
  }]]);
  assert.deepEqual(filter.take().slice(1), ["header From: a@example.org", "eoh", "body one"]);
});

Deno.test("MilterSession.handle() refuses one recipient without ending the message", async () => {
  const { session, filter } = setup(ALL_EVENTS, {
    envRcpt: ([rcpt]) => (rcpt === "<bad@example.net>" ? "reject" : "continue"),
  });
  await run(session, [POSTFIX_OFFER, CONNECT, { type: "mail", args: ["<a@example.org>"] }]);
  const replies = await run(session, [
    { type: "rcpt", args: ["<bad@example.net>"] },
    { type: "rcpt", args: ["<good@example.net>"] },
    { type: "bodyeob" },
  ]);
  assert.deepEqual(replies, [[{ type: "reject" }], [C], [C]]);
  assert.ok(filter.calls.includes("eom"));
});

Deno.test("MilterSession.handle() treats skip from HELO as a filter error", async () => {
  const { session, log } = setup(ALL_EVENTS, { helo: () => "skip" as never }, "tempfail");
  const replies = await run(session, [POSTFIX_OFFER, CONNECT, { type: "helo", name: "h" }]);
  assert.deepEqual(replies[2], [{ type: "tempfail" }]);
  assert.ok(log.find("error", /Invalid filter action skip/));
});

Deno.test("MilterSession.handle() makes a HELO rejection final for the connection", async () => {
  const { session, filter } = setup(ALL_EVENTS, { helo: () => "reject" });
  const replies = await run(session, [
    POSTFIX_OFFER,
    CONNECT,
    { type: "helo", name: "spammer" },
    ...message(1),
  ]);
  assert.deepEqual(replies.slice(2), [
    [{ type: "reject" }],
    [],
    [{ type: "reject" }],
    [{ type: "reject" }],
    [{ type: "reject" }],
    [{ type: "reject" }],
    [{ type: "reject" }],
    [{ type: "reject" }],
  ]);
  assert.deepEqual(filter.take().slice(1), ["helo spammer"]);
});

Deno.test("MilterSession.handle() answers onError for the connection when connect() throws", async () => {
  let fail = true;
  const { session, filter, log } = setup(ALL_EVENTS, {
    connect: () => {
      if (fail) {
        fail = false;
        throw new Error("no config");
      }
    },
  }, "tempfail");
  const replies = await run(session, [POSTFIX_OFFER, CONNECT, ...message(1)]);
  assert.deepEqual(replies[1], [{ type: "tempfail" }]);
  assert.deepEqual(replies.at(-1), [{ type: "tempfail" }]);
  assert.ok(log.find("error", /at connect: Error: no config/));
  const again = await run(session, [{ type: "quit_nc" }, CONNECT, ...message(2)]);
  assert.deepEqual(again.at(-1), [C]);
  assert.deepEqual(filter.take().slice(-6), messageCalls(2));
});

Deno.test("MilterSession.handle() answers tempfail to a message sent out of order", async () => {
  const { session, filter, log } = setup(ALL_EVENTS);
  await run(session, [POSTFIX_OFFER, CONNECT]);
  filter.take();
  const replies = await run(session, [
    ...message(1).slice(0, 6),
    { type: "header", name: "Late", value: utf8(" header") },
    { type: "bodyeob" },
    ...message(2),
  ]);
  assert.deepEqual(replies.slice(6, 8), [[{ type: "tempfail" }], [{ type: "tempfail" }]]);
  assert.deepEqual(replies.at(-1), [C]);
  assert.ok(log.find("warn", /HEADER out of order/));
  assert.deepEqual(filter.take(), [...messageCalls(1).slice(0, 5), ...messageCalls(2)]);
});

Deno.test("MilterSession.handle() treats a second DATA or EOH as out of order", async () => {
  for (const type of ["data", "eoh"] as const) {
    const { session } = setup(ALL_EVENTS);
    await run(session, [POSTFIX_OFFER, CONNECT, { type: "mail", args: ["<a@b>"] }]);
    assert.deepEqual(await run(session, [{ type }, { type }]), [[C], [{ type: "tempfail" }]]);
  }
});

Deno.test("MilterSession.handle() answers continue to an unknown command code", async () => {
  const { session, log } = setup(ALL_EVENTS);
  const replies = await run(session, [
    POSTFIX_OFFER,
    CONNECT,
    { type: "unrecognized", code: 0x5a, data: new Uint8Array(3) },
    { type: "unknown", command: "XFOO" },
  ]);
  // UNKNOWN was turned off, so the MTA owes no such command; sent anyway, it gets an answer.
  assert.deepEqual(replies.slice(2), [[C], [C]]);
  assert.ok(log.find("warn", /Unknown milter command 0x5a/));
});

Deno.test("MilterSession.handle() copes with an MTA that skips OPTNEG and CONNECT", async () => {
  const { session, filter, log } = setup(ALL_EVENTS, {
    endOfMessage: () => ({
      modifications: [{ type: "addheader", name: "X-A", value: "b" }],
      action: "accept",
    }),
  });
  const replies = await run(session, message(1));
  assert.deepEqual(replies.slice(1, 6), [[C], [C], [C], [C], [C]]);
  // Nothing was negotiated, so the header change is not allowed: onError (accept) instead.
  assert.deepEqual(replies[6], [{ type: "accept" }]);
  assert.ok(log.find("warn", /MAIL before OPTNEG/));
  assert.ok(log.find("warn", /MAIL before CONNECT/));
  assert.ok(log.find("error", /addheader was not negotiated/));
  assert.equal(filter.infos[0].session.leadingSpace, false);
  assert.equal(filter.infos[0].family, "unknown");
});

Deno.test("MilterSession.handle() closes after refusing negotiation", async () => {
  const { session, log } = setup(ALL_EVENTS);
  const replies = await run(session, [{ type: "optneg", version: 1, actions: 0, protocol: 0 }]);
  assert.deepEqual(replies, [[]]);
  assert.equal(session.closed, true);
  assert.ok(log.find("error", /version 1: version 2 or later is required; closing/));
});

Deno.test("MilterSession.handle() treats a modification the MTA did not allow as an error", async () => {
  const { session, log } = setup(
    { actions: SMFIF_ADDHDRS, optionalActions: SMFIF_CHGHDRS, events: [] },
    {
      endOfMessage: () => ({
        modifications: [{ type: "chgheader", index: 1, name: "Subject", value: "" }],
        action: "continue",
      }),
    },
    "tempfail",
  );
  const replies = await run(session, [
    { type: "optneg", version: 6, actions: SMFIF_ADDHDRS, protocol: SMFI_CURR_PROT },
    CONNECT,
    { type: "bodyeob" },
  ]);
  assert.deepEqual(replies[2], [{ type: "tempfail" }]);
  assert.ok(log.find("error", /chgheader was not negotiated/));
});

Deno.test("MilterSession.handle() treats an invalid modification or action as an error", async () => {
  const results: unknown[] = [
    { modifications: [{ type: "addheader", name: "Bad Name", value: "x" }], action: "accept" },
    { modifications: [], action: "bogus" },
    { modifications: [], action: { replycode: 250, text: "ok" } },
    { modifications: [], action: { replycode: 550, xcode: "4.7.1", text: "class mismatch" } },
    { modifications: [], action: { replycode: 550, text: "two\r\nlines" } },
  ];
  for (const result of results) {
    const { session, log } = setup(ALL_EVENTS, {
      endOfMessage: () => result as never,
    }, "tempfail");
    const replies = await run(session, [POSTFIX_OFFER, CONNECT, { type: "bodyeob" }]);
    assert.deepEqual(replies[2], [{ type: "tempfail" }], JSON.stringify(result));
    assert.equal(log.at("error").length, 1);
  }
});

Deno.test("MilterSession.handle() answers skip and stops calling body()", async () => {
  const { session, filter } = setup(ALL_EVENTS, { body: () => "skip" });
  await run(session, [POSTFIX_OFFER, CONNECT]);
  assert.ok(session.negotiation!.protocol & SMFIP_SKIP);
  filter.take();
  const replies = await run(session, [
    { type: "mail", args: ["<a@b>"] },
    { type: "body", chunk: utf8("one") },
    { type: "body", chunk: utf8("two") },
    { type: "bodyeob", chunk: utf8("three") },
  ]);
  assert.deepEqual(replies, [[C], [{ type: "skip" }], [{ type: "skip" }], [C]]);
  assert.deepEqual(filter.take(), ["envFrom <a@b>", "body one", "eom"]);
});

Deno.test("MilterSession.handle() answers continue to skip when the MTA cannot skip", async () => {
  const { session, filter } = setup(ALL_EVENTS, { body: () => "skip" });
  await run(session, [
    { type: "optneg", version: 6, actions: SMFI_CURR_ACTS, protocol: SMFI_CURR_PROT & ~SMFIP_SKIP },
    CONNECT,
  ]);
  filter.take();
  const replies = await run(session, [
    { type: "body", chunk: utf8("one") },
    { type: "body", chunk: utf8("two") },
  ]);
  assert.deepEqual(replies, [[C], [C]]);
  assert.deepEqual(filter.take(), ["body one"]);
});

Deno.test("MilterSession.handle() passes the last chunk of BODYEOB to body() first", async () => {
  const { session, filter } = setup(ALL_EVENTS);
  await run(session, [POSTFIX_OFFER, CONNECT, { type: "mail", args: ["<a@b>"] }]);
  filter.take();
  await run(session, [{ type: "bodyeob", chunk: utf8("tail\r\n") }]);
  assert.deepEqual(filter.take(), ["body tail\r\n", "eom"]);
});

Deno.test("MilterSession tells the filter whether header values keep their leading space", async () => {
  for (
    const [protocol, want] of [[SMFI_CURR_PROT, true], [
      SMFI_CURR_PROT & ~SMFIP_HDR_LEADSPC,
      false,
    ]] as const
  ) {
    const { session, filter } = setup(ALL_EVENTS);
    await run(session, [
      { type: "optneg", version: 6, actions: SMFI_CURR_ACTS, protocol },
      CONNECT,
    ]);
    assert.equal(filter.infos[0].session.leadingSpace, want);
    assert.equal(filter.infos[0].session.version, 6);
  }
});

Deno.test("MilterSession.close() aborts the transaction and closes the filter's connection", async () => {
  const { session, filter } = setup(ALL_EVENTS);
  await run(session, [POSTFIX_OFFER, CONNECT, { type: "mail", args: ["<a@b>"] }]);
  assert.equal(session.busy, true);
  await session.close();
  await session.close();
  assert.equal(session.closed, true);
  assert.deepEqual(filter.take().slice(-3), ["envFrom <a@b>", "abort", "close"]);
});

Deno.test("MilterSession.handle() calls abort() when MAIL starts a new transaction", async () => {
  const { session, filter } = setup(ALL_EVENTS);
  await run(session, [
    POSTFIX_OFFER,
    CONNECT,
    { type: "mail", args: ["<a@b>"] },
    { type: "mail", args: ["<c@d>"] },
  ]);
  assert.deepEqual(filter.take().slice(1), ["envFrom <a@b>", "abort", "envFrom <c@d>"]);
});

Deno.test("MilterSession.handle() serializes overlapping calls", async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const { session, filter } = setup(ALL_EVENTS, { envFrom: () => gate });
  await run(session, [POSTFIX_OFFER, CONNECT]);
  filter.take();
  const mail = session.handle({ type: "mail", args: ["<a@b>"] });
  const rcpt = session.handle({ type: "rcpt", args: ["<c@d>"] });
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(filter.calls, ["envFrom <a@b>"]);
  release();
  assert.deepEqual(await mail, [C]);
  assert.deepEqual(await rcpt, [C]);
  assert.deepEqual(filter.take(), ["envFrom <a@b>", "envRcpt <c@d>"]);
});

Deno.test("MilterSession.receive() answers at once when the filter does, and queues behind a pending call", async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const { session, filter } = setup(ALL_EVENTS, { envRcpt: () => gate });
  await run(session, [POSTFIX_OFFER, CONNECT]);
  filter.take();
  assert.deepEqual(session.receive({ type: "mail", args: ["<a@b>"] }), [C]);
  const rcpt = session.receive({ type: "rcpt", args: ["<c@d>"] });
  assert.ok(rcpt instanceof Promise, "a pending answer is a promise");
  assert.equal(session.busy, true);
  // Behind the pending RCPT, even an answer the filter gives at once waits its turn.
  const header = session.receive({ type: "header", name: "Subject", value: utf8(" Hi") });
  assert.ok(header instanceof Promise);
  assert.deepEqual(filter.calls, ["envFrom <a@b>", "envRcpt <c@d>"]);
  release();
  assert.deepEqual(await rcpt, [C]);
  assert.deepEqual(await header, [C]);
  assert.deepEqual(filter.take(), ["envFrom <a@b>", "envRcpt <c@d>", "header Subject: Hi"]);
  assert.deepEqual(session.receive({ type: "eoh" }), [C]);
});

Deno.test("MilterSession.close() waits for the call in progress, and later calls find it closed", async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const { session, filter, log } = setup(ALL_EVENTS, { envFrom: () => gate });
  await run(session, [POSTFIX_OFFER, CONNECT]);
  filter.take();
  const mail = session.receive({ type: "mail", args: ["<a@b>"] });
  const closed = session.close();
  assert.deepEqual(session.receive({ type: "abort" }) instanceof Promise, true);
  release();
  assert.deepEqual(await mail, [C]);
  await closed;
  assert.deepEqual(filter.take(), ["envFrom <a@b>", "abort", "close"]);
  assert.equal(session.closed, true);
  assert.ok(log.find("warn", /Ignoring abort after the connection closed/));
});

Deno.test("RecordingFilter records header values and chunks as they were when lent", async () => {
  const { session, filter } = setup(ALL_EVENTS);
  await run(session, [POSTFIX_OFFER, CONNECT]);
  filter.take();
  for (const command of message(1)) {
    await session.receive(command);
    // The server's next read overwrites what it lent (FilterConnection, "Borrowed bytes").
    if (command.type === "header") command.value.fill(0x58);
    if (command.type === "body") command.chunk.fill(0x58);
  }
  assert.deepEqual(filter.take(), messageCalls(1));
});

Deno.test("tagFilter() decides from header values as they were when lent", async () => {
  const session = new MilterSession(tagFilter(), { logger: new MemoryLogger() });
  const commands: Command[] = [
    POSTFIX_OFFER,
    CONNECT,
    { type: "mail", args: ["<a@b>"] },
    { type: "rcpt", args: ["<c@d>"] },
    { type: "header", name: "X-Change-Me", value: utf8(" old") },
    { type: "header", name: "X-Quarantine", value: utf8(" yes") },
    { type: "eoh" },
    { type: "body", chunk: utf8("Hi\r\n") },
    { type: "bodyeob" },
  ];
  let replies: Reply[] = [];
  for (const command of commands) {
    replies = await session.receive(command);
    if (command.type === "header") command.value.fill(0x58);
    if (command.type === "body") command.chunk.fill(0x58);
  }
  assert.deepEqual(replies.map((r) => r.type), [
    "insheader",
    "addheader",
    "chgheader",
    "quarantine",
    "accept",
  ]);
});

Deno.test("MilterSession.handle() never rejects and only returns encodable replies", async () => {
  const pool: Command[] = [
    POSTFIX_OFFER,
    { type: "optneg", version: 2, actions: 0, protocol: 0 },
    CONNECT,
    { type: "helo", name: "h" },
    { type: "macro", forCommand: SMFIC_HEADER, macros: [["i", "x"]] },
    { type: "mail", args: ["<a@b>"] },
    { type: "rcpt", args: ["<c@d>"] },
    { type: "data" },
    { type: "header", name: "Subject", value: utf8(" x") },
    { type: "eoh" },
    { type: "body", chunk: utf8("b") },
    { type: "bodyeob" },
    { type: "bodyeob", chunk: utf8("c") },
    { type: "abort" },
    { type: "quit_nc" },
    { type: "unknown", command: "X" },
    { type: "unrecognized", code: 1, data: new Uint8Array(0) },
    { type: "quit" },
  ];
  const actions = fc.constantFrom<unknown>(
    undefined,
    "continue",
    "accept",
    "reject",
    "tempfail",
    "discard",
    "skip",
    "nonsense",
    { replycode: 451, text: "later" },
    "throw",
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.constantFrom(...pool), { maxLength: 30 }),
      fc.array(actions, { minLength: 8, maxLength: 8 }),
      fc.subarray(["helo", "envFrom", "envRcpt", "header", "endOfHeaders", "body"] as const),
      async (commands, answers, noReply) => {
        let i = 0;
        const answer = () => {
          const a = answers[i++ % answers.length];
          if (a === "throw") throw new Error("scripted");
          return a as never;
        };
        const { session } = setup({ ...ALL_EVENTS, noReply }, {
          helo: answer,
          envFrom: answer,
          envRcpt: answer,
          header: answer,
          endOfHeaders: answer,
          body: answer,
          endOfMessage: () => ({ modifications: [], action: answer() ?? "continue" }),
        });
        for (const command of commands) {
          const replies = await session.handle(command);
          for (const reply of replies) encodeReply(reply);
        }
        await session.close();
      },
    ),
    fuzzParams(300),
  );
});

Deno.test("MilterSession.handle() applies a connection's decided action to the whole connection", async () => {
  const log = new MemoryLogger();
  const calls: string[] = [];
  const session = new MilterSession({
    needs: { ...ALL_EVENTS, events: ["connect", ...ALL_EVENTS.events] },
    connect() {
      return {
        decided: "accept",
        envFrom() {
          calls.push("envFrom");
        },
        endOfMessage() {
          calls.push("eom");
          return { modifications: [], action: "continue" };
        },
      };
    },
  }, { logger: log });
  const [, connect, helo, , mail] = await run(session, [
    POSTFIX_OFFER,
    CONNECT,
    { type: "helo", name: "client.example.org" },
    ...message(1),
  ]);
  assert.deepEqual(connect, [{ type: "accept" }]);
  assert.deepEqual(helo, [{ type: "accept" }]);
  assert.deepEqual(mail, [{ type: "accept" }]);
  assert.deepEqual(calls, []);
});

Deno.test("MilterSession.handle() survives a filter throwing a value with no string form", async () => {
  const log = new MemoryLogger();
  const session = new MilterSession({
    needs: ALL_EVENTS,
    connect() {
      return {
        helo() {
          throw Object.create(null);
        },
        endOfMessage() {
          return { modifications: [], action: "continue" };
        },
      };
    },
  }, { logger: log, onError: "tempfail" });
  const [, , helo] = await run(session, [POSTFIX_OFFER, CONNECT, { type: "helo", name: "x" }]);
  assert.deepEqual(helo, [{ type: "tempfail" }]);
  assert.ok(log.lines.some((l) => /cannot be shown/.test(l.message)));
});
