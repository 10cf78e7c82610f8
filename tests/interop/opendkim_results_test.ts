/**
 * Issue 18, what happens to mail whose signatures fail, compared with Debian's opendkim on the
 * same opendkim.conf and messages (through the milter, tests/helpers/opendkim_milter.ts):
 * RedirectFailuresTo, Quarantine, On-* quarantine with and without CaptureUnknownErrors, the
 * final Lua script's recipient and quarantine requests, and Diagnostics (z=). Departures are named and both sides
 * asserted.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import type { ClientMessage, MessageResult } from "../../lib/milter/client.ts";
import { loadKey, MESSAGE, signed, writeTestKeys } from "../helpers/dkim_fixtures.ts";
import { mtaMessage } from "../helpers/mta_message.ts";
import {
  HAVE_OPENDKIM,
  observe,
  observeBoth,
  type Observed,
  sendTo,
  startPair,
} from "../helpers/opendkim_milter.ts";

const KEY_FILE = new URL("../testdata/keys/rsa2048_pkcs8.pem", import.meta.url).pathname;

type Send = (m: ClientMessage) => Promise<{ opendkim: Observed; dkimd: Observed }>;

/** Runs `body` with opendkim and dkimd verifying with the test keys, plus `extra` lines. */
async function withPair(
  extra: (dir: string) => Promise<readonly string[]> | readonly string[],
  body: (send: Send) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-od18f-" });
  try {
    const keys = await writeTestKeys(dir);
    await Deno.writeTextFile(`${dir}/key_table`, `k example.com:rsa:${KEY_FILE}\n`);
    await Deno.writeTextFile(`${dir}/signing_table`, `*@example.com k\n`);
    const lines = [
      "Mode sv",
      `TestPublicKeys ${keys}`,
      `KeyTable ${dir}/key_table`,
      `SigningTable refile:${dir}/signing_table`,
      "RequireSafeKeys no",
      "Canonicalization relaxed/relaxed",
      ...(await extra(dir)),
    ];
    const pair = await startPair(dir, lines);
    try {
      await body((m) => observeBoth(pair, m));
    } finally {
      await pair.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** MESSAGE signed by example.com's `rsa` key. */
async function goodMessage(): Promise<Uint8Array> {
  const key = await loadKey("rsa2048_pkcs8.pem");
  return await signed(MESSAGE, [{
    domain: "example.com",
    selector: "rsa",
    key,
    canonicalization: ["relaxed", "relaxed"],
    signHeaders: ["From", "To", "Subject", "Date"],
  }], Math.floor(Date.now() / 1000));
}

/** The signed message with its body changed after signing: the signature fails. */
async function badMessage(): Promise<Uint8Array> {
  return fromLatin1(latin1(await goodMessage()).replace("Noon", "Nine"));
}

/** `bytes` from an outside client, to two recipients (one spelled with capitals). */
const inbound = (bytes: Uint8Array, qid = "IN1"): ClientMessage => ({
  ...mtaMessage(bytes, { qid, address: "192.0.2.7", hostname: "mx.example.net" }),
  rcpts: ["<Bob@example.org>", "<carol@example.org>"],
});

const has = (o: Observed, change: string) => o.changes.includes(change);

Deno.test({
  name:
    "RedirectFailuresTo: a failed signature's recipients are replaced by the address and recorded in Original-Recipient fields, alike in both",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair(() => ["RedirectFailuresTo failures@example.com"], async (send) => {
      const bad = await send(inbound(await badMessage()));
      assert.deepEqual(bad.dkimd, bad.opendkim);
      assert.equal(bad.dkimd.final, "accept");
      const redirect = bad.dkimd.changes.filter((c) => !c.startsWith("insheader"));
      assert.deepEqual(redirect, [
        // The last recipient first, as OpenDKIM keeps them.
        "delrcpt carol@example.org",
        "addheader Original-Recipient: rfc822;carol@example.org",
        "delrcpt Bob@example.org",
        "addheader Original-Recipient: rfc822;Bob@example.org",
        "addrcpt failures@example.com",
      ]);
      // A good signature, or none, keeps its recipients in both.
      for (const m of [await goodMessage(), MESSAGE]) {
        const r = await send(inbound(m, "IN2"));
        assert.deepEqual(r.dkimd, r.opendkim);
        assert.ok(!r.dkimd.changes.some((c) => /rcpt/.test(c)), r.dkimd.changes.join("\n"));
      }
    });
  },
});

Deno.test({
  name:
    "On-BadSignature quarantine: with CaptureUnknownErrors both quarantine and accept; departure: without it OpenDKIM cannot (the MTA was not asked) and accepts, dkimd quarantines",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair(
      () => ["On-BadSignature quarantine", "CaptureUnknownErrors yes"],
      async (send) => {
        const r = await send(inbound(await badMessage()));
        assert.deepEqual(r.dkimd, r.opendkim);
        assert.equal(r.dkimd.final, "accept");
        assert.ok(has(r.dkimd, "quarantine"));
      },
    );
    await withPair(() => ["On-BadSignature quarantine"], async (send) => {
      const r = await send(inbound(await badMessage()));
      assert.equal(r.opendkim.final, "accept");
      assert.ok(!has(r.opendkim, "quarantine"));
      assert.equal(r.dkimd.final, "accept");
      assert.ok(has(r.dkimd, "quarantine"));
      // Everything else is the same.
      assert.deepEqual(r.dkimd.changes.filter((c) => c !== "quarantine"), r.opendkim.changes);
    });
  },
});

Deno.test({
  name:
    "Quarantine departure: Debian's OpenDKIM 2.11 reads it and does nothing; dkimd quarantines mail whose signature fails, as opendkim.conf(5) says",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair(() => ["Quarantine yes"], async (send) => {
      const bad = await send(inbound(await badMessage()));
      assert.ok(!has(bad.opendkim, "quarantine"));
      assert.ok(has(bad.dkimd, "quarantine"));
      assert.deepEqual(bad.dkimd.changes.filter((c) => c !== "quarantine"), bad.opendkim.changes);
      assert.equal(bad.dkimd.final, bad.opendkim.final);
      const good = await send(inbound(await goodMessage(), "IN2"));
      assert.deepEqual(good.dkimd, good.opendkim);
      assert.ok(!has(good.dkimd, "quarantine"));
    });
  },
});

