import fc from "fast-check";
import assert from "node:assert/strict";
import { asciiLower, fromLatin1, latin1 } from "../../lib/bytes.ts";
import { selectHeaders, splitMessage } from "../../lib/dkim/header.ts";
import { parseSignature } from "../../lib/dkim/signature.ts";
import {
  DEFAULT_OVERSIGNED_HEADERS,
  DEFAULT_SIGNED_HEADERS,
  signedHeaderList,
  signedHeaderSelection,
} from "../../lib/dkim/signed_headers.ts";
import { verifyMessage } from "../../lib/dkim/verify.ts";
import { edKey, recordFor, signed } from "../helpers/dkim_fixtures.ts";
import { fuzzParams } from "../helpers/fuzz.ts";
import { ZoneResolver } from "../helpers/zone_resolver.ts";

const NOW = 1_800_000_000;

/** RFC 6376 §5.4.1's list of fields to sign. */
const RFC6376_RECOMMENDED = [
  "From",
  "Reply-To",
  "Subject",
  "Date",
  "To",
  "Cc",
  "Resent-Date",
  "Resent-From",
  "Resent-To",
  "Resent-Cc",
  "In-Reply-To",
  "References",
  "List-Id",
  "List-Help",
  "List-Unsubscribe",
  "List-Subscribe",
  "List-Post",
  "List-Owner",
  "List-Archive",
];

/** OpenDKIM's default SignHeaders, libopendkim's `dkim_should_signhdrs`. */
const OPENDKIM_SIGN_HEADERS = [...RFC6376_RECOMMENDED, "Resent-Sender"];

/** A message with the fields the default list now adds to OpenDKIM's, and some it leaves out. */
const MIME_MESSAGE = fromLatin1(
  "Received: from client.example.com by mx.example.com; Fri, 27 Nov 2026 12:00:01 +0000\r\n" +
    "Return-Path: <alice@example.com>\r\n" +
    "From: Alice <alice@example.com>\r\n" +
    "To: Bob <bob@example.org>\r\n" +
    "Subject: Invoice\r\n" +
    "Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n" +
    "Message-ID: <invoice-1@example.com>\r\n" +
    "MIME-Version: 1.0\r\n" +
    "Content-Type: text/plain; charset=us-ascii\r\n" +
    "Content-Transfer-Encoding: 7bit\r\n" +
    "X-Mailer: test\r\n" +
    "\r\n" +
    "Please pay to IBAN XX00 1111 by Friday.\r\n",
);

const lower = (names: readonly string[]) => names.map((n) => n.toLowerCase());

Deno.test("signedHeaderList() signs each present field as often as it occurs, From always", () => {
  const { fields } = splitMessage(
    fromLatin1("Received: x\r\nTo: a\r\nto: b\r\nSubject: s\r\nX-Other: o\r\n\r\n"),
  );
  assert.deepEqual(signedHeaderList(fields), ["From", "Subject", "To", "To"]);
  assert.deepEqual(signedHeaderList(fields, ["Subject"], ["Subject", "Reply-To"]), [
    "From",
    "Subject",
    "Subject",
    "Reply-To",
  ]);
  assert.ok(DEFAULT_SIGNED_HEADERS.includes("Message-ID"));
  assert.ok(!DEFAULT_SIGNED_HEADERS.some((h) => /^(received|return-path)$/i.test(h)));
});

Deno.test("DEFAULT_SIGNED_HEADERS holds RFC 6376 §5.4.1's list, OpenDKIM's, Message-ID and the MIME fields", () => {
  const have = new Set(lower(DEFAULT_SIGNED_HEADERS));
  for (const name of [...OPENDKIM_SIGN_HEADERS, "Sender", "Message-ID"]) {
    assert.ok(have.has(name.toLowerCase()), name);
  }
  for (const name of ["MIME-Version", "Content-Type", "Content-Transfer-Encoding"]) {
    assert.ok(have.has(name.toLowerCase()), name);
  }
  // RFC 6376 §5.4.1's "SHOULD NOT" fields, those opendkim.conf(5) omits, and what MTAs add.
  for (
    const name of [
      "Return-Path",
      "Received",
      "Comments",
      "Keywords",
      "Bcc",
      "Resent-Bcc",
      "DKIM-Signature",
      "Authentication-Results",
    ]
  ) {
    assert.ok(!have.has(name.toLowerCase()), name);
  }
  assert.equal(have.size, DEFAULT_SIGNED_HEADERS.length, "no name twice");
  assert.deepEqual(DEFAULT_OVERSIGNED_HEADERS, ["From"]);
});

