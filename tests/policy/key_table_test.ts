import assert from "node:assert/strict";
import fc from "fast-check";
import {
  algorithmFitsKey,
  algorithmFor,
  KeyResolutionError,
  KeyTable,
  type LoadedKeyEntry,
  parseKeyTable,
  parseKeyTableEntry,
  type PrivateKeyInfo,
} from "../../lib/policy/key_table.ts";
import { SourceError } from "../../lib/policy/origin.ts";
import { assertOnlySourceErrors, HOSTILE_ORIGIN } from "../helpers/source_errors.ts";
import { fuzzParams } from "../helpers/fuzz.ts";

const at = { file: "/etc/opendkim/key.table", line: 3 };

Deno.test("parseKeyTableEntry() reads OpenDKIM's value forms", () => {
  const cases = [
    {
      value: "datahunter.org:dkim:/etc/opendkim/keys/datahunter.org/dkim.private",
      want: {
        domain: "datahunter.org",
        selector: "dkim",
        source: { kind: "file", path: "/etc/opendkim/keys/datahunter.org/dkim.private" },
      },
    },
    {
      value: "%:mail:/etc/opendkim/keys/%/mail.private",
      want: {
        domain: "%",
        selector: "mail",
        source: { kind: "file", path: "/etc/opendkim/keys/%/mail.private" },
      },
    },
    {
      value: "example.com:s:./keys/s.private",
      want: {
        domain: "example.com",
        selector: "s",
        source: { kind: "file", path: "./keys/s.private" },
      },
    },
    {
      value: "example.com:s:../s.private",
      want: {
        domain: "example.com",
        selector: "s",
        source: { kind: "file", path: "../s.private" },
      },
    },
    {
      value: "example.com:s:MC4CAQAwBQYDK2VwBCIEIA==",
      want: {
        domain: "example.com",
        selector: "s",
        source: { kind: "inline", data: "MC4CAQAwBQYDK2VwBCIEIA==" },
      },
    },
    {
      value: "example.com:ed:/k/ed.private:ed25519-sha256",
      want: {
        domain: "example.com",
        selector: "ed",
        source: { kind: "file", path: "/k/ed.private" },
        algorithm: "ed25519-sha256",
      },
    },
    {
      value: "example.com:rsa:/k/rsa.private:RSA-SHA256",
      want: {
        domain: "example.com",
        selector: "rsa",
        source: { kind: "file", path: "/k/rsa.private" },
        algorithm: "rsa-sha256",
      },
    },
    // A colon in a path (OpenDKIM before the fourth field kept the rest as the key).
    {
      value: "example.com:s:/keys/a:b.private",
      want: {
        domain: "example.com",
        selector: "s",
        source: { kind: "file", path: "/keys/a:b.private" },
      },
    },
    {
      value: " Example.COM : s2020 : /k ",
      want: { domain: "example.com", selector: "s2020", source: { kind: "file", path: "/k" } },
    },
  ];
  for (const c of cases) {
    const got = parseKeyTableEntry({ key: "name", value: c.value, origin: at });
    assert.deepEqual(got, { name: "name", origin: at, ...c.want }, c.value);
  }
});

Deno.test("parseKeyTableEntry() refuses malformed values naming file:line", () => {
  const bad: [string | undefined, RegExp][] = [
    [undefined, /no value/],
    ["example.com", /not of the form/],
    ["example.com:sel", /not of the form/],
    ["example.com:sel:", /empty/],
    ["exa mple.com:sel:/k", /not a domain name/],
    ["example.com::/k", /not a selector/],
    ["example.com:se l:/k", /not a selector/],
    ["example.com:sel:keys/relative.private", /neither a key file path/],
    ["example.com:sel:/k:rsa-sha512", /unknown signing algorithm "rsa-sha512"/],
    ["example.com:sel:/k:ed25519-sha1", /unknown signing algorithm/],
  ];
  for (const [value, re] of bad) {
    assert.throws(
      () =>
        parseKeyTableEntry(
          value === undefined ? { key: "k", origin: at } : { key: "k", value, origin: at },
        ),
      (e: unknown) => {
        assert.ok(e instanceof SourceError, String(value));
        assert.match(e.message, /at \/etc\/opendkim\/key\.table:3: /);
        assert.match(e.message, re);
        return true;
      },
    );
  }
});

