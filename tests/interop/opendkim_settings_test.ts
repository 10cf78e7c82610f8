/**
 * Issue 18's drop-in promise, setting by setting: Debian's opendkim and dkimd run as milters on
 * the same opendkim.conf and the same messages, and what the MTA is told — the reply, every
 * header change, quarantine, recipient changes — is compared. Where dkimd departs on purpose, the
 * test says so and asserts both sides of the departure.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fromLatin1 } from "../../lib/bytes.ts";
import type { ClientMessage } from "../../lib/milter/client.ts";
import { loadKey, MESSAGE, signed, writeTestKeys } from "../helpers/dkim_fixtures.ts";
import { mtaMessage } from "../helpers/mta_message.ts";
import { runCli } from "../helpers/run_cli.ts";
import {
  HAVE_OPENDKIM,
  observeBoth,
  type Observed,
  startPair,
} from "../helpers/opendkim_milter.ts";

const KEY_FILE = new URL("../testdata/keys/rsa2048_pkcs8.pem", import.meta.url).pathname;

/** The lines every comparison starts from: keys from a file, signing example.com with `rsa`. */
async function baseLines(dir: string): Promise<string[]> {
  const keys = await writeTestKeys(dir);
  await Deno.writeTextFile(`${dir}/key_table`, `k example.com:rsa:${KEY_FILE}\n`);
  await Deno.writeTextFile(`${dir}/signing_table`, `*@example.com k\n`);
  return [
    "Mode sv",
    `TestPublicKeys ${keys}`,
    `KeyTable ${dir}/key_table`,
    `SigningTable refile:${dir}/signing_table`,
    "RequireSafeKeys no",
    "Canonicalization relaxed/relaxed",
    "SignHeaders From,To,Subject,Date",
    "OversignHeaders From",
  ];
}

/** Runs `body` with opendkim and dkimd on the base lines plus `extra`. */
async function withPair(
  extra: readonly string[],
  body: (
    send: (m: ClientMessage) => Promise<{ opendkim: Observed; dkimd: Observed }>,
  ) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-od18-" });
  try {
    const pair = await startPair(dir, [...(await baseLines(dir)), ...extra]);
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
const inbound = (bytes: Uint8Array, qid = "IN1") =>
  mtaMessage(bytes, { qid, address: "192.0.2.7", hostname: "mx.example.net" });

/** `bytes` from 127.0.0.1 (InternalHosts by default: signed). */
const outbound = (bytes: Uint8Array, qid = "OUT1") =>
  mtaMessage(bytes, { qid, address: "127.0.0.1" });

/** MESSAGE signed by example.com's `rsa` key with `extra` options. */
async function signedMessage(message = MESSAGE): Promise<Uint8Array> {
  const key = await loadKey("rsa2048_pkcs8.pem");
  return await signed(message, [{
    domain: "example.com",
    selector: "rsa",
    key,
    canonicalization: ["relaxed", "relaxed"],
    signHeaders: ["From", "To", "Subject", "Date"],
  }], Math.floor(Date.now() / 1000));
}

Deno.test({
  name: "opendkim and dkimd: the base configuration signs and verifies alike",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair([], async (send) => {
      const out = await send(outbound(MESSAGE));
      assert.deepEqual(out.dkimd, out.opendkim);
      const good = await send(inbound(await signedMessage()));
      assert.deepEqual(good.dkimd, good.opendkim);
    });
  },
});

/** `message` with `lines` (LF ends) added on top of its header. */
function withFields(message: Uint8Array, ...lines: string[]): Uint8Array {
  return new Uint8Array([...fromLatin1(lines.map((l) => `${l}\r\n`).join("")), ...message]);
}

/** The c= of the one DKIM-Signature an observation adds. */
function canonOf(o: Observed): string | undefined {
  return /DKIM-Signature: .* c=(\S+)/.exec(o.changes.join("\n"))?.[1];
}

Deno.test({
  name:
    "SelectCanonicalizationHeader naming Canonicalization: a Canonicalization field chooses c= in both",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair(["SelectCanonicalizationHeader Canonicalization"], async (send) => {
      for (
        const [value, want] of [["simple/simple", "simple/simple"], ["simple", "simple/relaxed"]]
      ) {
        const r = await send(outbound(withFields(MESSAGE, `Canonicalization:${value}`)));
        assert.deepEqual(r.dkimd, r.opendkim);
        assert.equal(canonOf(r.dkimd), want);
      }
      // A word that is neither simple nor relaxed leaves the setting's half alone in both.
      const bogus = await send(outbound(withFields(MESSAGE, "Canonicalization:bogus/simple")));
      assert.deepEqual(bogus.dkimd, bogus.opendkim);
      assert.equal(canonOf(bogus.dkimd), "relaxed/simple");
      // Departure: OpenDKIM looks the header half up with the space after the colon still in
      // front of it (it keeps leading spaces, SMFIP_HDR_LEADSPC), so "Canonicalization: simple/
      // simple", as people write it, changes only the body half there; dkimd trims the words.
      const spaced = await send(outbound(withFields(MESSAGE, "Canonicalization: simple/simple")));
      assert.equal(canonOf(spaced.opendkim), "relaxed/simple");
      assert.equal(canonOf(spaced.dkimd), "simple/simple");
    });
  },
});

