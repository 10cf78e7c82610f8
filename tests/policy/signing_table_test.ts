import assert from "node:assert/strict";
import type { DataSetLookup } from "../../lib/policy/data_set_lookup.ts";
import type { DataSet, DataSetEntry } from "../../lib/policy/dataset.ts";
import { SourceError } from "../../lib/policy/origin.ts";
import { SigningTable, wildcardMatch } from "../../lib/policy/signing_table.ts";

function table(lines: [string, string | undefined][], patterns: boolean): SigningTable {
  const entries: DataSetEntry[] = lines.map(([key, value], i) => ({
    key,
    ...(value === undefined ? {} : { value }),
    origin: { file: "st", line: i + 1 },
  }));
  const ds: DataSet = {
    source: patterns ? { kind: "refile", path: "st" } : { kind: "file", path: "st" },
    entries,
    patterns,
  };
  return SigningTable.fromDataSet(ds).table;
}

Deno.test("wildcardMatch() treats only * as special and anchors both ends", () => {
  const cases: [string, string, boolean][] = [
    ["*@example.com", "joe@example.com", true],
    ["*@example.com", "joe@example.com.evil", false],
    ["*@example.com", "joe@sub.example.com", false],
    ["*@*example.com", "joe@sub.example.com", true],
    ["*", "", true],
    ["", "", true],
    ["a*b*c", "aXXbYYc", true],
    ["a*b*c", "aXXbYY", false],
    ["joe+*@example.com", "joe+tag@example.com", true],
    ["j.e@example.com", "jxe@example.com", false],
    ["user?@a.b", "use@a.b", false],
    ["user?@a.b", "user?@a.b", true],
    ["[ab]@x", "a@x", false],
    ["*@EXAMPLE.com", "Joe@example.COM", true],
    ["**@x", "@x", true],
  ];
  for (const [p, t, want] of cases) assert.equal(wildcardMatch(p, t), want, `${p} ~ ${t}`);
});

Deno.test("SigningTable.lookup() on a refile table: first match in file order", async () => {
  const t = table([
    ["ceo@example.com", "ceo-key"],
    ["*@example.com", "main:%"],
    ["*@*.example.com", "sub:@%"],
    ["*", "fallback"],
  ], true);
  assert.deepEqual((await t.lookup("ceo", "example.com", false)).map((m) => m.keyName), [
    "ceo-key",
  ]);
  assert.deepEqual(
    (await t.lookup("joe", "Example.com", false)).map((m) => [m.keyName, m.signer]),
    [[
      "main",
      "example.com",
    ]],
  );
  const sub = (await t.lookup("joe", "mail.example.com", false))[0];
  assert.equal(sub.keyName, "sub");
  assert.equal(sub.signer, "@mail.example.com");
  assert.equal(sub.rule.origin.line, 3);
  assert.equal(sub.matchedBy, "*@*.example.com");
  // MultipleSignatures collects every match, in file order.
  assert.deepEqual((await t.lookup("ceo", "example.com", true)).map((m) => m.keyName), [
    "ceo-key",
    "main",
    "fallback",
  ]);
});

Deno.test("SigningTable.lookup() on an exact table follows OpenDKIM's key order", async () => {
  const all: [string, string][] = [
    ["*", "k-star"],
    ["joe@*", "k-user-any"],
    [".com", "k-dot-com"],
    ["joe@.com", "k-user-dot-com"],
    [".example.com", "k-dot-example"],
    ["joe@.example.com", "k-user-dot-example"],
    ["mail.example.com", "k-domain"],
    ["joe@mail.example.com", "k-address"],
  ];
  const t = table(all, false);
  assert.deepEqual((await t.lookup("joe", "mail.example.com", true)).map((m) => m.keyName), [
    "k-address",
    "k-domain",
    "k-user-dot-example",
    "k-dot-example",
    "k-user-dot-com",
    "k-dot-com",
    "k-user-any",
    "k-star",
  ]);
  // Without MultipleSignatures the first in that order wins, whatever the file order.
  assert.equal((await t.lookup("JOE", "MAIL.example.com", false))[0].keyName, "k-address");
  assert.equal((await t.lookup("ann", "mail.example.com", false))[0].keyName, "k-domain");
  assert.equal((await t.lookup("ann", "x.example.com", false))[0].keyName, "k-dot-example");
  assert.equal((await t.lookup("ann", "example.org", false))[0].keyName, "k-star");
  // An exact table has no wildcards: "*@example.com" is a literal key that never matches.
  const literal = table([["*@example.com", "k"]], false);
  assert.deepEqual(await literal.lookup("joe", "example.com", false), []);
});

