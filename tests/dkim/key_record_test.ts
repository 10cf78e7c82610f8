import assert from "node:assert/strict";
import {
  keyAllowsHash,
  type KeyRecordFault,
  keyRecordName,
  parseKeyRecord,
  readKeyRecord,
} from "../../lib/dkim/key_record.ts";
import { DkimError } from "../../lib/dkim/dkim_error.ts";

Deno.test("parseKeyRecord() applies RFC 6376 §3.6.1 defaults", () => {
  const r = parseKeyRecord("p=AAAA");
  assert.equal(r.keyType, "rsa");
  assert.equal(r.hashes, undefined);
  assert.deepEqual(r.services, ["*"]);
  assert.deepEqual(r.flags, []);
  assert.ok(keyAllowsHash(r, "sha256") && keyAllowsHash(r, "sha1"));
});

Deno.test("parseKeyRecord() reads h=, s=, t= lists and folded p=", () => {
  const r = parseKeyRecord(
    "v=DKIM1; h=SHA256 : sha1; k=RSA; s=email:*; t=y:s:x; n=notes; p=AA\r\n AA",
  );
  assert.deepEqual(r.hashes, ["sha256", "sha1"]);
  assert.deepEqual(r.services, ["email", "*"]);
  assert.deepEqual(r.flags, ["y", "s", "x"]);
  assert.equal(r.keyType, "rsa");
  assert.equal(r.publicKey.length, 3);
});

Deno.test("parseKeyRecord() parses an empty p= as revoked", () => {
  assert.equal(parseKeyRecord("v=DKIM1; p=").publicKey.length, 0);
});

const bad: [string, RegExp][] = [
  ["v=DKIM2; p=AAAA", /invalid v= "DKIM2"/],
  ["k=rsa; v=DKIM1; p=AAAA", /invalid v=/],
  ["v=DKIM1; k=dsa; p=AAAA", /unknown key type "k=dsa"/],
  ["v=DKIM1; k=rsa", /missing p=/],
  ["v=DKIM1; p=AA*A", /p= is not base64/],
  ["v=DKIM1; s=tlsrpt; p=AAAA", /not for email/],
  ["v=DKIM1; p=AAAA; p=AAAA", /duplicate tag "p"/],
  ["garbage", /key syntax error/],
];

for (const [text, message] of bad) {
  Deno.test(`parseKeyRecord() rejects ${JSON.stringify(text)} as permerror`, () => {
    assert.throws(
      () => parseKeyRecord(text),
      (e) => e instanceof DkimError && e.result === "permerror" && message.test(e.message),
    );
  });
}

Deno.test("readKeyRecord() finds every problem, first the one the verifier reports", () => {
  const cases: [string, KeyRecordFault[]][] = [
    ["v=DKIM1; p=AAAA", []],
    ["p=", []],
    ["v=DKIM2; p=AAAA", ["version"]],
    ["k=rsa; v=DKIM1; p=AAAA", ["version-place"]],
    ["v=DKIM2; k=dsa; s=tlsrpt", ["version", "key-type", "no-key", "service"]],
    ["v=DKIM1; p=AA*A; s=tlsrpt", ["key-encoding", "service"]],
    ["v=DKIM1; p=AAAA; p=AAAA", ["syntax"]],
    ["garbage", ["syntax"]],
  ];
  for (const [text, faults] of cases) {
    const reading = readKeyRecord(text);
    assert.deepEqual(reading.problems.map((p) => p.fault), faults, text);
    if (faults.length === 0) {
      assert.deepEqual(reading.record, parseKeyRecord(text), text);
    } else {
      assert.equal(reading.record, undefined, text);
      assert.throws(() => parseKeyRecord(text), { message: reading.problems[0].message }, text);
    }
  }
});

Deno.test("readKeyRecord() reads every tag of a record it refuses", () => {
  const r = readKeyRecord("v=DKIM1; h=SHA1; s=tlsrpt; t=y; x=1; n=hi; p=AAAA");
  assert.deepEqual([...r.tags.keys()], ["v", "h", "s", "t", "x", "n", "p"]);
  assert.equal(r.tags.get("n"), "hi");
  assert.equal(r.keyType, "rsa");
  assert.deepEqual(r.hashes, ["sha1"]);
  assert.deepEqual(r.services, ["tlsrpt"]);
  assert.deepEqual(r.flags, ["y"]);
  assert.equal(r.publicKey?.length, 3);
  assert.deepEqual(r.problems.map((p) => p.fault), ["service"]);
  const syntax = readKeyRecord("v=DKIM1; k");
  assert.equal(syntax.tags.size, 0);
  assert.ok(syntax.problems[0].cause instanceof SyntaxError);
});

Deno.test("keyRecordName() builds selector._domainkey.domain (RFC 6376 §3.6.2.1)", () => {
  assert.equal(keyRecordName("dkim", "datahunter.org"), "dkim._domainkey.datahunter.org");
});
