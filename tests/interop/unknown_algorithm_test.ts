/**
 * A DKIM-Signature whose `a=` names an algorithm the verifier does not implement (`rsa-sha512`,
 * `foo-bar`), compared with Debian's opendkim on the same opendkim.conf and messages through the
 * milter, with dkimpy's and Mail::DKIM's verdicts on the same bytes as evidence.
 *
 * The standards: RFC 6376 §3.5 leaves `a=` open ("x-sig-a-tag-k", "x-sig-a-tag-h": "for later
 * extension"), and RFC 8463 used that door for ed25519-sha256, so a verifier meets algorithms it
 * does not know; RFC 6376 §6.1.1: "any inconsistency or unexpected values MUST cause the header
 * field to be completely ignored and the Verifier to return PERMFAIL"; RFC 8601 §2.7.1: permerror
 * is "some error that is unrecoverable ... A later attempt is unlikely to produce a final result";
 * RFC 8301 §3.1 puts rsa-sha1 in the same place for a verifier. So the result is
 * `dkim=permerror` (as OpenDKIM says), and the ignored signature leaves the message as if
 * unsigned: RFC 6376 §6.1, a verifier "SHOULD NOT treat a message that has one or more bad
 * signatures and no good signatures differently from a message with no signature at all".
 * dkimd applies On-NoSignature to it. OpenDKIM 2.11 applies no action at all
 * (dkim_eom() returns DKIM_STAT_CANTVRFY, which mlfi_eom() only reports): the departure, asserted
 * below and written in On-NoSignature's `opendkim` field, is that with `On-NoSignature reject`
 * OpenDKIM lets a message through when its only signature has a made-up `a=`, where dkimd rejects
 * it as it rejects the unsigned message.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { loadKey, MESSAGE, recordFor, signed } from "../helpers/dkim_fixtures.ts";
import { inboundMessage, withVerifyingPair } from "../helpers/verifying_pair.ts";
import { HAVE_OPENDKIM, type Observed } from "../helpers/opendkim_milter.ts";
import { verifyWithDkimpy, verifyWithMailDkim } from "../helpers/peers.ts";

/** MESSAGE signed by example.com's `rsa` key. */
async function goodMessage(): Promise<Uint8Array> {
  return await signed(MESSAGE, [{
    domain: "example.com",
    selector: "rsa",
    key: await loadKey("rsa2048_pkcs8.pem"),
    canonicalization: ["relaxed", "relaxed"],
    signHeaders: ["From", "To", "Subject", "Date"],
  }], Math.floor(Date.now() / 1000));
}

/** The signed message with its `a=` renamed to `algorithm`. */
async function withAlgorithm(algorithm: string): Promise<Uint8Array> {
  const text = latin1(await goodMessage());
  assert.match(text, /a=rsa-sha256/);
  return fromLatin1(text.replace("a=rsa-sha256", `a=${algorithm}`));
}

/** The Authentication-Results entries a milter added, reduced. */
const results = (o: Observed) =>
  o.changes.filter((c) => / Authentication-Results: /.test(c)).map((c) => c.replace(/^.*?: /, ""));

const UNKNOWN = ["rsa-sha512", "foo-bar"];

Deno.test({
  name:
    "unknown a=: dkim=permerror in both; with On-BadSignature reject both accept (the signature is ignored, RFC 6376 §6.1.1)",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withVerifyingPair(
      "dkimd-od18a-",
      ["On-BadSignature reject", "On-KeyNotFound reject"],
      async (send) => {
        for (const [i, algorithm] of UNKNOWN.entries()) {
          const r = await send(inboundMessage(await withAlgorithm(algorithm), `IN${i}`));
          assert.deepEqual(r.dkimd, r.opendkim, algorithm);
          assert.equal(r.dkimd.final, "accept");
          assert.deepEqual(results(r.dkimd), [
            "mx.example.net; dkim=permerror header.d=example.com header.s=rsa",
          ]);
        }
        // Beside a good signature the unknown one changes nothing: pass, and permerror reported.
        // signed() puts the signature on top of MESSAGE: that field, over a well-signed copy.
        const unknown = latin1(await withAlgorithm("rsa-sha512"));
        const field = unknown.slice(0, unknown.length - MESSAGE.length);
        const two = fromLatin1(field + latin1(await goodMessage()));
        const r = await send(inboundMessage(two, "IN9"));
        assert.deepEqual(r.dkimd, r.opendkim);
        assert.equal(r.dkimd.final, "accept");
        assert.match(results(r.dkimd)[0], /dkim=permerror .*dkim=pass|dkim=pass .*dkim=permerror/);
      },
    );
  },
});

Deno.test({
  name:
    "unknown a= departure: with On-NoSignature reject, OpenDKIM accepts a message whose only signature has a made-up a=; dkimd rejects it as it rejects unsigned mail",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withVerifyingPair("dkimd-od18a-", ["On-NoSignature reject"], async (send) => {
      const unsigned = await send(inboundMessage(MESSAGE, "IN1"));
      assert.equal(unsigned.opendkim.final, "reject 550 5.7.0");
      assert.equal(unsigned.dkimd.final, "reject 550 5.7.1");
      for (const [i, algorithm] of UNKNOWN.entries()) {
        const r = await send(inboundMessage(await withAlgorithm(algorithm), `IN${i + 2}`));
        // OpenDKIM: the field is reported and nothing is decided (DKIM_STAT_CANTVRFY).
        assert.equal(r.opendkim.final, "accept");
        assert.deepEqual(results(r.opendkim), [
          "mx.example.net; dkim=permerror header.d=example.com header.s=rsa",
        ]);
        // dkimd: the same result, and the message counts as unsigned.
        assert.equal(r.dkimd.final, "reject 550 5.7.1");
      }
    });
  },
});

Deno.test("unknown a=: dkimpy and Mail::DKIM refuse it too, as a signature error, not as a bad signature", async () => {
  const key = await loadKey("rsa2048_pkcs8.pem");
  const records = { "rsa._domainkey.example.com": recordFor(key) };
  for (const algorithm of UNKNOWN) {
    const message = await withAlgorithm(algorithm);
    const [py] = await verifyWithDkimpy(message, { records });
    assert.equal(py.result, "fail", algorithm);
    assert.match(py.detail, /unknown signature algorithm/);
    const [perl] = await verifyWithMailDkim(message, { records });
    assert.equal(perl.result, "invalid", `${algorithm}: ${perl.detail}`);
    // Mail::DKIM's word for a signature it cannot evaluate (its "fail" is a bad signature).
    assert.equal(perl.detail, `invalid (unsupported algorithm ${algorithm})`);
  }
});
