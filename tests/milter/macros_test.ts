import assert from "node:assert/strict";
import {
  SMFIC_ABORT,
  SMFIC_BODY,
  SMFIC_CONNECT,
  SMFIC_EOH,
  SMFIC_HEADER,
  SMFIC_HELO,
  SMFIC_MAIL,
  SMFIC_RCPT,
  SMFIM_ENVFROM,
  SMFIM_HELO,
} from "../../lib/milter/constants.ts";
import { MacroStore } from "../../lib/milter/macros.ts";

Deno.test("MacroStore.get() reads a name with or without braces", () => {
  const macros = new MacroStore();
  macros.receive(SMFIC_MAIL, [["{auth_type}", "PLAIN"], ["i", "4AB"]]);
  assert.equal(macros.get("auth_type"), "PLAIN");
  assert.equal(macros.get("{auth_type}"), "PLAIN");
  assert.equal(macros.get("i"), "4AB");
  assert.equal(macros.get("{i}"), "4AB");
  assert.equal(macros.get("{}"), undefined);
  assert.equal(macros.get("missing"), undefined);
});

Deno.test("MacroStore.get() takes the latest stage, and the last definition within one", () => {
  const macros = new MacroStore();
  macros.receive(SMFIC_CONNECT, [["j", "connect"], ["_", "client"]]);
  macros.receive(SMFIC_HELO, [["j", "helo"]]);
  assert.equal(macros.get("j"), "helo");
  macros.receive(SMFIC_RCPT, [["j", "rcpt"], ["j", "rcpt again"]]);
  assert.equal(macros.get("j"), "rcpt again");
  // HEADER and EOH share the end-of-header stage, BODY the end-of-message one, as in Postfix.
  macros.receive(SMFIC_HEADER, [["j", "header"]]);
  assert.equal(macros.get("j"), "header");
  macros.receive(SMFIC_EOH, [["j", "eoh"]]);
  assert.equal(macros.get("j"), "eoh");
  macros.receive(SMFIC_BODY, [["j", "body"]]);
  assert.equal(macros.get("j"), "body");
  assert.equal(macros.get("_"), "client");
});

Deno.test("MacroStore.receive() replaces a stage's macros and ignores commands without a stage", () => {
  const macros = new MacroStore();
  assert.equal(macros.receive(SMFIC_MAIL, [["i", "1"], ["{mail_addr}", "a@b"]]), true);
  assert.equal(macros.receive(SMFIC_MAIL, [["i", "2"]]), true);
  assert.equal(macros.get("i"), "2");
  assert.equal(macros.get("mail_addr"), undefined, "the stage's earlier macros are gone");
  assert.equal(macros.receive(SMFIC_ABORT, [["i", "3"]]), false);
  assert.equal(macros.get("i"), "2");
});

Deno.test("MacroStore.enter() forgets later stages and keeps the stage entered", () => {
  const macros = new MacroStore();
  macros.receive(SMFIC_HELO, [["s", "client.example"]]);
  macros.receive(SMFIC_MAIL, [["i", "1"]]);
  macros.receive(SMFIC_RCPT, [["{rcpt_addr}", "b@c"]]);
  macros.enter(SMFIM_ENVFROM);
  assert.equal(macros.get("i"), "1");
  assert.equal(macros.get("rcpt_addr"), undefined);
  macros.enter(SMFIM_HELO);
  assert.equal(macros.get("s"), "client.example");
  assert.equal(macros.get("i"), undefined);
});

Deno.test("MacroStore.endTransaction() keeps the connection's macros; clear() forgets all", () => {
  const macros = new MacroStore();
  macros.receive(SMFIC_CONNECT, [["j", "mx"]]);
  macros.receive(SMFIC_HELO, [["s", "client"]]);
  macros.receive(SMFIC_MAIL, [["i", "1"]]);
  macros.receive(SMFIC_RCPT, [["{rcpt_addr}", "b@c"]]);
  macros.receive(SMFIC_EOH, [["{eoh}", "x"]]);
  macros.receive(SMFIC_BODY, [["{eom}", "y"]]);
  macros.endTransaction();
  assert.deepEqual(
    ["j", "s", "i", "rcpt_addr", "eoh", "eom"].map((name) => macros.get(name)),
    ["mx", "client", undefined, undefined, undefined, undefined],
  );
  macros.clear();
  assert.equal(macros.get("j"), undefined);
  assert.equal(macros.get("s"), undefined);
});
