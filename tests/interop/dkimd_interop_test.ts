/**
 * dkimd against the real peers (Debian 12: Mail::DKIM, dkimpy, OpenDKIM): dkimd signs the corpus
 * of awkward messages in all four canonicalization pairs with RSA and Ed25519 and every peer
 * verifies; every peer signs and dkimd verifies; tampered copies fail both ways; and the same
 * with keys served by a real DNS server (knot on 127.0.0.1).
 *
 * Where the outcome is not "pass", it is a peer departing from RFC 6376 (or a peer's missing
 * Ed25519 support), listed in QUIRKS with the reason; dkimd follows the RFC in each case and
 * agrees with the peers that do too. A peer upgrade that changes behaviour shows up here.
 */
import assert from "node:assert/strict";
import { concat, CRLF } from "../../lib/bytes.ts";
import { readOpendkimConf } from "../../lib/config/opendkim_conf.ts";
import { importPrivateKey, type SigningKey } from "../../lib/crypto/private_key.ts";
import { signMessage, type SignOptions } from "../../lib/dkim/sign.ts";
import { parseCanonicalization, parseSignature } from "../../lib/dkim/signature.ts";
import { verifyMessage } from "../../lib/dkim/verify.ts";
import { KeyFileResolver } from "../../lib/dns/key_file.ts";
import { parseNameserverList } from "../../lib/dns/nameserver.ts";
import { StubResolver } from "../../lib/dns/stub.ts";
import { corpus, type CorpusMessage, tamperBody, tamperFrom } from "../helpers/corpus.ts";
import { startDnsServer } from "../helpers/dns_server.ts";
import {
  describePeer,
  generateTestKey,
  type KeySource,
  PEER_CANONICALIZATIONS,
  type PeerAlgorithm,
  type PeerCanonicalization,
  type PeerName,
  type PeerVerdict,
  signAllWithDkimpy,
  signAllWithMailDkim,
  signAllWithOpenDkim,
  type TestKey,
  verifyAllWithDkimpy,
  verifyAllWithMailDkim,
  verifyAllWithOpenDkim,
} from "../helpers/peers.ts";

const DOMAIN = "example.com";
const PEERS: readonly PeerName[] = ["Mail::DKIM", "dkimpy", "OpenDKIM"];
const ALGORITHMS: readonly PeerAlgorithm[] = ["rsa-sha256", "ed25519-sha256"];
const SELECTOR: Record<string, string> = { "rsa-sha256": "rsa", "ed25519-sha256": "ed" };

type Outcome = "pass" | "fail" | "no result" | "unsupported";

interface Quirk {
  /** Who signs and who verifies. */
  readonly signer: "dkimd" | PeerName;
  readonly verifier: "dkimd" | PeerName;
  readonly messages: readonly string[] | "all";
  readonly canonicalization: RegExp;
  readonly algorithm?: PeerAlgorithm;
  readonly outcome: Outcome;
  readonly why: string;
}

const QUIRKS: readonly Quirk[] = [
  // Bare LF: RFC 6376 §3.4.3/§3.4.4 lines end at CRLF only; dkimd and Mail::DKIM hash a bare LF
  // as it is, dkimpy and opendkim -t end the line there.
  ...(["dkimpy", "OpenDKIM"] as const).flatMap((peer): Quirk[] => [
    {
      signer: "dkimd",
      verifier: peer,
      messages: ["lone_lf_cr"],
      canonicalization: /./,
      outcome: "fail",
      why: `${peer} treats a bare LF as a line end (RFC 6376 §3.4: lines end at CRLF)`,
    },
    {
      signer: peer,
      verifier: "dkimd",
      messages: ["lone_lf_cr"],
      canonicalization: /./,
      outcome: "fail",
      why: `${peer} treats a bare LF as a line end (RFC 6376 §3.4: lines end at CRLF)`,
    },
  ]),
  {
    signer: "dkimd",
    verifier: "Mail::DKIM",
    messages: ["no_final_crlf"],
    canonicalization: /\/simple$/,
    outcome: "fail",
    why: "Mail::DKIM's simple body adds no CRLF to a last line without one (RFC 6376 §3.4.3 does)",
  },
  {
    signer: "Mail::DKIM",
    verifier: "dkimd",
    messages: ["no_final_crlf"],
    canonicalization: /\/simple$/,
    outcome: "fail",
    why: "Mail::DKIM's simple body adds no CRLF to a last line without one (RFC 6376 §3.4.3 does)",
  },
  {
    signer: "dkimd",
    verifier: "OpenDKIM",
    messages: ["no_final_crlf"],
    canonicalization: /\/relaxed$/,
    outcome: "no result",
    why: "OpenDKIM's relaxed body needs a final CRLF; without one it reports no signature",
  },
  {
    signer: "dkimd",
    verifier: "OpenDKIM",
    messages: ["folded_headers", "header_spacing"],
    canonicalization: /^simple\//,
    outcome: "fail",
    why: "opendkim -t rebuilds each field as `Name: value`, so simple headers change",
  },
  {
    signer: "OpenDKIM",
    verifier: "dkimd",
    messages: ["folded_headers", "header_spacing"],
    canonicalization: /^simple\//,
    outcome: "fail",
    why: "opendkim -t signs the rebuilt `Name: value` fields, not the message's own",
  },
  {
    signer: "OpenDKIM",
    verifier: "dkimd",
    messages: "all",
    canonicalization: /^simple\//,
    algorithm: "ed25519-sha256",
    outcome: "fail",
    why:
      "OpenDKIM 2.11's Ed25519 signatures with simple headers verify nowhere, not even in OpenDKIM",
  },
];