Deno.test({
  name:
    "SelectCanonicalizationHeader departure: OpenDKIM 2.11 obeys a Canonicalization field whatever the setting; dkimd obeys the field the setting names, and none without it",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    // Debian's 2.11 never reads the setting: the field's name is fixed at "Canonicalization"
    // (SELECTCANONHDR in opendkim.h), and opendkim.conf(5)'s X-Canonicalization is never obeyed.
    await withPair([], async (send) => {
      const r = await send(outbound(withFields(MESSAGE, "Canonicalization:simple/simple")));
      assert.equal(canonOf(r.opendkim), "simple/simple");
      assert.equal(canonOf(r.dkimd), "relaxed/relaxed");
    });
    await withPair(["SelectCanonicalizationHeader X-Canonicalization"], async (send) => {
      const r = await send(outbound(withFields(MESSAGE, "X-Canonicalization: simple/simple")));
      assert.equal(canonOf(r.opendkim), "relaxed/relaxed");
      assert.equal(canonOf(r.dkimd), "simple/simple");
    });
  },
});

/** `m` with `values` added to the macros the MTA sends at MAIL. */
function withMailMacros(m: ClientMessage, values: Record<string, string>): ClientMessage {
  return { ...m, macros: { ...m.macros, mail: { ...m.macros?.mail, ...values } } };
}

Deno.test({
  name:
    "SenderMacro: the macro's address chooses the signing key in both; empty or absent, the From field does",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    const other = fromLatin1(
      "From: Al <al@other.example>\r\nTo: b@example.org\r\nSubject: x\r\n\r\nhi\r\n",
    );
    await withPair(["SenderMacro {mail_addr}"], async (send) => {
      const byMacro = await send(
        withMailMacros(outbound(other), { "{mail_addr}": "alice@example.com" }),
      );
      assert.deepEqual(byMacro.dkimd, byMacro.opendkim);
      assert.match(byMacro.dkimd.changes.join("\n"), /DKIM-Signature: d=example\.com/);
      const empty = await send(withMailMacros(outbound(MESSAGE), { "{mail_addr}": "" }));
      assert.deepEqual(empty.dkimd, empty.opendkim);
      assert.match(empty.dkimd.changes.join("\n"), /DKIM-Signature: d=example\.com/);
      const absent = await send(outbound(other));
      assert.deepEqual(absent.dkimd, absent.opendkim);
      assert.deepEqual(absent.dkimd.changes, []);
      // The macro decides even against a From we sign for.
      const foreign = await send(
        withMailMacros(outbound(MESSAGE), { "{mail_addr}": "al@other.example" }),
      );
      assert.deepEqual(foreign.dkimd, foreign.opendkim);
      assert.deepEqual(foreign.dkimd.changes, []);
    });
  },
});

const NO_FROM = fromLatin1("To: b@example.org\r\nSubject: x\r\n\r\nhi\r\n");
const BAD_FROM = fromLatin1("From: nobody\r\nTo: b@example.org\r\nSubject: x\r\n\r\nhi\r\n");
const TWO_SUBJECTS = fromLatin1(
  "From: a@example.com\r\nTo: b@example.org\r\nSubject: x\r\nSubject: y\r\n\r\nhi\r\n",
);

