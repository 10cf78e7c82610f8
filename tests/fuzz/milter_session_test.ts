// Fuzzing of the milter session state machine: arbitrary command sequences (well-formed
// transactions with commands dropped, repeated and swapped, and anything decodeCommand() makes
// of random frames) against a recording filter that answers, throws and modifies at random.
// handle() always resolves, never needs its internal-error escape hatch, and every reply list
// is well formed: encodable, modifications only at end of message, one decision last.
import fc from "fast-check";
import assert from "node:assert/strict";
import { utf8 } from "../../lib/bytes.ts";
import { type Command, decodeCommand } from "../../lib/milter/command.ts";
import {
  SMFI_CURR_ACTS,
  SMFI_CURR_PROT,
  SMFIC_CONNECT,
  SMFIC_HELO,
  SMFIC_MAIL,
  SMFIF_ADDHDRS,
  SMFIF_CHGHDRS,
  SMFIF_QUARANTINE,
} from "../../lib/milter/constants.ts";
import type { FilterEvent, FilterNeeds, Modification } from "../../lib/milter/filter.ts";
import { FrameDecoder } from "../../lib/milter/frame.ts";
import { MilterProtocolError } from "../../lib/milter/protocol_error.ts";
import { decodeReply, encodeReply, type Reply } from "../../lib/milter/reply.ts";
import { type ErrorAction, MilterSession } from "../../lib/milter/session.ts";
import { fuzzParams, MILTER_COMMAND_CODES, milterCommand } from "../helpers/fuzz.ts";
import { MemoryLogger } from "../helpers/milter_logger.ts";
import { RecordingFilter } from "../helpers/milter_recording_filter.ts";

// One transaction as Postfix sends it; the fuzzer then breaks the order.
function transaction(n: number): Command[] {
  return [
    { type: "macro", forCommand: SMFIC_MAIL, macros: [["i", `Q${n}`], ["{auth_type}", "PLAIN"]] },
    { type: "mail", args: [`<s${n}@example.org>`, "SIZE=10"] },
    { type: "rcpt", args: [`<r${n}@example.net>`] },
    { type: "data" },
    { type: "header", name: "From", value: utf8(" s@example.org") },
    { type: "header", name: "Subject", value: utf8(` Message ${n}`) },
    { type: "eoh" },
    { type: "body", chunk: utf8("Hello\r\n") },
    { type: "bodyeob", chunk: utf8("Bye\r\n") },
  ];
}

const OPENING: Command[] = [
  { type: "optneg", version: 6, actions: SMFI_CURR_ACTS, protocol: SMFI_CURR_PROT },
  { type: "macro", forCommand: SMFIC_CONNECT, macros: [["j", "mx.example.org"]] },
  { type: "connect", hostname: "c.example", family: "inet", port: 25, address: "192.0.2.1" },
  { type: "macro", forCommand: SMFIC_HELO, macros: [] },
  { type: "helo", name: "c.example" },
];

type Shuffle =
  | { readonly kind: "drop"; readonly at: number }
  | { readonly kind: "repeat"; readonly at: number }
  | { readonly kind: "swap"; readonly at: number; readonly with: number }
  | { readonly kind: "insert"; readonly at: number; readonly command: Command };