/** Messages OpenDKIM refuses to sign ("CRLF at end of body missing"). */
function openDkimCannotSign(message: string, c: PeerCanonicalization): boolean {
  return message === "no_final_crlf" && c.endsWith("/relaxed");
}

async function peerAlgorithms(peer: PeerName): Promise<readonly PeerAlgorithm[]> {
  return (await describePeer(peer)).algorithms;
}

async function expected(
  signer: "dkimd" | PeerName,
  verifier: "dkimd" | PeerName,
  message: string,
  c: PeerCanonicalization,
  algorithm: PeerAlgorithm,
): Promise<Outcome> {
  if (verifier !== "dkimd" && !(await peerAlgorithms(verifier)).includes(algorithm)) {
    return "unsupported";
  }
  for (const q of QUIRKS) {
    if (
      q.signer === signer && q.verifier === verifier &&
      (q.messages === "all" || q.messages.includes(message)) &&
      q.canonicalization.test(c) && (q.algorithm === undefined || q.algorithm === algorithm)
    ) {
      return q.outcome;
    }
  }
  return "pass";
}

function outcomeOf(verdicts: readonly PeerVerdict[]): Outcome | string {
  if (verdicts.length === 0) return "no result";
  if (verdicts.length !== 1) return `${verdicts.length} verdicts`;
  if (verdicts[0].result === "pass") return "pass";
  return /unsupported algorithm/.test(verdicts[0].detail) ? "unsupported" : "fail";
}

const VERIFY: Record<
  PeerName,
  (m: readonly Uint8Array[], k: KeySource) => Promise<PeerVerdict[][]>
> = {
  "Mail::DKIM": (m, k) => verifyAllWithMailDkim(m, k),
  dkimpy: (m, k) => verifyAllWithDkimpy(m, k),
  OpenDKIM: (m, k) => verifyAllWithOpenDkim(m, k),
};

interface Keys {
  readonly test: Record<PeerAlgorithm, TestKey>;
  readonly dkimd: Record<string, SigningKey>;
  readonly records: Record<string, string>;
}

let keysPromise: Promise<Keys> | undefined;
function keys(): Promise<Keys> {
  keysPromise ??= (async () => {
    const rsa = await generateTestKey("rsa-sha256");
    const ed = await generateTestKey("ed25519-sha256");
    return {
      test: { "rsa-sha256": rsa, "ed25519-sha256": ed, "rsa-sha1": rsa },
      dkimd: {
        "rsa-sha256": await importPrivateKey(rsa.privatePem, "rsa test key"),
        "ed25519-sha256": await importPrivateKey(ed.privatePem, "ed25519 test key"),
      },
      records: {
        [`rsa._domainkey.${DOMAIN}`]: rsa.record,
        [`ed._domainkey.${DOMAIN}`]: ed.record,
      },
    };
  })();
  return keysPromise;
}

interface Signed {
  readonly message: CorpusMessage;
  readonly canonicalization: PeerCanonicalization;
  readonly algorithm: PeerAlgorithm;
  readonly bytes: Uint8Array;
}

