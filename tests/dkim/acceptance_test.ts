// When a signature that verified still does not pass (lib/dkim/acceptance.ts): content after
// l= (RFC 6376 §8.2, PartialBodyResult), a second From (RFC 6376 §8.15), StrictHeaders' field
// counts (RFC 5322 §3.6) and MustBeSigned, each turning pass into policy with a reason; and a
// signature that fails keeps its own result.
import assert from "node:assert/strict";
import { concat, fromLatin1, latin1 } from "../../lib/bytes.ts";
import { formatDkimResult } from "../../lib/dkim/auth_results.ts";
import { refusalOf } from "../../lib/dkim/acceptance.ts";
import { splitMessage } from "../../lib/dkim/header.ts";
import type { SignOptions } from "../../lib/dkim/sign.ts";
import { verifyMessage, type VerifyOptions } from "../../lib/dkim/verify.ts";
import { edit, edKey, MESSAGE, recordFor, signed } from "../helpers/dkim_fixtures.ts";
import { ZoneResolver } from "../helpers/zone_resolver.ts";

const NOW = 1_800_000_000;
const NAME = "sel._domainkey.example.com";

async function verifySigned(
  message: Uint8Array,
  sign: Partial<SignOptions>,
  options: Partial<VerifyOptions> = {},
  change: (signed: Uint8Array) => Uint8Array = (m) => m,
) {
  const key = await edKey();
  const bytes = change(
    await signed(message, [{ domain: "example.com", selector: "sel", key, ...sign }]),
  );
  const resolver = new ZoneResolver({ [NAME]: [recordFor(key)] });
  return await verifyMessage(bytes, { resolver, now: () => NOW, ...options });
}

const FOOTER = fromLatin1("Appended by anyone: pay IBAN XX00 instead\r\n");
const appendFooter = (m: Uint8Array) => concat([m, FOOTER]);
// MESSAGE ends in an empty line, which canonicalization drops while it is last; the footer makes
// it part of the body again.
const UNSIGNED = FOOTER.length + 2;

Deno.test("verifyMessage() gives policy to a valid signature whose l= leaves body bytes unsigned, naming how many (RFC 6376 §8.2)", async () => {
  const [v] = await verifySigned(MESSAGE, { bodyLength: true }, {}, appendFooter);
  const l = v.signature?.length;
  assert.ok(l !== undefined && l > 0);
  assert.equal(v.result, "policy");
  assert.equal(v.reason, `l=${l} leaves ${UNSIGNED} body bytes unsigned`);
  assert.equal(v.unsignedBodyBytes, UNSIGNED);
  assert.equal(v.key?.bits, 256);
  // The A-R says it once, in the reason, with the key size still in the comment.
  assert.match(
    formatDkimResult(v),
    new RegExp(
      `^dkim=policy \\(256-bit key\\) reason="l=${l} leaves ${UNSIGNED} body bytes unsigned" header\\.d=example\\.com `,
    ),
  );
});

Deno.test("verifyMessage() with partialBodyResult pass keeps OpenDKIM's pass, noting the unsigned bytes", async () => {
  const [v] = await verifySigned(
    MESSAGE,
    { bodyLength: true },
    { partialBodyResult: "pass" },
    appendFooter,
  );
  assert.equal(v.result, "pass");
  assert.equal(v.unsignedBodyBytes, UNSIGNED);
  assert.match(
    formatDkimResult(v),
    new RegExp(`\\(256-bit key; ${UNSIGNED} unsigned body bytes after l=${v.signature.length}\\)`),
  );
});

Deno.test("verifyMessage() passes an l= signature that covers the whole body (control)", async () => {
  const [v] = await verifySigned(MESSAGE, { bodyLength: true });
  assert.equal(v.result, "pass", String(v.reason));
  assert.equal(v.unsignedBodyBytes, undefined);
});

const TWO_FROM = fromLatin1(
  latin1(MESSAGE).replace("From: Alice", "From: Mallory <m@evil.example>\r\nFrom: Alice"),
);

Deno.test("verifyMessage() never passes a message with two From fields, though h= covers both (RFC 6376 §8.15)", async () => {
  const [v] = await verifySigned(TWO_FROM, {
    signHeaders: ["from", "from", "to", "subject"],
    oversignHeaders: [],
  });
  assert.deepEqual([v.result, v.reason], ["policy", "message has 2 From fields"]);
  assert.equal(v.signature?.headers.filter((h) => h === "from").length, 2);
});

