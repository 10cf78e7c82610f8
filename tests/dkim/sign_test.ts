import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { splitMessage } from "../../lib/dkim/header.ts";
import { Signer, SignError, signMessage } from "../../lib/dkim/sign.ts";
import { FOLD_WIDTH, parseSignature } from "../../lib/dkim/signature.ts";
import { verifyMessage } from "../../lib/dkim/verify.ts";
import { ZoneResolver } from "../helpers/zone_resolver.ts";
import { edKey, loadKey, MESSAGE, recordFor, rsaKey, signed } from "../helpers/dkim_fixtures.ts";

const NOW = 1_800_000_000;

Deno.test("Signer writes the tags in OpenDKIM's order with t= from the clock", async () => {
  const [field] = await signMessage(MESSAGE, [{
    domain: "Example.COM",
    selector: "sel",
    key: await edKey(),
  }], {
    now: () => NOW + 0.7,
  });
  const sig = parseSignature(field);
  assert.deepEqual([...sig.tags.keys()], ["v", "a", "c", "d", "s", "t", "h", "bh", "b"]);
  assert.equal(sig.tags.get("t"), String(NOW));
  assert.equal(sig.domain, "example.com");
  assert.equal(field.name, "DKIM-Signature");
});

Deno.test("Signer folds the signature field at 78 columns with CRLF and a tab", async () => {
  const many = Array.from({ length: 40 }, (_, i) => `X-Long-Header-Name-${i}`);
  const headers = many.map((n) => `${n}: v\r\n`).join("");
  const message = fromLatin1(`From: a@example.com\r\n${headers}\r\nbody\r\n`);
  for (const key of [await rsaKey(), await edKey()]) {
    const [field] = await signMessage(message, [{
      domain: "example.com",
      selector: "sel",
      key,
      signHeaders: many,
      oversignHeaders: [], // the 41 below: the 40 names and From once
    }]);
    const lines = latin1(field.raw).split("\r\n");
    assert.ok(lines.length > 5);
    for (const line of lines) {
      assert.ok(line.length <= FOLD_WIDTH, `line too long (${line.length}): ${line}`);
    }
    for (const line of lines.slice(1)) {
      assert.ok(line.startsWith("\t"), `continuation without tab: ${line}`);
    }
    assert.equal(parseSignature(field).headers.length, 41);
  }
});

Deno.test("Signer adds x= from ttl, i= from identity and l= when asked", async () => {
  const [field] = await signMessage(MESSAGE, [{
    domain: "example.com",
    selector: "sel",
    key: await edKey(),
    ttl: 86400,
    identity: "alice@mail.example.com",
    bodyLength: true,
  }], { now: () => NOW });
  const sig = parseSignature(field);
  assert.equal(sig.expiration, NOW + 86400);
  assert.equal(sig.identity, "alice@mail.example.com");
  const body = MESSAGE.subarray(splitMessage(MESSAGE).bodyOffset);
  // relaxed body: trailing whitespace and the final empty line removed.
  assert.equal(sig.length, latin1(body).replace("usual place?  ", "usual place?").length - 2);
});

Deno.test("Signer signs at most maxSignedBytes of the body and says so in l=", async () => {
  const key = await edKey();
  const message = await signed(MESSAGE, [{
    domain: "example.com",
    selector: "sel",
    key,
    maxSignedBytes: 10,
  }], NOW);
  const { fields } = splitMessage(message);
  assert.equal(parseSignature(fields[0]).length, 10);
  const resolver = new ZoneResolver({ "sel._domainkey.example.com": [recordFor(key)] });
  // The body is longer than l=, which the verifier takes as policy unless told OpenDKIM's pass.
  const [v] = await verifyMessage(message, {
    resolver,
    now: () => NOW,
    partialBodyResult: "pass",
  });
  assert.equal(v.result, "pass", String(v.reason));
});

Deno.test("Signer signs with RSA and Ed25519 in one pass, both verifiable", async () => {
  const rsa = await rsaKey();
  const ed = await edKey();
  const message = await signed(MESSAGE, [
    { domain: "example.com", selector: "rsa", key: rsa },
    { domain: "example.com", selector: "ed", key: ed },
  ], NOW);
  const resolver = new ZoneResolver({
    "rsa._domainkey.example.com": [recordFor(rsa)],
    "ed._domainkey.example.com": [recordFor(ed)],
  });
  const verdicts = await verifyMessage(message, { resolver, now: () => NOW });
  assert.deepEqual(verdicts.map((v) => [v.algorithm, v.result]), [["rsa-sha256", "pass"], [
    "ed25519-sha256",
    "pass",
  ]]);
});

Deno.test("Signer refuses bad options with a clear SignError", async () => {
  const ed = await edKey();
  const rsa = await rsaKey();
  const cases: [ConstructorParameters<typeof Signer>[0][0], RegExp][] = [
    [{ domain: "example.com", selector: "s", key: rsa, algorithm: "rsa-sha1" }, /RFC 8301/],
    [{ domain: "example.com", selector: "s", key: ed, algorithm: "rsa-sha256" }, /needs a rsa key/],
    [{ domain: "exa mple.com", selector: "s", key: ed }, /Invalid signing domain "exa mple.com"/],
    [{ domain: "example.com", selector: "s;x", key: ed }, /Invalid selector/],
    [
      { domain: "example.com", selector: "s", key: ed, identity: "a@example.org" },
      /not in domain "example.com"/,
    ],
    [{ domain: "example.com", selector: "s", key: ed, maxSignedBytes: -1 }, /maximum signed bytes/],
  ];
  for (const [options, message] of cases) {
    assert.throws(
      () => new Signer([options]),
      (e) => e instanceof SignError && message.test(e.message),
    );
  }
  assert.throws(() => new Signer([]), SignError);
  await assert.rejects(
    new Signer([{ domain: "example.com", selector: "s", key: ed }]).finish(),
    /before headers/,
  );
});

Deno.test("Signer signs a message whose From is missing, listing From anyway", async () => {
  const message = fromLatin1("Subject: no from\r\n\r\nx\r\n");
  const [field] = await signMessage(message, [{
    domain: "example.com",
    selector: "s",
    key: await edKey(),
  }]);
  assert.deepEqual(parseSignature(field).headers, ["From", "Subject"]);
});

Deno.test("Signer signs with an odd-sized RSA key", async () => {
  const key = await loadKey("rsa2047.pem");
  const message = await signed(MESSAGE, [{ domain: "example.com", selector: "sel", key }], NOW);
  const resolver = new ZoneResolver({ "sel._domainkey.example.com": [recordFor(key)] });
  const [v] = await verifyMessage(message, { resolver, now: () => NOW });
  assert.equal(v.result, "pass");
  assert.equal(v.key?.bits, 2047);
});