async function signWithDkimd(
  messages: readonly CorpusMessage[],
  algorithm: PeerAlgorithm,
  key: SigningKey,
): Promise<Signed[]> {
  const out: Signed[] = [];
  for (const canonicalization of PEER_CANONICALIZATIONS) {
    for (const message of messages) {
      // No header options: the default list with From oversigned, as `dkimd sign` and the milter.
      const options: SignOptions = {
        domain: DOMAIN,
        selector: SELECTOR[algorithm],
        key,
        canonicalization: parseCanonicalization(canonicalization),
      };
      const [field] = await signMessage(message.bytes, [options]);
      out.push({
        message,
        canonicalization,
        algorithm,
        bytes: concat([field.raw, CRLF, message.bytes]),
      });
    }
  }
  return out;
}

function dkimdResolver(records: Record<string, string>): KeyFileResolver {
  return new KeyFileResolver(new Map(Object.entries(records).map(([n, r]) => [n, [r]])));
}

for (const algorithm of ALGORITHMS) {
  Deno.test(`dkimd ${algorithm} signatures on the corpus verify with Mail::DKIM, dkimpy and OpenDKIM`, async () => {
    const k = await keys();
    const signed = await signWithDkimd(await corpus(), algorithm, k.dkimd[algorithm]);
    const surprises: string[] = [];
    for (const peer of PEERS) {
      const verdicts = await VERIFY[peer](signed.map((s) => s.bytes), { records: k.records });
      for (let i = 0; i < signed.length; i++) {
        const s = signed[i];
        const want = await expected("dkimd", peer, s.message.name, s.canonicalization, algorithm);
        const got = outcomeOf(verdicts[i]);
        if (got !== want) {
          surprises.push(
            `${peer} on ${s.message.name} ${s.canonicalization}: ${got} (${
              verdicts[i][0]?.detail
            }), expected ${want}`,
          );
        }
      }
    }
    assert.deepEqual(surprises, []);
  });
}

const PEER_SIGN: Record<PeerName, typeof signAllWithDkimpy> = {
  "Mail::DKIM": signAllWithMailDkim,
  dkimpy: signAllWithDkimpy,
  OpenDKIM: signAllWithOpenDkim,
};

for (const peer of PEERS) {
  Deno.test(`${peer} signatures on the corpus verify with dkimd; tampered copies fail`, async () => {
    const k = await keys();
    const messages = await corpus();
    const resolver = dkimdResolver(k.records);
    const surprises: string[] = [];
    let checked = 0;
    for (const algorithm of await peerAlgorithms(peer)) {
      if (!ALGORITHMS.includes(algorithm)) continue;
      for (const canonicalization of PEER_CANONICALIZATIONS) {
        const batch = messages.filter((m) =>
          !(peer === "OpenDKIM" && openDkimCannotSign(m.name, canonicalization))
        );
        const signed = await PEER_SIGN[peer](batch.map((m) => m.bytes), {
          domain: DOMAIN,
          selector: SELECTOR[algorithm],
          keyPem: k.test[algorithm].privatePem,
          algorithm,
          canonicalization,
        });
        for (let i = 0; i < batch.length; i++) {
          const want = await expected(peer, "dkimd", batch[i].name, canonicalization, algorithm);
          const verdicts = await verifyMessage(signed[i], { resolver });
          const got = verdicts.length === 0
            ? "no result"
            : verdicts[0].result === "pass"
            ? "pass"
            : "fail";
          checked++;
          if (got !== want) {
            surprises.push(
              `${batch[i].name} ${canonicalization} ${algorithm}: ${got} (${
                verdicts[0]?.reason
              }), expected ${want}`,
            );
          }
          // Whatever the untampered outcome, a tampered copy never passes.
          for (
            const [what, tampered] of [["body", tamperBody(signed[i])], [
              "From",
              tamperFrom(signed[i]),
            ]] as const
          ) {
            const [v] = await verifyMessage(tampered, { resolver });
            if (v?.result === "pass") {
              surprises.push(
                `${batch[i].name} ${canonicalization} ${algorithm}: tampered ${what} passed`,
              );
            }
            if (want === "pass" && v?.result !== "fail") {
              surprises.push(
                `${
                  batch[i].name
                } ${canonicalization} ${algorithm}: tampered ${what} gave ${v?.result}`,
              );
            }
          }
        }
      }
    }
    assert.ok(checked >= 4 * 17, `only ${checked} messages checked`);
    assert.deepEqual(surprises, []);
  });
}