Deno.test("verifyMessage() gives policy to a From added above an unoversigned signature", async () => {
  const [v] = await verifySigned(
    MESSAGE,
    { oversignHeaders: [] },
    {},
    (m) => edit(m, "From: Alice", "From: CEO <ceo@example.com>\r\nFrom: Alice"),
  );
  assert.deepEqual([v.result, v.reason], ["policy", "message has 2 From fields"]);
});

Deno.test("verifyMessage() keeps a failing signature's own result on a two-From message", async () => {
  const [v] = await verifySigned(
    MESSAGE,
    { oversignHeaders: ["From"] },
    {},
    (m) => edit(m, "From: Alice", "From: CEO <ceo@example.com>\r\nFrom: Alice"),
  );
  assert.deepEqual([v.result, v.reason], ["fail", "signature did not verify"]);
});

Deno.test("verifyMessage() minds a second Subject only with strictHeaders (OpenDKIM's StrictHeaders)", async () => {
  const twoSubjects = (m: Uint8Array) =>
    edit(m, "Subject: Lunch", "Subject: Pay now\r\nSubject: Lunch");
  const [plain] = await verifySigned(MESSAGE, {}, {}, twoSubjects);
  assert.equal(plain.result, "pass", String(plain.reason));
  const [strict] = await verifySigned(MESSAGE, {}, { strictHeaders: true }, twoSubjects);
  assert.deepEqual([strict.result, strict.reason], ["policy", "message has 2 Subject fields"]);
});

Deno.test("verifyMessage() with strictHeaders gives policy to a message without a Date", async () => {
  const noDate = fromLatin1(latin1(MESSAGE).replace(/Date: [^\r]*\r\n/, ""));
  const [v] = await verifySigned(noDate, {}, { strictHeaders: true });
  assert.deepEqual([v.result, v.reason], ["policy", "message has no Date field"]);
  const [control] = await verifySigned(MESSAGE, {}, { strictHeaders: true });
  assert.equal(control.result, "pass", String(control.reason));
});

// opendkim.conf(5), MustBeSigned: "If a header field in this set is present in the message and
// is not signed, the filter will treat even an otherwise valid signature as invalid."
Deno.test('verifyMessage() with mustBeSigned: "a header field in this set [...] present in the message and [...] not signed" makes "an otherwise valid signature" policy', async () => {
  const withReplyTo = fromLatin1(
    latin1(MESSAGE).replace("To: Bob", "Reply-To: <pay@evil.example>\r\nTo: Bob"),
  );
  const sign = { signHeaders: ["from", "to", "subject"] };
  const [v] = await verifySigned(withReplyTo, sign, { mustBeSigned: ["reply-to"] });
  assert.deepEqual([v.result, v.reason], ["policy", "Reply-To field not signed"]);
  const [without] = await verifySigned(withReplyTo, sign);
  assert.equal(without.result, "pass", "the same signature passes without MustBeSigned");
});

// opendkim.conf(5): "Specifies a set of header fields that, if present, must be covered".
Deno.test('verifyMessage() with mustBeSigned: a listed field that is not present ("if present") leaves the pass alone', async () => {
  const [v] = await verifySigned(MESSAGE, { signHeaders: ["from"] }, {
    mustBeSigned: ["reply-to", "List-Unsubscribe"],
  });
  assert.equal(v.result, "pass", String(v.reason));
});

Deno.test("verifyMessage() with mustBeSigned: a listed field that is signed passes", async () => {
  const [v] = await verifySigned(MESSAGE, {}, { mustBeSigned: ["Subject", "TO"] });
  assert.equal(v.result, "pass", String(v.reason));
});

Deno.test("verifyMessage() with mustBeSigned wants every instance covered: a Subject added above the signed one is unsigned (stricter than OpenDKIM's name check)", async () => {
  const [v] = await verifySigned(
    MESSAGE,
    {},
    { mustBeSigned: ["subject"] },
    (m) => edit(m, "Subject: Lunch", "Subject: Pay now\r\nSubject: Lunch"),
  );
  assert.deepEqual([v.result, v.reason], ["policy", "1 of 2 Subject fields not signed"]);
});

Deno.test("refusalOf() reports the message's own problem before MustBeSigned and the body", () => {
  const { fields } = splitMessage(fromLatin1("From: a@x\r\nFrom: b@y\r\nReply-To: c@z\r\n\r\n"));
  const sig = { headers: ["from"], length: 3 };
  assert.equal(
    refusalOf(sig, fields, 9, { mustBeSigned: ["reply-to"] }),
    "message has 2 From fields",
  );
  assert.equal(
    refusalOf(sig, fields.slice(1), 9, { mustBeSigned: ["reply-to"] }),
    "Reply-To field not signed",
  );
  assert.equal(refusalOf(sig, fields.slice(1), 9), "l=3 leaves 9 body bytes unsigned");
});
