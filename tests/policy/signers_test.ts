import assert from "node:assert/strict";
import {
  KeyTable,
  type LoadedKeyEntry,
  parseKeyTableEntry,
  type PrivateKeyInfo,
} from "../../lib/policy/key_table.ts";
import { NameSet } from "../../lib/policy/name_set.ts";
import { chooseSigners, type SigningPolicy } from "../../lib/policy/signers.ts";
import { SigningDomains } from "../../lib/policy/signing_domains.ts";
import { SigningTable } from "../../lib/policy/signing_table.ts";

interface Key extends PrivateKeyInfo {
  readonly id: string;
}

const rsa: Key = { type: "rsa", bits: 2048, id: "rsa" };
const ed: Key = { type: "ed25519", bits: 256, id: "ed" };

function keyTable(lines: [string, string, Key][]): KeyTable<Key> {
  const entries: LoadedKeyEntry<Key>[] = lines.map(([name, value, key], i) => ({
    ...parseKeyTableEntry({ key: name, value, origin: { file: "kt", line: i + 1 } }),
    key,
  }));
  return new KeyTable(entries);
}

function signingTable(lines: [string, string][]): SigningTable {
  return SigningTable.fromDataSet({
    source: { kind: "refile", path: "st" },
    patterns: true,
    entries: lines.map(([key, value], i) => ({ key, value, origin: { file: "st", line: i + 1 } })),
  }).table;
}

Deno.test("chooseSigners() signs RSA and Ed25519 in one pass with MultipleSignatures", async () => {
  const policy: SigningPolicy<Key> = {
    keyTable: keyTable([
      ["rsa", "example.com:rsa2024:/k/rsa.private", rsa],
      ["ed", "example.com:ed2024:/k/ed.private", ed],
    ]),
    signingTable: signingTable([["*@example.com", "rsa"], ["*@example.com", "ed"]]),
    config: { multipleSignatures: true, subDomains: false, signatureAlgorithm: "rsa-sha256" },
  };
  const d = await chooseSigners(policy, "joe", "example.com");
  assert.deepEqual(
    d.signers.map((s) => [s.domain, s.selector, s.algorithm, s.key.id]),
    [["example.com", "rsa2024", "rsa-sha256", "rsa"], [
      "example.com",
      "ed2024",
      "ed25519-sha256",
      "ed",
    ]],
  );
  assert.match(
    d.signers[1].explanation,
    /SigningTable entry "\*@example\.com" at st:2 names key "ed" \(KeyTable kt:2/,
  );
  const single = await chooseSigners(
    { ...policy, config: { ...policy.config, multipleSignatures: false } },
    "joe",
    "example.com",
  );
  assert.equal(single.signers.length, 1);
});

Deno.test("chooseSigners() explains a miss in OpenDKIM's LogWhy words", async () => {
  const policy: SigningPolicy<Key> = {
    keyTable: keyTable([["k", "example.com:s:/k", rsa]]),
    signingTable: signingTable([["*@example.com", "k"]]),
    config: { multipleSignatures: false, subDomains: false, signatureAlgorithm: "rsa-sha256" },
  };
  const d = await chooseSigners(policy, "user", "Example.ORG");
  assert.deepEqual(d.signers, []);
  assert.equal(d.reason, "no signing table match for 'user@example.org'");
  const none = await chooseSigners(
    { ...policy, keyTable: undefined, signingTable: undefined },
    "u",
    "x.org",
  );
  assert.equal(none.reason, "no signing keys are configured");
});

Deno.test("chooseSigners() drops a signer identity outside d= with a note", async () => {
  const policy: SigningPolicy<Key> = {
    keyTable: keyTable([["k", "example.com:s:/k", rsa]]),
    signingTable: signingTable([["*", "k:joe@%"]]),
    config: { multipleSignatures: false, subDomains: false, signatureAlgorithm: "rsa-sha256" },
  };
  const inside = await chooseSigners(policy, "joe", "mail.example.com");
  assert.equal(inside.signers[0].identity, "joe@mail.example.com");
  const outside = await chooseSigners(policy, "joe", "example.org");
  assert.equal(outside.signers[0].identity, undefined);
  assert.match(outside.notes[0], /RFC 6376 §3\.5/);
});

Deno.test("chooseSigners() single-key mode: exact, *, and SubDomains", async () => {
  const at = { file: "/etc/opendkim.conf", line: 10 };
  const base = {
    selector: "mail",
    key: rsa,
    keyFile: "/k",
    origin: at,
  };
  const policy = (domains: string[], subDomains: boolean): SigningPolicy<Key> => ({
    singleKey: {
      ...base,
      domains: new SigningDomains(new NameSet(domains.map((key) => ({ key, origin: at })), true)),
    },
    config: { multipleSignatures: false, subDomains, signatureAlgorithm: "rsa-sha1" },
  });
  const exact = await chooseSigners(policy(["example.com"], false), "a", "EXAMPLE.com");
  assert.deepEqual([exact.signers[0].domain, exact.signers[0].algorithm], [
    "example.com",
    "rsa-sha1",
  ]);
  const any = await chooseSigners(policy(["*"], false), "a", "whatever.example");
  assert.equal(any.signers[0].domain, "whatever.example");
  const miss = await chooseSigners(policy(["example.com"], false), "a", "mail.example.com");
  assert.equal(miss.reason, "no signing domain match for 'mail.example.com'");
  const sub = await chooseSigners(policy(["example.com"], true), "a", "a.mail.example.com");
  assert.equal(sub.signers[0].domain, "example.com");
  assert.equal(sub.signers[0].identity, "@a.mail.example.com");
  const subMiss = await chooseSigners(policy(["example.com"], true), "a", "example.org");
  assert.equal(subMiss.reason, "no signing subdomain match for 'example.org'");
});

Deno.test("chooseSigners() rejects a table entry naming a missing key", async () => {
  const policy: SigningPolicy<Key> = {
    keyTable: keyTable([["k", "example.com:s:/k", rsa]]),
    signingTable: signingTable([["*", "%"]]),
    config: { multipleSignatures: false, subDomains: false, signatureAlgorithm: "rsa-sha256" },
  };
  await assert.rejects(
    () => chooseSigners(policy, "joe", "example.org"),
    /No KeyTable entry named "example\.org"/,
  );
});
