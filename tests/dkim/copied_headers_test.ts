import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { copiedHeaders, decodeCopiedHeaders } from "../../lib/dkim/copied_headers.ts";
import { splitMessage } from "../../lib/dkim/header.ts";
import { FOLD_WIDTH } from "../../lib/dkim/signature.ts";
import { verifyMessage } from "../../lib/dkim/verify.ts";
import { ZoneResolver } from "../helpers/zone_resolver.ts";
import { MESSAGE, recordFor, rsaKey, signed } from "../helpers/dkim_fixtures.ts";

const NOW = 1_800_000_000;

Deno.test("copiedHeaders() encodes space, ;, =, | and 8-bit bytes, every instance in message order (RFC 6376 §3.5)", () => {
  const { fields } = splitMessage(
    fromLatin1("To: a; b=c\r\nX-A: skip\r\nSubject: caf\xe9 | x\r\nTo: d\r\n\r\n"),
  );
  const z = copiedHeaders(fields, ["To", "subject"]);
  assert.equal(z, "To:=20a=3B=20b=3Dc|Subject:=20caf=E9=20=7C=20x|To:=20d");
  assert.deepEqual(decodeCopiedHeaders(z), ["To: a; b=c", "Subject: caf\xe9 | x", "To: d"]);
  assert.equal(copiedHeaders(fields, ["Cc"]), "");
});

Deno.test("Signer with copyHeaders adds a folded z= that verifiers ignore, never breaking an =XX escape", async () => {
  const key = await rsaKey();
  const long = fromLatin1(
    latin1(MESSAGE).replace("Subject: Lunch  tomorrow?", `Subject: ${"a b|c;".repeat(40)}`),
  );
  const message = await signed(long, [{
    domain: "example.com",
    selector: "sel",
    key,
    copyHeaders: true,
  }], NOW);
  const signature = latin1(splitMessage(message).fields[0].raw);
  const lines = signature.split("\r\n");
  assert.ok(lines.every((l) => l.length <= FOLD_WIDTH), signature);
  const z = /\bz=([^;]*);/.exec(signature)?.[1] ?? "";
  assert.ok(!/=[0-9A-F]?\r\n/.test(z), "an escape was split by folding");
  const copies = decodeCopiedHeaders(z);
  assert.ok(copies.some((c) => c.startsWith("Subject: a b|c;a b|c;")), copies.join("\n"));
  assert.ok(copies.includes("From: Alice <alice@example.com>"));
  const resolver = new ZoneResolver({ "sel._domainkey.example.com": [recordFor(key)] });
  const [v] = await verifyMessage(message, { resolver, now: () => NOW });
  assert.equal(v.result, "pass", String(v.reason));
});
