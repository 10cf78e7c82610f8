/**
 * ARC interop: chains of one to three hops sealed live by dkimpy (dkim.arc_sign, python3-dkim
 * with python3-authres) and by Mail::DKIM::ARC::Signer (libmail-dkim-perl), with fresh RSA keys
 * (neither seals with Ed25519: dkimpy's ARC refuses it, Mail::DKIM 1.20230212 lacks it), verify
 * as pass in dkimd, from its library and from `dkimd arc verify --test-keys`; tampered bodies,
 * headers, seals and reordered instances fail.
 */
import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { verifyArcMessage } from "../../lib/arc/verify.ts";
import { parseKeyFile } from "../../lib/dns/key_file.ts";
import { KeyFileResolver } from "../../lib/dns/key_file.ts";
import { ARC_PEERS, type ArcPeer, arcSealWithPeer } from "../helpers/arc_peers.ts";
import { generateTestKey } from "../helpers/peers.ts";
import { runCli } from "../helpers/run_cli.ts";

const MESSAGE = "From: Bob <bob@sender.example>\r\nTo: list@lists.example\r\n" +
  "Subject: Minutes\r\nDate: Tue, 9 Jan 2024 09:30:00 +0000\r\n" +
  "Message-ID: <minutes-7@sender.example>\r\n\r\nAttached are the minutes.\r\n";

const hopKeys = await Promise.all([1, 2, 3].map(() => generateTestKey("rsa-sha256", 2048)));
const records: Record<string, string> = Object.fromEntries(
  hopKeys.map((k, i) => [`s${i + 1}._domainkey.hop${i + 1}.example`, k.record]),
);
const keyFileText = Object.entries(records).map(([n, r]) => `${n} ${r}\n`).join("");
const resolver = new KeyFileResolver(parseKeyFile(keyFileText));

/** Seals `MESSAGE` with `hops` ARC sets by the named peer, keys from `records`. */
async function seal(peer: ArcPeer, hops: number): Promise<string> {
  const sealed = await arcSealWithPeer(
    peer,
    fromLatin1(MESSAGE),
    hopKeys.slice(0, hops).map((k, i) => ({
      domain: `hop${i + 1}.example`,
      selector: `s${i + 1}`,
      key: k.privatePem,
      authservId: `mx.hop${i + 1}.example`,
    })),
    { records },
  );
  return latin1(sealed);
}

const verify = (text: string) => verifyArcMessage(fromLatin1(text), { resolver });

for (const peer of ARC_PEERS) {
  Deno.test(`dkimd verifies ARC chains of 1 to 3 hops sealed by ${peer}, and fails them tampered`, async () => {
    for (const hops of [1, 2, 3]) {
      const chain = await seal(peer, hops);
      const verdict = await verify(chain);
      assert.equal(verdict.result, "pass", `${hops} hops: ${verdict.reason}`);
      assert.equal(verdict.instances, hops);
      assert.equal(verdict.oldestPass, 0);

      const tampered: Record<string, string> = {
        body: chain.replace("the minutes", "the invoice"),
        header: chain.replace("Subject: Minutes", "Subject: Invoice"),
        seal: chain.replace(
          /(ARC-Seal: i=1;[^]*?b=)([A-Za-z0-9])/,
          (_, pre, c) => pre + (c === "A" ? "B" : "A"),
        ),
        // The newest set renumbered one above itself: a gap (or, for one hop, no set 1).
        reordered: chain.replace(/^ARC-Seal: i=(\d+);/m, (_, n) => `ARC-Seal: i=${+n + 1};`),
      };
      if (hops >= 2) {
        // Instances 1 and 2 of the AMSs swapped: the structure holds, the seals do not.
        tampered.swapped = chain
          .replace(/^(ARC-Message-Signature: )i=1;/m, "$1i=X;")
          .replace(/^(ARC-Message-Signature: )i=2;/m, "$1i=1;")
          .replace(/^(ARC-Message-Signature: )i=X;/m, "$1i=2;");
      }
      for (const [what, text] of Object.entries(tampered)) {
        assert.notEqual(text, chain, `${what} changed nothing`);
        const bad = await verify(text);
        assert.equal(bad.result, "fail", `${hops} hops, ${what}`);
      }
    }
  });
}

Deno.test("dkimd arc verify --test-keys passes a dkimpy chain and fails it tampered", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-arc-" });
  try {
    const keys = `${dir}/keys.txt`;
    await Deno.writeTextFile(keys, keyFileText);
    const chain = await seal("dkimpy", 2);
    const good = await runCli(["arc", "verify", "--test-keys", keys], { stdin: fromLatin1(chain) });
    assert.equal(good.code, 0, good.stderr);
    assert.equal(good.text, "arc=pass header.oldest-pass=0\n");
    const bad = await runCli(["arc", "verify", "--json", "--test-keys", keys], {
      stdin: fromLatin1(chain.replace("Subject: Minutes", "Subject: Invoice")),
    });
    assert.equal(bad.code, 1);
    assert.equal(JSON.parse(bad.text).result, "fail");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
