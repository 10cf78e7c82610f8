import assert from "node:assert/strict";
import { createSign } from "node:crypto";
import { concat, CRLF, fromLatin1, latin1, toBase64 } from "../../lib/bytes.ts";
import { digest } from "../../lib/crypto/hash.ts";
import { BodyHashes } from "../../lib/dkim/body_hasher.ts";
import type { Canonicalization } from "../../lib/dkim/canon_header.ts";
import { selectHeaders, splitMessage } from "../../lib/dkim/header.ts";
import { headerHashInput } from "../../lib/dkim/sign.ts";
import { appendSignatureValue, formatSignaturePrefix } from "../../lib/dkim/signature.ts";
import {
  MAX_BODY_HASHES_DEFAULT,
  MAX_SIGNATURES_CEILING,
  Verifier,
  verifyMessage,
  type VerifyOptions,
} from "../../lib/dkim/verify.ts";
import type { ZoneEntry } from "../helpers/zone_resolver.ts";
import { ZoneResolver } from "../helpers/zone_resolver.ts";
import { describeSplit, splits } from "../helpers/chunks.ts";
import {
  edit,
  edKey,
  loadKey,
  MESSAGE,
  recordFor,
  rsaKey,
  signed,
} from "../helpers/dkim_fixtures.ts";

const NOW = 1_800_000_000;
const NAME = "sel._domainkey.example.com";

async function verify(
  message: Uint8Array,
  zone: Record<string, ZoneEntry>,
  options: Partial<VerifyOptions> = {},
) {
  const resolver = new ZoneResolver(zone);
  return await verifyMessage(message, { resolver, now: () => NOW, ...options });
}

const CANONS: [Canonicalization, Canonicalization][] = [
  ["simple", "simple"],
  ["simple", "relaxed"],
  ["relaxed", "simple"],
  ["relaxed", "relaxed"],
];

for (const type of ["rsa", "ed25519"] as const) {
  for (const canon of CANONS) {
    Deno.test(`verifyMessage() passes a ${type} signature with c=${canon.join("/")}`, async () => {
      const key = type === "rsa" ? await rsaKey() : await edKey();
      const message = await signed(MESSAGE, [{
        domain: "example.com",
        selector: "sel",
        key,
        canonicalization: canon,
      }]);
      const [v] = await verify(message, { [NAME]: [recordFor(key)] });
      assert.equal(v.result, "pass", String(v.reason));
      assert.equal(v.key?.bits, type === "rsa" ? 2048 : 256);
      assert.equal(v.algorithm, type === "rsa" ? "rsa-sha256" : "ed25519-sha256");
    });
  }
}

Deno.test("Verifier passes at every body chunk split", async () => {
  const key = await edKey();
  const message = await signed(MESSAGE, [{ domain: "example.com", selector: "sel", key }]);
  const { fields, bodyOffset } = splitMessage(message);
  const body = message.subarray(bodyOffset);
  const resolver = new ZoneResolver({ [NAME]: [recordFor(key)] });
  for (const pieces of splits(body)) {
    const verifier = new Verifier({ resolver, now: () => NOW });
    verifier.headers(fields);
    for (const p of pieces) verifier.body(p);
    const [v] = await verifier.finish();
    assert.equal(v.result, "pass", describeSplit(pieces));
  }
});

Deno.test("Verifier hashes the body once per canonicalization, hash and l=", async () => {
  const key = await edKey();
  const rsa = await rsaKey();
  const message = await signed(MESSAGE, [
    { domain: "example.com", selector: "sel", key },
    { domain: "example.com", selector: "rsa", key: rsa },
    { domain: "example.com", selector: "sel", key, canonicalization: ["simple", "relaxed"] },
    { domain: "example.com", selector: "sel", key, canonicalization: ["relaxed", "simple"] },
  ]);
  const { fields } = splitMessage(message);
  const verifier = new Verifier({
    resolver: new ZoneResolver({}),
    maxSignatures: 10,
    now: () => NOW,
  });
  verifier.headers(fields);
  assert.equal(verifier.signatureCount, 4);
  // relaxed+sha256 (three signatures share it) and simple+sha256.
  assert.equal(verifier.bodyHashCount, 2);
  verifier.abort();
});

