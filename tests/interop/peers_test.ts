/**
 * Proves the interop harness (tests/helpers/peers.ts) peer to peer: what one real DKIM
 * implementation signs, the others verify, over the awkward corpus in tests/testdata/messages
 * and all four canonicalization pairs (RFC 6376 §3.4); tampered copies fail everywhere. Where
 * the peers themselves disagree, `PEER_DISAGREEMENTS` says so and the tests hold them to it, so
 * a peer upgrade that changes behaviour shows up here.
 */

import assert from "node:assert/strict";
import { concat, utf8 } from "../../lib/bytes.ts";
import { bodyOffset, corpus, MESSAGES_DIR, tamperBody, tamperFrom } from "../helpers/corpus.ts";
import { startFakeDnsServer } from "../helpers/fake_dns_server.ts";
import {
  describePeer,
  generateTestKey,
  type KeySource,
  PEER_CANONICALIZATIONS,
  type PeerAlgorithm,
  type PeerCanonicalization,
  PeerError,
  type PeerInfo,
  type PeerName,
  type PeerSignOptions,
  type PeerVerdict,
  signAllWithDkimpy,
  signAllWithMailDkim,
  signAllWithOpenDkim,
  signWithOpenDkim,
  type TestKey,
  verifyAllWithDkimpy,
  verifyAllWithMailDkim,
  verifyAllWithOpenDkim,
} from "../helpers/peers.ts";

const DOMAIN = "example.com";
const PEERS: readonly PeerName[] = ["Mail::DKIM", "dkimpy", "OpenDKIM"];

type Verify = (messages: readonly Uint8Array[], keys: KeySource) => Promise<PeerVerdict[][]>;
type SignAll = (messages: readonly Uint8Array[], sign: PeerSignOptions) => Promise<Uint8Array[]>;

const VERIFY: Record<PeerName, Verify> = {
  "Mail::DKIM": (m, k) => verifyAllWithMailDkim(m, k),
  dkimpy: (m, k) => verifyAllWithDkimpy(m, k),
  OpenDKIM: (m, k) => verifyAllWithOpenDkim(m, k),
};
const SIGN: Record<PeerName, SignAll> = {
  "Mail::DKIM": (m, s) => signAllWithMailDkim(m, s),
  dkimpy: (m, s) => signAllWithDkimpy(m, s),
  OpenDKIM: (m, s) => signAllWithOpenDkim(m, s),
};

const SIGN_NAMES: Record<PeerName, string> = {
  "Mail::DKIM": "signAllWithMailDkim",
  dkimpy: "signAllWithDkimpy",
  OpenDKIM: "signAllWithOpenDkim",
};

/**
 * What a verifier reports for one signature: pass, a non-pass verdict, no verdict at all, or
 * "unsupported" for an algorithm the verifier says it cannot check.
 */
type Outcome = "pass" | "fail" | "no result" | "unsupported";

/**
 * Corpus messages on which the peers (Debian 12 versions) disagree with each other. These are
 * facts about the peers, not bugs in the harness: each rule was observed and is explained.
 * `pairs` lists [signer, verifier]; a pair not covered by any rule must pass.
 */
