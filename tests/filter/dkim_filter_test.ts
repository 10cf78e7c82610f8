/**
 * The DKIM filter with its configuration in memory, driven by an in-memory MTA playing Postfix:
 * the sign/verify decision of opendkim(8) OPERATION, the header changes, the On-* actions, and
 * the log lines, the bytes the milter lends it, and what it reports to its observer. One test
 * runs the same filter behind a real milter socket.
 */
import assert from "node:assert/strict";
import { latin1 } from "../../lib/bytes.ts";
import { splitMessage } from "../../lib/dkim/header.ts";
import { parseSignature } from "../../lib/dkim/signature.ts";
import { signMessage, type SignOptions } from "../../lib/dkim/sign.ts";
import { MAX_BODY_HASHES_DEFAULT, verifyMessage } from "../../lib/dkim/verify.ts";
import { DkimFilter } from "../../lib/filter/dkim_filter.ts";
import type { LookupReport, TransactionReport } from "../../lib/filter/observer.ts";
import type { Command } from "../../lib/milter/command.ts";
import { MilterClient } from "../../lib/milter/client.ts";
import type { Reply } from "../../lib/milter/reply.ts";
import { SMFI_CURR_PROT, SMFIP_HDR_LEADSPC } from "../../lib/milter/constants.ts";
import { serve } from "../../lib/milter/server.ts";
import type { MilterSession } from "../../lib/milter/session.ts";
import { applyModifications, buildMessage, type HeaderPair } from "../helpers/milter_apply.ts";
import { assertFoldedField, unfold } from "../helpers/folding.ts";
import { MemoryLogger } from "../helpers/milter_logger.ts";
import { MemoryMta, type MemoryMtaOptions, testMessage } from "../helpers/memory_mta.ts";
import { exampleSigning, memoryRuntime } from "../helpers/memory_runtime.ts";
import { edKey, loadKey } from "../helpers/dkim_fixtures.ts";
import type { ZoneEntry, ZoneResolver } from "../helpers/zone_resolver.ts";

const NOW = 1_800_000_000;

interface Setup {
  readonly filter: DkimFilter;
  readonly zone: ZoneResolver;
  readonly log: MemoryLogger;
  /** A new MTA connection to the filter. */
  readonly mta: (options?: MemoryMtaOptions) => MemoryMta;
}

/** The filter with an RSA and an Ed25519 key for example.com, its configuration in memory. */
async function start(extraConf: string, zone: Record<string, ZoneEntry> = {}): Promise<Setup> {
  const signing = await exampleSigning();
  const runtime = await memoryRuntime(
    `Mode sv\n${signing.conf}` +
      `MultipleSignatures yes\nCanonicalization relaxed/relaxed\nAuthservID mx.example.net\n` +
      `SyslogSuccess yes\nLogWhy yes\n${extraConf}`,
    { files: signing.files, zone: { ...signing.zone, ...zone } },
  );
  const log = new MemoryLogger();
  const filter = new DkimFilter({
    runtime: () => runtime,
    logger: log,
    hostname: "mx.example.net",
    now: () => NOW,
  });
  return {
    filter,
    zone: runtime.resolver,
    log,
    mta: (options) => new MemoryMta(filter, options),
  };
}

const HEADERS: HeaderPair[] = [
  ["From", " Alice <alice@example.com>"],
  ["To", " Bob <bob@example.org>"],
  ["Subject", " Lunch  tomorrow?"],
  ["Date", " Fri, 27 Nov 2026 12:00:00 +0000"],
  ["Message-ID", " <1@example.com>"],
];
const BODY = "Hi Bob,\r\n\r\nNoon?  \r\n\r\n";

const INTERNAL = { hostname: "localhost", address: "127.0.0.1" };
const EXTERNAL = { hostname: "mail.example.org", address: "192.0.2.25" };