const FINAL_SCRIPT = `
odkim.add_rcpt(ctx, "archive@example.com")
odkim.del_rcpt(ctx, "carol@example.org")
odkim.quarantine(ctx, "looked at by the final script")
`;

Deno.test({
  name:
    "FinalPolicyScript add_rcpt/del_rcpt/quarantine: carried out by both when the settings let OpenDKIM (RedirectFailuresTo, CaptureUnknownErrors); departure: dkimd also without them",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    const script = async (dir: string) => {
      await Deno.writeTextFile(`${dir}/final.lua`, FINAL_SCRIPT);
      return [`FinalPolicyScript ${dir}/final.lua`];
    };
    const wanted = [
      "delrcpt carol@example.org",
      "addheader Original-Recipient: rfc822;carol@example.org",
      "addrcpt archive@example.com",
      "quarantine",
    ];
    const sorted = (o: Observed) => o.changes.filter((c) => !/^insheader/.test(c)).sort();
    await withPair(async (dir) => [
      ...(await script(dir)),
      "RedirectFailuresTo failures@example.com",
      "CaptureUnknownErrors yes",
    ], async (send) => {
      const r = await send(inbound(await goodMessage()));
      assert.equal(r.dkimd.final, r.opendkim.final);
      // OpenDKIM sends each change as the script calls for it, and adds the del_rcpt field
      // (SMFIR_ADDHEADER) where dkimd inserts it at the top: the same changes, in another order.
      const headers = (o: Observed) => o.changes.filter((c) => /^insheader/.test(c));
      assert.deepEqual(
        headers(r.dkimd).filter((c) => !/Original-Recipient/.test(c)),
        headers(r.opendkim),
      );
      assert.deepEqual(
        sorted(r.opendkim),
        [...wanted].sort(),
      );
      assert.deepEqual(
        sorted(r.dkimd).concat(headers(r.dkimd).filter((c) => /Original-Recipient/.test(c))).map((
          c,
        ) => c.replace(/^insheader 1 /, "addheader ")).sort(),
        [...wanted].sort(),
      );
    });
    await withPair(script, async (send) => {
      const r = await send(inbound(await goodMessage()));
      // OpenDKIM: smfi_addrcpt/delrcpt/quarantine fail, not negotiated: nothing is changed.
      assert.deepEqual(sorted(r.opendkim), []);
      assert.ok(sorted(r.dkimd).includes("addrcpt archive@example.com"));
      assert.ok(sorted(r.dkimd).includes("delrcpt carol@example.org"));
      assert.ok(sorted(r.dkimd).includes("quarantine"));
    });
  },
});

