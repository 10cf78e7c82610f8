/**
 * ARC chain verification (RFC 8617 §5.2) on real bytes: chains sealed by dkimpy and by
 * Mail::DKIM::ARC::Signer (tests/testdata/arc, made by make_fixtures.py there), whole, cut
 * short, and tampered with in each way the RFC's steps catch.
 */
import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { verifyArcMessage } from "../../lib/arc/verify.ts";
import { ArcVerifier } from "../../lib/arc/verify.ts";
import { splitMessage } from "../../lib/dkim/header.ts";
import { KeyFileResolver, readKeyFile } from "../../lib/dns/key_file.ts";
import type { LookupOptions, TxtResolver } from "../../lib/dns/resolver.ts";
import { DnsError } from "../../lib/dns/resolver.ts";

const DIR = new URL("../testdata/arc/", import.meta.url);
const keys = new KeyFileResolver(await readKeyFile(new URL("keys.txt", DIR).pathname));
const read = (name: string) => Deno.readTextFile(new URL(name, DIR)).then((t) => t);
const CHAINS = {
  dkimpy: await read("dkimpy_3.eml"),
  "Mail::DKIM": await read("mail_dkim_3.eml"),
};
const LIST = await read("dkimpy_list_2.eml");

/** A resolver that counts the names asked. */
class CountingResolver implements TxtResolver {
  readonly asked: string[] = [];
  resolveTxt(name: string, options?: LookupOptions): Promise<string[]> {
    this.asked.push(name);
    return keys.resolveTxt(name, options);
  }
}

const verify = (text: string, resolver: TxtResolver = keys) =>
  verifyArcMessage(fromLatin1(text), { resolver });

/** The message without its newest `drop` ARC sets (and the A-R each hop wrote under it). */
function withoutTopSets(text: string, drop: number): string {
  let out = text;
  for (let k = 0; k < drop; k++) {
    // Each hop prepended: AS, AMS, AAR, then its own Authentication-Results below them.
    const ar = out.indexOf("\nAuthentication-Results:");
    const end = out.indexOf("\n", ar + 1);
    out = out.slice(end + 1);
  }
  return out;
}

/** Replaces the `i=` of one field with another number (field named by its first bytes). */
function renumber(text: string, field: string, from: number, to: number): string {
  const re = new RegExp(`^(${field}: (?:[^\\n]*\\n[ \\t])*?[^\\n]*?)\\bi=${from};`, "m");
  assert.match(text, re);
  return text.replace(re, `$1i=${to};`);
}

for (const [sealer, chain] of Object.entries(CHAINS)) {
  Deno.test(`verifyArcMessage() passes a three-hop chain sealed by ${sealer}, and every shorter one`, async () => {
    for (const drop of [0, 1, 2]) {
      const verdict = await verify(withoutTopSets(chain, drop));
      assert.equal(verdict.result, "pass", verdict.reason ?? "");
      assert.equal(verdict.instances, 3 - drop);
      assert.equal(verdict.oldestPass, 0);
      assert.deepEqual(verdict.sets.map((s) => s.seal.domain).slice(-1), [
        `hop${3 - drop}.example`,
      ]);
    }
  });

  Deno.test(`verifyArcMessage() fails a ${sealer} chain whose body, header, seal or instance order was changed`, async () => {
    const body = await verify(chain.replace("Noon at", "Nine at"));
    assert.equal(body.result, "fail");
    assert.equal(body.reason, "ARC-Message-Signature i=3 body hash did not verify");

    const header = await verify(chain.replace("Subject: Lunch", "Subject: Brunch"));
    assert.equal(header.result, "fail");
    assert.equal(header.reason, "ARC-Message-Signature i=3 signature did not verify");

    // A seal's signature bytes changed: the seal itself fails (seals are checked from N down,
    // and AS 3 covers AS 1 too, so the first to fail is 3).
    const sealed = chain.replace(
      /(ARC-Seal: i=1;[^]*?b=)([A-Za-z0-9])/,
      (_, pre, c) => pre + (c === "A" ? "B" : "A"),
    );
    assert.notEqual(sealed, chain);
    const seal = await verify(sealed);
    assert.equal(seal.result, "fail");
    assert.match(seal.reason!, /^ARC-Seal i=[13] did not verify$/);

    // Only the AAR of set 2 rewritten: AMS 3 does not cover it, but AS 2 and AS 3 do.
    const aar = await verify(chain.replace("i=2; mx.hop2.example", "i=2;  mx.hop2.example;x=1"));
    assert.equal(aar.result, "fail");
    assert.match(aar.reason!, /^ARC-Seal i=3 did not verify$/);

    // Instances 1 and 2 swapped between the AMSs: the structure holds, the seals do not.
    const swapped = renumber(
      renumber(renumber(chain, "ARC-Message-Signature", 1, 9), "ARC-Message-Signature", 2, 1),
      "ARC-Message-Signature",
      9,
      2,
    );
    const reordered = await verify(swapped);
    assert.equal(reordered.result, "fail");
    assert.match(reordered.reason!, /^ARC-Seal i=\d did not verify$/);
  });
}

Deno.test("verifyArcMessage() passes a chain a list changed after the first hop, with oldest-pass 2", async () => {
  const verdict = await verify(LIST);
  assert.equal(verdict.result, "pass", verdict.reason ?? "");
  assert.equal(verdict.instances, 2);
  assert.equal(verdict.oldestPass, 2);
});

