import assert from "node:assert/strict";
import {
  actionReply,
  describeAction,
  endOfMessageReplies,
  isFinal,
  neededAction,
  refusesRecipient,
} from "../../lib/milter/action.ts";
import {
  SMFIF_ADDHDRS,
  SMFIF_ADDRCPT,
  SMFIF_ADDRCPT_PAR,
  SMFIF_CHGHDRS,
  SMFIF_DELRCPT,
  SMFIF_QUARANTINE,
} from "../../lib/milter/constants.ts";
import type { Action, Modification } from "../../lib/milter/filter.ts";

Deno.test("actionReply() maps each action to its reply", () => {
  for (const action of ["continue", "accept", "reject", "tempfail", "discard"] as const) {
    assert.deepEqual(actionReply(action), { type: action });
  }
  assert.deepEqual(actionReply({ replycode: 451, text: "Try later" }), {
    type: "replycode",
    code: 451,
    text: "Try later",
  });
  assert.deepEqual(actionReply({ replycode: 550, xcode: "5.7.1", text: "50% off" }), {
    type: "replycode",
    code: 550,
    text: "5.7.1 50%% off",
  });
});

Deno.test("actionReply() throws TypeError for an action the MTA would refuse", () => {
  const bad: unknown[] = [
    "skip",
    "REJECT",
    null,
    42,
    { replycode: 250, text: "ok" },
    { replycode: 550.5, text: "x" },
    { replycode: 550, text: "two\r\nlines" },
    { replycode: 550, text: 7 },
    { replycode: 550, xcode: "4.7.1", text: "class differs" },
    { replycode: 550, xcode: "5.7", text: "short" },
  ];
  for (const action of bad) {
    assert.throws(() => actionReply(action as Action), TypeError, describeAction(action));
  }
});

Deno.test("isFinal() and refusesRecipient() tell a decision and a recipient refusal", () => {
  assert.equal(isFinal("continue"), false);
  for (const action of ["accept", "reject", "tempfail", "discard"] as const) {
    assert.equal(isFinal(action), true, action);
  }
  assert.equal(refusesRecipient("reject"), true);
  assert.equal(refusesRecipient("tempfail"), true);
  assert.equal(refusesRecipient({ replycode: 550, text: "No such user" }), true);
  assert.equal(refusesRecipient("accept"), false);
  assert.equal(refusesRecipient("discard"), false);
});

Deno.test("endOfMessageReplies() sends the modifications, then the action", () => {
  const modifications: Modification[] = [
    { type: "insheader", index: 0, name: "DKIM-Signature", value: " v=1" },
    { type: "chgheader", index: 1, name: "X-Old", value: "" },
    { type: "quarantine", reason: "suspicious" },
  ];
  const all = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE;
  assert.deepEqual(endOfMessageReplies({ modifications, action: "accept" }, all), [
    ...modifications,
    { type: "accept" },
  ]);
  assert.deepEqual(endOfMessageReplies({ modifications: [], action: "discard" }, 0), [
    { type: "discard" },
  ]);
});

Deno.test("endOfMessageReplies() sends recipient changes only when their SMFIF_* flag was negotiated", () => {
  const del: Modification = { type: "delrcpt", address: "<b@example.org>" };
  const add: Modification = { type: "addrcpt", address: "<failures@example.com>" };
  const addPar: Modification = {
    type: "addrcpt",
    address: "<f@example.com>",
    args: "NOTIFY=NEVER",
  };
  assert.deepEqual(
    endOfMessageReplies(
      { modifications: [del, add, addPar], action: "accept" },
      SMFIF_DELRCPT | SMFIF_ADDRCPT | SMFIF_ADDRCPT_PAR,
    ),
    [del, add, addPar, { type: "accept" }],
  );
  assert.equal(neededAction(del), SMFIF_DELRCPT);
  assert.equal(neededAction(add), SMFIF_ADDRCPT);
  assert.equal(neededAction(addPar), SMFIF_ADDRCPT_PAR);
  for (
    const [m, flags] of [[del, SMFIF_ADDRCPT], [add, SMFIF_DELRCPT], [
      addPar,
      SMFIF_ADDRCPT,
    ]] as const
  ) {
    assert.throws(
      () => endOfMessageReplies({ modifications: [m], action: "accept" }, flags),
      new RegExp(`${m.type} was not negotiated`),
    );
  }
  assert.throws(
    () =>
      endOfMessageReplies({
        modifications: [{ type: "addrcpt", address: "" }],
        action: "accept",
      }, SMFIF_ADDRCPT),
    /Invalid modification addrcpt/,
  );
});

Deno.test("endOfMessageReplies() throws TypeError for a modification not negotiated or not sendable", () => {
  const add: Modification = { type: "addheader", name: "X-A", value: "b" };
  const change: Modification = { type: "chgheader", index: 1, name: "X-A", value: "b" };
  const quarantine: Modification = { type: "quarantine", reason: "why" };
  assert.throws(
    () => endOfMessageReplies({ modifications: [add], action: "accept" }, 0),
    /addheader was not negotiated/,
  );
  assert.throws(
    () => endOfMessageReplies({ modifications: [change], action: "accept" }, SMFIF_ADDHDRS),
    /chgheader was not negotiated/,
  );
  assert.throws(
    () => endOfMessageReplies({ modifications: [quarantine], action: "accept" }, SMFIF_ADDHDRS),
    /quarantine was not negotiated/,
  );
  assert.throws(
    () =>
      endOfMessageReplies({
        modifications: [{ type: "addheader", name: "Bad Name", value: "x" }],
        action: "accept",
      }, SMFIF_ADDHDRS),
    /Invalid modification addheader/,
  );
  assert.throws(
    () => endOfMessageReplies({ modifications: [], action: "maybe" as Action }, SMFIF_ADDHDRS),
    TypeError,
  );
});