// Issue 13, item 3: what follows l= is content anyone can append (RFC 6376 §8.2). A peer's l=
// signature with a footer appended is policy by default, OpenDKIM's pass with PartialBodyResult
// pass, and a plain pass with nothing appended.
Deno.test("Mail::DKIM and dkimpy l= signatures with appended content: policy by default, pass with PartialBodyResult pass", async () => {
  const k = await keys();
  const resolver = dkimdResolver(k.records);
  const message = (await corpus()).find((m) => m.name === "basic")!.bytes;
  const footer = new TextEncoder().encode("Appended by anyone: pay IBAN XX00 instead\r\n");
  const { config } = readOpendkimConf("PartialBodyResult pass\n", "/etc/dkimd.conf");
  assert.equal(config.partialBodyResult, "pass");
  for (const peer of ["Mail::DKIM", "dkimpy"] as const) {
    for (const canonicalization of ["simple/simple", "relaxed/relaxed"] as const) {
      const [signed] = await PEER_SIGN[peer]([message], {
        domain: DOMAIN,
        selector: "rsa",
        keyPem: k.test["rsa-sha256"].privatePem,
        algorithm: "rsa-sha256",
        canonicalization,
        length: true,
      });
      const where = `${peer} ${canonicalization}`;
      assert.match(new TextDecoder().decode(signed.subarray(0, 800)), /\bl=\d+;/, where);
      const [whole] = await verifyMessage(signed, { resolver });
      assert.equal(whole.result, "pass", `${where}: ${whole.reason}`);
      const appended = concat([signed, footer]);
      const [policy] = await verifyMessage(appended, { resolver });
      assert.equal(policy.result, "policy", where);
      assert.match(
        String(policy.reason),
        new RegExp(`^l=${policy.signature?.length} leaves \\d+ body bytes unsigned$`),
        where,
      );
      assert.ok((policy.unsignedBodyBytes ?? 0) >= footer.length, where);
      const [pass] = await verifyMessage(appended, {
        resolver,
        partialBodyResult: config.partialBodyResult,
      });
      assert.equal(pass.result, "pass", `${where}: ${pass.reason}`);
    }
  }
});

Deno.test("tampered copies of dkimd's signatures fail with every peer", async () => {
  const k = await keys();
  const surprises: string[] = [];
  for (const algorithm of ALGORITHMS) {
    const signed = (await signWithDkimd(await corpus(), algorithm, k.dkimd[algorithm]))
      .filter((s) =>
        s.canonicalization === "relaxed/relaxed" || s.canonicalization === "simple/simple"
      );
    const tampered = signed.flatMap((s) => [tamperBody(s.bytes), tamperFrom(s.bytes)]);
    for (const peer of PEERS) {
      const verdicts = await VERIFY[peer](tampered, { records: k.records });
      verdicts.forEach((v, i) => {
        if (v.some((x) => x.result === "pass")) {
          const s = signed[Math.floor(i / 2)];
          surprises.push(
            `${peer} passed tampered ${
              i % 2 ? "From" : "body"
            } of ${s.message.name} ${s.canonicalization} ${algorithm}`,
          );
        }
      });
    }
  }
  assert.deepEqual(surprises, []);
});