function send(
  client: MilterClient | MemoryMta,
  connect: { hostname: string; address: string },
  headers: readonly HeaderPair[] = HEADERS,
  body = BODY,
  mail: Record<string, string> = {},
) {
  return client.sendMessage({
    connect,
    helo: connect.hostname,
    macros: { connect: { j: "mx.example.net" }, mail: { i: "4AB12C", ...mail } },
    from: "<alice@example.com>",
    rcpts: ["<bob@example.org>"],
    headers,
    body,
  });
}

async function verifyDelivered(
  headers: readonly HeaderPair[],
  mods: readonly Reply[],
  zone: ZoneResolver,
  body = BODY,
) {
  const delivered = buildMessage(applyModifications(headers, mods), body);
  return {
    delivered,
    verdicts: await verifyMessage(delivered, { resolver: zone, now: () => NOW }),
  };
}

Deno.test("DkimFilter signs mail from an internal host with RSA and Ed25519, verifiable as delivered", async () => {
  const s = await start("SoftwareHeader yes\n");
  const r = await send(s.mta(), INTERNAL);
  assert.deepEqual(r.final, { type: "accept" });
  const inserted = r.modifications.filter((m) => m.type === "insheader").map((m) =>
    (m as { name: string }).name
  );
  assert.deepEqual(inserted, ["DKIM-Signature", "DKIM-Signature", "DKIM-Filter"]);
  const { delivered, verdicts } = await verifyDelivered(HEADERS, r.modifications, s.zone);
  assert.deepEqual(verdicts.map((v) => [v.selector, v.result]), [["rsa", "pass"], [
    "ed",
    "pass",
  ]]);
  const { fields } = splitMessage(delivered);
  assert.match(latin1(fields[0].raw), /^DKIM-Filter: dkimd \S+ mx\.example\.net 4AB12C$/);
  assert.equal(parseSignature(fields[1]).headerCanonicalization, "relaxed");
  assert.ok(s.log.find("info", /^4AB12C: DKIM-Signature field added \(s=rsa, d=example\.com\)$/));
  assert.ok(s.log.find("info", /^4AB12C: DKIM-Signature field added \(s=ed, d=example\.com\)$/));
  assert.ok(s.log.find("info", /^4AB12C: localhost \[127\.0\.0\.1\] is internal/));
});

