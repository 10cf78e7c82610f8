/**
 * The filter's honest verdicts (issue 13, items 3 to 6), through an in-memory MTA playing
 * Postfix: PartialBodyResult, a second From and StrictHeaders, RequiredHeaders and MustBeSigned,
 * and On-Security at the header limits. Each reaches the Authentication-Results field, the log
 * and the On-* actions; each has a control that differs by the rule alone.
 */
import assert from "node:assert/strict";
import { concat, CRLF, fromLatin1, latin1 } from "../../lib/bytes.ts";
import { splitMessage } from "../../lib/dkim/header.ts";
import { signMessage, type SignOptions } from "../../lib/dkim/sign.ts";
import { DkimFilter } from "../../lib/filter/dkim_filter.ts";
import type { Reply } from "../../lib/milter/reply.ts";
import { loadKey } from "../helpers/dkim_fixtures.ts";
import { MemoryLogger } from "../helpers/milter_logger.ts";
import { type MemoryMessage, MemoryMta } from "../helpers/memory_mta.ts";
import { exampleSigning, memoryRuntime } from "../helpers/memory_runtime.ts";
import { unfold } from "../helpers/folding.ts";

const NOW = 1_800_000_000;
const INTERNAL = "127.0.0.1";
const EXTERNAL = "192.0.2.25";

interface Setup {
  readonly log: MemoryLogger;
  /** Sends `bytes` from `address` over a new MTA connection. */
  send(bytes: Uint8Array, address?: string): ReturnType<MemoryMta["sendMessage"]>;
}

/** The filter signing and verifying example.com (keys `rsa` and `ed`), plus `extraConf`. */
async function start(extraConf: string, files: Record<string, string> = {}): Promise<Setup> {
  const signing = await exampleSigning();
  const runtime = await memoryRuntime(
    `Mode sv\n${signing.conf}AuthservID mx.example.net\nLogResults yes\n${extraConf}`,
    { files: { ...signing.files, ...files }, zone: signing.zone },
  );
  const log = new MemoryLogger();
  const filter = new DkimFilter({
    runtime: () => runtime,
    logger: log,
    hostname: "mx.example.net",
    now: () => NOW,
  });
  return {
    log,
    send: (bytes, address = EXTERNAL) => new MemoryMta(filter).sendMessage(asMta(bytes, address)),
  };
}

/** `bytes` as Postfix hands it over, from a client at `address`. */
function asMta(bytes: Uint8Array, address: string): MemoryMessage {
  const { fields, bodyOffset } = splitMessage(bytes);
  return {
    connect: { hostname: "client.test", address, port: 25 },
    macros: { connect: { j: "mx.example.net" }, mail: { i: "4AB12C" } },
    from: "<alice@example.com>",
    rcpts: ["<bob@example.org>"],
    headers: fields.map((f) => [f.name, latin1(f.raw.subarray(f.raw.indexOf(0x3a) + 1))]),
    body: latin1(bytes.subarray(bodyOffset)),
  };
}

const HEADER = "From: Alice <alice@example.com>\r\nTo: Bob <bob@example.org>\r\n" +
  "Subject: Lunch\r\nDate: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n";
const BODY = "Hi Bob,\r\n\r\nNoon?\r\n";
const MESSAGE = fromLatin1(`${HEADER}\r\n${BODY}`);

/** `message` signed by example.com's Ed25519 key (selector `ed`, published in the zone). */
async function signedByEd(message: Uint8Array, options: Partial<SignOptions> = {}) {
  const key = await loadKey("ed25519.pem");
  const fields = await signMessage(
    message,
    [{ domain: "example.com", selector: "ed", key, ...options }],
    { now: () => NOW },
  );
  return concat([...fields.flatMap((f) => [f.raw, CRLF]), message]);
}

/** `bytes` with `text` put before the first field named like its own first line. */
function prepend(bytes: Uint8Array, before: string, text: string): Uint8Array {
  const s = latin1(bytes);
  assert.ok(s.includes(before), before);
  return fromLatin1(s.replace(before, `${text}${before}`));
}