/** `bytes` from 127.0.0.1 (signed). */
const outbound = (bytes: Uint8Array): ClientMessage =>
  mtaMessage(bytes, { qid: "OUT1", address: "127.0.0.1" });

/** The z= value of the one DKIM-Signature a milter inserted, unfolded. */
function zOf(result: MessageResult): string | undefined {
  const sig = result.modifications.find((m) =>
    m.type === "insheader" && m.name === "DKIM-Signature"
  );
  if (sig?.type !== "insheader") return undefined;
  const value = typeof sig.value === "string" ? sig.value : latin1(sig.value);
  return /\bz=([^;]*)/.exec(value)?.[1].replace(/\s+/g, "");
}

Deno.test({
  name:
    "Diagnostics: both add z= with the signed fields; departure: dkimd encodes | as =7C (RFC 6376 §3.5), OpenDKIM leaves it bare",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "dkimd-od18z-" });
    try {
      const keys = await writeTestKeys(dir);
      const lines = [
        "Mode sv",
        `TestPublicKeys ${keys}`,
        `KeyTable csl:k=example.com:rsa:${KEY_FILE}`,
        "SigningTable refile:csl:*@example.com=k",
        "RequireSafeKeys no",
        "Canonicalization relaxed/relaxed",
        "SignHeaders From,To,Subject",
        "OversignHeaders From",
        "Diagnostics yes",
      ];
      const pair = await startPair(dir, lines).catch(async () => {
        // Older readers may not take csl: for these; fall back to files.
        await Deno.writeTextFile(`${dir}/key_table`, `k example.com:rsa:${KEY_FILE}\n`);
        await Deno.writeTextFile(`${dir}/signing_table`, `*@example.com k\n`);
        return await startPair(dir, [
          ...lines.filter((l) => !/^(KeyTable|SigningTable)/.test(l)),
          `KeyTable ${dir}/key_table`,
          `SigningTable refile:${dir}/signing_table`,
        ]);
      });
      try {
        const message = fromLatin1(
          latin1(MESSAGE).replace("Subject: Lunch  tomorrow?", "Subject: a|b"),
        );
        const [od, dk] = await Promise.all([
          sendTo(pair.opendkim.port, outbound(message)),
          sendTo(pair.dkimd.port, outbound(message)),
        ]);
        assert.deepEqual(observe(dk), observe(od));
        assert.match(observe(dk).changes.join("\n"), /DKIM-Signature: .* z$/m);
        assert.equal(
          zOf(dk),
          "From:=20Alice=20<alice@example.com>|To:=20Bob=20<bob@example.org>|Subject:=20a=7Cb",
        );
        // OpenDKIM's dkim_qp_encode() lets | through, so its copies cannot be told apart.
        assert.match(zOf(od) ?? "", /Subject:=20a\|b/);
      } finally {
        await pair.stop();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
