/**
 * Issue 18, which signatures are verified and how signing treats the message, compared with
 * Debian's opendkim on the same opendkim.conf and messages (through the milter,
 * tests/helpers/opendkim_milter.ts): TrustSignaturesFrom with MaximumSignaturesToVerify,
 * ReplaceHeaders and ReplaceRules, BodyLengthDB, StrictHeaders. Departures are named and both
 * sides asserted.
 *
 * @module
 */
import assert from "node:assert/strict";
import { concat, fromLatin1, latin1 } from "../../lib/bytes.ts";
import type { ClientMessage, MessageResult } from "../../lib/milter/client.ts";
import type { SignOptions } from "../../lib/dkim/sign.ts";
import { verifyMessage } from "../../lib/dkim/verify.ts";
import { loadKey, MESSAGE, recordFor, signed, writeTestKeys } from "../helpers/dkim_fixtures.ts";
import { mtaMessage } from "../helpers/mta_message.ts";
import {
  HAVE_OPENDKIM,
  observeBoth,
  type Observed,
  sendTo,
  startPair,
} from "../helpers/opendkim_milter.ts";

const KEY_FILE = new URL("../testdata/keys/rsa2048_pkcs8.pem", import.meta.url).pathname;
/** The domains whose `rsa` selector publishes the test key, besides example.com. */
const OTHER_DOMAINS = ["example.net", "example.org"];

type Send = (m: ClientMessage) => Promise<{ opendkim: Observed; dkimd: Observed }>;

