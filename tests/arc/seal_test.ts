/**
 * ARC sealing (RFC 8617 §5.1) on real bytes: the fields written, what the seal and the message
 * signature cover (checked by recomputing each signature's input here and verifying it with the
 * public key), the cv= rules, and the limits.
 */
import assert from "node:assert/strict";
import { concat, CRLF, fromBase64, fromLatin1, latin1 } from "../../lib/bytes.ts";
import { ArcSyntaxError, collectArcSets } from "../../lib/arc/arc_set.ts";
import { ArcSealer, ArcSealError, sealMessage, type SealOptions } from "../../lib/arc/seal.ts";
import { ownAuthResults } from "../../lib/arc/seal_input.ts";
import type { SigningKey } from "../../lib/crypto/private_key.ts";
import { importPublicKey } from "../../lib/crypto/public_key.ts";
import { BodyHashes } from "../../lib/dkim/body_hasher.ts";
import { canonicalizeHeader } from "../../lib/dkim/canon_header.ts";
import { type HeaderField, selectHeaders, splitMessage } from "../../lib/dkim/header.ts";
import { parseTagList } from "../../lib/dkim/tag_list.ts";
import { edit, edKey, MESSAGE, rsaKey } from "../helpers/dkim_fixtures.ts";

const NOW = 1_800_000_000;

function options(key: SigningKey, extra: Partial<SealOptions> = {}): SealOptions {
  return {
    domain: "forwarder.example",
    selector: "arc",
    key,
    authservId: "mx.forwarder.example",
    results: "dkim=pass header.d=example.com",
    cv: "none",
    ...extra,
  };
}

async function seal(message: Uint8Array, o: SealOptions): Promise<Uint8Array> {
  const set = await sealMessage(message, o, { now: () => NOW });
  return concat([...set.flatMap((f) => [f.raw, CRLF]), message]);
}

function tags(field: HeaderField): Map<string, string> {
  const text = latin1(field.raw).slice(field.name.length + 1).replace(/\r\n/g, "");
  return parseTagList(text);
}

function withEmptyB(field: HeaderField): HeaderField {
  return { name: field.name, raw: fromLatin1(latin1(field.raw).replace(/b=[^;]*$/, "b=")) };
}

/** The relaxed hash input of a signature over `covered`, then itself with b= empty. */
function signedData(covered: readonly HeaderField[], own: HeaderField): Uint8Array {
  const last = canonicalizeHeader(withEmptyB(own), "relaxed");
  return concat([
    ...covered.map((f) => canonicalizeHeader(f, "relaxed")),
    last.subarray(0, last.length - 2),
  ]);
}

async function verifies(key: SigningKey, data: Uint8Array, field: HeaderField): Promise<boolean> {
  const b = fromBase64(tags(field).get("b")!.replace(/\s/g, ""));
  const pub = await importPublicKey(key.type, key.publicKey);
  return await pub.verify("sha256", data, b);
}

/** Checks every ARC set of `message` the way RFC 8617 §5.2 does, with `key` for all. */
async function chainVerifies(key: SigningKey, message: Uint8Array): Promise<boolean> {
  const { fields, bodyOffset } = splitMessage(message);
  let sets;
  try {
    sets = collectArcSets(fields);
  } catch (e) {
    if (e instanceof ArcSyntaxError) return false;
    throw e;
  }
  if (sets.length === 0) return false;
  const covered: HeaderField[] = [];
  for (const set of sets) {
    covered.push(set.aar.field, set.ams.field);
    if (!await verifies(key, signedData(covered, set.seal.field), set.seal.field)) return false;
    covered.push(set.seal.field);
  }
  const ams = sets[sets.length - 1].ams.field;
  const t = tags(ams);
  const hashes = new BodyHashes();
  const spec = { canonicalization: "relaxed", algorithm: "sha256" } as const;
  hashes.add(spec);
  hashes.push(message.subarray(bodyOffset));
  hashes.finish();
  if (latin1(hashes.result(spec).hash) !== latin1(fromBase64(t.get("bh")!.replace(/\s/g, "")))) {
    return false;
  }
  const h = t.get("h")!.split(":").map((n) => n.trim());
  return await verifies(key, signedData(selectHeaders(fields, h), ams), ams);
}

const AUTH_RESULTS = fromLatin1(
  "Authentication-Results: mx.forwarder.example; dkim=pass header.d=example.com\r\n",
);