// A plausible session broken by a few edits, or a pile of arbitrary commands.
const commands: fc.Arbitrary<Command[]> = fc.oneof(
  fc.tuple(
    fc.integer({ min: 1, max: 3 }),
    fc.array(
      fc.oneof(
        fc.record({ kind: fc.constant("drop" as const), at: fc.nat() }),
        fc.record({ kind: fc.constant("repeat" as const), at: fc.nat() }),
        fc.record({ kind: fc.constant("swap" as const), at: fc.nat(), with: fc.nat() }),
        fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), command: milterCommand() }),
      ),
      { maxLength: 6 },
    ),
  ).map(([count, shuffles]) => {
    let list = [...OPENING];
    for (let n = 0; n < count; n++) list.push(...transaction(n));
    list.push({ type: "quit" });
    for (const s of shuffles as Shuffle[]) {
      const i = s.at % list.length;
      if (s.kind === "drop") list = list.filter((_, j) => j !== i);
      else if (s.kind === "repeat") list.splice(i, 0, list[i]);
      else if (s.kind === "insert") list.splice(i, 0, s.command);
      else {
        const j = s.with % list.length;
        [list[i], list[j]] = [list[j], list[i]];
      }
    }
    return list;
  }),
  fc.array(milterCommand(), { maxLength: 40, size: "max" }),
  // What the decoder makes of random frame data under every command byte.
  fc.array(
    fc.record({
      code: fc.constantFrom(...MILTER_COMMAND_CODES),
      data: fc.uint8Array({ maxLength: 40, size: "max" }),
    }),
    { maxLength: 30, size: "max" },
  ).map((frames) =>
    frames.flatMap((f) => {
      try {
        return [decodeCommand(f)];
      } catch (error) {
        if (error instanceof MilterProtocolError) return [];
        throw error;
      }
    })
  ),
);

// What a callback does: answer something valid or invalid, throw, reject, or answer later.
type Answer =
  | { readonly kind: "value"; readonly value: unknown }
  | { readonly kind: "throw"; readonly value: unknown }
  | { readonly kind: "reject" }
  | { readonly kind: "later"; readonly value: unknown };

const actionValue = fc.oneof(
  fc.constantFrom<unknown>(
    undefined,
    "continue",
    "accept",
    "reject",
    "tempfail",
    "discard",
    "skip",
    "nonsense",
    null,
    42,
  ),
  fc.record({
    replycode: fc.oneof(fc.integer({ min: 400, max: 599 }), fc.integer(), fc.constant(NaN)),
    text: fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom("a\r\nb", "x\0", "100%")),
    xcode: fc.option(fc.constantFrom("4.7.1", "5.7.1", "2.0.0", "5.7", "x"), { nil: undefined }),
  }),
);
const answer: fc.Arbitrary<Answer> = fc.oneof(
  { weight: 4, arbitrary: actionValue.map((value) => ({ kind: "value" as const, value })) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<unknown>(new Error("scripted"), "a string", undefined, 7).map((
      value,
    ) => ({ kind: "throw" as const, value })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "reject" as const }) },
  { weight: 1, arbitrary: actionValue.map((value) => ({ kind: "later" as const, value })) },
);

const modification: fc.Arbitrary<Modification> = fc.oneof(
  fc.record({
    type: fc.constant("addheader" as const),
    name: fc.constantFrom("X-Test", "Authentication-Results", "bad:name", "", "sp ace"),
    value: fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom("x\0y", " ok")),
  }),
  fc.record({
    type: fc.constantFrom("insheader" as const, "chgheader" as const),
    index: fc.oneof(fc.nat(5), fc.constantFrom(-1, 1.5, 2 ** 32)),
    name: fc.constantFrom("X-Test", "DKIM-Signature", "x:y"),
    value: fc.oneof(fc.string({ maxLength: 20 }), fc.uint8Array({ maxLength: 10 })),
  }),
  fc.record({ type: fc.constant("quarantine" as const), reason: fc.string({ maxLength: 10 }) }),
);

const EVENTS: readonly FilterEvent[] = [
  "helo",
  "envFrom",
  "envRcpt",
  "header",
  "endOfHeaders",
  "body",
];

const needs: fc.Arbitrary<FilterNeeds> = fc.record({
  actions: fc.constantFrom(0, SMFIF_ADDHDRS, SMFIF_ADDHDRS | SMFIF_CHGHDRS),
  optionalActions: fc.constantFrom(0, SMFIF_QUARANTINE),
  events: fc.subarray([...EVENTS]),
  noReply: fc.subarray([...EVENTS]),
  headerLeadingSpace: fc.boolean(),
});

const MODIFICATION_TYPES = new Set(["addheader", "insheader", "chgheader", "quarantine"]);