Deno.test("verifyArcMessage() gives none to a message without ARC sets, asking no key", async () => {
  const resolver = new CountingResolver();
  const verdict = await verify(withoutTopSets(CHAINS.dkimpy, 3), resolver);
  assert.deepEqual({ result: verdict.result, instances: verdict.instances }, {
    result: "none",
    instances: 0,
  });
  assert.deepEqual(resolver.asked, []);
});

Deno.test("verifyArcMessage() fails a broken structure before asking any key", async () => {
  const chain = CHAINS.dkimpy;
  const aar2 = /^ARC-Authentication-Results: i=2;[^\n]*\n/m;
  const cases: { name: string; text: string; reason: RegExp }[] = [
    {
      name: "newest seal says cv=fail",
      text: chain.replace("i=3; cv=pass", "i=3; cv=fail"),
      reason: /^ARC-Seal i=3 says cv=fail$/,
    },
    {
      name: "cv=pass at i=1",
      text: chain.replace("i=1; cv=none", "i=1; cv=pass"),
      reason: /^ARC-Seal i=1 has cv=pass, not none$/,
    },
    {
      name: "cv=none above i=1",
      text: chain.replace("i=2; cv=pass", "i=2; cv=none"),
      reason: /^ARC-Seal i=2 has cv=none, not pass$/,
    },
    {
      name: "an AAR missing",
      text: chain.replace(aar2, ""),
      reason: /^ARC set 2 of 3 incomplete: no ARC-Authentication-Results$/,
    },
    {
      name: "an AAR twice",
      text: chain.replace(aar2, (m) => m + m),
      reason: /^more than one ARC-Authentication-Results with i=2$/,
    },
    {
      name: "a gap in the instances",
      text: renumber(
        renumber(
          renumber(chain, "ARC-Seal", 3, 4),
          "ARC-Message-Signature",
          3,
          4,
        ),
        "ARC-Authentication-Results",
        3,
        4,
      ),
      reason: /^ARC set 3 of 4 incomplete/,
    },
    {
      name: "instance 51",
      text: chain.replace("ARC-Seal: i=3;", "ARC-Seal: i=51;"),
      reason: /^ARC-Seal has an invalid instance i="51"$/,
    },
    {
      name: "an AMS signing ARC-Seal",
      text: chain.replace(/(ARC-Message-Signature: i=3;[^]*?h=)/, "$1arc-seal:"),
      reason: /^ARC-Message-Signature signs ARC-Seal/,
    },
    {
      name: "a seal with h=",
      text: chain.replace("ARC-Seal: i=2;", "ARC-Seal: i=2; h=from;"),
      reason: /^ARC-Seal has an h= tag/,
    },
    {
      name: "an AAR not starting with i=",
      text: chain.replace(
        "ARC-Authentication-Results: i=1;",
        "ARC-Authentication-Results: x; i=1;",
      ),
      reason: /^ARC-Authentication-Results does not start with i=N;$/,
    },
    {
      name: "more than 50 sets' worth of fields",
      text: "ARC-Seal: i=1; junk\r\n".repeat(151) + chain,
      reason: /^more than 50 ARC sets/,
    },
  ];
  for (const c of cases) {
    const resolver = new CountingResolver();
    const verdict = await verify(c.text, resolver);
    assert.equal(verdict.result, "fail", c.name);
    assert.match(verdict.reason!, c.reason, c.name);
    assert.deepEqual(resolver.asked, [], c.name);
  }
});

Deno.test("ArcVerifier fails on a key the resolver cannot give, saying whether it is temporary", async () => {
  const failing = (code: "timeout" | "nxdomain"): TxtResolver => ({
    resolveTxt: (name) => Promise.reject(new DnsError(code, name)),
  });
  for (const [code, temporary] of [["timeout", true], ["nxdomain", false]] as const) {
    const verdict = await verify(CHAINS["Mail::DKIM"], failing(code));
    assert.equal(verdict.result, "fail");
    assert.equal(verdict.temporary ?? false, temporary, code);
    assert.match(verdict.reason!, /^ARC-Message-Signature i=3 /);
  }
});

Deno.test("ArcVerifier gives the same verdict whatever the body chunking, and skips the body of an unsealed message", async () => {
  const bytes = fromLatin1(CHAINS.dkimpy);
  const { fields, bodyOffset } = splitMessage(bytes);
  const body = bytes.subarray(bodyOffset);
  for (let split = 0; split <= body.length; split += 3) {
    const v = new ArcVerifier({ resolver: keys });
    v.headers(fields);
    assert.equal(v.needsBody, true);
    v.body(body.subarray(0, split));
    v.body(body.subarray(split));
    assert.equal((await v.finish()).result, "pass", `split at ${split}`);
  }
  const plain = new ArcVerifier({ resolver: keys });
  plain.headers(splitMessage(fromLatin1(withoutTopSets(latin1(bytes), 3))).fields);
  assert.equal(plain.needsBody, false);
});

Deno.test("ArcVerifier refuses an RSA key below minimumKeyBits", async () => {
  const verdict = await verifyArcMessage(fromLatin1(CHAINS.dkimpy), {
    resolver: keys,
    minimumKeyBits: 3072,
  });
  assert.equal(verdict.result, "fail");
  assert.match(verdict.reason!, /key too small \(2048 bits, minimum 3072\)/);
});