const PEER_DISAGREEMENTS: readonly {
  messages: readonly string[] | "all";
  canonicalization: RegExp;
  algorithm?: PeerAlgorithm;
  pairs: readonly (readonly [PeerName, PeerName])[];
  outcome: "fail" | "no result";
  why: string;
}[] = [
  {
    messages: ["folded_headers", "header_spacing"],
    canonicalization: /^simple\//,
    pairs: [
      ["Mail::DKIM", "OpenDKIM"],
      ["dkimpy", "OpenDKIM"],
      ["OpenDKIM", "Mail::DKIM"],
      ["OpenDKIM", "dkimpy"],
    ],
    outcome: "fail",
    why: "opendkim -t rebuilds each field as `Name: value`, changing simple-canonical headers",
  },
  {
    messages: ["lone_lf_cr"],
    canonicalization: /./,
    pairs: [
      ["Mail::DKIM", "dkimpy"],
      ["Mail::DKIM", "OpenDKIM"],
      ["dkimpy", "Mail::DKIM"],
      ["OpenDKIM", "Mail::DKIM"],
    ],
    outcome: "fail",
    why: "Mail::DKIM hashes a bare LF as is; dkimpy and opendkim -t end the line there",
  },
  {
    messages: ["lone_lf_cr"],
    canonicalization: /\/relaxed$/,
    pairs: [
      ["dkimpy", "OpenDKIM"],
      ["OpenDKIM", "dkimpy"],
    ],
    outcome: "fail",
    why: "dkimpy and OpenDKIM treat the bare CR differently under relaxed body canonicalization",
  },
  {
    messages: ["no_final_crlf"],
    canonicalization: /\/simple$/,
    pairs: [
      ["Mail::DKIM", "dkimpy"],
      ["Mail::DKIM", "OpenDKIM"],
      ["dkimpy", "Mail::DKIM"],
      ["OpenDKIM", "Mail::DKIM"],
    ],
    outcome: "fail",
    why: "Mail::DKIM's simple body adds no CRLF to a last line without one (RFC 6376 §3.4.3 does)",
  },
  {
    messages: ["no_final_crlf"],
    canonicalization: /\/relaxed$/,
    pairs: [
      ["Mail::DKIM", "OpenDKIM"],
      ["dkimpy", "OpenDKIM"],
    ],
    outcome: "no result",
    why: "OpenDKIM's relaxed body needs a final CRLF; without one it reports no signature",
  },
  {
    messages: "all",
    canonicalization: /^simple\//,
    algorithm: "ed25519-sha256",
    pairs: [
      ["OpenDKIM", "Mail::DKIM"],
      ["OpenDKIM", "dkimpy"],
      ["OpenDKIM", "OpenDKIM"],
    ],
    outcome: "fail",
    why: "OpenDKIM 2.11's Ed25519 signatures under simple header canonicalization never verify",
  },
];

/** Messages OpenDKIM refuses to sign, with the reason it gives. */
const OPENDKIM_CANNOT_SIGN: readonly { message: string; canonicalization: RegExp; why: RegExp }[] =
  [{
    message: "no_final_crlf",
    canonicalization: /\/relaxed$/,
    why: /CRLF at end of body missing/,
  }];

