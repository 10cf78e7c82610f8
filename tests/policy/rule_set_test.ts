import assert from "node:assert/strict";
import type { DataSetEntry } from "../../lib/policy/dataset.ts";
import { NameSet } from "../../lib/policy/name_set.ts";
import { SourceError } from "../../lib/policy/origin.ts";
import { RuleSet } from "../../lib/policy/rule_set.ts";
import { SigningTable } from "../../lib/policy/signing_table.ts";

const at = (line: number) => ({ file: "/etc/t", line });
const read = (e: DataSetEntry) => {
  if (!e.value) throw new SourceError("Bad entry", e.origin, "no value");
  return { value: e.value, origin: e.origin };
};

Deno.test("RuleSet.fromDataSet() reads every entry at load, uses the first of a repeated key and warns about the rest", async () => {
  const entries = [
    { key: "a", value: "1", origin: at(1) },
    { key: "A", value: "2", origin: at(2) },
    { key: "b", value: "3", origin: at(3) },
  ];
  const { set, warnings } = RuleSet.fromDataSet(
    { source: { kind: "file", path: "/etc/t" }, patterns: false, entries },
    read,
    (e, first) => `${e.key}@${e.origin.line} after ${first.origin.line}`,
  );
  assert.deepEqual(warnings.map((w) => w.message), ["A@2 after 1"]);
  assert.deepEqual(set.rules.map((r) => r.value), ["1", "2", "3"]);
  const hits = await set.exact(["A", "c", "b"]);
  assert.deepEqual(hits.map((h) => h && set.ruleOf(h).value), ["1", undefined, "3"]);
  // A bad entry is reported at load, with its place.
  assert.throws(
    () =>
      RuleSet.fromDataSet(
        {
          source: { kind: "file", path: "/etc/t" },
          patterns: false,
          entries: [{ key: "x", origin: at(7) }],
        },
        read,
        () => "",
      ),
    (e) => e instanceof SourceError && e.origin.line === 7,
  );
});

Deno.test("RuleSet.keyed() reads an entry only when used, so a bad one nobody uses fails no lookup", async () => {
  const set = RuleSet.keyed(
    new NameSet([{ key: "good", value: "v", origin: at(1) }, { key: "bad", origin: at(2) }], true),
    read,
  );
  const [good, bad] = await set.exact(["good", "bad"]);
  assert.equal(set.ruleOf(good!).value, "v");
  assert.throws(() => set.ruleOf(bad!), SourceError);
  // The SigningTable over a database: the first match serves; the bad entry after it is not read.
  const table = SigningTable.keyed(
    new NameSet([
      { key: "joe@example.com", value: "k", origin: at(1) },
      { key: "example.com", origin: at(2) },
    ], true),
  );
  const [m] = await table.lookup("joe", "example.com", false);
  assert.equal(m.keyName, "k");
  await assert.rejects(table.lookup("joe", "example.com", true), SourceError);
});
