/**
 * The ARC interop matrix of issue 17: chains of 1 to 5 sets built alternately by dkimd
 * (`sealMessage`), dkimpy (`dkim.arc_sign`) and Mail::DKIM::ARC::Signer, in every rotation of
 * the three, each sealer judging the chain it receives with its own verifier first; every
 * chain, at every length, verified by all three (dkimd's `verifyArcMessage`, dkimpy's
 * `arc_verify`, Mail::DKIM::ARC::Verifier) as pass, and with a tampered body, header, seal or
 * reordered instances as fail. Keys are served by knot (tests/helpers/dns_server.ts) on
 * loopback, to all three. RSA only: Mail::DKIM has no Ed25519 and dkimpy's ARC refuses it.
 *
 * The peers run once per chain step (sealing) and once per verifier for all messages, so the
 * whole matrix costs a dozen processes.
 */
import assert from "node:assert/strict";
import { concat, CRLF, fromLatin1, latin1 } from "../../lib/bytes.ts";
import { sealMessage } from "../../lib/arc/seal.ts";
import { verifyArcMessage } from "../../lib/arc/verify.ts";
import { importPrivateKey } from "../../lib/crypto/private_key.ts";
import { parseNameserverList } from "../../lib/dns/nameserver.ts";
import { StubResolver } from "../../lib/dns/stub.ts";
import {
  type ArcPeer,
  type ArcPeerKeys,
  arcSealWithPeer,
  arcVerifyWithPeer,
} from "../helpers/arc_peers.ts";
import { startDnsServer } from "../helpers/dns_server.ts";
import { generateTestKey, type TestKey } from "../helpers/peers.ts";

type Sealer = "dkimd" | ArcPeer;
const SEALERS: readonly Sealer[] = ["dkimd", "dkimpy", "Mail::DKIM"];
const ROTATIONS: readonly Sealer[][] = SEALERS.map((_, r) => [
  ...SEALERS.slice(r),
  ...SEALERS.slice(0, r),
]);
const LONGEST = 5;
const ZONE = "arc.example";
const SELECTOR = "seal";
/** Each sealer seals as its own domain with its own key. */
const DOMAIN: Readonly<Record<Sealer, string>> = {
  dkimd: `dkimd.${ZONE}`,
  dkimpy: `dkimpy.${ZONE}`,
  "Mail::DKIM": `maildkim.${ZONE}`,
};

const MESSAGE = fromLatin1(
  "From: Carol <carol@origin.example>\r\nTo: team@lists.example\r\n" +
    "Subject: Quarterly figures\r\nDate: Wed, 10 Jan 2024 08:15:00 +0000\r\n" +
    "Message-ID: <q1-figures@origin.example>\r\n\r\n" +
    "The figures are in the shared folder.\r\n\r\n-- \r\nCarol\r\n",
);

const ARC_FIELD = "ARC-(?:Seal|Message-Signature|Authentication-Results)";

/** The message's fields with instance `from` renumbered `to` (the i= that opens each value). */
function renumber(text: string, from: number | string, to: number | string): string {
  return text.replace(
    new RegExp(`^(${ARC_FIELD}:[ \\t]*)i=${from};`, "gim"),
    (_, head) => `${head}i=${to};`,
  );
}

/** A character of the b= of the ARC-Seal `instance` changed. */
function breakSeal(text: string, instance: number): string {
  const m = new RegExp(`^ARC-Seal:[ \\t]*i=${instance};(?:[^\\n]|\\n[ \\t])*?\\bb=\\s*`, "im")
    .exec(text);
  assert.ok(m, `no ARC-Seal i=${instance}`);
  const at = m.index + m[0].length;
  return text.slice(0, at) + (text[at] === "A" ? "B" : "A") + text.slice(at + 1);
}

/** The tampered forms of a chain of `n` sets; every one must fail. */
function tamperings(chain: string, n: number): Record<string, string> {
  const out: Record<string, string> = {
    body: chain.replace("shared folder", "public folder"),
    header: chain.replace("Subject: Quarterly figures", "Subject: Quarterly invoice"),
    "newest seal": breakSeal(chain, n),
    // One set: renumbered 2, so set 1 is missing. More: the two newest swap instances.
    reordered: n === 1
      ? renumber(chain, 1, 2)
      : renumber(renumber(renumber(chain, n, "X"), n - 1, n), "X", n - 1),
  };
  if (n > 1) out["oldest seal"] = breakSeal(chain, 1);
  for (const [what, text] of Object.entries(out)) {
    assert.notEqual(text, chain, `${what}: the tampering changed nothing`);
  }
  return out;
}

