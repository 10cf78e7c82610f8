import assert from "node:assert/strict";
import { MacroList } from "../../lib/policy/macro_list.ts";
import { SourceError } from "../../lib/policy/origin.ts";
import { entries } from "../helpers/data_set_entries.ts";

Deno.test("MacroList.match() needs the macro set, and one of the values when given", async () => {
  const list = MacroList.fromEntries(
    entries(["daemon_name", "MSA|ORIG"], "auth_authen", "{j}"),
    "MacroList",
  );
  const cases: [Record<string, string>, boolean, string?][] = [
    [{ daemon_name: "MSA" }, true, "daemon_name"],
    [{ daemon_name: "ORIG" }, true, "daemon_name"],
    [{ daemon_name: "MTA" }, false],
    [{ daemon_name: "msa" }, false],
    [{ auth_authen: "" }, true, "auth_authen"],
    [{ j: "mx.example.com" }, true, "j"],
    [{}, false],
  ];
  for (const [macros, want, rule] of cases) {
    const m = await list.match((n) => macros[n]);
    assert.equal(m.matched, want, JSON.stringify(macros));
    if (rule) assert.equal(m.rule?.name, rule);
  }
  assert.throws(() => MacroList.fromEntries(entries("bad name"), "MacroList"), /not a macro name/);
});

Deno.test("MacroList.fromEntries() drops braces, trims values and keeps each entry's place", () => {
  const list = MacroList.fromEntries(
    entries(["{daemon_name}", " MSA | submission ||"], ["auth_type", " | "], "{j}"),
    "MacroList",
  );
  assert.deepEqual(list.rules.map((r) => [r.name, r.values, r.origin.line]), [
    ["daemon_name", ["MSA", "submission"], 20],
    ["auth_type", undefined, 21],
    ["j", undefined, 22],
  ]);
  const bad = ["{j", "daemon name", "a-b", "{}", ""];
  for (const key of bad) {
    assert.throws(
      () => MacroList.fromEntries(entries("j", key), "MacroList"),
      (e: unknown) =>
        e instanceof SourceError && e.line === 21 &&
        e.message === `Cannot parse "MacroList" entry "${key}" at /etc/opendkim.conf:21: ` +
            "not a macro name (letters, digits and underscores)",
      key,
    );
  }
});

Deno.test("MacroList.match() takes the first satisfied entry, in the list's order", async () => {
  const list = MacroList.fromEntries(
    entries(["daemon_name", "MSA"], "auth_authen", ["daemon_name", "ORIG"]),
    "MacroList",
  );
  const both = await list.match((n) => ({ daemon_name: "ORIG", auth_authen: "joe" })[n]);
  assert.deepEqual([both.rule?.origin.line, both.value], [21, "joe"]);
  const msa = await list.match((n) => ({ daemon_name: "MSA", auth_authen: "joe" })[n]);
  assert.deepEqual([msa.rule?.origin.line, msa.value], [20, "MSA"]);
  assert.deepEqual(await MacroList.fromEntries([], "MacroList").match(() => "x"), {
    matched: false,
  });
});
