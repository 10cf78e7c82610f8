import assert from "node:assert/strict";
import { NameSet } from "../../lib/policy/name_set.ts";
import { entries } from "../helpers/data_set_entries.ts";

Deno.test("NameSet.lookup() compares as OpenDKIM opens the set", async () => {
  const dont = new NameSet(entries("Boss@Example.com"), true);
  const [boss, other] = await dont.lookup(["boss@example.COM", "boss@example.org"]);
  assert.ok(boss);
  assert.ok(!other);
  const mta = new NameSet(entries("MSA"), false);
  const [exact, lower] = await mta.lookup(["MSA", "msa"]);
  assert.ok(exact);
  assert.ok(!lower);
});

Deno.test("NameSet.lookup() answers each key with its first entry, in the order asked", async () => {
  const set = new NameSet(entries(["a", "1"], ["b", "2"], ["A", "3"]), true);
  const hits = await set.lookup(["B", "c", "a", "b"]);
  assert.deepEqual(hits.map((e) => e?.value), ["2", undefined, "1", "2"]);
  assert.deepEqual(await set.lookup([]), []);
});
