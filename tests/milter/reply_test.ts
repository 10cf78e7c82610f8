import assert from "node:assert/strict";
import { concat, utf8 } from "../../lib/bytes.ts";
import {
  SMFIM_ENVFROM,
  SMFIR_ACCEPT,
  SMFIR_ADDHEADER,
  SMFIR_ADDRCPT,
  SMFIR_ADDRCPT_PAR,
  SMFIR_CHGHEADER,
  SMFIR_CONTINUE,
  SMFIR_DELRCPT,
  SMFIR_INSHEADER,
  SMFIR_OPTNEG,
  SMFIR_QUARANTINE,
  SMFIR_REPLYCODE,
  SMFIR_SETSYMLIST,
} from "../../lib/milter/constants.ts";
import type { Frame } from "../../lib/milter/frame.ts";
import { MilterProtocolError } from "../../lib/milter/protocol_error.ts";
import { decodeReply, encodeReply, type Reply, replyProblem } from "../../lib/milter/reply.ts";
import { assertOnlyProtocolErrors, EIGHT_BIT, frameOf, REPLIES } from "./wire_samples.ts";

Deno.test("encodeReply() and decodeReply() round-trip every reply", () => {
  for (const reply of REPLIES) {
    assert.deepEqual(decodeReply(frameOf(encodeReply(reply))), reply, reply.type);
  }
});

Deno.test("encodeReply() sends string header values as UTF-8 and bytes untouched", () => {
  const fromString = decodeReply(frameOf(encodeReply({
    type: "addheader",
    name: "X-Name",
    value: " Jürgen",
  })));
  assert.deepEqual(fromString, { type: "addheader", name: "X-Name", value: utf8(" Jürgen") });
  const bytes = encodeReply({ type: "addheader", name: "X-Raw", value: EIGHT_BIT });
  assert.deepEqual(bytes.subarray(5), concat([utf8("X-Raw\0"), EIGHT_BIT, Uint8Array.of(0)]));
});

Deno.test("encodeReply() lays out OPTNEG with symbol lists after the three integers", () => {
  const bytes = encodeReply({
    type: "optneg",
    version: 6,
    actions: 0x101,
    protocol: 0x80,
    symbols: [{ stage: SMFIM_ENVFROM, macros: ["i", "{auth_type}"] }],
  });
  const data = concat([
    Uint8Array.of(0, 0, 0, 6, 0, 0, 1, 1, 0, 0, 0, 0x80),
    Uint8Array.of(0, 0, 0, 2),
    utf8("i {auth_type}\0"),
  ]);
  assert.deepEqual(bytes, concat([Uint8Array.of(0, 0, 0, data.length + 1, SMFIR_OPTNEG), data]));
});

Deno.test("encodeReply() lays out every header and reply-code reply", () => {
  const cases: Array<{ reply: Reply; code: number; data: Uint8Array }> = [
    { reply: { type: "accept" }, code: SMFIR_ACCEPT, data: new Uint8Array(0) },
    { reply: { type: "continue" }, code: SMFIR_CONTINUE, data: new Uint8Array(0) },
    {
      reply: { type: "replycode", code: 550, text: "5.7.1 No" },
      code: SMFIR_REPLYCODE,
      data: utf8("550 5.7.1 No\0"),
    },
    {
      reply: { type: "addheader", name: "A", value: "b" },
      code: SMFIR_ADDHEADER,
      data: utf8("A\0b\0"),
    },
    {
      reply: { type: "insheader", index: 1, name: "A", value: "b" },
      code: SMFIR_INSHEADER,
      data: concat([Uint8Array.of(0, 0, 0, 1), utf8("A\0b\0")]),
    },
    {
      reply: { type: "chgheader", index: 3, name: "A", value: "" },
      code: SMFIR_CHGHEADER,
      data: concat([Uint8Array.of(0, 0, 0, 3), utf8("A\0\0")]),
    },
    {
      reply: { type: "quarantine", reason: "why" },
      code: SMFIR_QUARANTINE,
      data: utf8("why\0"),
    },
    {
      reply: { type: "addrcpt", address: "<a@b>" },
      code: SMFIR_ADDRCPT,
      data: utf8("<a@b>\0"),
    },
    {
      reply: { type: "addrcpt", address: "<a@b>", args: "NOTIFY=NEVER" },
      code: SMFIR_ADDRCPT_PAR,
      data: utf8("<a@b>\0NOTIFY=NEVER\0"),
    },
    {
      reply: { type: "delrcpt", address: "<a@b>" },
      code: SMFIR_DELRCPT,
      data: utf8("<a@b>\0"),
    },
    {
      reply: { type: "setsymlist", stage: 2, macros: ["i", "j"] },
      code: SMFIR_SETSYMLIST,
      data: concat([Uint8Array.of(0, 0, 0, 2), utf8("i j\0")]),
    },
  ];
  for (const { reply, code, data } of cases) {
    const bytes = encodeReply(reply);
    assert.deepEqual(
      bytes,
      concat([Uint8Array.of(0, 0, 0, data.length + 1, code), data]),
      reply.type,
    );
  }
});

