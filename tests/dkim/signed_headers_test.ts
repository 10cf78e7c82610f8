import assert from "node:assert/strict";
import { fromLatin1 } from "../../lib/bytes.ts";
import { splitMessage } from "../../lib/dkim/header.ts";
import { DEFAULT_SIGNED_HEADERS, signedHeaderList } from "../../lib/dkim/signed_headers.ts";

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