for (
  const [name, getKey, alg] of [["RSA", rsaKey, "rsa-sha256"], [
    "Ed25519",
    edKey,
    "ed25519-sha256",
  ]] as const
) {
  Deno.test(`sealMessage() with ${name} writes ARC set 1 with cv=none that verifies`, async () => {
    const key = await getKey();
    const sealed = await seal(concat([AUTH_RESULTS, MESSAGE]), options(key));
    const text = latin1(sealed);
    assert.match(
      text,
      new RegExp(
        `^ARC-Seal: i=1; a=${alg}; t=${NOW}; cv=none;\r\n\td=forwarder\\.example; s=arc; b=`,
      ),
    );
    const { fields } = splitMessage(sealed);
    assert.deepEqual(fields.slice(0, 3).map((f) => f.name), [
      "ARC-Seal",
      "ARC-Message-Signature",
      "ARC-Authentication-Results",
    ]);
    // dkimpy finds the AMS by the text " i=N;" (the value's first tag, after a space).
    assert.match(
      latin1(fields[1].raw),
      new RegExp(
        `^ARC-Message-Signature: i=1; a=${alg}; c=relaxed/relaxed;\\s+d=forwarder\\.example;`,
      ),
    );
    assert.equal(
      latin1(fields[2].raw),
      "ARC-Authentication-Results: i=1; mx.forwarder.example; dkim=pass header.d=example.com",
    );
    const ams = tags(fields[1]);
    assert.equal(ams.get("t"), String(NOW));
    assert.equal(ams.has("v"), false);
    assert.equal(ams.get("h")!.replace(/\s/g, ""), "From:From:Subject:Date:Message-ID:To");
    assert.ok(await chainVerifies(key, sealed));
    assert.equal(await chainVerifies(key, edit(sealed, "Noon at", "Two at")), false);
    assert.equal(await chainVerifies(key, edit(sealed, "Lunch", "Dinner")), false);
  });
}

Deno.test("sealMessage() with cv=pass seals every earlier set, in instance order", async () => {
  const key = await rsaKey();
  const one = await seal(MESSAGE, options(key));
  const two = await seal(one, options(key, { cv: "pass", results: "arc=pass" }));
  const three = await seal(two, options(key, { cv: "pass", results: "arc=pass" }));
  const { fields } = splitMessage(three);
  // collectArcSets() throws when the structure is broken.
  const sets = collectArcSets(fields);
  assert.equal(sets.length, 3);
  assert.equal(
    latin1(sets[2].aar.field.raw).startsWith("ARC-Authentication-Results: i=3;"),
    true,
  );
  assert.equal(sets[2].seal.cv, "pass");
  assert.ok(await chainVerifies(key, three));
  // The AMS never signs ARC fields (RFC 8617 §4.1.2), so later sets do not break earlier ones.
  assert.doesNotMatch(tags(sets[2].ams.field).get("h")!, /arc-/i);
  // Reordering instances breaks the seals: swap the AARs of sets 1 and 2.
  const aar1 = latin1(sets[0].aar.field.raw);
  const aar2 = latin1(sets[1].aar.field.raw);
  const swapped = fromLatin1(
    latin1(three).replace(aar1, "@@1").replace(aar2, aar1.replace("i=1;", "i=2;"))
      .replace("@@1", aar2.replace("i=2;", "i=1;")),
  );
  assert.equal(await chainVerifies(key, swapped), false);
});

Deno.test("sealMessage() with cv=fail seals only its own set (RFC 8617 §5.1.2)", async () => {
  const key = await rsaKey();
  const one = await seal(MESSAGE, options(key));
  const two = await seal(one, options(key, { cv: "fail", results: "arc=fail" }));
  const { fields } = splitMessage(two);
  const [set1, set2] = collectArcSets(fields).map((s) => ({
    aar: s.aar.field,
    ams: s.ams.field,
    seal: s.seal.field,
  }));
  assert.ok(await verifies(key, signedData([set2.aar, set2.ams], set2.seal), set2.seal));
  const all = [set1.aar, set1.ams, set1.seal, set2.aar, set2.ams];
  assert.equal(await verifies(key, signedData(all, set2.seal), set2.seal), false);
  // A chain that said fail has ended (RFC 8617 §5.1 step 1): no set follows, whatever its cv=.
  for (const cv of ["pass", "fail"] as const) {
    await assert.rejects(
      () => seal(two, options(key, { cv })),
      (e) =>
        e instanceof ArcSealError && /ARC set 2 says cv=fail: the chain has ended/.test(e.message),
    );
  }
});