function inserted(mods: readonly Reply[], name: string): string[] {
  return mods
    .filter((m): m is Extract<Reply, { type: "insheader" }> =>
      m.type === "insheader" && m.name === name
    )
    .map((m) => typeof m.value === "string" ? m.value : latin1(m.value));
}

// Each field unfolded (RFC 5322 §2.2.3): a property may start a new line, so "\\s" stands
// between properties in the patterns below.
const ar = (mods: readonly Reply[]) =>
  inserted(mods, "Authentication-Results").map(unfold).join("\n");
const REJECTED = { type: "replycode", code: 550, text: "5.7.1 DKIM signature verification failed" };

const FOOTER = "Appended by anyone: pay IBAN XX00 instead\r\n";

// Item 3: PartialBodyResult.
Deno.test("DkimFilter gives dkim=policy to a signature whose l= leaves appended bytes unsigned, logs it, and On-BadSignature applies", async () => {
  const bytes = concat([await signedByEd(MESSAGE, { bodyLength: true }), fromLatin1(FOOTER)]);
  const s = await start("");
  const r = await s.send(bytes);
  assert.deepEqual(r.final, { type: "accept" });
  assert.match(
    ar(r.modifications),
    new RegExp(
      `dkim=policy\\s\\(256-bit key\\)\\sreason="l=${BODY.length} leaves ${FOOTER.length} body bytes unsigned"\\sheader\\.d=example\\.com`,
    ),
  );
  assert.ok(s.log.find("info", /s=ed d=example\.com a=ed25519-sha256 result=policy reason="l=/));
  assert.ok(
    s.log.find(
      "warn",
      /s=ed d=example\.com signs only l=\d+ body bytes: \d+ bytes after them are unsigned/,
    ),
  );
  const strict = await start("On-BadSignature reject\n");
  assert.deepEqual((await strict.send(bytes)).final, REJECTED);
});

Deno.test("DkimFilter with PartialBodyResult pass keeps OpenDKIM's dkim=pass for the same message", async () => {
  const bytes = concat([await signedByEd(MESSAGE, { bodyLength: true }), fromLatin1(FOOTER)]);
  const s = await start("PartialBodyResult pass\nOn-BadSignature reject\n");
  const r = await s.send(bytes);
  assert.deepEqual(r.final, { type: "accept" });
  assert.match(
    ar(r.modifications),
    new RegExp(`dkim=pass\\s\\(256-bit key; ${FOOTER.length} unsigned body bytes after l=\\d+\\)`),
  );
  assert.ok(s.log.find("warn", /signs only l=\d+ body bytes/));
});

Deno.test("DkimFilter passes an l= signature covering the whole body by default (control)", async () => {
  const s = await start("On-BadSignature reject\n");
  const r = await s.send(await signedByEd(MESSAGE, { bodyLength: true }));
  assert.deepEqual(r.final, { type: "accept" });
  assert.match(ar(r.modifications), /dkim=pass\s\(256-bit key\)\sheader\.d=example\.com/);
});

// Item 4: a second From, and StrictHeaders.
Deno.test("DkimFilter never gives dkim=pass to a message with two From fields, whatever the signature covers (RFC 6376 §8.15)", async () => {
  const two = prepend(MESSAGE, "From: Alice", "From: CEO <ceo@example.com>\r\n");
  const covered = await signedByEd(two, {
    signHeaders: ["from", "from", "subject"],
    oversignHeaders: [],
  });
  const added = prepend(
    await signedByEd(MESSAGE, { oversignHeaders: [] }),
    "From: Alice",
    "From: CEO <ceo@example.com>\r\n",
  );
  for (const bytes of [covered, added]) {
    const s = await start("On-BadSignature reject\n");
    const r = await s.send(bytes);
    assert.deepEqual(r.final, REJECTED);
    assert.ok(s.log.find("info", /result=policy reason="message has 2 From fields"/), s.log.text());
  }
  const s = await start("");
  const r = await s.send(covered);
  assert.match(
    ar(r.modifications),
    /dkim=policy\s\(256-bit key\)\sreason="message has 2 From fields"/,
  );
});

Deno.test("DkimFilter with StrictHeaders gives dkim=policy to a second Subject; without it the same message passes", async () => {
  const bytes = prepend(await signedByEd(MESSAGE), "Subject: Lunch", "Subject: Pay now\r\n");
  const strict = await (await start("StrictHeaders yes\n")).send(bytes);
  assert.match(
    ar(strict.modifications),
    /dkim=policy\s\(256-bit key\)\sreason="message has 2 Subject fields"/,
  );
  const plain = await (await start("")).send(bytes);
  assert.match(ar(plain.modifications), /dkim=pass\s\(256-bit key\)/);
});

// opendkim.conf(5), StrictHeaders: "refuse processing of a message if the header field count
// does not conform to RFC5322 Section 3.6": OpenDKIM's library does not sign it either.
Deno.test("DkimFilter with StrictHeaders does not sign a message with two Subjects; On-SignatureError decides (a departure: OpenDKIM passes it on unsigned)", async () => {
  const two = prepend(MESSAGE, "Subject: Lunch", "Subject: Pay now\r\n");
  const s = await start("StrictHeaders yes\n");
  const r = await s.send(two, INTERNAL);
  assert.deepEqual(r.final, { type: "replycode", code: 550, text: "5.7.1 DKIM signing failed" });
  assert.ok(
    s.log.find("error", /^4AB12C: cannot sign: message has 2 Subject fields \(StrictHeaders\)$/),
  );
  const accept = await (await start("StrictHeaders yes\nOn-SignatureError accept\n")).send(
    two,
    INTERNAL,
  );
  assert.deepEqual(accept.final, { type: "accept" });
  assert.deepEqual(inserted(accept.modifications, "DKIM-Signature"), []);
  const signed = await (await start("")).send(two, INTERNAL);
  assert.equal(inserted(signed.modifications, "DKIM-Signature").length, 1, "signed without it");
});

// Item 5: RequiredHeaders, opendkim.conf(5): "Checks all messages for compliance with RFC5322
// header field count requirements. Non-compliant messages are rejected."
Deno.test('DkimFilter with RequiredHeaders: "Non-compliant messages are rejected", inbound and outbound', async () => {
  const noDate = fromLatin1(latin1(MESSAGE).replace(/Date: [^\r]*\r\n/, ""));
  const twoFrom = prepend(MESSAGE, "From: Alice", "From: Alice <alice@example.com>\r\n");
  const cases: [Uint8Array, string, string][] = [
    [noDate, EXTERNAL, "message has no Date field"],
    [twoFrom, INTERNAL, "message has 2 From fields"],
    [
      prepend(MESSAGE, "To: Bob", "To: Carol <carol@example.org>\r\n"),
      EXTERNAL,
      "message has 2 To fields",
    ],
    [
      prepend(MESSAGE, "From: Alice", "Sender: a@example.com\r\nSender: b@example.com\r\n"),
      INTERNAL,
      "message has 2 Sender fields",
    ],
  ];
  for (const [bytes, address, problem] of cases) {
    const s = await start("RequiredHeaders yes\n");
    const r = await s.send(bytes, address);
    assert.deepEqual(r.final, { type: "replycode", code: 550, text: `5.6.0 ${problem}` }, problem);
    assert.ok(
      s.log.find(
        "info",
        new RegExp(
          `^4AB12C: RFC 5322 header requirement error: ${problem}; rejecting \\(RequiredHeaders\\)$`,
        ),
      ),
      s.log.text(),
    );
    // The control: without RequiredHeaders the same message is accepted.
    assert.deepEqual((await (await start("")).send(bytes, address)).final, { type: "accept" });
  }
  const ok = await (await start("RequiredHeaders yes\n")).send(MESSAGE, EXTERNAL);
  assert.deepEqual(ok.final, { type: "accept" });
});

Deno.test("DkimFilter with RequiredHeaders leaves alone mail it neither signs nor verifies (PeerList), as OpenDKIM checks in mlfi_eoh()", async () => {
  const noDate = fromLatin1(latin1(MESSAGE).replace(/Date: [^\r]*\r\n/, ""));
  const s = await start("RequiredHeaders yes\nPeerList 192.0.2.0/24\n");
  const r = await s.send(noDate, EXTERNAL);
  assert.deepEqual(r.final, { type: "accept" });
});

// MustBeSigned, opendkim.conf(5): "If a header field in this set is present in the message and is
// not signed, the filter will treat even an otherwise valid signature as invalid."
Deno.test('DkimFilter with MustBeSigned: a listed field "present in the message and [...] not signed" makes "an otherwise valid signature" dkim=policy', async () => {
  const withReplyTo = prepend(MESSAGE, "To: Bob", "Reply-To: <pay@evil.example>\r\n");
  const bytes = await signedByEd(withReplyTo, { signHeaders: ["from", "to", "subject"] });
  const files = { "/etc/dkimd/must-be-signed": "Reply-To\nList-Unsubscribe\n" };
  const s = await start("MustBeSigned /etc/dkimd/must-be-signed\nOn-BadSignature reject\n", files);
  const r = await s.send(bytes);
  assert.deepEqual(r.final, REJECTED);
  assert.ok(s.log.find("info", /result=policy reason="Reply-To field not signed"/), s.log.text());
  const plain = await (await start("On-BadSignature reject\n")).send(bytes);
  assert.deepEqual(plain.final, { type: "accept" }, "the signature passes without MustBeSigned");
  const signedReplyTo = await signedByEd(withReplyTo);
  const covered = await (await start("MustBeSigned Reply-To\nOn-BadSignature reject\n")).send(
    signedReplyTo,
  );
  assert.match(ar(covered.modifications), /dkim=pass/, "Reply-To signed: pass");
});

// Item 6: On-Security at the header limits, where OpenDKIM's mlfi_header() applies it.
const fat = (bytes: Uint8Array) =>
  prepend(bytes, "From: Alice", `X-Padding: ${"x".repeat(300)}\r\n`);

Deno.test("DkimFilter defers a header block over MaximumHeaders by default (On-Security tempfail, as OpenDKIM), signing or verifying", async () => {
  for (const address of [EXTERNAL, INTERNAL]) {
    const s = await start("MaximumHeaders 200\n");
    const r = await s.send(fat(MESSAGE), address);
    assert.deepEqual(r.final, {
      type: "replycode",
      code: 451,
      text: "4.3.4 Message header block too large",
    });
    assert.ok(
      s.log.find(
        "warn",
        /^4AB12C: header block exceeds MaximumHeaders \(200 bytes\); deferring \(On-Security tempfail\)$/,
      ),
      s.log.text(),
    );
  }
});

Deno.test("DkimFilter applies On-Security to MaximumHeaderFields: reject, accept (unfiltered), discard, quarantine", async () => {
  const many = prepend(MESSAGE, "From: Alice", "X-A: 1\r\nX-B: 2\r\nX-C: 3\r\n");
  const rejected = await (await start("MaximumHeaderFields 5\nOn-Security reject\n")).send(many);
  assert.deepEqual(rejected.final, {
    type: "replycode",
    code: 552,
    text: "5.3.4 Too many header fields",
  });
  const s = await start("MaximumHeaderFields 5\nOn-Security accept\n");
  const accepted = await s.send(many, INTERNAL);
  assert.deepEqual(accepted.final, { type: "accept" });
  assert.deepEqual(accepted.modifications, [], "neither signed nor given a result");
  assert.ok(s.log.find("warn", /; accepting it unfiltered \(On-Security accept\)$/));
  const discarded = await (await start("MaximumHeaderFields 5\nOn-Security discard\n")).send(many);
  assert.deepEqual(discarded.final, { type: "discard" });
  const quarantined = await (await start("MaximumHeaderFields 5\nOn-Security quarantine\n")).send(
    many,
  );
  assert.deepEqual(quarantined.final, { type: "accept" });
  assert.deepEqual(quarantined.modifications, [
    { type: "quarantine", reason: "dkimd: Too many header fields" },
  ]);
  // The control: under the limit, the same configuration verifies as usual.
  const under = await (await start("MaximumHeaderFields 8\nOn-Security reject\n")).send(many);
  assert.deepEqual(under.final, { type: "accept" });
});
