/**
 * RFC 8463 Appendix A: the published example, verified and re-signed.
 */
import assert from "node:assert/strict";
import { fromBase64, toBase64 } from "../../lib/bytes.ts";
import { importPrivateKey } from "../../lib/crypto/private_key.ts";
import { selectHeaders, splitMessage } from "../../lib/dkim/header.ts";
import { headerHashInput } from "../../lib/dkim/sign.ts";
import { parseSignature, withoutSignatureValue } from "../../lib/dkim/signature.ts";
import { verifyMessage } from "../../lib/dkim/verify.ts";
import { ZoneResolver } from "../helpers/zone_resolver.ts";

const dir = new URL("../testdata/", import.meta.url);
const message = await Deno.readFile(new URL("rfc8463/message.eml", dir));
const edRecord = (await Deno.readTextFile(new URL("keys/rfc8463.dns", dir))).trim();
const edSeed = (await Deno.readTextFile(new URL("keys/rfc8463.key", dir))).trim();
// RFC 8463 Appendix A.2, the RSA key record (RFC 6376's 1024-bit test key), strings joined.
const rsaRecord = "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR" +
  "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC" +
  "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3" +
  "Ip3G+2kryOTIKT+l/K4w3QIDAQAB";

function zone() {
  return new ZoneResolver({
    "brisbane._domainkey.football.example.com": [edRecord],
    "test._domainkey.football.example.com": [rsaRecord],
  });
}

Deno.test("verifyMessage() passes both signatures of the RFC 8463 Appendix A example", async () => {
  const resolver = zone();
  const verdicts = await verifyMessage(message, { resolver, now: () => 1528637909 });
  assert.deepEqual(
    verdicts.map((v) => [v.result, v.algorithm, v.selector, v.domain, v.identity, v.key?.bits]),
    [
      ["pass", "ed25519-sha256", "brisbane", "football.example.com", "@football.example.com", 256],
      ["pass", "rsa-sha256", "test", "football.example.com", "@football.example.com", 1024],
    ],
  );
  assert.deepEqual(resolver.calls.sort(), [
    "brisbane._domainkey.football.example.com",
    "test._domainkey.football.example.com",
  ]);
});

Deno.test("Ed25519 signing reproduces the RFC 8463 Appendix A signature byte for byte", async () => {
  const key = await importPrivateKey(edSeed, "rfc8463.key");
  assert.equal(toBase64(key.publicKey), edRecord.split("p=")[1]);
  const { fields } = splitMessage(message);
  const sig = parseSignature(fields[0]);
  const data = headerHashInput(
    selectHeaders(fields, sig.headers),
    withoutSignatureValue(sig.field),
    sig.headerCanonicalization,
  );
  // Ed25519 is deterministic (RFC 8032 §5.1.6), so the same input gives the same signature.
  assert.equal(toBase64(await key.sign(data)), sig.b);
});

Deno.test("verifyMessage() fails the RFC 8463 example once a signed header is changed", async () => {
  const tampered = new TextDecoder("latin1").decode(message).replace(
    "Is dinner ready?",
    "Is dinner ready!",
  );
  const bytes = Uint8Array.from(tampered, (c) => c.charCodeAt(0));
  const verdicts = await verifyMessage(bytes, { resolver: zone(), now: () => 1528637909 });
  assert.deepEqual(verdicts.map((v) => [v.result, v.reason]), [
    ["fail", "signature did not verify"],
    ["fail", "signature did not verify"],
  ]);
});

Deno.test("verifyMessage() fails the RFC 8463 example once the body is changed", async () => {
  const tampered = new TextDecoder("latin1").decode(message).replace("hungry", "Hungry");
  const bytes = Uint8Array.from(tampered, (c) => c.charCodeAt(0));
  const verdicts = await verifyMessage(bytes, { resolver: zone(), now: () => 1528637909 });
  assert.deepEqual(verdicts.map((v) => v.reason), [
    "body hash did not verify",
    "body hash did not verify",
  ]);
  assert.equal(fromBase64("2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=").length, 32);
});
