/**
 * AuthorizedSigners: the items of an entry (address, domain, .domain, %, *), which entry applies
 * to a login (its own, else `*`'s; patterns in a refile: set), case-insensitivity, and the
 * lookups made through the data set interface, so a database back end answers the same.
 */
import assert from "node:assert/strict";
import {
  AuthorizedSigners,
  describeAuthorization,
  parseSignerRule,
} from "../../lib/policy/authorized_signers.ts";
import type { DataSetLookup } from "../../lib/policy/data_set_lookup.ts";
import type { DataSet, DataSetEntry } from "../../lib/policy/dataset.ts";
import { SourceError } from "../../lib/policy/origin.ts";

const FILE = "/etc/dkimd/authorized_signers";

function dataSet(lines: (string | [string, string])[], patterns = false): DataSet {
  const entries: DataSetEntry[] = lines.map((item, i) => {
    const origin = { file: FILE, line: i + 1 };
    return typeof item === "string"
      ? { key: item, origin }
      : { key: item[0], value: item[1], origin };
  });
  return {
    source: patterns ? { kind: "refile", path: FILE } : { kind: "file", path: FILE },
    entries,
    patterns,
  };
}

function signers(lines: (string | [string, string])[], patterns = false): AuthorizedSigners {
  return AuthorizedSigners.fromDataSet(dataSet(lines, patterns)).signers;
}

/** [login, From address, allowed, line of the deciding entry (0: none)] */
type Case = [string | undefined, string, boolean, number];

async function check(set: AuthorizedSigners, cases: readonly Case[]): Promise<void> {
  for (const [login, address, allowed, line] of cases) {
    const at = address.lastIndexOf("@");
    const answer = await set.authorize(login, address.slice(0, at), address.slice(at + 1));
    const label = `${login} → ${address}`;
    assert.equal(answer.allowed, allowed, label);
    assert.equal(answer.rule?.origin.line ?? 0, line, label);
  }
}

Deno.test("AuthorizedSigners.authorize() matches each kind of item: address, domain, .domain, %, *", async () => {
  const set = signers([
    ["alice@example.com", "alice@example.com"], // 1: one address
    ["bob@example.com", "example.com"], // 2: a domain
    ["carol@example.com", ".example.com"], // 3: its subdomains only
    ["dave@example.com", "%"], // 4: the login's own domain
    ["admin@example.com", "*"], // 5: anything
    ["erin@example.com", "example.org, .example.org|erin@example.net"], // 6: several
  ]);
  await check(set, [
    ["alice@example.com", "alice@example.com", true, 1],
    ["alice@example.com", "bob@example.com", false, 1],
    ["alice@example.com", "alice@sub.example.com", false, 1],
    ["bob@example.com", "anyone@example.com", true, 2],
    ["bob@example.com", "anyone@sub.example.com", false, 2],
    ["bob@example.com", "anyone@notexample.com", false, 2],
    ["carol@example.com", "c@mail.example.com", true, 3],
    ["carol@example.com", "c@a.b.example.com", true, 3],
    ["carol@example.com", "c@example.com", false, 3],
    ["carol@example.com", "c@badexample.com", false, 3],
    ["dave@example.com", "ceo@example.com", true, 4],
    ["dave@example.com", "ceo@example.net", false, 4],
    ["dave@example.com", "dave@sub.example.com", false, 4],
    ["admin@example.com", "ceo@example.net", true, 5],
    ["erin@example.com", "x@example.org", true, 6],
    ["erin@example.com", "x@www.example.org", true, 6],
    ["erin@example.com", "erin@example.net", true, 6],
    ["erin@example.com", "ceo@example.net", false, 6],
  ]);
});

Deno.test("AuthorizedSigners.authorize(): a login's own entry replaces the * entry; no entry and no * refuses", async () => {
  const withDefault = signers([
    ["*", "%"],
    ["bot@example.com", "noreply@example.com"],
    ["blocked@example.com", ""],
  ]);
  await check(withDefault, [
    ["joe@example.com", "joe@example.com", true, 1],
    ["joe@example.com", "ceo@example.net", false, 1],
    // The bot's own entry is all it gets: not its domain through "*"'s %.
    ["bot@example.com", "noreply@example.com", true, 2],
    ["bot@example.com", "joe@example.com", false, 2],
    // An entry with no items allows nothing.
    ["blocked@example.com", "blocked@example.com", false, 3],
  ]);
  const without = signers([["joe@example.com", "example.com"]]);
  await check(without, [["ann@example.com", "ann@example.com", false, 0]]);
});

Deno.test("AuthorizedSigners.authorize() compares logins, addresses and domains ignoring ASCII case", async () => {
  const set = signers([
    ["Joe@Example.COM", "Joe@Example.ORG, .Example.NET"],
    ["*", "%"],
  ]);
  await check(set, [
    ["joe@example.com", "JOE@example.org", true, 1],
    ["JOE@EXAMPLE.COM", "x@Mail.EXAMPLE.net", true, 1],
    ["JOE@EXAMPLE.COM", "x@example.net", false, 1],
    ["ann@EXAMPLE.com", "ann@example.COM", true, 2],
  ]);
});