/** A message with the fields dkimd's default list adds to OpenDKIM's: Message-ID and MIME. */
const MIME_MESSAGE = new TextEncoder().encode(
  "Received: from client.example.com by mx.example.com; Fri, 27 Nov 2026 12:00:01 +0000\r\n" +
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

/** OpenDKIM's default SignHeaders (libopendkim's `dkim_should_signhdrs`), for the control. */
const OPENDKIM_SIGN_HEADERS = [
  "From",
  "Reply-To",
  "Subject",
  "Date",
  "To",
  "Cc",
  "Resent-Date",
  "Resent-From",
  "Resent-Sender",
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

/** Changes made to a signed message after signing, each by editing its text. */
const AFTER_SIGNING: readonly { readonly name: string; readonly change: (t: string) => string }[] =
  [
    { name: "untouched", change: (t) => t },
    {
      name: "relayed (Received, Authentication-Results, Delivered-To added on top)",
      change: (t) =>
        "Received: from mx.example.com by mx.example.org; Fri, 27 Nov 2026 12:00:02 +0000\r\n" +
        "Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=example.com\r\n" +
        `Delivered-To: bob@example.org\r\n${t}`,
    },
    { name: "a second From on top", change: (t) => `From: CEO <ceo@example.com>\r\n${t}` },
    {
      name: "a second From below the signed one",
      change: (t) => t.replace("\r\nTo:", "\r\nFrom: CEO <ceo@example.com>\r\nTo:"),
    },
    // Fields the signer did not oversign: a Reply-To the message lacked is not in h=, and a
    // Subject above the signed one is not the instance h= names; only oversigning catches these.
    {
      name: "a Reply-To added (absent when signed)",
      change: (t) => t.replace("\r\nTo:", "\r\nReply-To: <thief@example.net>\r\nTo:"),
    },
    { name: "a second Subject on top", change: (t) => `Subject: Urgent\r\n${t}` },
    {
      name: "Message-ID rewritten",
      change: (t) => t.replace("<invoice-1@example.com>", "<invoice-2@example.com>"),
    },
    { name: "Content-Type rewritten", change: (t) => t.replace("text/plain", "text/html") },
    {
      name: "a Content-Transfer-Encoding added below the signed one",
      change: (t) =>
        t.replace("\r\nX-Mailer:", "\r\nContent-Transfer-Encoding: base64\r\nX-Mailer:"),
    },
    {
      name: "a MIME-Version added below the signed one",
      change: (t) => t.replace("\r\nX-Mailer:", "\r\nMIME-Version: 2.0\r\nX-Mailer:"),
    },
  ];

/** Each change of {@link AFTER_SIGNING} applied to `signed`, with every peer's outcome. */
async function afterSigning(
  signed: Uint8Array,
  algorithm: PeerAlgorithm,
  records: Record<string, string>,
): Promise<Record<string, Record<string, Outcome | string>>> {
  const text = new TextDecoder("latin1").decode(signed);
  const variants = AFTER_SIGNING.map((a) => {
    const changed = a.change(text);
    assert.ok(a.name === "untouched" || changed !== text, `${a.name} changed nothing`);
    return Uint8Array.from(changed, (c) => c.charCodeAt(0));
  });
  const out: Record<string, Record<string, Outcome | string>> = {};
  for (const peer of PEERS) {
    if (!(await peerAlgorithms(peer)).includes(algorithm)) continue;
    const verdicts = await VERIFY[peer](variants, { records });
    out[peer] = Object.fromEntries(AFTER_SIGNING.map((a, i) => [a.name, outcomeOf(verdicts[i])]));
  }
  return out;
}

for (const algorithm of ALGORITHMS) {
  Deno.test(`dkimd ${algorithm} with the default header list: every peer verifies it, and fails a second From or a changed Message-ID or MIME field`, async () => {
    const k = await keys();
    const [field] = await signMessage(MIME_MESSAGE, [{
      domain: DOMAIN,
      selector: SELECTOR[algorithm],
      key: k.dkimd[algorithm],
    }]);
    const h = parseSignature(field).headers.map((n) => n.toLowerCase());
    assert.deepEqual(h, [
      "from",
      "from",
      "subject",
      "date",
      "message-id",
      "to",
      "mime-version",
      "content-type",
      "content-transfer-encoding",
    ]);
    const got = await afterSigning(
      concat([field.raw, CRLF, MIME_MESSAGE]),
      algorithm,
      k.records,
    );
    assert.ok(Object.keys(got).length >= (algorithm === "rsa-sha256" ? 3 : 2), "peers ran");
    for (const [peer, outcomes] of Object.entries(got)) {
      assert.deepEqual(outcomes, {
        "untouched": "pass",
        "relayed (Received, Authentication-Results, Delivered-To added on top)": "pass",
        "a second From on top": "fail",
        "a second From below the signed one": "fail",
        "a Reply-To added (absent when signed)": "pass",
        "a second Subject on top": "pass",
        "Message-ID rewritten": "fail",
        "Content-Type rewritten": "fail",
        "a Content-Transfer-Encoding added below the signed one": "fail",
        "a MIME-Version added below the signed one": "fail",
      }, peer);
    }
  });
}

Deno.test("the control: with OpenDKIM's former default list and no oversigning, peers pass a From on top and a changed Message-ID or MIME field", async () => {
  const k = await keys();
  const algorithm = "rsa-sha256";
  const [field] = await signMessage(MIME_MESSAGE, [{
    domain: DOMAIN,
    selector: SELECTOR[algorithm],
    key: k.dkimd[algorithm],
    signHeaders: OPENDKIM_SIGN_HEADERS,
    oversignHeaders: [],
  }]);
  const got = await afterSigning(concat([field.raw, CRLF, MIME_MESSAGE]), algorithm, k.records);
  assert.deepEqual(Object.keys(got), PEERS);
  for (const [peer, outcomes] of Object.entries(got)) {
    assert.deepEqual(outcomes, {
      "untouched": "pass",
      "relayed (Received, Authentication-Results, Delivered-To added on top)": "pass",
      // dkimpy reads one more From than h= lists whatever the signer did (its fix for Debian
      // bug #644046), as if every signature oversigned From; the other two do not.
      "a second From on top": peer === "dkimpy" ? "fail" : "pass",
      // Below the signed one, the added From is the instance h= names (RFC 6376 §5.4.2).
      "a second From below the signed one": "fail",
      "a Reply-To added (absent when signed)": "pass",
      "a second Subject on top": "pass",
      "Message-ID rewritten": "pass",
      "Content-Type rewritten": "pass",
      "a Content-Transfer-Encoding added below the signed one": "pass",
      "a MIME-Version added below the signed one": "pass",
    }, peer);
  }
});

Deno.test("keys from a real DNS server: dkimd and the peers verify each other through knot", async () => {
  const rsa = await generateTestKey("rsa-sha256");
  const big = await generateTestKey("rsa-sha256", 4096);
  const ed = await generateTestKey("ed25519-sha256");
  const records = {
    [`rsa._domainkey.${DOMAIN}`]: [rsa.record],
    [`big._domainkey.${DOMAIN}`]: [big.record],
    [`ed._domainkey.${DOMAIN}`]: [ed.record],
  };
  const server = await startDnsServer({ zone: DOMAIN, records });
  try {
    const [basic] = (await corpus()).filter((m) => m.name === "large_multipart");
    assert.ok(basic, "large_multipart.eml is in the corpus");
    const signed = await signMessage(basic.bytes, [
      { domain: DOMAIN, selector: "rsa", key: await importPrivateKey(rsa.privatePem) },
      { domain: DOMAIN, selector: "big", key: await importPrivateKey(big.privatePem) },
      { domain: DOMAIN, selector: "ed", key: await importPrivateKey(ed.privatePem) },
    ]);
    const message = concat([...signed.flatMap((f) => [f.raw, CRLF]), basic.bytes]);
    const source: KeySource = { nameserver: server.nameserver };
    const py = (await verifyAllWithDkimpy([message], source))[0];
    assert.deepEqual(py.map((v) => v.result), ["pass", "pass", "pass"], JSON.stringify(py));
    const odk = (await verifyAllWithOpenDkim([message], source))[0];
    assert.deepEqual(odk.map((v) => v.result), ["pass", "pass", "pass"], JSON.stringify(odk));
    const perl = (await verifyAllWithMailDkim([message], source))[0];
    assert.deepEqual(perl.slice(0, 2).map((v) => v.result), ["pass", "pass"], JSON.stringify(perl));

    // And the other way: dkimpy signs with each key, dkimd verifies through its stub resolver.
    const resolver = new StubResolver({ nameservers: parseNameserverList(server.nameserver) });
    for (const [selector, key] of [["rsa", rsa], ["big", big], ["ed", ed]] as const) {
      const [peerSigned] = await signAllWithDkimpy([basic.bytes], {
        domain: DOMAIN,
        selector,
        keyPem: key.privatePem,
        algorithm: key.algorithm,
        canonicalization: "relaxed/relaxed",
      });
      const [v] = await verifyMessage(peerSigned, { resolver });
      assert.equal(v.result, "pass", `${selector}: ${v.reason}`);
      assert.equal(v.key?.bits, selector === "big" ? 4096 : selector === "rsa" ? 2048 : 256);
    }
    // A selector the zone does not have: NXDOMAIN from a real server is "no key" (permerror).
    const renamed = concat([
      new TextEncoder().encode(
        new TextDecoder("latin1").decode(signed[0].raw).replace("s=rsa;", "s=gone;"),
      ),
      CRLF,
      basic.bytes,
    ]);
    const [gone] = await verifyMessage(renamed, { resolver });
    assert.deepEqual([gone.result, gone.reason], ["permerror", "no key for signature"]);
  } finally {
    await server.close();
  }
});