function checkReplies(command: Command, replies: readonly Reply[]): void {
  for (const reply of replies) {
    const bytes = encodeReply(reply);
    const decoder = new FrameDecoder();
    decoder.push(bytes);
    const frame = decoder.next();
    assert.ok(frame, "one frame per reply");
    decodeReply(frame);
  }
  const decisions = replies.filter((r) => !MODIFICATION_TYPES.has(r.type));
  assert.ok(decisions.length <= 1, `${decisions.length} decisions for ${command.type}`);
  if (replies.length > decisions.length) {
    assert.equal(command.type, "bodyeob", `modifications answering ${command.type}`);
    assert.equal(decisions.length, 1, "modifications without a decision");
  }
  if (decisions.length === 1) assert.equal(replies.at(-1), decisions[0], "decision not last");
}

/** A hang bound for one handle() call; far above the milliseconds one takes. */
const HANDLE_LIMIT_MS = 10_000;

async function withinLimit<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not resolve`)), HANDLE_LIMIT_MS);
  });
  try {
    return await Promise.race([promise, hang]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("MilterSession.handle() resolves to well-formed replies for any command sequence", async () => {
  await fc.assert(
    fc.asyncProperty(
      commands,
      needs,
      fc.array(answer, { minLength: 1, maxLength: 12 }),
      fc.array(modification, { maxLength: 3 }),
      fc.constantFrom<ErrorAction>("accept", "tempfail"),
      async (list, filterNeeds, answers, modifications, onError) => {
        let i = 0;
        const next = (): unknown => {
          const a = answers[i++ % answers.length];
          switch (a.kind) {
            case "value":
              return a.value;
            case "throw":
              throw a.value;
            case "reject":
              return Promise.reject(new Error("scripted rejection"));
            case "later":
              return new Promise((resolve) => setTimeout(() => resolve(a.value), 0));
          }
        };
        const act = () => next() as never;
        const filter = new RecordingFilter(filterNeeds, {
          helo: act,
          envFrom: act,
          envRcpt: act,
          header: act,
          endOfHeaders: act,
          body: act,
          endOfMessage: () => {
            const a = answers[i++ % answers.length];
            const result = (value: unknown) => ({
              modifications,
              action: (value ?? "continue") as never,
            });
            switch (a.kind) {
              case "value":
                return result(a.value);
              case "throw":
                throw a.value;
              case "reject":
                return Promise.reject(new Error("scripted rejection"));
              case "later":
                return new Promise((resolve) => setTimeout(() => resolve(result(a.value)), 0));
            }
          },
        });
        const log = new MemoryLogger();
        const session = new MilterSession(filter, { logger: log, onError, label: "fuzz" });
        for (const command of list) {
          const replies = await withinLimit(session.handle(command), command.type);
          assert.ok(Array.isArray(replies));
          checkReplies(command, replies);
          if (session.closed) {
            assert.deepEqual(await session.handle({ type: "eoh" }), [], "closed stays closed");
          }
        }
        await withinLimit(session.close(), "close()");
        assert.deepEqual(log.at("error").filter((l) => /Internal error/.test(l)), []);
      },
    ),
    fuzzParams(1000),
  );
});

Deno.test("MilterSession.handle() serializes overlapping calls whatever they are", async () => {
  await fc.assert(
    fc.asyncProperty(commands, async (list) => {
      const filter = new RecordingFilter({ actions: SMFIF_ADDHDRS, events: [...EVENTS] }, {
        body: () => new Promise((resolve) => setTimeout(() => resolve("continue"), 0)),
      });
      const log = new MemoryLogger();
      const session = new MilterSession(filter, { logger: log });
      // All at once, as a pipelining MTA's commands arrive: each still gets its own replies.
      const all = await withinLimit(Promise.all(list.map((c) => session.handle(c))), "batch");
      all.forEach((replies, k) => checkReplies(list[k], replies));
      await withinLimit(session.close(), "close()");
      assert.deepEqual(log.at("error").filter((l) => /Internal error/.test(l)), []);
    }),
    fuzzParams(300),
  );
});
