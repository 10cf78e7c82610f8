import assert from "node:assert/strict";
import fc from "fast-check";
import { DnsError, type DnsErrorCode } from "../../lib/dns/resolver.ts";
import {
  STUB_MAX_ANSWER_BYTES_DEFAULT,
  StubResolver,
  type StubResolverOptions,
} from "../../lib/dns/stub.ts";
import { type Nameserver, parseNameserver, parseNameserverList } from "../../lib/dns/nameserver.ts";
import { toBase64 } from "../../lib/bytes.ts";
import {
  type FakeDnsServer,
  type FakeZone,
  startFakeDnsServer,
} from "../helpers/fake_dns_server.ts";
import { type DnsServer, startDnsServer } from "../helpers/dns_server.ts";
import { fuzzParams } from "../helpers/fuzz.ts";

function at(server: FakeDnsServer): Nameserver {
  return { address: "127.0.0.1", port: server.port, family: 4 };
}

async function withServer(
  zone: FakeZone,
  fn: (
    server: FakeDnsServer,
    resolver: (o?: Partial<StubResolverOptions>) => StubResolver,
  ) => Promise<void>,
): Promise<void> {
  const server = await startFakeDnsServer(zone);
  try {
    await fn(server, (o = {}) => new StubResolver({ nameservers: [at(server)], ...o }));
  } finally {
    await server.close();
  }
}