Deno.test("DkimFilter signs behind a milter socket as it does in memory", async () => {
  const s = await start("");
  const server = await serve({
    socket: { kind: "inet", host: "127.0.0.1", port: 0 },
    filter: s.filter,
    logger: s.log,
  });
  const client = await MilterClient.connect(server.address);
  try {
    const r = await send(client, INTERNAL);
    assert.deepEqual(r.final, { type: "accept" });
    const { verdicts } = await verifyDelivered(HEADERS, r.modifications, s.zone);
    assert.deepEqual(verdicts.map((v) => [v.selector, v.result]), [["rsa", "pass"], [
      "ed",
      "pass",
    ]]);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("DkimFilter signs by default the fields dkimd sign signs: the one default list, From oversigned", async () => {
  const s = await start("");
  const headers: HeaderPair[] = [
    ["Received", " from client.example.com by mx.example.net; Fri, 27 Nov 2026 12:00:01 +0000"],
    ...HEADERS,
    ["MIME-Version", " 1.0"],
    ["Content-Type", " text/plain; charset=us-ascii"],
    ["Content-Transfer-Encoding", " 7bit"],
    ["X-Mailer", " test"],
  ];
  const r = await send(s.mta(), INTERNAL, headers);
  const { delivered, verdicts } = await verifyDelivered(headers, r.modifications, s.zone);
  assert.deepEqual(verdicts.map((v) => v.result), ["pass", "pass"]);
  const original = buildMessage(headers, BODY);
  const [cli] = await signMessage(original, [{
    domain: "example.com",
    selector: "ed",
    key: await edKey(),
  }]);
  const want = parseSignature(cli).headers.map((n) => n.toLowerCase());
  assert.deepEqual(want, [
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
  for (const f of splitMessage(delivered).fields.filter((f) => f.name === "DKIM-Signature")) {
    assert.deepEqual(parseSignature(f).headers.map((n) => n.toLowerCase()), want);
  }
});

Deno.test("DkimFilter signs mail from an authenticated external client ({auth_type})", async () => {
  const s = await start("");
  const r = await send(s.mta(), EXTERNAL, HEADERS, BODY, { "{auth_type}": "PLAIN" });
  const { verdicts } = await verifyDelivered(HEADERS, r.modifications, s.zone);
  assert.equal(verdicts.length, 2);
  assert.ok(verdicts.every((v) => v.result === "pass"));
  assert.ok(s.log.find("info", /^4AB12C: mail\.example\.org \[192\.0\.2\.25\] not internal$/));
  assert.ok(s.log.find("info", /^4AB12C: authenticated \(auth_type PLAIN\)$/));
});

Deno.test("DkimFilter verifies external mail, adds Authentication-Results and logs as OpenDKIM", async () => {
  const signer = await start("");
  const verifier = await start("");
  const signed = await send(signer.mta(), INTERNAL);
  const headers = applyModifications(HEADERS, signed.modifications);
  const r = await send(verifier.mta(), EXTERNAL, headers);
  assert.deepEqual(r.final, { type: "accept" });
  const [ar] = r.modifications;
  assert.equal(ar.type, "insheader");
  const value = latin1((ar as { value: Uint8Array }).value);
  // Folded with bare LFs for the MTA, each line within 78 characters (RFC 5322 §2.1.1); each
  // result starts a line, and unfolded (RFC 5322 §2.2.3) the properties read in order.
  assertFoldedField(`Authentication-Results:${value}`);
  assert.match(
    unfold(value),
    /^ mx\.example\.net;\tdkim=pass\s\(2048-bit key\)\sheader\.d=example\.com\sheader\.i=@example\.com\sheader\.s=rsa\sheader\.a=rsa-sha256\sheader\.b=/,
  );
  assert.match(
    unfold(value),
    /;\tdkim=pass\s\(256-bit key\)\sheader\.d=example\.com\s.*header\.s=ed\sheader\.a=ed25519-sha256/,
  );
  assert.ok(verifier.log.find("info", /^4AB12C: DKIM verification successful$/));
  assert.ok(verifier.log.find("info", /^4AB12C: not authenticated$/));
  // The lookups started before the body came, once per key name.
  assert.deepEqual(verifier.zone.calls.sort(), [
    "ed._domainkey.example.com",
    "rsa._domainkey.example.com",
  ]);
});

Deno.test("DkimFilter reports a tampered message as fail and applies On-BadSignature", async () => {
  const signer = await start("");
  const verifier = await start("On-BadSignature reject\n");
  const signed = await send(signer.mta(), INTERNAL);
  const headers = applyModifications(HEADERS, signed.modifications);
  const r = await send(verifier.mta(), EXTERNAL, headers, BODY.replace("Noon", "Nine"));
  assert.deepEqual(r.final, {
    type: "replycode",
    code: 550,
    text: "5.7.1 DKIM signature verification failed",
  });
  assert.ok(
    verifier.log.find(
      "info",
      /bad signature data \(s=rsa d=example\.com\): body hash did not verify/,
    ),
  );
  assert.ok(verifier.log.find("info", /badSignature → reject \(On-BadSignature\)/));
});

Deno.test("DkimFilter answers a DNS failure with On-DNSError (tempfail by default)", async () => {
  const signer = await start("");
  const verifier = await start("", {
    "rsa._domainkey.example.com": "servfail",
    "ed._domainkey.example.com": "timeout",
  });
  const signed = await send(signer.mta(), INTERNAL);
  const headers = applyModifications(HEADERS, signed.modifications);
  const r = await send(verifier.mta(), EXTERNAL, headers);
  assert.deepEqual(r.final, {
    type: "replycode",
    code: 451,
    text: "4.7.1 DKIM key lookup failed, try later",
  });
  assert.ok(
    verifier.log.find(
      "warn",
      /key retrieval failed \(s=rsa d=example\.com\): key query failed: DNS error \(servfail\)/,
    ),
  );
});

Deno.test("DkimFilter accepts unsigned external mail at end of headers, or adds dkim=none with AlwaysAddARHeader", async () => {
  const plain = await start("");
  const always = await start("AlwaysAddARHeader yes\n");
  const r = await send(plain.mta(), EXTERNAL);
  assert.deepEqual(r.final, { type: "accept" });
  assert.deepEqual(r.modifications, []);
  // Accepted at end of headers: no body was sent.
  assert.ok(!r.replies.some((x) => x.command === "body" || x.command === "bodyeob"));
  assert.ok(plain.log.find("info", /^4AB12C: no signature data$/));
  const a = await send(always.mta(), EXTERNAL);
  assert.equal(
    latin1((a.modifications[0] as { value: Uint8Array }).value),
    " mx.example.net; dkim=none",
  );
});

Deno.test("DkimFilter removes every Authentication-Results field forged with its authserv-id (OpenDKIM#185)", async () => {
  const s = await start("");
  const headers: HeaderPair[] = [
    ["Authentication-Results", " mx.example.net; dkim=pass header.d=example.com"],
    ["Authentication-Results", " relay.example.org; spf=pass"],
    ["Authentication-Results", " MX.Example.NET; spf=pass"],
    ["Authentication-Results", " (sneaky) mx.example.net 1; dkim=pass"],
    ...HEADERS,
  ];
  const r = await send(s.mta(), EXTERNAL, headers);
  const changes = r.modifications.filter((m) => m.type === "chgheader").map((m) =>
    (m as { index: number }).index
  );
  assert.deepEqual(changes, [4, 3, 1]);
  const after = applyModifications(headers, r.modifications);
  assert.deepEqual(
    after.filter(([n]) => n === "Authentication-Results").map(([, v]) => v),
    [" relay.example.org; spf=pass"],
  );
  assert.ok(
    s.log.find(
      "info",
      /removed 3 Authentication-Results field\(s\) claiming to be from "mx\.example\.net"/,
    ),
  );
});

Deno.test("DkimFilter removes a forged Authentication-Results field however it is folded, as its own are", async () => {
  const s = await start("");
  // Postfix hands a folded value over with bare LFs; CRLF and a fold before the id also occur.
  const headers: HeaderPair[] = [
    ["Authentication-Results", " mx.example.net;\n\tdkim=pass header.d=example.com\n\theader.s=x"],
    ["Authentication-Results", "\r\n\tmx.example.net;\r\n\tdkim=pass"],
    ["Authentication-Results", " relay.example.org;\n\tdkim=pass header.d=example.com"],
    ["Authentication-Results", " (folded\n\t comment) mx.example.net\n ;\n dkim=pass"],
    ...HEADERS,
  ];
  const r = await send(s.mta(), EXTERNAL, headers);
  const changes = r.modifications.filter((m) => m.type === "chgheader").map((m) =>
    (m as { index: number }).index
  );
  assert.deepEqual(changes, [4, 2, 1]);
  const after = applyModifications(headers, r.modifications);
  assert.deepEqual(
    after.filter(([n]) => n === "Authentication-Results").map(([, v]) => v),
    [" relay.example.org;\n\tdkim=pass header.d=example.com"],
  );
});

Deno.test("DkimFilter accepts PeerList clients at connect and leaves them alone", async () => {
  const s = await start("PeerList 192.0.2.0/24\n");
  const r = await send(s.mta(), EXTERNAL);
  assert.deepEqual(r.final, { type: "accept" });
  assert.deepEqual(r.modifications, []);
  assert.equal(r.replies[0].command, "connect");
});

Deno.test("DkimFilter rejects a header block over MaximumHeaders", async () => {
  // On-Security decides since issue 13 (default tempfail, as OpenDKIM): reject is asked for.
  const s = await start("MaximumHeaders 200\nOn-Security reject\n");
  const big: HeaderPair[] = [...HEADERS, ["X-Padding", ` ${"x".repeat(300)}`]];
  const r = await send(s.mta(), EXTERNAL, big);
  assert.deepEqual(r.final, {
    type: "replycode",
    code: 552,
    text: "5.3.4 Message header block too large",
  });
  assert.ok(s.log.find("warn", /exceeds MaximumHeaders \(200 bytes\)/));
});

Deno.test("DkimFilter logs why it did not sign: no signing table match", async () => {
  const s = await start("");
  const headers: HeaderPair[] = [["From", " Carol <carol@example.org>"], ...HEADERS.slice(1)];
  const r = await send(s.mta(), INTERNAL, headers);
  assert.ok(
    !r.modifications.some((m) =>
      m.type === "insheader" && (m as { name: string }).name === "DKIM-Signature"
    ),
  );
  assert.ok(s.log.find("info", /^4AB12C: no signing table match for 'carol@example\.org'$/));
});

Deno.test("DkimFilter verifies without SMFIP_HDR_LEADSPC, putting the space back as OpenDKIM does", async () => {
  const signer = await start("");
  const verifier = await start("");
  const plain = { protocol: SMFI_CURR_PROT & ~SMFIP_HDR_LEADSPC };
  const signed = await send(signer.mta(plain), INTERNAL);
  // The MTA gave no leading spaces, so the filter's values have none either.
  const sig = signed.modifications.find((m) => m.type === "insheader")!;
  assert.match(latin1((sig as { value: Uint8Array }).value), /^v=1; /);
  const headers = applyModifications(HEADERS, signed.modifications, false);
  const r = await send(verifier.mta(plain), EXTERNAL, headers);
  assert.match(
    latin1((r.modifications[0] as { value: Uint8Array }).value),
    /^mx\.example\.net;\n\tdkim=pass/,
  );
});

// The DKIM filter and the bytes the milter lends it (FilterConnection, "Borrowed bytes"): the
// server hands each header value and body chunk over as a view of its read buffer, which its
// next read overwrites. These sessions overwrite every value and chunk as soon as the call that
// got it has settled, so a filter that kept one without a copy would sign, or verify, bytes that
// are no longer the message's, and the signatures would not verify.
const BORROWED_HEADERS: HeaderPair[] = [
  ["From", " Alice <alice@example.com>"],
  ["To", " Bob <bob@example.org>"],
  ["Subject", " Borrowed\r\n\tbytes"],
  ["Date", " Fri, 27 Nov 2026 12:00:00 +0000"],
  ["Message-ID", " <borrowed@example.com>"],
];

// Several chunks, each overwritten once the filter has had it.
const BODY_CHUNKS = ["Hi Bob,\r\n\r\n", "The  bytes\tare ", "lent.  \r\n", "Alice\r\n\r\n"];

/**
 * Hands `command` to the session as the server does, then overwrites its bytes (a header value,
 * a body chunk) once the call has settled, as the server's next read would.
 */
async function lend(session: MilterSession, command: Command): Promise<Reply[]> {
  const lent = command.type === "header"
    ? command.value
    : command.type === "body" || command.type === "bodyeob"
    ? command.chunk
    : undefined;
  const replies = await session.receive(command);
  lent?.fill(0x58);
  return replies;
}

async function lendingFilter(): Promise<{ filter: DkimFilter; zone: ZoneResolver }> {
  const signing = await exampleSigning();
  const runtime = await memoryRuntime(
    `Mode sv\n${signing.conf}` +
      "MultipleSignatures yes\nCanonicalization relaxed/relaxed\nAuthservID mx.example.net\n",
    { files: signing.files, zone: signing.zone },
  );
  const filter = new DkimFilter({
    runtime: () => runtime,
    logger: new MemoryLogger(),
    hostname: "mx.example.net",
    now: () => NOW,
  });
  return { filter, zone: runtime.resolver };
}

/** One message through a fresh connection, every byte lent; the end-of-message replies. */
async function runLent(
  filter: DkimFilter,
  address: string,
  headers: readonly HeaderPair[],
): Promise<Reply[]> {
  // The sender's address is ours, so mail from an internal address is signed.
  const r = await new MemoryMta(filter, { deliver: lend }).sendMessage(
    testMessage(address, headers, BODY_CHUNKS, "<alice@example.com>"),
  );
  return [...r.modifications, r.final];
}

Deno.test("DkimFilter signs and verifies from copies of the header values and chunks it is lent", async () => {
  const { filter, zone } = await lendingFilter();
  const signedReplies = await runLent(filter, "127.0.0.1", BORROWED_HEADERS);
  assert.deepEqual(signedReplies.at(-1), { type: "accept" });
  const delivered = applyModifications(BORROWED_HEADERS, signedReplies);
  assert.deepEqual(delivered.slice(0, 2).map(([name]) => name), [
    "DKIM-Signature",
    "DKIM-Signature",
  ]);
  const verdicts = await verifyMessage(buildMessage(delivered, BODY_CHUNKS.join("")), {
    resolver: zone,
    now: () => NOW,
  });
  assert.deepEqual(verdicts.map((v) => [v.selector, v.result]), [["rsa", "pass"], [
    "ed",
    "pass",
  ]]);

  const verifiedReplies = await runLent(filter, "192.0.2.25", delivered);
  const results = verifiedReplies.find((r) =>
    r.type === "insheader" && r.name === "Authentication-Results"
  );
  assert.ok(results && results.type === "insheader", "an Authentication-Results field");
  const text = typeof results.value === "string" ? results.value : latin1(results.value);
  assert.equal(text.match(/dkim=pass/g)?.length, 2, text);
});

// What the DKIM filter reports to its observer (the metrics): for each signature added or
// verified, how its signing domain stands to the From domain (observer.ts, DomainClass), and
// how each key lookup went.
const OBSERVED_BODY = "Hello.\r\n";

async function observedFilter(
  reports: TransactionReport[],
  lookups: LookupReport[] = [],
  dns: Record<string, ZoneEntry> = {},
): Promise<DkimFilter> {
  const { files, zone } = await exampleSigning();
  // Mail from example.org is signed by example.com: a third party to its author.
  const runtime = await memoryRuntime(
    "Mode sv\nKeyTable /etc/dkimd/key.table\nSigningTable refile:/etc/dkimd/signing.table\n",
    {
      files: {
        "/etc/dkimd/key.table": "ed example.com:ed:/etc/dkimd/keys/ed.pem\n",
        "/etc/dkimd/signing.table": "*@example.com ed\n*@example.org ed\n",
        "/etc/dkimd/keys/ed.pem": files["/etc/dkimd/keys/ed.pem"],
      },
      zone: { ...zone, ...dns },
    },
  );
  return new DkimFilter({
    runtime: () => runtime,
    logger: new MemoryLogger(),
    hostname: "mx.example.net",
    now: () => NOW,
    observer: {
      transaction: (r) => reports.push(r),
      lookup: (r) => lookups.push(r),
      connections() {},
    },
  });
}

async function runObserved(
  filter: DkimFilter,
  address: string,
  headers: readonly HeaderPair[],
): Promise<Reply[]> {
  const r = await new MemoryMta(filter).sendMessage(testMessage(address, headers, OBSERVED_BODY));
  return [...r.modifications, r.final];
}

Deno.test("DkimFilter reports each signature's domain class: author, third-party, none", async () => {
  const reports: TransactionReport[] = [];
  const filter = await observedFilter(reports);
  const own: HeaderPair[] = [["From", " Ann <ann@Example.COM>"], ["Subject", " x"]];
  const listed: HeaderPair[] = [["From", " Lou <lou@example.org>"], ["Subject", " y"]];
  // d=example.com signs for From: ann@example.com (author) and lou@example.org (third party).
  const ownSigned = applyModifications(own, await runObserved(filter, "127.0.0.1", own));
  const listedSigned = applyModifications(listed, await runObserved(filter, "127.0.0.1", listed));
  assert.deepEqual(
    reports.map((r) => [r.disposition, r.domainClasses]),
    [["signed", ["author"]], ["signed", ["third-party"]]],
  );
  // Verifying: the same classes, whatever the result; an unsigned message has none.
  reports.length = 0;
  await runObserved(filter, "192.0.2.1", ownSigned);
  await runObserved(filter, "192.0.2.1", listedSigned);
  await runObserved(filter, "192.0.2.1", own);
  assert.deepEqual(
    reports.map((r) => [r.disposition, r.results, r.domainClasses]),
    [
      ["verified", ["pass"], ["author"]],
      ["verified", ["pass"], ["third-party"]],
      ["verified", ["none"], ["none"]],
    ],
  );
});

Deno.test("DkimFilter reports each key lookup's outcome: ok, or the DNS error's code", async () => {
  const headers: HeaderPair[] = [["From", " Ann <ann@example.com>"], ["Subject", " x"]];
  const signed = applyModifications(
    headers,
    await runObserved(await observedFilter([]), "127.0.0.1", headers),
  );
  const outcomes = async (dns: Record<string, ZoneEntry>) => {
    const lookups: LookupReport[] = [];
    await runObserved(await observedFilter([], lookups, dns), "192.0.2.1", signed);
    return lookups.map((l) => l.outcome);
  };
  assert.deepEqual(await outcomes({}), ["ok"]);
  assert.deepEqual(await outcomes({ "ed._domainkey.example.com": "servfail" }), ["servfail"]);
});

/** HEADERS with `count` Ed25519 signatures of example.com (selector `ed`) on top, from `spec`. */
async function manySignatures(
  count: number,
  spec: (i: number) => Partial<SignOptions> = () => ({}),
): Promise<HeaderPair[]> {
  const key = await loadKey("ed25519.pem");
  const options = Array.from(
    { length: count },
    (_, i) => ({ domain: "example.com", selector: "ed", key, ...spec(i) }),
  );
  const fields = await signMessage(buildMessage(HEADERS, BODY), options, { now: () => NOW });
  const pairs = fields.map((f): HeaderPair => {
    const text = latin1(f.raw);
    return [text.slice(0, text.indexOf(":")), text.slice(text.indexOf(":") + 1)];
  });
  return [...pairs, ...HEADERS];
}

// dkimd departs from OpenDKIM here: OpenDKIM verifies every first-party signature with 0.
Deno.test("DkimFilter verifies at most 50 signatures with MaximumSignaturesToVerify 0, and says so", async () => {
  const s = await start("MaximumSignaturesToVerify 0\n");
  const r = await send(s.mta(), EXTERNAL, await manySignatures(53));
  assert.deepEqual(r.final, { type: "accept" });
  const [ar] = r.modifications;
  const value = latin1((ar as { value: Uint8Array }).value);
  assert.equal(value.match(/dkim=pass/g)?.length, 50);
  assert.ok(
    s.log.find(
      "info",
      /^4AB12C: 53 DKIM-Signature fields; verifying the first 50 \(the ceiling of MaximumSignaturesToVerify\)$/,
    ),
  );
});

Deno.test("DkimFilter leaves signatures past the body-hash bound unverified, and says so", async () => {
  const s = await start("MaximumSignaturesToVerify 12\n");
  // Each l= is another body hash; the bound is MAX_BODY_HASHES_DEFAULT.
  const headers = await manySignatures(12, (i) => ({ maxSignedBytes: i + 1 }));
  const r = await send(s.mta(), EXTERNAL, headers);
  const value = latin1((r.modifications[0] as { value: Uint8Array }).value);
  const unverified = unfold(value).match(
    /dkim=policy\sreason="not verified: more than 8 distinct/g,
  );
  assert.equal(unverified?.length, 12 - MAX_BODY_HASHES_DEFAULT);
  assert.ok(
    s.log.find(
      "info",
      /^4AB12C: 4 signature\(s\) not verified: more than 8 distinct body hashes in the message$/,
    ),
  );
});