Deno.test("signedHeaderList() by default lists the present default fields and oversigns From", () => {
  const { fields } = splitMessage(MIME_MESSAGE);
  assert.deepEqual(signedHeaderList(fields), [
    "From",
    "From",
    "Subject",
    "Date",
    "Message-ID",
    "To",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
  ]);
  // A message without From still lists it once (RFC 6376 §5.4), not twice.
  const { fields: noFrom } = splitMessage(fromLatin1("Subject: s\r\n\r\n"));
  assert.deepEqual(signedHeaderList(noFrom), ["From", "Subject"]);
  // Oversigning can be turned off: From is then listed as often as present.
  assert.deepEqual(signedHeaderList(fields, DEFAULT_SIGNED_HEADERS, []).slice(0, 2), [
    "From",
    "Subject",
  ]);
});

async function defaultSigned(message: Uint8Array, extra: object = {}) {
  const key = await edKey();
  const bytes = await signed(message, [{ domain: "example.com", selector: "sel", key, ...extra }]);
  const resolver = new ZoneResolver({ "sel._domainkey.example.com": [recordFor(key)] });
  const verify = async (b: Uint8Array) => {
    const [v] = await verifyMessage(b, { resolver, now: () => NOW });
    return v.result;
  };
  return { text: latin1(bytes), verify };
}

/** `text` with `line` added as a header field just above the first field named `before`. */
function addAbove(text: string, before: string, line: string): Uint8Array {
  const at = text.indexOf(`\r\n${before}:`);
  assert.ok(at >= 0, before);
  return fromLatin1(`${text.slice(0, at + 2)}${line}\r\n${text.slice(at + 2)}`);
}

Deno.test("Signer with the defaults: MTA fields added on the way leave the signature valid", async () => {
  const { text, verify } = await defaultSigned(MIME_MESSAGE);
  const relayed =
    `Received: from mx.example.com by mx.example.org; Fri, 27 Nov 2026 12:00:02 +0000\r\n` +
    `Received: from mx.example.org by store.example.org; Fri, 27 Nov 2026 12:00:03 +0000\r\n` +
    `Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=example.com\r\n` +
    `Delivered-To: bob@example.org\r\n${text}`;
  assert.equal(await verify(fromLatin1(relayed)), "pass");
  // Fields the list names but the message lacked are not in h=, so adding them later is not
  // caught: only oversigning does that (the README says which to oversign).
  const sig = parseSignature(splitMessage(fromLatin1(text)).fields[0]);
  assert.ok(!lower(sig.headers).includes("cc"));
  assert.equal(await verify(addAbove(text, "To", "Cc: carol@example.org")), "pass");
});

Deno.test("Signer with the defaults: a second From added after signing fails, above or below", async () => {
  const { text, verify } = await defaultSigned(MIME_MESSAGE);
  assert.equal(await verify(fromLatin1(text)), "pass");
  const evil = "From: CEO <ceo@example.com>";
  assert.equal(await verify(addAbove(text, "From", evil)), "fail");
  assert.equal(await verify(addAbove(text, "To", evil)), "fail");
  assert.equal(await verify(fromLatin1(`${evil}\r\n${text}`)), "fail");
});