async function rejectsWith(promise: Promise<unknown>, code: DnsErrorCode): Promise<DnsError> {
  let caught: unknown;
  await assert.rejects(promise, (e) => {
    caught = e;
    return true;
  });
  assert.ok(caught instanceof DnsError, `expected a DnsError, got ${caught}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

/** A DKIM key record as long as one for a 4096-bit RSA key (a 550-byte SPKI, RFC 6376 §3.6.1). */
const LONG_RECORD = `v=DKIM1; k=rsa; p=${toBase64(crypto.getRandomValues(new Uint8Array(550)))}`;

Deno.test("StubResolver.resolveTxt() returns each record with its strings joined", async () => {
  await withServer({
    "s._domainkey.example.com": { txt: ["v=DKIM1; p=abc", ["v=DKIM1; ", "k=ed25519; ", "p=x"]] },
  }, async (server, resolver) => {
    assert.deepEqual(await resolver().resolveTxt("s._domainkey.example.com"), [
      "v=DKIM1; p=abc",
      "v=DKIM1; k=ed25519; p=x",
    ]);
    assert.deepEqual(server.queries, [
      { name: "s._domainkey.example.com", type: "TXT", transport: "udp" },
    ]);
  });
});

Deno.test("StubResolver.resolveTxt() keeps 8-bit bytes one per character", async () => {
  const text = "v=DKIM1; n=caf\xe9 \x00\xff";
  await withServer({ "a.example": { txt: [text] } }, async (_, resolver) => {
    assert.deepEqual(await resolver().resolveTxt("a.example"), [text]);
  });
});

Deno.test("StubResolver.resolveTxt() matches names ignoring ASCII case and a final dot", async () => {
  await withServer({ "sel._domainkey.example.com": { txt: ["k"] } }, async (_, resolver) => {
    assert.deepEqual(await resolver().resolveTxt("SEL._DomainKey.Example.COM."), ["k"]);
  });
});

Deno.test("StubResolver.resolveTxtWithTtl() gives the TTL and the SOA negative TTL", async () => {
  await withServer({
    "a.example": { txt: ["one"], ttl: 1234 },
    "empty.example": { soa: { ttl: 30, minimum: 600 } },
    "nosoa.example": { soa: false },
  }, async (_, resolver) => {
    const r = resolver();
    assert.deepEqual(await r.resolveTxtWithTtl("a.example"), {
      type: "records",
      records: ["one"],
      ttl: 1234,
    });
    assert.deepEqual(await r.resolveTxtWithTtl("empty.example"), { type: "nodata", ttl: 30 });
    assert.deepEqual(await r.resolveTxtWithTtl("missing.example"), { type: "nxdomain", ttl: 60 });
    assert.deepEqual(await r.resolveTxtWithTtl("nosoa.example"), {
      type: "nodata",
      ttl: undefined,
    });
  });
});

Deno.test("StubResolver.resolveTxt() tells NXDOMAIN and NODATA from server failures", async () => {
  await withServer({
    "nodata.example": { txt: [] },
    "servfail.example": { rcode: "SERVFAIL" },
    "refused.example": { rcode: "REFUSED" },
    "formerr.example": { rcode: "FORMERR" },
    "notimp.example": { rcode: "NOTIMP" },
    "nx.example": { rcode: "NXDOMAIN" },
  }, async (server, resolver) => {
    const r = resolver({ attempts: 2 });
    const cases: [string, DnsErrorCode, boolean, number][] = [
      ["missing.example", "nxdomain", true, 1],
      ["nx.example", "nxdomain", true, 1],
      ["nodata.example", "nodata", true, 1],
      ["servfail.example", "servfail", false, 2],
      ["refused.example", "refused", false, 2],
      ["formerr.example", "malformed", false, 2],
      ["notimp.example", "malformed", false, 2],
    ];
    for (const [name, code, permanent, queries] of cases) {
      const before = server.queries.length;
      const error = await rejectsWith(r.resolveTxt(name), code);
      assert.equal(error.permanent, permanent, name);
      assert.equal(error.query, name);
      // A failure is asked again (attempts: 2); an answer is final.
      assert.equal(server.queries.length - before, queries, name);
    }
  });
});

Deno.test("StubResolver.resolveTxt() retries over TCP when the UDP answer is truncated", async () => {
  await withServer(
    { "a.example": { txt: ["over tcp"], truncateUdp: true } },
    async (server, resolver) => {
      assert.deepEqual(await resolver().resolveTxt("a.example"), ["over tcp"]);
      assert.deepEqual(server.queries.map((q) => q.transport), ["udp", "tcp"]);
    },
  );
});

Deno.test("StubResolver.resolveTxt() with tcp (DNSConnect) asks over TCP from the first try", async () => {
  await withServer(
    { "a.example": { txt: ["over tcp"] }, "servfail.example": { rcode: "SERVFAIL" } },
    async (server, resolver) => {
      const r = resolver({ tcp: true, attempts: 2 });
      assert.deepEqual(await r.resolveTxt("a.example"), ["over tcp"]);
      assert.deepEqual(server.queries.map((q) => q.transport), ["tcp"]);
      // Failures are asked again over TCP too, never over UDP.
      await rejectsWith(r.resolveTxt("servfail.example"), "servfail");
      assert.deepEqual(server.queries.map((q) => q.transport), ["tcp", "tcp", "tcp"]);
      // Without the option, UDP first, as before.
      assert.deepEqual(await resolver().resolveTxt("a.example"), ["over tcp"]);
      assert.equal(server.queries.at(-1)?.transport, "udp");
    },
  );
});

Deno.test("StubResolver.resolveTxt() fetches a 4096-bit key record over TCP when UDP is small", async () => {
  assert.ok(LONG_RECORD.length > 512);
  await withServer(
    { "big._domainkey.example.com": { txt: [LONG_RECORD] } },
    async (server, resolver) => {
      // Advertising 512 bytes makes the server truncate; the client must go to TCP.
      const small = resolver({ ednsPayload: 512 });
      assert.deepEqual(await small.resolveTxt("big._domainkey.example.com"), [LONG_RECORD]);
      assert.deepEqual(server.queries.map((q) => q.transport), ["udp", "tcp"]);
      // With the default EDNS0 payload (1232) it fits in one datagram.
      server.queries.length = 0;
      assert.deepEqual(await resolver().resolveTxt("big._domainkey.example.com"), [LONG_RECORD]);
      assert.deepEqual(server.queries.map((q) => q.transport), ["udp"]);
    },
  );
});

Deno.test("StubResolver.resolveTxt() ignores answers with a wrong ID, question or source", async () => {
  await withServer({
    "id.example": { txt: ["real"], spoof: "id" },
    "question.example": { txt: ["real"], spoof: "question" },
    "port.example": { txt: ["real"], spoof: "port" },
  }, async (server, resolver) => {
    const r = resolver({ attempts: 1 });
    for (const name of ["id.example", "question.example", "port.example"]) {
      assert.deepEqual(await r.resolveTxt(name), ["real"], name);
    }
    assert.equal(server.queries.length, 3);
  });
});

Deno.test("StubResolver.resolveTxt() times out on silence after every attempt", async () => {
  // 500 ms per attempt: with 100 ms a loaded machine (tests in parallel on 2 cores) could reach
  // the deadline before the third query left, which is the scheduler's doing, not the resolver's.
  await withServer({ "slow.example": { drop: true } }, async (server, resolver) => {
    const error = await rejectsWith(
      resolver({ timeoutMs: 1500, attempts: 3 }).resolveTxt("slow.example"),
      "timeout",
    );
    assert.match(error.message, /no answer within 1500 ms/);
    assert.equal(server.queries.length, 3);
  });
});

Deno.test("StubResolver.resolveTxt() takes a late answer to an earlier try", async () => {
  // The server answers the first query only once the second has come.
  await withServer(
    { "late.example": { txt: ["late"], answerFirstAfter: 2 } },
    async (server, resolver) => {
      const r = resolver({ timeoutMs: 2000, attempts: 2 });
      assert.deepEqual(await r.resolveTxt("late.example"), ["late"]);
      assert.equal(server.queries.length, 2);
    },
  );
});

Deno.test("StubResolver.resolveTxt() rejects with timeout when the signal aborts", async () => {
  await withServer({ "slow.example": { drop: true } }, async (server, resolver) => {
    const r = resolver({ timeoutMs: 60_000 });
    const controller = new AbortController();
    const pending = r.resolveTxt("slow.example", { signal: controller.signal });
    while (server.queries.length === 0) await new Promise((ok) => setTimeout(ok, 5));
    controller.abort(new Error("message gone"));
    const error = await rejectsWith(pending, "timeout");
    assert.match(error.message, /aborted/);
    assert.equal((error.cause as Error).message, "message gone");
    // An already aborted signal sends nothing.
    await rejectsWith(r.resolveTxt("slow.example", { signal: AbortSignal.abort() }), "timeout");
    assert.equal(server.queries.length, 1);
  });
});

Deno.test("StubResolver.resolveTxt() asks the second server when the first is silent", async () => {
  const dead = await startFakeDnsServer({ "a.example": { drop: true } });
  const live = await startFakeDnsServer({ "a.example": { txt: ["from live"] } });
  try {
    const r = new StubResolver({ nameservers: [at(dead), at(live)], timeoutMs: 2000 });
    assert.deepEqual(await r.resolveTxt("a.example"), ["from live"]);
    assert.equal(dead.queries.length, 1);
    assert.equal(live.queries.length, 1);
  } finally {
    await dead.close();
    await live.close();
  }
});

Deno.test("StubResolver.resolveTxt() asks the second server when the first fails", async () => {
  const failing = await startFakeDnsServer({ "a.example": { rcode: "SERVFAIL" } });
  const live = await startFakeDnsServer({});
  const closed = await startFakeDnsServer({});
  const closedPort = at(closed);
  await closed.close(); // nothing listens there any more
  try {
    const r = new StubResolver({
      nameservers: [closedPort, at(failing), at(live)],
      timeoutMs: 3000,
    });
    // The live server's NXDOMAIN is an answer, and beats the other server's SERVFAIL.
    await rejectsWith(r.resolveTxt("a.example"), "nxdomain");
    assert.equal(failing.queries.length, 1);
    assert.equal(live.queries.length, 1);
  } finally {
    await failing.close();
    await live.close();
  }
});

Deno.test("StubResolver.resolveTxt() reports the most telling failure of all tries", async () => {
  const silent = await startFakeDnsServer({ "a.example": { drop: true } });
  const failing = await startFakeDnsServer({ "a.example": { rcode: "REFUSED" } });
  try {
    const r = new StubResolver({
      nameservers: [at(silent), at(failing)],
      timeoutMs: 400,
      attempts: 1,
    });
    const error = await rejectsWith(r.resolveTxt("a.example"), "refused");
    assert.match(error.message, new RegExp(`127\\.0\\.0\\.1@${failing.port}`));
  } finally {
    await silent.close();
    await failing.close();
  }
});

Deno.test("StubResolver.resolveTxt() reports garbage as malformed, and ignores noise", async () => {
  await withServer({
    "junk.example": { garbage: "records" },
    "noise.example": { garbage: "random" },
  }, async (server, resolver) => {
    const r = resolver({ timeoutMs: 300, attempts: 2 });
    const error = await rejectsWith(r.resolveTxt("junk.example"), "malformed");
    assert.match(error.message, /unparseable answer|ends inside a record/);
    assert.equal(server.queries.length, 2);
    // Random bytes do not even match the query, so they are ignored like a spoof.
    await rejectsWith(r.resolveTxt("noise.example"), "timeout");
  });
});

Deno.test("StubResolver.resolveTxt() refuses more TXT text than maxAnswerBytes as toolarge, at once", async () => {
  const at8k = "a".repeat(STUB_MAX_ANSWER_BYTES_DEFAULT);
  await withServer(
    {
      "limit.example": { txt: [at8k] },
      "over.example": { txt: [`${at8k}b`] },
      "two.example": { txt: ["a".repeat(5000), "b".repeat(5000)] },
    },
    async (server, resolver) => {
      // 8 KiB of text, the default limit, is a DNS message of over 8 KiB: it passes.
      assert.deepEqual(await resolver().resolveTxt("limit.example"), [at8k]);
      server.queries.length = 0;
      const error = await rejectsWith(resolver().resolveTxt("over.example"), "toolarge");
      assert.match(
        error.message,
        /answer holds 8193 bytes of TXT record text, over the limit of 8192 \(DNSMaxAnswerBytes\)/,
      );
      // An answer: neither the second attempt nor another server is asked.
      assert.deepEqual(server.queries.map((q) => q.transport), ["udp", "tcp"]);
      // Every record of the answer counts.
      await rejectsWith(resolver().resolveTxt("two.example"), "toolarge");
      assert.deepEqual(await resolver({ maxAnswerBytes: 10_000 }).resolveTxt("two.example"), [
        "a".repeat(5000),
        "b".repeat(5000),
      ]);
      await rejectsWith(resolver({ maxAnswerBytes: 512 }).resolveTxt("limit.example"), "toolarge");
    },
  );
});

Deno.test("StubResolver.resolveTxt() bounds a TCP answer by maxResponseBytes", async () => {
  await withServer(
    { "big.example": { truncateUdp: true, oversizedTcp: true } },
    async (server, resolver) => {
      const error = await rejectsWith(
        resolver({ maxResponseBytes: 4096, attempts: 1 }).resolveTxt("big.example"),
        "malformed",
      );
      assert.match(error.message, /65535 bytes exceeds the limit/);
      assert.deepEqual(server.queries.map((q) => q.transport), ["udp", "tcp"]);
      // Within the limit, 65535 zero bytes are read and refused as not an answer.
      await rejectsWith(resolver({ attempts: 1 }).resolveTxt("big.example"), "malformed");
    },
  );
});

Deno.test("StubResolver.resolveTxt() follows a CNAME chain inside the answer", async () => {
  await withServer({
    "s._domainkey.example.com": { cname: "s.provider.example", ttl: 100 },
    "s.provider.example": { txt: ["v=DKIM1; p=k"], ttl: 500 },
    "two.example": { cname: "s._domainkey.example.com" },
    "dangling.example": { cname: "nowhere.example" },
    "bare.example": { cname: "empty.example" },
    "empty.example": {},
    "loop1.example": { cname: "loop2.example" },
    "loop2.example": { cname: "loop1.example" },
  }, async (_, resolver) => {
    const r = resolver({ attempts: 1 });
    assert.deepEqual(await r.resolveTxtWithTtl("s._domainkey.example.com"), {
      type: "records",
      records: ["v=DKIM1; p=k"],
      ttl: 100, // the smallest TTL on the way
    });
    assert.deepEqual(await r.resolveTxt("two.example"), ["v=DKIM1; p=k"]);
    await rejectsWith(r.resolveTxt("dangling.example"), "nxdomain");
    await rejectsWith(r.resolveTxt("bare.example"), "nodata");
    const error = await rejectsWith(r.resolveTxt("loop1.example"), "malformed");
    assert.match(error.message, /CNAME chain longer than/);
  });
});

Deno.test("StubResolver.resolveTxt() does not take a referral or an unresolved CNAME as NODATA", async () => {
  await withServer({
    "referral.example": { referral: true },
    "unresolved.example": { cname: "elsewhere.example", rcode: "NOERROR", soa: false },
    "nosoa.example": { soa: false },
  }, async (_, resolver) => {
    const r = resolver({ attempts: 1 });
    const referral = await rejectsWith(r.resolveTxt("referral.example"), "malformed");
    assert.match(referral.message, /referral/);
    const unresolved = await rejectsWith(r.resolveTxt("unresolved.example"), "malformed");
    assert.match(unresolved.message, /CNAME to "elsewhere.example" was not resolved/);
    // NOERROR with nothing at all is still NODATA: some servers leave the SOA out.
    await rejectsWith(r.resolveTxt("nosoa.example"), "nodata");
  });
});

Deno.test("StubResolver.resolveTxt() queries an IPv6 nameserver", async () => {
  const server = await startFakeDnsServer(
    { "a.example": { txt: ["over v6"], truncateUdp: true } },
    {
      address: "::1",
    },
  );
  try {
    const r = new StubResolver({ nameservers: parseNameserverList(`[::1]:${server.port}`) });
    assert.deepEqual(await r.resolveTxt("a.example"), ["over v6"]);
    assert.deepEqual(server.queries.map((q) => q.transport), ["udp", "tcp"]);
  } finally {
    await server.close();
  }
});

Deno.test("StubResolver.resolveTxt() refuses invalid names without sending a query", async () => {
  await withServer({}, async (server, resolver) => {
    const r = resolver();
    for (const name of ["", ".", "a..b", "a b.example", "é.example", `${"a".repeat(64)}.example`]) {
      await rejectsWith(r.resolveTxt(name), "malformed");
    }
    await rejectsWith(r.resolveTxt(`${"a.".repeat(127)}b`), "malformed");
    assert.equal(server.queries.length, 0);
  });
});

Deno.test("StubResolver() rejects bad options", () => {
  const ns = [{ address: "127.0.0.1", port: 53, family: 4 as const }];
  assert.throws(() => new StubResolver({ nameservers: [] }), RangeError);
  assert.throws(() => new StubResolver({ nameservers: ns, timeoutMs: 0 }), RangeError);
  assert.throws(() => new StubResolver({ nameservers: ns, attempts: 1.5 }), RangeError);
  assert.throws(() => new StubResolver({ nameservers: ns, maxResponseBytes: 70000 }), RangeError);
});

Deno.test("StubResolver.resolveTxt() serves many concurrent lookups", async () => {
  const zone: FakeZone = {};
  for (let i = 0; i < 50; i++) zone[`k${i}.example`] = { txt: [`record ${i}`] };
  await withServer(zone, async (_, resolver) => {
    const r = resolver();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => r.resolveTxt(`k${i}.example`)),
    );
    results.forEach((records, i) => assert.deepEqual(records, [`record ${i}`]));
  });
});

Deno.test("StubResolver.resolveTxt() rejects only with DnsError whatever bytes come back", async () => {
  // Each reply copies the query's ID and question, so it is accepted and must be parsed; the
  // flags, counts and the rest are random.
  let tail = new Uint8Array(0);
  let flags = 0;
  let counts = new Uint8Array(6);
  const raw = (query: Uint8Array) => {
    let end = 12;
    while (query[end] !== 0) end += query[end] + 1;
    end += 5;
    const reply = new Uint8Array(end + tail.length);
    reply.set(query.subarray(0, end));
    reply[2] = 0x80 | (flags >> 8 & 0x7f);
    reply[3] = flags & 0xff;
    reply[4] = 0;
    reply[5] = 1;
    reply.set(counts, 6);
    reply.set(tail, end);
    return reply;
  };
  await withServer({ "fuzz.example": { raw } }, async (_, resolver) => {
    const r = resolver({ attempts: 1, timeoutMs: 2000 });
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 300 }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.uint8Array({ minLength: 6, maxLength: 6 }),
        async (t, f, c) => {
          tail = t;
          // Keep TC clear: a truncated UDP answer would make the client go to TCP for the same bytes.
          flags = f & ~0x0200;
          counts = c;
          try {
            const records = await r.resolveTxt("fuzz.example");
            assert.ok(records.every((s) => typeof s === "string"));
          } catch (error) {
            assert.ok(error instanceof DnsError, String(error));
            assert.notEqual(error.code, "timeout", error.message);
          }
        },
      ),
      fuzzParams(300),
    );
  });
});

// Against a real authoritative server: knotd (Debian package knot), started by
// tests/helpers/dns_server.ts with a zone of its own.
/** A key record as long as one for a 4096-bit RSA key (550-byte SPKI). */
const KEY_4096 = `v=DKIM1; k=rsa; p=${toBase64(crypto.getRandomValues(new Uint8Array(550)))}`;
const KEY_4096_B = `v=DKIM1; k=rsa; p=${toBase64(crypto.getRandomValues(new Uint8Array(550)))}`;
const ODD = 'v=DKIM1; n="quoted" \\ back\\slash; caf\xe9 \x01\xff';

const records = {
  "s1._domainkey.example.com": [
    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
  ],
  "big._domainkey.example.com": [KEY_4096],
  "many._domainkey.example.com": [KEY_4096_B, KEY_4096, "third"],
  "odd._domainkey.example.com": [ODD],
  "empty.example.com": [],
};

async function withKnot(fn: (server: DnsServer) => Promise<void>): Promise<void> {
  const server = await startDnsServer({ zone: "example.com", records });
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

function resolverFor(server: DnsServer, ednsPayload?: number): StubResolver {
  return new StubResolver({
    nameservers: [parseNameserver(server.nameserver)],
    timeoutMs: 3000,
    ...(ednsPayload ? { ednsPayload } : {}),
  });
}

async function codeOf(promise: Promise<unknown>): Promise<DnsErrorCode> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof DnsError) return error.code;
    throw error;
  }
  throw new Error("expected a DnsError");
}

Deno.test("StubResolver against knotd: records, NXDOMAIN, NODATA, long and several records", async () => {
  await withKnot(async (server) => {
    const r = resolverFor(server);
    assert.deepEqual(
      await r.resolveTxt("s1._domainkey.example.com"),
      records["s1._domainkey.example.com"],
    );
    assert.deepEqual(
      await r.resolveTxt("S1._DOMAINKEY.EXAMPLE.COM."),
      records["s1._domainkey.example.com"],
    );

    assert.equal(await codeOf(r.resolveTxt("missing._domainkey.example.com")), "nxdomain");
    assert.equal(await codeOf(r.resolveTxt("empty.example.com")), "nodata");
    // An empty non-terminal exists (RFC 8020) and the apex has no TXT: both are NODATA.
    assert.equal(await codeOf(r.resolveTxt("_domainkey.example.com")), "nodata");
    assert.equal(await codeOf(r.resolveTxt("example.com")), "nodata");
    // Outside the zone, an authoritative server refuses.
    assert.equal(await codeOf(r.resolveTxt("example.org")), "refused");

    // The negative TTL is the SOA MINIMUM (RFC 2308 §5).
    assert.deepEqual(await r.resolveTxtWithTtl("missing.example.com"), {
      type: "nxdomain",
      ttl: 60,
    });
    assert.deepEqual(await r.resolveTxtWithTtl("s1._domainkey.example.com"), {
      type: "records",
      records: records["s1._domainkey.example.com"],
      ttl: 300,
    });

    assert.deepEqual(await r.resolveTxt("big._domainkey.example.com"), [KEY_4096]);
    assert.deepEqual(await r.resolveTxt("odd._domainkey.example.com"), [ODD]);
    // Three records, more than 1232 bytes together: knotd truncates UDP, TCP brings them all.
    assert.ok(records["many._domainkey.example.com"].join("").length > 1232);
    assert.deepEqual(
      (await r.resolveTxt("many._domainkey.example.com")).sort(),
      [...records["many._domainkey.example.com"]].sort(),
    );
  });
});

Deno.test("StubResolver against knotd: a 4096-bit key record comes over TCP after truncation", async () => {
  await withKnot(async (server) => {
    assert.ok(KEY_4096.length > 512);
    const r = resolverFor(server, 512);
    assert.deepEqual(await r.resolveTxt("big._domainkey.example.com"), [KEY_4096]);
  });
});