Deno.test("decodeReply() throws MilterProtocolError for malformed replies", () => {
  const cases: Frame[] = [
    { code: SMFIR_ACCEPT, data: Uint8Array.of(1) },
    { code: SMFIR_REPLYCODE, data: utf8("250 ok\0") },
    { code: SMFIR_REPLYCODE, data: utf8("550 no") },
    { code: SMFIR_ADDHEADER, data: utf8("A\0") },
    { code: SMFIR_INSHEADER, data: Uint8Array.of(0, 0, 1) },
    { code: SMFIR_CHGHEADER, data: concat([Uint8Array.of(0, 0, 0, 1), utf8("A\0b")]) },
    { code: SMFIR_QUARANTINE, data: utf8("x") },
    { code: SMFIR_ADDRCPT, data: utf8("<a@b>") },
    { code: SMFIR_ADDRCPT, data: utf8("<a@b>\0x\0") },
    { code: SMFIR_DELRCPT, data: utf8("") },
    { code: SMFIR_ADDRCPT_PAR, data: utf8("<a@b>\0x") },
    { code: SMFIR_OPTNEG, data: new Uint8Array(8) },
    { code: SMFIR_OPTNEG, data: new Uint8Array(14) },
    { code: SMFIR_SETSYMLIST, data: Uint8Array.of(0, 0, 0, 1, 0x69) },
  ];
  for (const frame of cases) {
    assert.throws(() => decodeReply(frame), MilterProtocolError, `0x${frame.code.toString(16)}`);
  }
});

Deno.test("decodeReply() only ever throws MilterProtocolError", () => {
  assertOnlyProtocolErrors(decodeReply);
});

Deno.test("replyProblem() finds every value the wire cannot carry", () => {
  const bad: Array<[Reply, RegExp]> = [
    [{ type: "addheader", name: "", value: "x" }, /name/],
    [{ type: "addheader", name: "Bad Name", value: "x" }, /name/],
    [{ type: "addheader", name: "X-A", value: "a\0b" }, /NUL/],
    [{ type: "addheader", name: "X-A", value: Uint8Array.of(0x61, 0) }, /NUL/],
    [{ type: "insheader", index: -1, name: "X-A", value: "x" }, /index/],
    [{ type: "chgheader", index: 2 ** 32, name: "X-A", value: "x" }, /index/],
    [{ type: "chgheader", index: 1.5, name: "X-A", value: "x" }, /index/],
    [{ type: "replycode", code: 250, text: "ok" }, /400 to 599/],
    [{ type: "replycode", code: 550, text: "a\0" }, /NUL/],
    [{ type: "quarantine", reason: "a\0" }, /NUL/],
    [{ type: "addrcpt", address: "" }, /empty/],
    [{ type: "delrcpt", address: "<a@b>\r\n" }, /line break/],
    [{ type: "addrcpt", address: "<a@b>", args: "x\0" }, /NUL/],
    [{ type: "setsymlist", stage: 1, macros: ["a b"] }, /spaces/],
    [{
      type: "optneg",
      version: 6,
      actions: 0,
      protocol: 0,
      symbols: [{ stage: -1, macros: [] }],
    }, /stage/],
  ];
  for (const [reply, pattern] of bad) {
    assert.match(replyProblem(reply) ?? "", pattern, JSON.stringify(reply));
    assert.throws(() => encodeReply(reply), MilterProtocolError);
  }
  for (const reply of REPLIES) assert.equal(replyProblem(reply), undefined, reply.type);
});
