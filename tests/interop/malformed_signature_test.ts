/**
 * A DKIM-Signature field with a syntax error (a required tag missing, a tag twice, a value that is
 * not base64, `i=` outside `d=`, `h=` without From, `x=` not after `t=`), compared with Debian's
 * opendkim on the same opendkim.conf and messages through the milter, with dkimpy's and
 * Mail::DKIM's verdicts on the same bytes as evidence.
 *
 * The standard: RFC 6376 §6.1.1, "any inconsistency or unexpected values MUST cause the header
 * field to be completely ignored and the Verifier to return PERMFAIL (signature syntax error)",
 * naming missing required tags, `i=` not within `d=` ("domain mismatch") and `h=` without From
 * ("From field not signed"); RFC 6376 §6.1: a verifier "SHOULD NOT treat a message that has one
 * or more bad signatures and no good signatures differently from a message with no signature at
 * all". So dkimd reports `dkim=permerror` and, the field ignored, applies On-NoSignature, as for
 * an unknown `a=` (unknown_algorithm_test.ts): such a field proves nothing, and whoever could
 * write it could as well have left it out. A signature that was evaluated and failed (a body
 * changed in transit) stays On-BadSignature's.
 *
 * OpenDKIM 2.11 has no single rule (the table below is what Debian's build does): a field
 * without `b=`, `d=`, `h=` or `s=` gets no Authentication-Results entry and On-BadSignature; one
 * with `d=` twice or a `bh=` that is not base64 gets `dkim=fail` and On-BadSignature; one
 * without `bh=`, with `i=` outside `d=`, `h=` without From or `x=` before `t=` gets
 * `dkim=permerror` and no action at all (DKIM_STAT_CANTVRFY, as for an unknown `a=`); a `b=` with
 * characters outside base64 is decoded skipping them and passes (Mail::DKIM does the same;
 * dkimpy and dkimd refuse it). It never applies On-NoSignature to any of them. The departures
 * are asserted here and written in the On-BadSignature and On-NoSignature `opendkim` fields.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { loadKey, MESSAGE, recordFor, signed } from "../helpers/dkim_fixtures.ts";
import { inboundMessage, withVerifyingPair } from "../helpers/verifying_pair.ts";
import { HAVE_OPENDKIM, type Observed } from "../helpers/opendkim_milter.ts";
import { verifyAllWithDkimpy, verifyAllWithMailDkim } from "../helpers/peers.ts";

/** MESSAGE signed by example.com's `rsa` key (its signature field first). */
async function goodMessage(): Promise<string> {
  return latin1(
    await signed(MESSAGE, [{
      domain: "example.com",
      selector: "rsa",
      key: await loadKey("rsa2048_pkcs8.pem"),
      canonicalization: ["relaxed", "relaxed"],
      signHeaders: ["From", "To", "Subject", "Date"],
    }], Math.floor(Date.now() / 1000)),
  );
}

/** The signed message with its signature's tag list (`[name, value]` pairs) rewritten. */
function rewriteTags(
  message: string,
  edit: (tags: [string, string][]) => [string, string][],
): Uint8Array {
  const end = message.search(/\r\n(?![ \t])/);
  const field = message.slice(0, end);
  const colon = field.indexOf(":");
  const tags = field.slice(colon + 1).split(";").filter((t) => t.trim() !== "").map((t) => {
    const eq = t.indexOf("=");
    return [t.slice(0, eq), t.slice(eq + 1)] as [string, string];
  });
  const text = edit(tags).map(([n, v]) => `${n}=${v}`).join(";");
  return fromLatin1(`${field.slice(0, colon + 1)}${text}${message.slice(end)}`);
}

const named = (n: string) => ([name]: [string, string]) => name.trim() === n;
const without = (n: string) => (tags: [string, string][]) => tags.filter((t) => !named(n)(t));
const setting = (n: string, value: (old: string) => string) => (tags: [string, string][]) =>
  tags.map((t): [string, string] => named(n)(t) ? [t[0], value(t[1])] : t);

/** What Debian's opendkim 2.11 does with each malformed field (see the module comment). */
interface Case {
  readonly name: string;
  readonly edit: (tags: [string, string][]) => [string, string][];
  /** OpenDKIM's dkim= word, or undefined when it adds no Authentication-Results entry. */
  readonly opendkim: "permerror" | "fail" | "pass" | undefined;
  /** Whether OpenDKIM applies On-BadSignature to it. */
  readonly badSignature: boolean;
}

const CASES: readonly Case[] = [
  { name: "no b=", edit: without("b"), opendkim: undefined, badSignature: true },
  { name: "no d=", edit: without("d"), opendkim: undefined, badSignature: true },
  { name: "no h=", edit: without("h"), opendkim: undefined, badSignature: true },
  { name: "no s=", edit: without("s"), opendkim: undefined, badSignature: true },
  {
    name: "d= twice",
    edit: (tags) => [...tags.slice(0, 1), [" d", "example.com"], ...tags.slice(1)],
    opendkim: "fail",
    badSignature: true,
  },
  {
    name: "bh= not base64",
    edit: setting("bh", (v) => `!!!${v}`),
    opendkim: "fail",
    badSignature: true,
  },
  { name: "no bh=", edit: without("bh"), opendkim: "permerror", badSignature: false },
  {
    name: "i= not within d=",
    edit: (tags) => [...tags, [" i", "@example.org"]],
    opendkim: "permerror",
    badSignature: false,
  },
  {
    name: "h= without From",
    edit: setting("h", () => "To:Subject:Date"),
    opendkim: "permerror",
    badSignature: false,
  },
  {
    name: "x= before t=",
    edit: (tags) => {
      const t = Number(tags.find(named("t"))![1]);
      return [...tags, [" x", String(t - 100)]];
    },
    opendkim: "permerror",
    badSignature: false,
  },
  {
    name: "b= with characters outside base64",
    edit: setting("b", (v) => `!!!${v}`),
    opendkim: "pass",
    badSignature: false,
  },
];

