/** SigningDomains: the Domain data set asked through DataSetLookup, in OpenDKIM's order. */
import assert from "node:assert/strict";
import type { DataSetLookup } from "../../lib/policy/data_set_lookup.ts";
import type { DataSetEntry } from "../../lib/policy/dataset.ts";
import { SigningDomains } from "../../lib/policy/signing_domains.ts";

/** A back end holding `keys`, recording the keys of each call. */
function backend(keys: readonly string[]): DataSetLookup & { calls: (readonly string[])[] } {
  const calls: (readonly string[])[] = [];
  const origin = { file: "dsn:sqlite3:///var/lib/dkim.db/table=domains", line: 0 };
  return {
    calls,
    lookup(asked: readonly string[]): Promise<readonly (DataSetEntry | undefined)[]> {
      calls.push(asked);
      return Promise.resolve(asked.map((key) => keys.includes(key) ? { key, origin } : undefined));
    },
  };
}

Deno.test("SigningDomains.match() asks the name, *, then parents, in one lookup", async () => {
  const set = backend(["example.com"]);
  const domains = new SigningDomains(set);
  assert.deepEqual(await domains.match("A.Mail.Example.COM", true), {
    domain: "example.com",
    identity: "@a.mail.example.com",
    entry: "example.com",
    origin: { file: "dsn:sqlite3:///var/lib/dkim.db/table=domains", line: 0 },
  });
  assert.equal(await domains.match("a.mail.example.com", false), undefined);
  assert.deepEqual(set.calls, [
    ["a.mail.example.com", "*", "mail.example.com", "example.com", "com"],
    ["a.mail.example.com", "*"],
  ]);
});

Deno.test("SigningDomains.match() prefers the exact name, then *, to any parent", async () => {
  const domains = new SigningDomains(backend(["*", "example.com", "mail.example.com"]));
  assert.equal((await domains.match("mail.example.com", true))?.entry, "mail.example.com");
  assert.deepEqual(await domains.match("x.example.org", true).then((m) => [m?.entry, m?.domain]), [
    "*",
    "x.example.org",
  ]);
});
