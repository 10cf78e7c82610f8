import assert from "node:assert/strict";
import { KeyError, type KeyErrorCode, keyFail } from "../../lib/crypto/key_error.ts";

Deno.test("KeyError names the key by its source, else by its subject, else as the key", () => {
  const cases: { options: ConstructorParameters<typeof KeyError>[2]; message: string }[] = [
    { options: { source: "/etc/dkimd/k.pem" }, message: 'Cannot use key "/etc/dkimd/k.pem": bad' },
    { options: { source: "/k", subject: "public key" }, message: 'Cannot use key "/k": bad' },
    { options: { subject: "public key" }, message: "Cannot use public key: bad" },
    { options: {}, message: "Cannot use key: bad" },
    { options: undefined, message: "Cannot use key: bad" },
    { options: { source: "" }, message: 'Cannot use key "": bad' },
  ];
  for (const c of cases) {
    const e = new KeyError("syntax", "bad", c.options);
    assert.equal(e.message, c.message);
    assert.equal(e.name, "KeyError");
    assert.equal(e.code, "syntax");
    assert.equal(e.source, c.options?.source);
  }
});

Deno.test("keyFail() makes each KeyError of one key, with its code, detail and cause", () => {
  const fail = keyFail("s._domainkey.example.com", "public key");
  const codes: KeyErrorCode[] = [
    "syntax",
    "unsupported",
    "encrypted",
    "wrong-type",
    "too-large",
    "too-small",
    "revoked",
    "invalid",
  ];
  for (const code of codes) {
    const e = fail(code, `it is ${code}`);
    assert.ok(e instanceof KeyError);
    assert.equal(e.code, code);
    assert.equal(e.source, "s._domainkey.example.com");
    assert.equal(e.message, `Cannot use key "s._domainkey.example.com": it is ${code}`);
    assert.ok(!("cause" in e), code);
  }
  const cause = new SyntaxError("truncated DER");
  assert.equal(fail("syntax", "x", cause).cause, cause);
  const inline = keyFail(undefined, "inline key")("too-small", "512 bits");
  assert.equal(inline.message, "Cannot use inline key: 512 bits");
  assert.equal(inline.source, undefined);
});