/** The dkim= words of the Authentication-Results entries a milter added. */
const dkimWords = (o: Observed) =>
  o.changes.filter((c) => / Authentication-Results: /.test(c)).map((c) =>
    /dkim=(\w+)/.exec(c)?.[1]
  );

/** The good message with its body changed: a signature that was evaluated and failed. */
const tampered = (good: string) => fromLatin1(good.replace("\r\n\r\n", "\r\n\r\nX"));

Deno.test({
  name:
    "malformed DKIM-Signature with On-BadSignature reject: dkimd says permerror and accepts (RFC 6376 §6.1.1 ignores the field); OpenDKIM rejects some, accepts others; a failed signature is rejected by both",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withVerifyingPair("dkimd-od18m-", ["On-BadSignature reject"], async (send) => {
      const good = await goodMessage();
      for (const [i, c] of CASES.entries()) {
        const r = await send(inboundMessage(rewriteTags(good, c.edit), `MB${i}`));
        assert.deepEqual(dkimWords(r.dkimd), ["permerror"], c.name);
        assert.equal(r.dkimd.final, "accept", c.name);
        // Departure: OpenDKIM's own mix (module comment).
        assert.deepEqual(dkimWords(r.opendkim), c.opendkim ? [c.opendkim] : [], c.name);
        assert.equal(r.opendkim.final, c.badSignature ? "reject 550 5.7.0" : "accept", c.name);
      }
      // What On-BadSignature is for: both reject a signature that does not verify.
      const bad = await send(inboundMessage(tampered(good), "MB99"));
      assert.deepEqual(dkimWords(bad.dkimd), ["fail"]);
      assert.deepEqual(dkimWords(bad.opendkim), ["fail"]);
      assert.equal(bad.dkimd.final, "reject 550 5.7.1");
      assert.equal(bad.opendkim.final, "reject 550 5.7.0");
    });
  },
});

Deno.test({
  name:
    "malformed DKIM-Signature with On-NoSignature reject: dkimd rejects it as unsigned mail; OpenDKIM accepts every one (departure)",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withVerifyingPair("dkimd-od18m-", ["On-NoSignature reject"], async (send) => {
      const unsigned = await send(inboundMessage(MESSAGE, "MN0"));
      assert.equal(unsigned.opendkim.final, "reject 550 5.7.0");
      assert.equal(unsigned.dkimd.final, "reject 550 5.7.1");
      const good = await goodMessage();
      for (const [i, c] of CASES.entries()) {
        const r = await send(inboundMessage(rewriteTags(good, c.edit), `MN${i + 1}`));
        assert.deepEqual(dkimWords(r.dkimd), ["permerror"], c.name);
        assert.equal(r.dkimd.final, "reject 550 5.7.1", c.name);
        assert.deepEqual(dkimWords(r.opendkim), c.opendkim ? [c.opendkim] : [], c.name);
        assert.equal(r.opendkim.final, "accept", c.name);
      }
      // A failed signature is a signature: On-NoSignature does not apply, in both.
      const bad = await send(inboundMessage(tampered(good), "MN99"));
      assert.equal(bad.dkimd.final, "accept");
      assert.equal(bad.opendkim.final, "accept");
    });
  },
});

Deno.test("malformed DKIM-Signature: dkimpy refuses each as a validation or format error, never as a failed hash; Mail::DKIM as invalid where it checks the syntax", async () => {
  const key = await loadKey("rsa2048_pkcs8.pem");
  const records = { "rsa._domainkey.example.com": recordFor(key) };
  const good = await goodMessage();
  const messages = CASES.map((c) => rewriteTags(good, c.edit));
  const py = await verifyAllWithDkimpy([...messages, tampered(good)], { records });
  const perl = await verifyAllWithMailDkim([...messages, tampered(good)], { records });
  const report = CASES.map((c, i) =>
    `${c.name}: dkimpy ${py[i][0]?.detail}; Mail::DKIM ${perl[i][0]?.detail}`
  ).join("\n");
  for (const [i, c] of CASES.entries()) {
    // dkimpy has only pass and fail; its reason says what kind of failure.
    assert.equal(py[i][0]?.result, "fail", `${c.name}\n${report}`);
    assert.doesNotMatch(py[i][0].detail, /body hash mismatch/, `${c.name}\n${report}`);
  }
  // Those dkimpy refuses before any hash: the syntax checks of RFC 6376 §6.1.1.
  for (const n of ["no b=", "no d=", "no h=", "no s=", "no bh=", "i= not within d="]) {
    const i = CASES.findIndex((c) => c.name === n);
    assert.match(py[i][0].detail, /ValidationError: (missing|i= domain)/, `${n}\n${report}`);
  }
  assert.match(py[CASES.findIndex((c) => c.name === "d= twice")][0].detail, /MessageFormatError/);
  // Mail::DKIM: "invalid" (its word for a signature it cannot evaluate) where it checks the
  // syntax; elsewhere it goes on to the hash and says "fail" (no evidence either way).
  const perlOf = (n: string) => perl[CASES.findIndex((c) => c.name === n)];
  for (const n of ["no d=", "no s=", "i= not within d="]) {
    assert.equal(perlOf(n)[0]?.result, "invalid", `${n}\n${report}`);
  }
  // The tampered message: a failed hash in both, the case On-BadSignature is for.
  assert.match(py[CASES.length][0].detail, /body hash mismatch/);
  assert.equal(perl[CASES.length][0].result, "fail");
});