Deno.test("verifyMessage() gives each of several signatures its own result", async () => {
  const ed = await edKey();
  const rsa = await rsaKey();
  const message = await signed(MESSAGE, [
    { domain: "example.com", selector: "rsa", key: rsa },
    { domain: "example.com", selector: "ed", key: ed },
    { domain: "example.net", selector: "gone", key: ed },
  ]);
  const verdicts = await verify(message, {
    "rsa._domainkey.example.com": [recordFor(rsa)],
    "ed._domainkey.example.com": [recordFor(ed)],
  });
  assert.deepEqual(verdicts.map((v) => [v.selector, v.result, v.reason]), [
    ["rsa", "pass", undefined],
    ["ed", "pass", undefined],
    ["gone", "permerror", "no key for signature"],
  ]);
});

Deno.test("verifyMessage() evaluates at most maxSignatures, from the top", async () => {
  const ed = await edKey();
  const options = Array.from(
    { length: 5 },
    () => ({ domain: "example.com", selector: "sel", key: ed }),
  );
  const message = await signed(MESSAGE, options);
  const resolver = new ZoneResolver({ [NAME]: [recordFor(ed)] });
  const verdicts = await verifyMessage(message, { resolver, now: () => NOW });
  assert.equal(verdicts.length, 3);
  assert.ok(verdicts.every((v) => v.result === "pass"));
  assert.equal(
    (await verifyMessage(message, { resolver, now: () => NOW, maxSignatures: 1 })).length,
    1,
  );
  // One lookup per distinct key name, however many signatures use it.
  assert.equal(resolver.calls.filter((n) => n === NAME).length, 2);
});

// dkimd departs from OpenDKIM here: its MaximumSignaturesToVerify 0 verifies every signature.
Deno.test("verifyMessage() evaluates at most MAX_SIGNATURES_CEILING signatures, whatever maxSignatures says", async () => {
  const ed = await edKey();
  const options = Array.from(
    { length: MAX_SIGNATURES_CEILING + 5 },
    () => ({ domain: "example.com", selector: "sel", key: ed }),
  );
  const message = await signed(MESSAGE, options);
  const resolver = new ZoneResolver({ [NAME]: [recordFor(ed)] });
  for (const maxSignatures of [MAX_SIGNATURES_CEILING + 1, Number.MAX_SAFE_INTEGER]) {
    const verdicts = await verifyMessage(message, { resolver, now: () => NOW, maxSignatures });
    assert.equal(verdicts.length, MAX_SIGNATURES_CEILING);
    assert.ok(verdicts.every((v) => v.result === "pass"));
  }
});

Deno.test("Verifier gives policy, unverified, to a signature needing one body hash too many", async () => {
  const ed = await edKey();
  const relaxed = { domain: "example.com", selector: "sel", key: ed };
  const simple = { ...relaxed, canonicalization: ["relaxed", "simple"] as const };
  const message = await signed(MESSAGE, [relaxed, simple, relaxed]);
  const resolver = new ZoneResolver({ [NAME]: [recordFor(ed)] });
  const { fields, bodyOffset } = splitMessage(message);
  const verifier = new Verifier({ resolver, now: () => NOW, maxBodyHashes: 1 });
  verifier.headers(fields);
  assert.equal(verifier.bodyHashCount, 1);
  assert.equal(verifier.overBodyHashLimit, 1);
  verifier.body(message.subarray(bodyOffset));
  assert.deepEqual((await verifier.finish()).map((v) => [v.result, v.reason]), [
    ["pass", undefined],
    ["policy", "not verified: more than 1 distinct body hashes in the message"],
    ["pass", undefined],
  ]);
});

Deno.test("Verifier computes at most MAX_BODY_HASHES_DEFAULT body hashes, however many l= values", async () => {
  const ed = await edKey();
  const count = MAX_BODY_HASHES_DEFAULT + 3;
  const options = Array.from(
    { length: count },
    (_, i) => ({ domain: "example.com", selector: "sel", key: ed, maxSignedBytes: i + 1 }),
  );
  const message = await signed(MESSAGE, options);
  const { fields } = splitMessage(message);
  const verifier = new Verifier({
    resolver: new ZoneResolver({ [NAME]: [recordFor(ed)] }),
    now: () => NOW,
    maxSignatures: count,
  });
  verifier.headers(fields);
  assert.equal(verifier.signatureCount, count);
  assert.equal(verifier.bodyHashCount, MAX_BODY_HASHES_DEFAULT);
  assert.equal(verifier.overBodyHashLimit, 3);
  verifier.body(message.subarray(splitMessage(message).bodyOffset));
  const reasons = (await verifier.finish()).map((v) => v.reason ?? "");
  // The first MAX_BODY_HASHES_DEFAULT are verified (whatever l= makes of them), the rest not.
  assert.deepEqual(
    reasons.map((r) => r.startsWith("not verified")),
    options.map((_, i) => i >= MAX_BODY_HASHES_DEFAULT),
  );
});