Deno.test("ArcSealer refuses cv= values that contradict the message", async () => {
  const key = await rsaKey();
  const one = await seal(MESSAGE, options(key));
  const cases: [Uint8Array, Partial<SealOptions>, RegExp][] = [
    [one, { cv: "none" }, /cv=none is only for a message without ARC sets; this one has 1/],
    [MESSAGE, { cv: "pass" }, /cv=pass needs an ARC chain/],
    [
      fromLatin1(latin1(one).replace(/^ARC-Seal:[^]*?\r\n(?=ARC-Message)/, "")),
      { cv: "pass" },
      /The ARC chain is broken \(ARC set 1 of 1 incomplete: no ARC-Seal\); seal it with cv=fail/,
    ],
  ];
  for (const [message, extra, want] of cases) {
    await assert.rejects(
      () => seal(message, options(key, extra)),
      (e) => e instanceof ArcSealError && want.test(e.message),
    );
  }
  // The broken chain may still be sealed as failed.
  await seal(cases[2][0], options(key, { cv: "fail" }));
});

Deno.test("ArcSealer refuses a 51st ARC set (RFC 8617 §4.2.1)", async () => {
  const key = await edKey();
  const fifty = fromLatin1(
    "ARC-Seal: i=50; a=ed25519-sha256; cv=pass; d=a.example; s=s; b=AA\r\n" +
      "ARC-Message-Signature: i=50; a=ed25519-sha256; d=a.example; s=s; h=from; bh=AA; b=AA\r\n" +
      "ARC-Authentication-Results: i=50; mx.a.example; arc=pass\r\n",
  );
  await assert.rejects(
    () => seal(concat([fifty, MESSAGE]), options(key, { cv: "pass" })),
    (e) => e instanceof ArcSealError && /already has 50 ARC sets/.test(e.message),
  );
});

Deno.test("ArcSealer rejects bad options", async () => {
  const key = await edKey();
  const bad: [Partial<SealOptions>, RegExp][] = [
    [{ domain: "bad domain" }, /Invalid sealing domain "bad domain"/],
    [{ selector: "a b" }, /Invalid selector "a b"/],
    [{ authservId: "mx;x" }, /Invalid authserv-id "mx;x"/],
    [{ results: "dkim=pass\r\nX-Injected: 1" }, /Invalid results/],
    [{ results: "  " }, /Invalid results/],
    [{ cv: "maybe" as "pass" }, /Invalid chain validation status "maybe"/],
  ];
  for (const [extra, want] of bad) {
    assert.throws(
      () => new ArcSealer(options(key, extra)),
      (e) => e instanceof ArcSealError && want.test(e.message),
    );
  }
  await assert.rejects(() => new ArcSealer(options(key)).finish(), /before headers\(\)/);
});

Deno.test("ArcSealer never signs ARC fields in the AMS, even when asked to", async () => {
  const key = await edKey();
  const one = await seal(MESSAGE, options(key));
  const [, ams] = await sealMessage(
    one,
    options(key, {
      cv: "pass",
      signHeaders: ["From", "ARC-Seal", "ARC-Authentication-Results", "Subject"],
    }),
    { now: () => NOW },
  );
  assert.equal(tags(ams).get("h"), "From:From:Subject");
});

Deno.test("ArcSealer gives the same set for a body fed in any chunks", async () => {
  const key = await rsaKey();
  const { fields, bodyOffset } = splitMessage(MESSAGE);
  const body = MESSAGE.subarray(bodyOffset);
  const whole = await sealMessage(MESSAGE, options(key), { now: () => NOW });
  for (let split = 0; split <= body.length; split++) {
    const sealer = new ArcSealer(options(key), { now: () => NOW });
    sealer.headers(fields);
    sealer.body(body.subarray(0, split));
    sealer.body(body.subarray(split));
    const got = await sealer.finish();
    assert.deepEqual(
      got.map((f) => latin1(f.raw)),
      whole.map((f) => latin1(f.raw)),
      `split ${split}`,
    );
  }
});

Deno.test("ownAuthResults() carries only our authserv-id's results, folded ones unfolded", () => {
  const { fields } = splitMessage(fromLatin1(
    "Authentication-Results: mx.forwarder.example;\r\n\tdkim=pass header.d=example.com;\r\n\tspf=pass smtp.mailfrom=example.com\r\n" +
      "Authentication-Results: mx.forwarder.example; none\r\n" +
      "Authentication-Results: mx.forwarder.example.evil; dkim=pass\r\n" +
      "From: a\r\n\r\n",
  ));
  assert.equal(
    ownAuthResults(fields, "MX.forwarder.example"),
    "dkim=pass header.d=example.com;\tspf=pass smtp.mailfrom=example.com",
  );
});