Deno.test("AuthorizedSigners.authorize(): % needs a login of the form user@domain", async () => {
  const set = signers([["*", "%"]]);
  await check(set, [
    ["joe", "joe@example.com", false, 1],
    ["joe@", "joe@example.com", false, 1],
    [undefined, "joe@example.com", false, 1],
    ["joe@example.com", "joe@example.com", true, 1],
  ]);
  // With no {auth_authen}, only "*" can answer.
  await check(signers([["joe", "*"]]), [[undefined, "joe@example.com", false, 0]]);
  await check(signers([["*", "*"]]), [[undefined, "joe@example.com", true, 1]]);
});

Deno.test("AuthorizedSigners.authorize() on a refile: set: the first pattern matching the login decides", async () => {
  const set = signers([
    ["admin@*", "*"],
    ["*@example.com", "example.com, .example.com"],
    ["*", "%"],
  ], true);
  await check(set, [
    ["admin@example.org", "ceo@example.net", true, 1],
    ["joe@Example.com", "x@mail.example.com", true, 2],
    ["joe@example.com", "x@example.org", false, 2],
    ["ann@example.org", "ann@example.org", true, 3],
    ["ann", "ann@example.org", false, 3],
  ]);
});

Deno.test("AuthorizedSigners.fromDataSet() refuses an item that is none of the forms, naming file:line", () => {
  const bad: [string, RegExp][] = [
    ["*@example.com", /write "example\.com" for every address at a domain/],
    ["@example.com", /is not an address user@domain/],
    ["joe@", /is not an address user@domain/],
    ["example.com/", /not an address, a domain/],
    ["ex!ample.com", /not an address, a domain/],
    ["example..com", /not an address, a domain/],
    ["%.example.com", /not an address, a domain/],
    ["..example.com", /not an address, a domain/],
  ];
  for (const [item, re] of bad) {
    assert.throws(
      () => AuthorizedSigners.fromDataSet(dataSet(["x", ["joe", `example.com, ${item}`]])),
      (e: unknown) => {
        assert.ok(e instanceof SourceError, item);
        assert.equal(e.line, 2, item);
        assert.match(e.message, /^Cannot parse AuthorizedSigners entry "joe" at /, item);
        assert.match(e.message, re, item);
        return true;
      },
    );
  }
});

Deno.test("AuthorizedSigners.fromDataSet() warns about a login given twice; the first entry is used", async () => {
  const { signers: set, warnings } = AuthorizedSigners.fromDataSet(dataSet([
    ["joe", "example.com"],
    ["JOE", "example.net"],
  ]));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0].message, /login "JOE" at .*:2 is already given at .*:1/);
  await check(set, [["joe", "a@example.com", true, 1], ["joe", "a@example.net", false, 1]]);
});

Deno.test("AuthorizedSigners.keyed() asks the login and * in one lookup and reads the entry found", async () => {
  const calls: (readonly string[])[] = [];
  const origin = { file: "dsn:pgsql://db/dkim/table=signers", line: 0 };
  const rows = new Map([["*", "%"], ["joe", ".example.com"], ["bad", "*@x.org"]]);
  const db: DataSetLookup = {
    lookup(keys) {
      calls.push(keys);
      return Promise.resolve(keys.map((key) => {
        const value = rows.get(key.toLowerCase());
        return value === undefined ? undefined : { key, value, origin };
      }));
    },
  };
  const set = AuthorizedSigners.keyed(db);
  assert.equal((await set.authorize("ann@example.org", "ann", "example.org")).allowed, true);
  assert.equal((await set.authorize("Joe", "j", "www.example.com")).allowed, true);
  assert.equal((await set.authorize(undefined, "j", "example.com")).allowed, false);
  assert.deepEqual(calls, [["ann@example.org", "*"], ["Joe", "*"], ["*"]]);
  await assert.rejects(() => set.authorize("bad", "a", "x.org"), /AuthorizedSigners entry "bad"/);
});

Deno.test("describeAuthorization() names the login, the From, the entry and its place", () => {
  const rule = parseSignerRule({
    key: "joe@example.com",
    value: "%, .example.com",
    origin: { file: FILE, line: 3 },
  });
  assert.equal(
    describeAuthorization(
      { allowed: true, rule, grant: rule.grants[1] },
      "joe@example.com",
      "a@b.example.com",
      "From",
    ),
    `login 'joe@example.com' may sign for From 'a@b.example.com' ` +
      `(AuthorizedSigners "joe@example.com" at ${FILE}:3: ".example.com")`,
  );
  assert.equal(
    describeAuthorization({ allowed: false, rule }, "joe@example.com", "ceo@example.net", "From"),
    `login 'joe@example.com' may not sign for From 'ceo@example.net' ` +
      `(AuthorizedSigners "joe@example.com" at ${FILE}:3 allows only %, .example.com)`,
  );
  assert.equal(
    describeAuthorization({ allowed: false }, undefined, "ceo@example.net", "From"),
    `login (none: the MTA sent no {auth_authen}) may not sign for From 'ceo@example.net' ` +
      `(AuthorizedSigners has no entry for it and no "*" entry)`,
  );
  const empty = parseSignerRule({ key: "x", origin: { file: FILE, line: 9 } });
  assert.match(
    describeAuthorization({ allowed: false, rule: empty }, "x", "a@b", "From"),
    /allows nothing\)$/,
  );
});
