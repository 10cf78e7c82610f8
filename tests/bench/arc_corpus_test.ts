/**
 * The ARC cell's corpus and reply check: the chain built at bench start verifies as `pass` with
 * the published keys, and the load client accepts a reply only with the `i=3; cv=pass` seal a
 * third sealer adds to it.
 */
import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { sealMessage } from "../../lib/arc/seal.ts";
import { verifyArcMessage } from "../../lib/arc/verify.ts";
import { verifyMessage } from "../../lib/dkim/verify.ts";
import { KeyFileResolver } from "../../lib/dns/key_file.ts";
import { addArcChain } from "../../bench/arc_corpus.ts";
import { generateMessage } from "../../bench/corpus.ts";
import { checkReply } from "../../bench/load_client.ts";
import type { MessageResult } from "../../lib/milter/client.ts";
import { edKey, recordFor, rsaKey, signed } from "../helpers/dkim_fixtures.ts";

const DOMAIN = "example.com";

Deno.test("addArcChain() seals a 2-set chain that verifies, and checkReply('arc') wants i=3 cv=pass", async () => {
  const [dkimKey, arcKey] = [await rsaKey(), await edKey()];
  const resolver = new KeyFileResolver(
    new Map([
      [`rsa._domainkey.${DOMAIN}`, [recordFor(dkimKey)]],
      [`arc1._domainkey.${DOMAIN}`, [recordFor(arcKey)]],
      [`arc2._domainkey.${DOMAIN}`, [recordFor(arcKey)]],
    ]),
  );
  const message = await signed(generateMessage(2048, 7), [{
    domain: DOMAIN,
    selector: "rsa",
    key: dkimKey,
  }], Math.floor(Date.now() / 1000));
  const hops = ["arc1", "arc2"].map((selector) => ({ domain: DOMAIN, selector, key: arcKey }));
  const chained = await addArcChain(message, hops, DOMAIN);

  const verdict = await verifyArcMessage(chained, { resolver });
  assert.equal(verdict.result, "pass", String(verdict.reason));
  assert.equal(verdict.instances, 2);
  const dkim = await verifyMessage(chained, { resolver });
  assert.ok(dkim.some((r) => r.result === "pass"), JSON.stringify(dkim));

  // The reply of a third hop that verified and sealed, as dkimd with ARCMode sv gives it.
  const [seal] = await sealMessage(chained, {
    domain: DOMAIN,
    selector: "arc3",
    key: arcKey,
    authservId: "mx.example.com",
    results: "dkim=pass; arc=pass",
    cv: "pass",
  });
  const reply = (sealField: Uint8Array | undefined, ar: string): MessageResult => ({
    modifications: [
      { type: "insheader", index: 0, name: "Authentication-Results", value: fromLatin1(ar) },
      ...(sealField
        ? [{
          type: "insheader" as const,
          index: 0,
          name: "ARC-Seal",
          value: sealField.subarray("ARC-Seal:".length),
        }]
        : []),
    ],
    final: { type: "accept" },
    replies: [],
  });
  const good = " mx.example.com; dkim=pass header.d=example.com; arc=pass";
  assert.equal(checkReply("arc", reply(seal.raw, good)), undefined);
  assert.match(checkReply("arc", reply(undefined, good)) ?? "", /no ARC-Seal/);
  assert.match(
    checkReply("arc", reply(seal.raw, " mx.example.com; dkim=pass; arc=fail")) ?? "",
    /arc=pass/,
  );
  const second = latin1(seal.raw).replace("i=3;", "i=2;");
  assert.match(checkReply("arc", reply(fromLatin1(second), good)) ?? "", /not i=3/);
  const failed = latin1(seal.raw).replace("cv=pass;", "cv=fail;");
  assert.match(checkReply("arc", reply(fromLatin1(failed), good)) ?? "", /cv=pass/);
  // Plain verification does not ask for ARC.
  assert.equal(checkReply("verify", reply(undefined, good)), undefined);
});