/** Runs `body` with opendkim and dkimd signing example.com, plus `extra` lines. */
async function withPair(
  extra: (dir: string) => Promise<readonly string[]> | readonly string[],
  body: (send: Send) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-od18s-" });
  try {
    const keys = await writeTestKeys(dir);
    const rsa = (await Deno.readTextFile(keys)).split("\n")
      .find((l) => l.startsWith("rsa._domainkey.example.com "))!;
    await Deno.writeTextFile(
      keys,
      OTHER_DOMAINS.map((d) => rsa.replace("example.com", d) + "\n").join(""),
      { append: true },
    );
    await Deno.writeTextFile(`${dir}/key_table`, `k example.com:rsa:${KEY_FILE}\n`);
    await Deno.writeTextFile(`${dir}/signing_table`, `*@example.com k\n`);
    const lines = [
      "Mode sv",
      `TestPublicKeys ${keys}`,
      `KeyTable ${dir}/key_table`,
      `SigningTable refile:${dir}/signing_table`,
      "RequireSafeKeys no",
      "Canonicalization relaxed/relaxed",
      "SignHeaders From,To,Subject,Date",
      "OversignHeaders From",
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

/** `bytes` from an outside client (verified). */
const inbound = (bytes: Uint8Array, qid = "IN1"): ClientMessage =>
  mtaMessage(bytes, { qid, address: "192.0.2.7", hostname: "mx.example.net" });

/** `bytes` from 127.0.0.1 (signed), to `rcpts`. */
const outbound = (
  bytes: Uint8Array,
  rcpts = ["<bob@example.org>"],
  qid = "OUT1",
): ClientMessage => ({
  ...mtaMessage(bytes, { qid, address: "127.0.0.1" }),
  rcpts,
});

/** `message` signed by each of `domains` (selector `rsa`, the test key), the first on top. */
async function signedBy(message: Uint8Array, domains: readonly string[]): Promise<Uint8Array> {
  const key = await loadKey("rsa2048_pkcs8.pem");
  const options: SignOptions[] = domains.map((domain) => ({
    domain,
    selector: "rsa",
    key,
    canonicalization: ["relaxed", "relaxed"],
    signHeaders: ["From", "To", "Subject", "Date"],
  }));
  return await signed(message, options, Math.floor(Date.now() / 1000));
}

/** MESSAGE with its From changed to `from`. */
const fromAuthor = (from: string) =>
  fromLatin1(latin1(MESSAGE).replace("Alice <alice@example.com>", from));

/** The header.d of each dkim result the observation's Authentication-Results gives. */
function verifiedDomains(o: Observed): string[] {
  const ar = o.changes.find((c) => c.includes("Authentication-Results:")) ?? "";
  return [...ar.matchAll(/dkim=(\w+) header\.d=(\S+)/g)].map((m) => `${m[2]}:${m[1]}`);
}

/**
 * The signatures each verified (`d=:result`), leaving out OpenDKIM's dkim=neutral for those its
 * prescreen ignored: dkimd leaves an ignored signature out of Authentication-Results.
 */
function verifiedBoth(r: { opendkim: Observed; dkimd: Observed }) {
  return {
    opendkim: verifiedDomains(r.opendkim).filter((v) => !v.endsWith(":neutral")),
    dkimd: verifiedDomains(r.dkimd),
  };
}

Deno.test({
  name:
    "TrustSignaturesFrom: trusted signatures are verified beside MaximumSignaturesToVerify's count, in both; with 0, only first-party and trusted ones",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    // Signed, top down, by example.net, example.org, example.com; From a third party, then
    // from example.net (whose signature is then first-party).
    const third = await signedBy(fromAuthor("Al <al@other.example>"), [
      "example.net",
      "example.org",
      "example.com",
    ]);
    const net = await signedBy(fromAuthor("Al <al@example.net>"), [
      "example.net",
      "example.org",
      "example.com",
    ]);
    const cases: [string[], string[], string[]][] = [
      // [lines, what is verified of `third`, of `net`]
      [["MaximumSignaturesToVerify 1"], ["example.net:pass"], ["example.net:pass"]],
      [["MaximumSignaturesToVerify 1", "TrustSignaturesFrom example.com"], [
        "example.com:pass",
      ], ["example.com:pass"]],
      [["MaximumSignaturesToVerify 2", "TrustSignaturesFrom example.com"], [
        "example.net:pass",
        "example.com:pass",
      ], ["example.net:pass", "example.com:pass"]],
      [["MaximumSignaturesToVerify 1", "TrustSignaturesFrom example.com,example.org"], [
        "example.org:pass",
        "example.com:pass",
      ], ["example.org:pass", "example.com:pass"]],
      [["MaximumSignaturesToVerify 0"], [], ["example.net:pass"]],
      [["MaximumSignaturesToVerify 0", "TrustSignaturesFrom example.com"], ["example.com:pass"], [
        "example.net:pass",
        "example.com:pass",
      ]],
    ];
    for (const [lines, wantThird, wantNet] of cases) {
      await withPair(() => lines, async (send) => {
        for (const [m, want] of [[third, wantThird], [net, wantNet]] as const) {
          const r = await send(inbound(m));
          assert.deepEqual(r.dkimd.final, r.opendkim.final, lines.join(", "));
          const both = verifiedBoth(r);
          assert.deepEqual(both.dkimd, both.opendkim, lines.join(", "));
          assert.deepEqual(both.dkimd, want, lines.join(", "));
          // Every signature is reported by OpenDKIM, the ignored ones as neutral; dkimd names
          // only those it verified (the departure). With none verified, neither adds a field.
          if (want.length === 0) assert.deepEqual(r.dkimd, r.opendkim);
          else assert.equal(verifiedDomains(r.opendkim).length, 3);
        }
      });
    }
  },
});

Deno.test({
  name:
    "BodyLengthDB: mail to a listed recipient (address, *@domain, user@.parent, *) is signed with l= in both; other mail without",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    const lines = [
      "BodyLengthDB list@lists.example.org,*@footer.example,bob@.example.net,*@.example.info",
    ];
    await withPair(() => lines, async (send) => {
      const cases: [string[], boolean][] = [
        [["<list@lists.example.org>"], true],
        [["<List@Lists.Example.org>"], true],
        [["<anyone@footer.example>"], true],
        [["<bob@mx.example.net>"], true],
        [["<al@mx.example.net>"], false],
        [["<al@deep.sub.example.info>"], true],
        [["<bob@example.org>", "<list@lists.example.org>"], true],
        [["<bob@example.org>"], false],
      ];
      for (const [rcpts, lTag] of cases) {
        const r = await send(outbound(MESSAGE, rcpts));
        assert.deepEqual(r.dkimd, r.opendkim, rcpts.join(" "));
        const signature = r.dkimd.changes.find((c) => c.includes("DKIM-Signature:")) ?? "";
        assert.equal(/ l=\d+/.test(signature), lTag, `${rcpts.join(" ")}: ${signature}`);
      }
    });
    // "*" lists every recipient.
    await withPair(() => ["BodyLengthDB *"], async (send) => {
      const r = await send(outbound(MESSAGE));
      assert.deepEqual(r.dkimd, r.opendkim);
      assert.match(r.dkimd.changes.join("\n"), / l=\d+/);
    });
  },
});

/** The DKIM-Signature a milter added, whole (name and value), or undefined. */
function addedSignature(result: MessageResult): Uint8Array | undefined {
  for (const m of result.modifications) {
    if (m.type === "insheader" && m.name === "DKIM-Signature") {
      const value = typeof m.value === "string" ? m.value : latin1(m.value);
      return fromLatin1(`DKIM-Signature:${value.replace(/\r?\n/g, "\r\n")}\r\n`);
    }
  }
  return undefined;
}

/** Whether `signature` on top of `message` verifies with the test key. */
async function verifies(signature: Uint8Array, message: Uint8Array): Promise<boolean> {
  const key = await loadKey("rsa2048_pkcs8.pem");
  const resolver = { resolveTxt: () => Promise.resolve([recordFor(key)]) };
  const [v] = await verifyMessage(concat([signature, message]), { resolver });
  return v?.result === "pass";
}

Deno.test({
  name:
    "ReplaceRules: header values are rewritten before signing (the sender and the signature see the result) and the message is left as it is, in both; ReplaceHeaders limits the fields",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    const original = fromAuthor("Alice <alice@host.example.com>");
    const rewritten = fromAuthor("Alice <alice@example.com>");
    const rules = (dir: string) => {
      const file = `${dir}/replace_rules`;
      Deno.writeTextFileSync(
        file,
        "# masquerading, as the MTA will do it after signing\n" +
          "@host\\.example\\.com\t@example.com\n\n" +
          "# applied first: the last line comes first\n" +
          "Lunch  tomorrow\tLunch today\n",
      );
      return file;
    };
    await withPair((dir) => [`ReplaceRules ${rules(dir)}`], async (send) => {
      const r = await send(outbound(original));
      assert.deepEqual(r.dkimd, r.opendkim);
      assert.match(r.dkimd.changes.join("\n"), /^insheader 0 DKIM-Signature: d=example\.com/);
      assert.equal(r.dkimd.changes.length, 1, "no field of the message is changed");
    });
    // The signatures cover the rewritten values: valid once the MTA rewrites the message.
    const dir = await Deno.makeTempDir({ prefix: "dkimd-od18r-" });
    try {
      const keys = await writeTestKeys(dir);
      await Deno.writeTextFile(`${dir}/key_table`, `k example.com:rsa:${KEY_FILE}\n`);
      await Deno.writeTextFile(`${dir}/signing_table`, `*@example.com k\n`);
      const pair = await startPair(dir, [
        "Mode s",
        `TestPublicKeys ${keys}`,
        `KeyTable ${dir}/key_table`,
        `SigningTable refile:${dir}/signing_table`,
        "RequireSafeKeys no",
        "Canonicalization relaxed/relaxed",
        "SignHeaders From,To,Subject,Date",
        `ReplaceRules ${rules(dir)}`,
      ]);
      try {
        const today = fromLatin1(latin1(rewritten).replace("Lunch  tomorrow", "Lunch today"));
        for (const port of [pair.opendkim.port, pair.dkimd.port]) {
          const signature = addedSignature(await sendTo(port, outbound(original)));
          assert.ok(signature);
          assert.equal(await verifies(signature, today), true);
          assert.equal(await verifies(signature, original), false);
        }
      } finally {
        await pair.stop();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    // ReplaceHeaders without From: the From is left alone, and no key is found for it.
    await withPair(
      (dir) => [`ReplaceRules ${rules(dir)}`, "ReplaceHeaders Subject"],
      async (send) => {
        const r = await send(outbound(original));
        assert.deepEqual(r.dkimd, r.opendkim);
        assert.deepEqual(r.dkimd.changes, []);
        const ours = await send(outbound(MESSAGE));
        assert.deepEqual(ours.dkimd, ours.opendkim);
      },
    );
  },
});

Deno.test({
  name:
    "StrictHeaders: a message breaking RFC 5322 §3.6's counts never passes and is not signed, in both; dkimd says dkim=policy per signature where OpenDKIM says one dkim=permerror",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    const twoSubjects = fromLatin1(
      latin1(MESSAGE).replace("Subject: Lunch", "Subject: Other\r\nSubject: Lunch"),
    );
    await withPair(() => ["StrictHeaders yes"], async (send) => {
      const fine = await send(inbound(await signedBy(MESSAGE, ["example.com"])));
      assert.deepEqual(fine.dkimd, fine.opendkim);
      const r = await send(inbound(await signedBy(twoSubjects, ["example.com"])));
      // The departure: libopendkim refuses the whole message (DKIM_LIBFLAGS_STRICTHDRS) and
      // OpenDKIM writes one dkim=permerror; dkimd gives each signature its verdict, policy.
      assert.deepEqual(r.opendkim, {
        final: "accept",
        changes: ["insheader 0 Authentication-Results: mx.test; dkim=permerror"],
      });
      assert.deepEqual(r.dkimd, {
        final: "accept",
        changes: [
          "insheader 0 Authentication-Results: mx.test; dkim=policy header.d=example.com header.s=rsa",
        ],
      });
      // Signing: neither signs. OpenDKIM passes the message on with dkim=permerror; dkimd lets
      // On-SignatureError decide (its default here: reject, with 5.7.1).
      const out = await send(outbound(twoSubjects));
      assert.deepEqual(out.opendkim, {
        final: "accept",
        changes: ["insheader 0 Authentication-Results: mx.test; dkim=permerror"],
      });
      assert.deepEqual(out.dkimd, { final: "reject 550 5.7.1", changes: [] });
    });
  },
});