Deno.test("verifyMessage() returns nothing for an unsigned message", async () => {
  assert.deepEqual(await verify(MESSAGE, {}), []);
});

Deno.test("verifyMessage() skips other TXT records at the key name", async () => {
  const key = await edKey();
  const message = await signed(MESSAGE, [{ domain: "example.com", selector: "sel", key }]);
  const [v] = await verify(message, { [NAME]: ["v=spf1 -all", recordFor(key)] });
  assert.equal(v.result, "pass");
});

Deno.test("verifyMessage() reports a testing key (t=y) and still passes", async () => {
  const key = await edKey();
  const message = await signed(MESSAGE, [{ domain: "example.com", selector: "sel", key }]);
  const [v] = await verify(message, { [NAME]: [recordFor(key, "t=y; ")] });
  assert.equal(v.result, "pass");
  assert.equal(v.key?.testing, true);
});

Deno.test("verifyMessage() honours l= and ignores content appended after it", async () => {
  const key = await edKey();
  const message = await signed(MESSAGE, [{
    domain: "example.com",
    selector: "sel",
    key,
    bodyLength: true,
  }]);
  const appended = concat([message, fromLatin1("-- \r\nAppended by a list\r\n")]);
  // OpenDKIM's pass for a partial body (the default, policy, is tested below).
  const [v] = await verify(appended, { [NAME]: [recordFor(key)] }, { partialBodyResult: "pass" });
  assert.equal(v.result, "pass");
  assert.ok(v.signature?.length !== undefined && v.signature.length > 0);
  const truncated = edit(message, "Alice\r\n\r\n", "");
  const [t] = await verify(truncated, { [NAME]: [recordFor(key)] });
  assert.deepEqual([t.result, t.reason], ["permerror", "l= exceeds the body length"]);
});

// Each way a signature can fail, with its RFC 8601 result and reason.
interface FailCase {
  name: string;
  make: () => Promise<{ message: Uint8Array; zone: Record<string, ZoneEntry> }>;
  options?: Partial<VerifyOptions>;
  result: string;
  reason: RegExp;
}

async function standard(extra: Partial<Parameters<typeof signed>[1][0]> = {}) {
  const key = await edKey();
  const message = await signed(MESSAGE, [{
    domain: "example.com",
    selector: "sel",
    key,
    ...extra,
  }]);
  return { key, message };
}

