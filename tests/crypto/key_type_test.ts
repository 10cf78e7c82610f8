import assert from "node:assert/strict";
import { DKIM_KEY_TYPES, unsupportedAlgorithm } from "../../lib/crypto/key_type.ts";

Deno.test("unsupportedAlgorithm() names each key kind found in key files that DKIM cannot use", () => {
  const cases: [string, string][] = [
    ["1.2.840.10045.2.1", "it is an EC key"],
    ["1.2.840.10040.4.1", "it is a DSA key"],
    ["1.2.840.113549.1.1.10", "it is an RSA-PSS key"],
    ["1.3.101.110", "it is an X25519 key"],
    ["1.3.101.111", "it is an X448 key"],
    ["1.3.101.113", "it is an Ed448 key"],
    ["1.2.840.113549.1.3.1", "it is a DH key"],
    ["1.2.840.10046.2.1", "it is a DH key"],
    ["1.2.3.4", 'its algorithm "1.2.3.4" is not RSA or Ed25519'],
    ["", 'its algorithm "" is not RSA or Ed25519'],
  ];
  for (const [oid, words] of cases) {
    assert.equal(unsupportedAlgorithm(oid), `${words}; ${DKIM_KEY_TYPES}`, oid);
  }
  assert.equal(DKIM_KEY_TYPES, "DKIM keys are RSA (RFC 6376) or Ed25519 (RFC 8463)");
});