Deno.test({
  name:
    "malformed mail (no sender, a From without an address when signing): dkim=permerror (bad message format) in both; IgnoreMalformedMail passes it untouched in both",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair([], async (send) => {
      for (const m of [inbound(NO_FROM), outbound(NO_FROM), outbound(BAD_FROM)]) {
        const r = await send(m);
        assert.deepEqual(r.dkimd, r.opendkim);
        assert.deepEqual(r.dkimd.changes, [
          "insheader 0 Authentication-Results: mx.test; dkim=permerror",
        ]);
      }
    });
    await withPair(["IgnoreMalformedMail yes"], async (send) => {
      for (const m of [inbound(NO_FROM), outbound(NO_FROM), outbound(BAD_FROM)]) {
        const r = await send(m);
        assert.deepEqual(r.dkimd, r.opendkim);
        assert.deepEqual(r.dkimd, { final: "accept", changes: [] });
      }
    });
  },
});

Deno.test({
  name:
    "RequiredHeaders rejects in both, IgnoreMalformedMail or not (opendkim.conf(5) says it would pass); dkimd's reply says 5.6.0 where OpenDKIM's says 5.0.0",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    for (const extra of [[], ["IgnoreMalformedMail yes"]]) {
      await withPair(["RequiredHeaders yes", ...extra], async (send) => {
        for (const m of [outbound(TWO_SUBJECTS), inbound(TWO_SUBJECTS)]) {
          const r = await send(m);
          assert.deepEqual(r.opendkim, { final: "reject 550 5.0.0", changes: [] });
          // The departure: RFC 3463's 5.6.0 (a problem with the message's content), not 5.0.0.
          assert.deepEqual(r.dkimd, { final: "reject 550 5.6.0", changes: [] });
        }
        const fine = await send(outbound(MESSAGE));
        assert.deepEqual(fine.dkimd, fine.opendkim);
      });
    }
  },
});

Deno.test({
  name:
    "ChangeRootDirectory departure: opendkim chroots; dkimd refuses to start, naming systemd's RootDirectory= and TemporaryFileSystem=",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "dkimd-od18-" });
    try {
      const conf = `${dir}/opendkim.conf`;
      await Deno.writeTextFile(conf, `Mode sv\nChangeRootDirectory ${dir}\n`);
      const opendkim = await new Deno.Command("/usr/sbin/opendkim", { args: ["-n", "-x", conf] })
        .output();
      assert.equal(opendkim.code, 0, new TextDecoder().decode(opendkim.stderr));
      for (const args of [["check-config", conf], ["-x", conf, "-f"]]) {
        const r = await runCli(args);
        assert.equal(r.code, 78, r.stderr);
        assert.match(
          r.stderr + r.text,
          new RegExp(
            `"ChangeRootDirectory" at ${conf}:2: dkimd cannot change its root directory.*` +
              `RootDirectory=${dir}.*TemporaryFileSystem=/`,
          ),
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "MustBeSigned: a present field the signature does not cover denies the pass in both; dkimd says dkim=policy where OpenDKIM says dkim=fail",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair(["MustBeSigned Reply-To"], async (send) => {
      const good = await signedMessage();
      const covered = await send(inbound(good));
      assert.deepEqual(covered.dkimd, covered.opendkim);
      const unsigned = await send(inbound(withFields(good, "Reply-To: x@evil.example")));
      // The departure: the signature verifies, so RFC 8601 §2.7.1's word is "policy" (not
      // accepted by local policy), as dkimd's other acceptance rules say; OpenDKIM says "fail".
      // On-BadSignature decides in both.
      const unsignedAr =
        "insheader 0 Authentication-Results: mx.test; dkim=%s header.d=example.com header.s=rsa";
      assert.deepEqual(unsigned.opendkim, {
        final: "accept",
        changes: [unsignedAr.replace("%s", "fail")],
      });
      assert.deepEqual(unsigned.dkimd, {
        final: "accept",
        changes: [unsignedAr.replace("%s", "policy")],
      });
    });
  },
});