const failures: FailCase[] = [
  {
    name: "a changed body",
    make: async () => {
      const { key, message } = await standard();
      return { message: edit(message, "Noon", "Nine"), zone: { [NAME]: [recordFor(key)] } };
    },
    result: "fail",
    reason: /^body hash did not verify$/,
  },
  {
    name: "a changed signed header",
    make: async () => {
      const { key, message } = await standard();
      return { message: edit(message, "Lunch", "Dinner"), zone: { [NAME]: [recordFor(key)] } };
    },
    result: "fail",
    reason: /^signature did not verify$/,
  },
  {
    name: "a From field added above the signed one, with From oversigned",
    make: async () => {
      const { key, message } = await standard({ oversignHeaders: ["From"] });
      const text = latin1(message).replace(
        "From: Alice",
        "From: Mallory <m@evil.example>\r\nFrom: Alice",
      );
      return { message: fromLatin1(text), zone: { [NAME]: [recordFor(key)] } };
    },
    result: "fail",
    reason: /^signature did not verify$/,
  },
  {
    name: "a missing key record",
    make: async () => ({ message: (await standard()).message, zone: {} }),
    result: "permerror",
    reason: /^no key for signature$/,
  },
  {
    name: "a name without TXT records",
    make: async () => ({ message: (await standard()).message, zone: { [NAME]: "nodata" } }),
    result: "permerror",
    reason: /^no key for signature$/,
  },
  {
    name: "a DNS server failure",
    make: async () => ({ message: (await standard()).message, zone: { [NAME]: "servfail" } }),
    result: "temperror",
    reason: /DNS error \(servfail\)/,
  },
  {
    name: "a DNS timeout",
    make: async () => ({ message: (await standard()).message, zone: { [NAME]: "timeout" } }),
    result: "temperror",
    reason: /DNS timeout/,
  },
  {
    name: "a revoked key",
    make: async () => ({
      message: (await standard()).message,
      zone: { [NAME]: ["v=DKIM1; k=ed25519; p="] },
    }),
    result: "permerror",
    reason: /^key revoked$/,
  },
  {
    name: "a key record with bad syntax",
    make: async () => ({
      message: (await standard()).message,
      zone: { [NAME]: ["v=DKIM1; k=ed25519; p=!!!"] },
    }),
    result: "permerror",
    reason: /^key syntax error/,
  },
  {
    name: "an Ed25519 key of the wrong length",
    make: async () => ({
      message: (await standard()).message,
      zone: { [NAME]: ["v=DKIM1; k=ed25519; p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="] },
    }),
    result: "permerror",
    reason: /^key syntax error \(it is 31 bytes; an Ed25519 key is 32/,
  },
  {
    name: "a key record with v= not first",
    make: async () => {
      const { key, message } = await standard();
      return { message, zone: { [NAME]: [`k=ed25519; v=DKIM1; p=${toBase64(key.publicKey)}`] } };
    },
    result: "permerror",
    reason: /invalid v=/,
  },
  {
    name: "an RSA key for an Ed25519 signature",
    make: async () => ({
      message: (await standard()).message,
      zone: { [NAME]: [recordFor(await rsaKey())] },
    }),
    result: "permerror",
    reason: /^key type mismatch/,
  },
  {
    name: "a key whose h= excludes sha256",
    make: async () => {
      const { key, message } = await standard();
      return { message, zone: { [NAME]: [recordFor(key, "h=sha1; ")] } };
    },
    result: "permerror",
    reason: /does not allow hash "sha256"/,
  },
  {
    name: "a key not for email (s=)",
    make: async () => {
      const { key, message } = await standard();
      return { message, zone: { [NAME]: [recordFor(key, "s=tlsrpt; ")] } };
    },
    result: "permerror",
    reason: /not for email/,
  },
  {
    name: "a strict key (t=s) and a subdomain identity",
    make: async () => {
      const { key, message } = await standard({ identity: "alice@mail.example.com" });
      return { message, zone: { [NAME]: [recordFor(key, "t=s; ")] } };
    },
    result: "permerror",
    reason: /t=s/,
  },
  {
    name: "an RSA key under 1024 bits (RFC 8301 §3.2)",
    make: async () => {
      const key = await loadKey("rsa1023.pem");
      const message = await signed(MESSAGE, [{ domain: "example.com", selector: "sel", key }]);
      return { message, zone: { [NAME]: [recordFor(key)] } };
    },
    result: "permerror",
    reason: /^key too small \(1023 bits\)$/,
  },
  {
    name: "an RSA key under the site's minimum",
    make: async () => {
      const key = await loadKey("rsa1024.pem");
      const message = await signed(MESSAGE, [{ domain: "example.com", selector: "sel", key }]);
      return { message, zone: { [NAME]: [recordFor(key)] } };
    },
    options: { minimumKeyBits: 2048 },
    result: "policy",
    reason: /^key too small \(1024 bits, minimum 2048\)$/,
  },
  {
    name: "an RSA key over the maximum",
    make: async () => {
      const key = await loadKey("rsa4096.pem");
      const message = await signed(MESSAGE, [{ domain: "example.com", selector: "sel", key }]);
      return { message, zone: { [NAME]: [recordFor(key)] } };
    },
    options: { maximumKeyBits: 3072 },
    result: "permerror",
    reason: /^key too large/,
  },
  {
    name: "an expired signature",
    make: async () => {
      const { key } = await standard();
      const message = await signed(MESSAGE, [{
        domain: "example.com",
        selector: "sel",
        key,
        ttl: 3600,
      }], NOW - 7200);
      return { message, zone: { [NAME]: [recordFor(key)] } };
    },
    result: "policy",
    reason: /^signature expired$/,
  },
  {
    name: "a signature from the future",
    make: async () => {
      const { key } = await standard();
      const message = await signed(
        MESSAGE,
        [{ domain: "example.com", selector: "sel", key }],
        NOW + 3600,
      );
      return { message, zone: { [NAME]: [recordFor(key)] } };
    },
    result: "policy",
    reason: /in the future/,
  },
];

for (const c of failures) {
  Deno.test(`verifyMessage() reports ${c.name}`, async () => {
    const { message, zone } = await c.make();
    const [v] = await verify(message, zone, c.options);
    assert.equal(v.result, c.result, `reason: ${v.reason}`);
    assert.match(v.reason ?? "", c.reason);
    assert.equal(v.domain, "example.com");
  });
}

Deno.test("verifyMessage() accepts an expired signature within the clock drift", async () => {
  const { key } = await standard();
  const message = await signed(MESSAGE, [{
    domain: "example.com",
    selector: "sel",
    key,
    ttl: 3600,
  }], NOW - 3700);
  const [v] = await verify(message, { [NAME]: [recordFor(key)] });
  assert.equal(v.result, "pass");
});

// Signatures written by hand, for syntax the signer never produces.
async function handmade(
  tags: Partial<Parameters<typeof formatSignaturePrefix>[0]>,
  mutate: (text: string) => string = (t) => t,
) {
  const key = await edKey();
  const { fields, bodyOffset } = splitMessage(MESSAGE);
  const hashes = new BodyHashes();
  const spec = { canonicalization: "relaxed", algorithm: "sha256" } as const;
  hashes.add(spec);
  hashes.push(MESSAGE.subarray(bodyOffset));
  hashes.finish();
  const all = {
    algorithm: "ed25519-sha256" as const,
    headerCanonicalization: "relaxed" as const,
    bodyCanonicalization: "relaxed" as const,
    domain: "example.com",
    selector: "sel",
    headers: ["From", "To", "Subject"],
    bodyHash: toBase64(hashes.result(spec).hash),
    ...tags,
  };
  const prefix = mutate(formatSignaturePrefix(all));
  const data = headerHashInput(
    selectHeaders(fields, all.headers),
    { name: "DKIM-Signature", raw: fromLatin1(prefix) },
    "relaxed",
  );
  const field = appendSignatureValue(prefix, toBase64(await key.sign(data)));
  return { key, message: concat([fromLatin1(field), CRLF, MESSAGE]) };
}

const syntax: {
  name: string;
  tags?: object;
  mutate?: (t: string) => string;
  result: string;
  ignored: "unsupported" | "malformed";
  reason: RegExp;
}[] = [
  {
    name: "h= without From",
    tags: { headers: ["To", "Subject"] },
    result: "permerror",
    ignored: "malformed",
    reason: /^From field not signed$/,
  },
  {
    name: "i= outside d=",
    tags: { identity: "a@example.org" },
    result: "permerror",
    ignored: "malformed",
    reason: /i= domain not within d=/,
  },
  {
    name: "v=2",
    mutate: (t) => t.replace("v=1", "v=2"),
    result: "permerror",
    ignored: "unsupported",
    reason: /unsupported signature version/,
  },
  {
    name: "an unknown algorithm",
    mutate: (t) => t.replace("a=ed25519-sha256", "a=ed448-sha256"),
    result: "permerror",
    ignored: "unsupported",
    reason: /unsupported algorithm "ed448-sha256"/,
  },
  {
    name: "an unknown canonicalization",
    mutate: (t) => t.replace("c=relaxed/relaxed", "c=nowsp/relaxed"),
    result: "permerror",
    ignored: "unsupported",
    reason: /unsupported canonicalization/,
  },
  {
    name: "a missing d=",
    mutate: (t) => t.replace(" d=example.com;", ""),
    result: "permerror",
    ignored: "malformed",
    reason: /missing required tag \(d=\)/,
  },
  {
    name: "a duplicate tag",
    mutate: (t) => t.replace("s=sel;", "s=sel; s=sel;"),
    result: "permerror",
    ignored: "malformed",
    reason: /duplicate tag "s"/,
  },
  {
    name: "bh= that is not base64",
    mutate: (t) => t.replace("bh=", "bh=*"),
    result: "permerror",
    ignored: "malformed",
    reason: /bh= is not base64/,
  },
  {
    name: "x= before t=",
    tags: { timestamp: NOW, expiration: NOW - 10 },
    result: "permerror",
    ignored: "malformed",
    reason: /x= is not after t=/,
  },
  {
    name: "an unknown q= method",
    mutate: (t) => t.replace("s=sel;", "s=sel; q=http/json;"),
    result: "permerror",
    ignored: "unsupported",
    reason: /unsupported query method/,
  },
];

for (const c of syntax) {
  Deno.test(`verifyMessage() reports a signature with ${c.name}`, async () => {
    const { key, message } = await handmade(c.tags ?? {}, c.mutate);
    const resolver = new ZoneResolver({ [NAME]: [recordFor(key)] });
    const [v] = await verifyMessage(message, { resolver, now: () => NOW });
    assert.equal(v.result, c.result, `reason: ${v.reason}`);
    assert.match(v.reason ?? "", c.reason);
    // RFC 6376 §6.1.1: a syntax error, or what dkimd does not implement, is ignored (the
    // message counts as unsigned), not a bad signature.
    assert.equal(v.result !== "pass" && v.ignored, c.ignored);
    // A signature rejected on its own syntax costs no DNS query.
    assert.deepEqual(resolver.calls, []);
  });
}

Deno.test("verifyMessage() accepts a handmade signature with q=dns/txt and folded h=", async () => {
  const { key, message } = await handmade(
    {},
    (t) => t.replace("h=From:To:Subject;", "q=dns/txt; h=From :\r\n To: Subject;"),
  );
  const [v] = await verify(message, { [NAME]: [recordFor(key)] });
  assert.equal(v.result, "pass", String(v.reason));
});

// RFC 8301 §3.1: rsa-sha1 is refused unless the operator allows it.
Deno.test("verifyMessage() refuses rsa-sha1 by default and verifies it when allowed", async () => {
  const pem = await Deno.readTextFile(
    new URL("../testdata/keys/rsa2048_pkcs8.pem", import.meta.url),
  );
  const rsa = await rsaKey();
  const { fields, bodyOffset } = splitMessage(MESSAGE);
  const hashes = new BodyHashes();
  const spec = { canonicalization: "simple", algorithm: "sha1" } as const;
  hashes.add(spec);
  hashes.push(MESSAGE.subarray(bodyOffset));
  hashes.finish();
  assert.deepEqual(
    hashes.result(spec).hash,
    digest("sha1", fromLatin1(latin1(MESSAGE.subarray(bodyOffset)).replace(/(\r\n)+$/, "\r\n"))),
  );
  const prefix = formatSignaturePrefix({
    algorithm: "rsa-sha1",
    headerCanonicalization: "simple",
    bodyCanonicalization: "simple",
    domain: "example.com",
    selector: "sel",
    headers: ["From", "Subject"],
    bodyHash: toBase64(hashes.result(spec).hash),
  });
  const data = headerHashInput(selectHeaders(fields, ["From", "Subject"]), {
    name: "DKIM-Signature",
    raw: fromLatin1(prefix),
  }, "simple");
  const b = createSign("sha1").update(data).sign(pem).toString("base64");
  const message = concat([fromLatin1(appendSignatureValue(prefix, b)), CRLF, MESSAGE]);
  const zone = { [NAME]: [recordFor(rsa)] };
  const [refused] = await verify(message, zone);
  assert.deepEqual([refused.result, refused.reason], [
    "permerror",
    "rsa-sha1 signatures not accepted (RFC 8301)",
  ]);
  // Ignored as an algorithm dkimd does not implement (RFC 8301 §3.1, RFC 6376 §6.1.1).
  assert.equal(refused.result !== "pass" && refused.ignored, "unsupported");
  const [allowed] = await verify(message, zone, { allowSha1: true });
  assert.equal(allowed.result, "pass", String(allowed.reason));
});

Deno.test("Verifier.abort() cancels pending key lookups", async () => {
  const { message } = await standard();
  const resolver = new ZoneResolver({ [NAME]: "timeout" });
  const verifier = new Verifier({ resolver, now: () => NOW });
  const { fields, bodyOffset } = splitMessage(message);
  verifier.headers(fields);
  verifier.body(message.subarray(bodyOffset));
  verifier.abort();
  const [v] = await verifier.finish();
  assert.equal(v.result, "temperror");
});