Deno.test("parseKeyTable() keeps the first of a repeated name and warns", () => {
  const { entries, warnings } = parseKeyTable([
    { key: "k", value: "a.example:s:/1", origin: { file: "kt", line: 1 } },
    { key: "K", value: "b.example:s:/2", origin: { file: "kt", line: 2 } },
    { key: "k", value: "c.example:s:/3", origin: { file: "kt", line: 3 } },
  ]);
  assert.deepEqual(entries.map((e) => e.domain), ["a.example", "b.example"]);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0].message, /kt:3 is already defined at kt:1/);
});

Deno.test("algorithmFor() follows the key type; the global setting applies to RSA keys", () => {
  assert.equal(algorithmFor(undefined, "ed25519", "rsa-sha256"), "ed25519-sha256");
  assert.equal(algorithmFor(undefined, "ed25519", "rsa-sha1"), "ed25519-sha256");
  assert.equal(algorithmFor(undefined, "rsa", "rsa-sha256"), "rsa-sha256");
  assert.equal(algorithmFor(undefined, "rsa", "rsa-sha1"), "rsa-sha1");
  assert.equal(algorithmFor(undefined, "rsa", "ed25519-sha256"), "rsa-sha256");
  assert.equal(algorithmFor("rsa-sha1", "rsa", "rsa-sha256"), "rsa-sha1");
  assert.ok(algorithmFitsKey("rsa-sha1", "rsa"));
  assert.ok(!algorithmFitsKey("rsa-sha256", "ed25519"));
});

interface FakeKey extends PrivateKeyInfo {
  readonly label: string;
}

Deno.test("KeyTable.resolve() replaces % in the domain and the key path, loading each path once", async () => {
  const loads: string[] = [];
  const entries: LoadedKeyEntry<FakeKey>[] = [
    { ...parseKeyTableEntry({ key: "any", value: "%:mail:/keys/%/mail.private", origin: at }) },
    {
      ...parseKeyTableEntry({
        key: "fixed",
        value: "example.com:s:/keys/fixed.private",
        origin: at,
      }),
      key: { type: "rsa", bits: 2048, label: "fixed" },
    },
  ];
  const table = new KeyTable<FakeKey>(entries, (path) => {
    loads.push(path);
    return Promise.resolve({ type: "ed25519", bits: 256, label: path });
  });
  const a = await table.resolve("any", "Example.ORG");
  assert.equal(a.domain, "example.org");
  assert.equal(a.path, "/keys/example.org/mail.private");
  assert.equal(a.key.label, "/keys/example.org/mail.private");
  await table.resolve("any", "example.org");
  assert.deepEqual(loads, ["/keys/example.org/mail.private"]);
  const f = await table.resolve("fixed", "other.example");
  assert.equal(f.domain, "example.com");
  assert.equal(f.key.label, "fixed");
});

Deno.test("KeyTable.resolve() refuses a sender domain that cannot stand in a path", async () => {
  const table = new KeyTable<FakeKey>(
    [parseKeyTableEntry({ key: "any", value: "%:mail:/keys/%.private", origin: at })],
    () => Promise.reject(new Error("must not be called")),
  );
  for (const domain of ["../../etc/shadow", "a/b", "", "a b"]) {
    await assert.rejects(() => table.resolve("any", domain), KeyResolutionError, domain);
  }
  await assert.rejects(
    () => table.resolve("missing", "example.com"),
    /No KeyTable entry named "missing"/,
  );
});

Deno.test("KeyTable.resolve() does not cache a failed load", async () => {
  let attempts = 0;
  const table = new KeyTable<FakeKey>(
    [parseKeyTableEntry({ key: "any", value: "%:mail:/keys/%.private", origin: at })],
    () => {
      attempts++;
      return attempts === 1
        ? Promise.reject(new Error("No such file"))
        : Promise.resolve({ type: "rsa", bits: 2048, label: "ok" });
    },
  );
  await assert.rejects(
    () => table.resolve("any", "example.com"),
    /Cannot load the key of KeyTable entry "any" at \/etc\/opendkim\/key\.table:3 from "\/keys\/example\.com\.private": No such file/,
  );
  assert.equal((await table.resolve("any", "example.com")).key.label, "ok");
});

Deno.test("parseKeyTableEntry() throws only SourceErrors, whatever the entry", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), fc.string({ maxLength: 80 }), (a, b) => {
      assertOnlySourceErrors(() =>
        parseKeyTableEntry({ key: a, value: b, origin: HOSTILE_ORIGIN })
      );
    }),
    fuzzParams(500),
  );
});