Deno.test("SigningTable.lookup() replaces % in the key name and the signer", async () => {
  const t = table([["*", "%:postmaster@%"]], true);
  const [m] = await t.lookup("joe", "Example.NET", false);
  assert.equal(m.keyName, "example.net");
  assert.equal(m.signer, "postmaster@example.net");
  assert.deepEqual([...table([["*", "%"], ["a@b", "k"]], true).keyNames()], ["k"]);
});

Deno.test("SigningTable.lookup() does not match non-ASCII addresses", async () => {
  const t = table([["*", "k"]], true);
  assert.deepEqual(await t.lookup("jöe", "example.com", false), []);
});

Deno.test("SigningTable.fromDataSet() refuses an entry without a key name", () => {
  assert.throws(() => table([["*@example.com", undefined]], true), (e: unknown) => {
    assert.ok(e instanceof SourceError);
    assert.equal(e.line, 1);
    assert.match(e.message, /no key name/);
    return true;
  });
  assert.throws(() => table([["*@example.com", ":signer"]], true), /key name is empty/);
});

Deno.test("SigningTable.fromDataSet() warns about regex characters and repeated keys", () => {
  const ds = (patterns: boolean, keys: string[]): DataSet => ({
    source: { kind: "file", path: "st" },
    patterns,
    entries: keys.map((key, i) => ({ key, value: "k", origin: { file: "st", line: i + 1 } })),
  });
  const re = SigningTable.fromDataSet(ds(true, ["user?@example.com", "*@example.com"]));
  assert.equal(re.warnings.length, 1);
  assert.match(re.warnings[0].message, /st:1/);
  const dup = SigningTable.fromDataSet(ds(false, ["example.com", "EXAMPLE.COM"]));
  assert.equal(dup.warnings.length, 1);
  assert.match(dup.warnings[0].message, /st:2 is already defined at st:1/);
});

Deno.test("SigningTable.keyed() asks its back end the sender's keys in one call, in OpenDKIM's order", async () => {
  const calls: (readonly string[])[] = [];
  const origin = { file: "dsn:pgsql://db/dkim/table=signing", line: 0 };
  const rows: Record<string, string> = { ".example.com": "sub:@%", "joe@*": "any" };
  const set: DataSetLookup = {
    lookup(keys) {
      calls.push(keys);
      return Promise.resolve(
        keys.map((key) => rows[key] === undefined ? undefined : { key, value: rows[key], origin }),
      );
    },
  };
  const table = SigningTable.keyed(set);
  const matches = await table.lookup("joe", "Mail.Example.com", true);
  assert.deepEqual(matches.map((m) => [m.matchedBy, m.keyName, m.signer]), [
    [".example.com", "sub", "@mail.example.com"],
    ["joe@*", "any", undefined],
  ]);
  assert.deepEqual(calls, [[
    "joe@mail.example.com",
    "mail.example.com",
    "joe@.example.com",
    ".example.com",
    "joe@.com",
    ".com",
    "joe@*",
    "*",
  ]]);
  // A row without a key name is a mistake at its place, not a silent miss.
  rows["*"] = "";
  await assert.rejects(() => table.lookup("ann", "example.org", false), (e: unknown) => {
    assert.ok(e instanceof SourceError);
    assert.match(
      e.message,
      /^Cannot parse SigningTable entry "\*" at dsn:pgsql:\/\/db\/dkim\/table=signing: /,
    );
    return true;
  });
  assert.deepEqual([table.rules, table.patterns], [[], false]);
});