Deno.test("Signer with the defaults: a rewritten Message-ID or MIME field fails", async () => {
  const { text, verify } = await defaultSigned(MIME_MESSAGE);
  const cases: [string, string][] = [
    ["Message-ID: <invoice-1@example.com>", "Message-ID: <invoice-2@example.com>"],
    ["MIME-Version: 1.0", "MIME-Version: 1.1"],
    ["Content-Type: text/plain; charset=us-ascii", "Content-Type: text/html; charset=us-ascii"],
    ["Content-Transfer-Encoding: 7bit", "Content-Transfer-Encoding: quoted-printable"],
  ];
  for (const [from, to] of cases) {
    assert.ok(text.includes(from), from);
    assert.equal(await verify(fromLatin1(text.replace(from, to))), "fail", to);
    // Added below the signed instance, the new field is the one a verifier takes (RFC 6376
    // §5.4.2: the last instance first), so the signature fails too.
    const name = from.slice(0, from.indexOf(":"));
    assert.equal(await verify(addAbove(text, "X-Mailer", to)), "fail", `${name} added below`);
  }
});

Deno.test("Signer with OpenDKIM's former default list: the same changes pass (the control)", async () => {
  const { text, verify } = await defaultSigned(MIME_MESSAGE, {
    signHeaders: OPENDKIM_SIGN_HEADERS,
    oversignHeaders: [],
  });
  // The signature still verifies over the added From; only dkimd's own rule for a message with
  // two From fields (RFC 6376 §8.15, acceptance.ts) keeps it from passing: policy, not fail.
  assert.equal(await verify(addAbove(text, "From", "From: CEO <ceo@example.com>")), "policy");
  assert.equal(
    await verify(fromLatin1(text.replace("text/plain", "text/html"))),
    "pass",
  );
  assert.equal(await verify(fromLatin1(text.replace("invoice-1@", "invoice-2@"))), "pass");
});

Deno.test("signedHeaderList() lists what the implementation before its per-list plan listed, and signedHeaderSelection() picks what selectHeaders() picks", () => {
  // The implementation before issue 20, which built its sets and maps for every message.
  const before = (
    fields: readonly { name: string }[],
    signHeaders: readonly string[] = DEFAULT_SIGNED_HEADERS,
    oversignHeaders: readonly string[] = DEFAULT_OVERSIGNED_HEADERS,
  ): string[] => {
    const counts = new Map<string, number>();
    for (const f of fields) {
      const key = asciiLower(f.name);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    const names: string[] = [];
    const seen = new Set<string>();
    const signKeys = signHeaders.map(asciiLower);
    const oversigned = new Set(oversignHeaders.map(asciiLower));
    const add = (name: string, key: string) => {
      if (seen.has(key)) return;
      seen.add(key);
      const n = (counts.get(key) ?? 0) + (oversigned.has(key) ? 1 : 0);
      for (let i = 0; i < n; i++) names.push(name);
    };
    if (!signKeys.includes("from")) add("From", "from");
    signHeaders.forEach((name, i) => add(name, signKeys[i]));
    oversignHeaders.forEach((name) => add(name, asciiLower(name)));
    if (!names.some((n) => asciiLower(n) === "from")) names.unshift("From");
    return names;
  };
  const name = fc.constantFrom("From", "from", "FROM", "To", "to", "Subject", "Cc", "X-A", "x-a");
  const lists = fc.array(name, { maxLength: 6 });
  fc.assert(
    fc.property(
      fc.array(name, { maxLength: 10 }),
      lists,
      lists,
      fc.boolean(),
      (names, sign, over, defaults) => {
        const fields = names.map((n, i) => ({ name: n, raw: fromLatin1(`${n}: ${i}`) }));
        const selection = signedHeaderSelection(fields, sign, over);
        assert.deepEqual(selection.names, before(fields, sign, over));
        assert.deepEqual(selection.selected, selectHeaders(fields, selection.names));
        if (defaults) {
          assert.deepEqual(signedHeaderList(fields), before(fields));
          assert.deepEqual(signedHeaderList(fields, sign), before(fields, sign));
        }
        assert.deepEqual(signedHeaderList(fields, sign, over), before(fields, sign, over));
      },
    ),
    fuzzParams(3000),
  );
});