function expectedOutcome(
  message: string,
  canonicalization: PeerCanonicalization,
  signer: PeerName,
  verifier: PeerName,
  algorithm: PeerAlgorithm,
  verifierAlgorithms: readonly PeerAlgorithm[],
): Outcome {
  if (!verifierAlgorithms.includes(algorithm)) return "unsupported";
  for (const rule of PEER_DISAGREEMENTS) {
    if (
      (rule.messages === "all" || rule.messages.includes(message)) &&
      (rule.algorithm === undefined || rule.algorithm === algorithm) &&
      rule.canonicalization.test(canonicalization) &&
      rule.pairs.some(([s, v]) => s === signer && v === verifier)
    ) {
      return rule.outcome;
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

const peerInfo = new Map<PeerName, Promise<PeerInfo>>();
/** Each peer's algorithms, asked once per test run. */
async function algorithmsOf(peer: PeerName): Promise<readonly PeerAlgorithm[]> {
  let p = peerInfo.get(peer);
  if (!p) peerInfo.set(peer, p = describePeer(peer));
  return (await p).algorithms;
}

const keyPromises = new Map<string, Promise<TestKey>>();
function testKey(algorithm: PeerAlgorithm, bits = 2048): Promise<TestKey> {
  const id = `${algorithm}/${bits}`;
  let p = keyPromises.get(id);
  if (!p) keyPromises.set(id, p = generateTestKey(algorithm, bits));
  return p;
}

function signOptions(
  key: TestKey,
  selector: string,
  canonicalization: PeerCanonicalization,
  extra: Partial<PeerSignOptions> = {},
): PeerSignOptions {
  return {
    domain: DOMAIN,
    selector,
    keyPem: key.privatePem,
    algorithm: key.algorithm,
    canonicalization,
    ...extra,
  };
}

interface Signed {
  readonly message: string;
  readonly canonicalization: PeerCanonicalization;
  readonly bytes: Uint8Array;
}

/** Signs the corpus with `signer` in every canonicalization, skipping what it cannot sign. */
async function signCorpus(signer: PeerName, key: TestKey, selector: string): Promise<Signed[]> {
  const messages = await corpus();
  const out: Signed[] = [];
  for (const c of PEER_CANONICALIZATIONS) {
    const todo = messages.filter((m) =>
      signer !== "OpenDKIM" ||
      !OPENDKIM_CANNOT_SIGN.some((x) => x.message === m.name && x.canonicalization.test(c))
    );
    const signed = await SIGN[signer](todo.map((m) => m.bytes), signOptions(key, selector, c));
    todo.forEach((m, i) => out.push({ message: m.name, canonicalization: c, bytes: signed[i] }));
  }
  return out;
}

/**
 * Verifies `signed` with every peer and returns the cases whose outcome differs from
 * {@link expectedOutcome}, as readable lines (empty when all agree).
 */
async function mismatches(
  signer: PeerName,
  algorithm: PeerAlgorithm,
  signed: readonly Signed[],
  keys: KeySource,
): Promise<string[]> {
  const results = await Promise.all(PEERS.map((v) => VERIFY[v](signed.map((s) => s.bytes), keys)));
  const out: string[] = [];
  const algorithms = await Promise.all(PEERS.map(algorithmsOf));
  PEERS.forEach((verifier, v) => {
    signed.forEach((s, i) => {
      const want = expectedOutcome(
        s.message,
        s.canonicalization,
        signer,
        verifier,
        algorithm,
        algorithms[v],
      );
      const got = outcomeOf(results[v][i]);
      if (got === "pass") assert.equal(results[v][i][0].algorithm, algorithm);
      if (got !== want) {
        const said = results[v][i].map((x) => `${x.result}: ${x.detail}`).join("; ");
        out.push(
          `${signer} → ${verifier}, ${s.message} ${s.canonicalization}: want ${want}, got ${got}` +
            (said ? ` (${said.slice(0, 160)})` : ""),
        );
      }
    });
  });
  return out;
}

/** Verifies tampered copies with every peer; returns the cases where any verdict still passes. */
async function tamperedPasses(signed: readonly Signed[], keys: KeySource): Promise<string[]> {
  const copies = signed.flatMap((s) => [
    { label: `${s.message} ${s.canonicalization} body`, bytes: tamperBody(s.bytes), of: s },
    { label: `${s.message} ${s.canonicalization} From`, bytes: tamperFrom(s.bytes), of: s },
  ]);
  const results = await Promise.all(PEERS.map((v) => VERIFY[v](copies.map((c) => c.bytes), keys)));
  const out: string[] = [];
  PEERS.forEach((verifier, v) => {
    copies.forEach((c, i) => {
      const verdicts = results[v][i];
      if (verdicts.some((x) => x.result === "pass")) {
        out.push(`${verifier} passed a tampered copy: ${c.label}`);
      }
    });
  });
  return out;
}

async function rsaRecords(selector: string): Promise<KeySource> {
  const key = await testKey("rsa-sha256");
  return { records: { [`${selector}._domainkey.${DOMAIN}`]: key.record } };
}

Deno.test("corpus messages use CRLF line ends, carry the basic headers and are all described", async () => {
  const messages = await corpus();
  assert.ok(messages.length >= 10 && messages.length <= 20, `${messages.length} messages`);
  const readme = await Deno.readTextFile(new URL("README.md", MESSAGES_DIR));
  const described = [...readme.matchAll(/^\| `([a-z0-9_]+)\.eml` \|/gm)].map((m) => m[1]);
  assert.deepEqual(described.toSorted(), messages.map((m) => m.name));
  for (const { name, bytes } of messages) {
    const text = new TextDecoder("latin1").decode(bytes);
    const bareLf = /(?<!\r)\n/.test(text);
    const bareCr = /\r(?!\n)/.test(text);
    assert.equal(bareLf || bareCr, name === "lone_lf_cr", `${name}: bare CR or LF`);
    const head = text.slice(0, bodyOffset(bytes));
    for (const field of ["from", "to", "subject", "date", "message-id"]) {
      assert.match(head, new RegExp(`(^|\\n)${field}:`, "i"), `${name}: ${field}`);
    }
  }
  const large = messages.find((m) => m.name === "large_multipart");
  assert.ok(large && large.bytes.length > 200_000, "large_multipart is over 200 KB");
});

Deno.test("describePeer() reports each peer's version and algorithms", async () => {
  for (const peer of PEERS) {
    const info = await describePeer(peer);
    assert.equal(info.peer, peer);
    assert.match(info.version, new RegExp(`^${peer.replace(/[:]/g, "\\$&")} \\d`));
    assert.ok(info.algorithms.includes("rsa-sha256"), `${peer} knows rsa-sha256`);
  }
  // OpenDKIM 2.11 and dkimpy with PyNaCl both do Ed25519 (RFC 8463).
  assert.ok((await describePeer("OpenDKIM")).algorithms.includes("ed25519-sha256"));
  assert.ok((await describePeer("dkimpy")).algorithms.includes("ed25519-sha256"));
});

for (const signer of PEERS) {
  Deno.test(`${SIGN_NAMES[signer]}() output verifies with every peer; tampered copies fail`, async () => {
    const signed = await signCorpus(signer, await testKey("rsa-sha256"), "s2048");
    const keys = await rsaRecords("s2048");
    assert.deepEqual(await mismatches(signer, "rsa-sha256", signed, keys), []);
    assert.deepEqual(await tamperedPasses(signed, keys), []);
  });
}

Deno.test("signWithOpenDkim() refuses a body without a final CRLF under relaxed body canonicalization", async () => {
  const message = (await corpus()).find((m) => m.name === "no_final_crlf")!;
  const key = await testKey("rsa-sha256");
  for (const { canonicalization, why } of OPENDKIM_CANNOT_SIGN) {
    for (const c of PEER_CANONICALIZATIONS.filter((x) => canonicalization.test(x))) {
      await assert.rejects(
        signWithOpenDkim(message.bytes, signOptions(key, "s2048", c)),
        (e: unknown) => e instanceof PeerError && why.test(e.message),
      );
    }
  }
});

for (const signer of PEERS) {
  Deno.test(`${SIGN_NAMES[signer]}() with ed25519-sha256 verifies with each peer that knows it`, async () => {
    const key = await testKey("ed25519-sha256");
    const keys: KeySource = { records: { [`ed._domainkey.${DOMAIN}`]: key.record } };
    if (!(await algorithmsOf(signer)).includes("ed25519-sha256")) {
      // Mail::DKIM before 1.20230630 (Debian 12 has 1.20230212) cannot sign with Ed25519.
      const message = (await corpus())[0].bytes;
      await assert.rejects(
        SIGN[signer]([message], signOptions(key, "ed", "relaxed/relaxed")),
        (e: unknown) => e instanceof PeerError && /unsupported algorithm/.test(e.message),
      );
      return;
    }
    const signed = await signCorpus(signer, key, "ed");
    assert.deepEqual(await mismatches(signer, "ed25519-sha256", signed, keys), []);
    // The RSA tests tamper with every pair; one pair is enough to show Ed25519 is checked.
    const relaxed = signed.filter((s) => s.canonicalization === "relaxed/relaxed");
    assert.deepEqual(await tamperedPasses(relaxed, keys), []);
  });
}

for (const signer of PEERS) {
  Deno.test(`${SIGN_NAMES[signer]}() with length: true survives an appended footer at every verifier`, async () => {
    const names = ["basic", "large_multipart", "trailing_blank_lines"];
    const messages = (await corpus()).filter((m) => names.includes(m.name));
    const key = await testKey("rsa-sha256");
    const keys = await rsaRecords("len");
    const footer = utf8("-- \r\nAppended by a mailing list\r\n");
    for (const c of ["simple/simple", "relaxed/relaxed"] as const) {
      const signed = await SIGN[signer](
        messages.map((m) => m.bytes),
        signOptions(key, "len", c, { length: true }),
      );
      for (const s of signed) {
        assert.match(new TextDecoder().decode(s.subarray(0, 600)), /\bl=\d+;/);
      }
      // RFC 6376 §3.5 l=: text added after the signed length leaves the signature valid...
      const appended = signed.map((s) => concat([s, footer]));
      // ...but a change inside the signed length does not.
      const tampered = signed.map(tamperBody);
      const all = [...signed, ...appended, ...tampered];
      const want = all.map((_, i) => i < 2 * signed.length ? "pass" : "fail");
      for (const verifier of PEERS) {
        const got = await VERIFY[verifier](all, keys);
        assert.deepEqual(got.map(outcomeOf), want, `${verifier} ${c}: ${JSON.stringify(got)}`);
      }
    }
  });
}

Deno.test("verify functions look keys up on a local nameserver, TXT split and over TCP when long", async () => {
  const small = await testKey("rsa-sha256");
  const big = await testKey("rsa-sha256", 4096);
  const ed = await testKey("ed25519-sha256");
  const message = (await corpus()).find((m) => m.name === "basic")!.bytes;
  let signed = await signAllWithDkimpy([message], signOptions(small, "small", "relaxed/simple"));
  signed = await signAllWithDkimpy(signed, signOptions(big, "big", "simple/simple"));
  signed = await signAllWithDkimpy(signed, signOptions(ed, "ed", "relaxed/relaxed"));
  const server = await startFakeDnsServer({
    [`small._domainkey.${DOMAIN}`]: { txt: [small.record] },
    [`big._domainkey.${DOMAIN}`]: { txt: [big.record] },
    [`ed._domainkey.${DOMAIN}`]: { txt: [ed.record] },
  });
  try {
    const keys: KeySource = { nameserver: `127.0.0.1@${server.port}` };
    const mailDkimHasEd25519 = (await describePeer("Mail::DKIM")).algorithms.includes(
      "ed25519-sha256",
    );
    for (const verifier of PEERS) {
      const [verdicts] = await VERIFY[verifier](signed, keys);
      // dkimpy prepends, so the newest signature comes first.
      assert.deepEqual(verdicts.map((v) => v.selector), ["ed", "big", "small"], verifier);
      const want = verifier === "Mail::DKIM" && !mailDkimHasEd25519
        ? ["invalid", "pass", "pass"]
        : ["pass", "pass", "pass"];
      assert.deepEqual(
        verdicts.map((v) => v.result),
        want,
        `${verifier}: ${JSON.stringify(verdicts)}`,
      );
    }
    const names = new Set(server.queries.map((q) => q.name.toLowerCase()));
    assert.ok(names.has(`big._domainkey.${DOMAIN}`) && names.has(`small._domainkey.${DOMAIN}`));
    // The 4096-bit key record is ~750 bytes: split into 255-byte strings, and too long for a
    // 512-byte answer, so a client without EDNS0 (dkimpy's dnspython) retries over TCP.
    assert.ok(big.record.length > 512);
    assert.ok(server.queries.some((q) => q.transport === "tcp"));
  } finally {
    await server.close();
  }
});

Deno.test("verify functions with 4096-bit keys from records split the TXT data as DNS does", async () => {
  const big = await testKey("rsa-sha256", 4096);
  const message = (await corpus()).find((m) => m.name === "utf8_headers")!.bytes;
  const signed = await signAllWithDkimpy([message], signOptions(big, "big", "relaxed/relaxed"));
  const keys: KeySource = { records: { [`big._domainkey.${DOMAIN}`]: big.record } };
  for (const verifier of PEERS) {
    const [verdicts] = await VERIFY[verifier](signed, keys);
    assert.deepEqual(
      verdicts.map((v) => v.result),
      ["pass"],
      `${verifier}: ${JSON.stringify(verdicts)}`,
    );
  }
});

Deno.test("verify functions report each peer's own words for a missing key", async () => {
  const key = await testKey("rsa-sha256");
  const message = (await corpus()).find((m) => m.name === "basic")!.bytes;
  const signed = await signAllWithDkimpy([message], signOptions(key, "gone", "relaxed/relaxed"));
  const want: Record<PeerName, { result: string; detail: RegExp }> = {
    "Mail::DKIM": { result: "invalid", detail: /^invalid \(public key: not available\)$/ },
    dkimpy: { result: "fail", detail: /missing public key: b'gone\._domainkey\.example\.com\.'/ },
    OpenDKIM: { result: "fail", detail: /^reason="key not found in DNS"$/ },
  };
  for (const verifier of PEERS) {
    const [[verdict]] = await VERIFY[verifier](signed, { records: {} });
    assert.equal(verdict.result, want[verifier].result, verifier);
    assert.match(verdict.detail, want[verifier].detail, verifier);
    assert.equal(verdict.domain, DOMAIN);
    assert.equal(verdict.selector, "gone");
    assert.equal(verdict.algorithm, "rsa-sha256");
  }
});