Deno.test("ARC chains of 1 to 5 sets built alternately by dkimd, dkimpy and Mail::DKIM pass in all three, and fail in all three when tampered", async () => {
  const keys = new Map<Sealer, TestKey>();
  await Promise.all(SEALERS.map(async (s) => keys.set(s, await generateTestKey("rsa-sha256"))));
  const server = await startDnsServer({
    zone: ZONE,
    records: Object.fromEntries(
      SEALERS.map((s) => [`${SELECTOR}._domainkey.${DOMAIN[s]}`, [keys.get(s)!.record]]),
    ),
  });
  try {
    const source: ArcPeerKeys = { nameserver: server.nameserver };
    const resolver = new StubResolver({ nameservers: parseNameserverList(server.nameserver) });
    const dkimdKey = await importPrivateKey(keys.get("dkimd")!.privatePem);

    /**
     * Hop `n`, by `sealer`: it verifies what it got, writes its A-R, and seals with that cv=.
     * Each hop has its own authserv-id, as each host of a site has: a sealer that appears twice
     * in a chain must not read the A-R its earlier hop left (dkimpy's arc_sign takes cv= from
     * every A-R of its authserv-id, and an old arc=none among them makes it seal cv=fail).
     */
    const hop = async (sealer: Sealer, n: number, message: Uint8Array): Promise<Uint8Array> => {
      const authservId = `mx${n}.${DOMAIN[sealer]}`;
      if (sealer !== "dkimd") {
        return await arcSealWithPeer(sealer, message, [{
          domain: DOMAIN[sealer],
          selector: SELECTOR,
          key: keys.get(sealer)!.privatePem,
          authservId,
        }], source);
      }
      const verdict = await verifyArcMessage(message, { resolver });
      const cv = verdict.result;
      const withAr = concat([
        fromLatin1(`Authentication-Results: ${authservId}; arc=${cv}\r\n`),
        message,
      ]);
      const set = await sealMessage(withAr, {
        domain: DOMAIN.dkimd,
        selector: SELECTOR,
        key: dkimdKey,
        authservId,
        results: `arc=${cv}`,
        cv,
      });
      return concat([...set.flatMap((f) => [f.raw, CRLF]), withAr]);
    };

    // chains[r][n - 1]: rotation r's chain of n sets.
    const chains = await Promise.all(ROTATIONS.map(async (rotation) => {
      const built: string[] = [];
      let message = MESSAGE;
      for (let n = 1; n <= LONGEST; n++) {
        const sealer = rotation[(n - 1) % rotation.length];
        message = await hop(sealer, n, message);
        const text = latin1(message);
        // Each sealer found the chain it was given valid: none for the first set, then pass.
        const cv = n === 1 ? "none" : "pass";
        assert.match(
          text,
          new RegExp(`^ARC-Seal:(?:[^\\n]|\\n[ \\t])*?\\bcv=${cv};`, "i"),
          `${rotation.join(" → ")}: set ${n} by ${sealer} says cv=${cv} on top`,
        );
        assert.match(text, new RegExp(`^ARC-Seal:[ \\t]*i=${n};`, "i"));
        built.push(text);
      }
      return built;
    }));

    interface Case {
      readonly label: string;
      readonly text: string;
      readonly want: "pass" | "fail";
    }
    const cases: Case[] = [];
    for (const [r, built] of chains.entries()) {
      for (const [i, chain] of built.entries()) {
        const n = i + 1;
        const label = `${ROTATIONS[r].slice(0, Math.min(n, 3)).join(" → ")}, ${n} sets`;
        cases.push({ label, text: chain, want: "pass" });
        for (const [what, text] of Object.entries(tamperings(chain, n))) {
          cases.push({ label: `${label}, ${what}`, text, want: "fail" });
        }
      }
    }
    const messages = cases.map((c) => fromLatin1(c.text));
    const [byDkimd, byDkimpy, byMailDkim] = await Promise.all([
      Promise.all(messages.map(async (m) => {
        const v = await verifyArcMessage(m, { resolver });
        return { result: v.result, detail: v.reason ?? "" };
      })),
      arcVerifyWithPeer("dkimpy", messages, source),
      arcVerifyWithPeer("Mail::DKIM", messages, source),
    ]);
    const wrong: string[] = [];
    for (const [i, c] of cases.entries()) {
      for (
        const [verifier, v] of [
          ["dkimd", byDkimd[i]],
          ["dkimpy", byDkimpy[i]],
          ["Mail::DKIM", byMailDkim[i]],
        ] as const
      ) {
        if (v.result !== c.want) {
          wrong.push(`${c.label}: ${verifier} says ${v.result} (${v.detail}), want ${c.want}`);
        }
      }
    }
    assert.deepEqual(wrong, [], `${wrong.length} of ${cases.length * 3} verdicts wrong`);
    // 3 rotations: a chain of 1 with 4 tamperings, of 2 to 5 with 5.
    assert.equal(cases.length, 3 * (1 + 4 + 4 * (1 + 5)));
  } finally {
    await server.close();
  }
});
