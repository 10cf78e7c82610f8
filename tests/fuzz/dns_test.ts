// Mutation fuzzing of DNS answers and of the DNS configuration parsers. A fake server on
// loopback (tests/helpers/fake_dns_server.ts) answers each query with a well-formed response
// (TXT records, CNAME chains, compression pointers, SOA, OPT) whose bytes after the question are
// then changed; the stub resolver gives records or a DnsError, never another exception, over UDP
// and (after TC) TCP. Key files, resolv.conf and nameserver lists parse or throw their typed
// errors.
import assert from "node:assert/strict";
import fc from "fast-check";
// @ts-types="@types/dns-packet"
import * as dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { fromLatin1 } from "../../lib/bytes.ts";
import { KeyFileSyntaxError, parseKeyFile } from "../../lib/dns/key_file.ts";
import {
  MAX_NAMESERVERS,
  NameserverSyntaxError,
  parseIpAddress,
  parseNameserver,
  parseNameserverList,
} from "../../lib/dns/nameserver.ts";
import {
  parseResolvConf,
  RESOLV_CONF_MAX_ATTEMPTS,
  RESOLV_CONF_MAX_NAMESERVERS,
  RESOLV_CONF_MAX_TIMEOUT_SECONDS,
} from "../../lib/dns/resolv_conf.ts";
import { DnsError } from "../../lib/dns/resolver.ts";
import { StubResolver } from "../../lib/dns/stub.ts";
import { startFakeDnsServer } from "../helpers/fake_dns_server.ts";
import { anyText, applyEdits, type Edit, edits, fuzzParams, latin1Text } from "../helpers/fuzz.ts";

const NAME = "sel._domainkey.example.com";

/** One well-formed answer to build, before its bytes are changed. */
interface AnswerPlan {
  readonly rcode: number;
  readonly records: readonly (readonly string[])[];
  readonly cname: boolean;
  readonly soa: boolean;
  readonly opt: boolean;
  readonly pointer: boolean;
  readonly tc: boolean;
}

const plan: fc.Arbitrary<AnswerPlan> = fc.record({
  rcode: fc.constantFrom(0, 0, 0, 1, 2, 3, 4, 5, 9),
  records: fc.array(
    fc.array(
      fc.oneof(
        fc.constantFrom("v=DKIM1; k=rsa; p=", "AAAA", "x".repeat(255), ""),
        latin1Text(6),
      ),
      { minLength: 1, maxLength: 3 },
    ),
    { maxLength: 3 },
  ),
  cname: fc.boolean(),
  soa: fc.boolean(),
  opt: fc.boolean(),
  pointer: fc.boolean(),
  tc: fc.boolean(),
});

// The query's question section ends after its name and 4 bytes of type and class.
function questionEnd(query: Uint8Array): number {
  let i = 12;
  while (query[i] !== 0) i += query[i] + 1;
  return i + 5;
}

function buildAnswer(query: Uint8Array, p: AnswerPlan): Uint8Array {
  const decoded = dnsPacket.decode(Buffer.from(query));
  const question = decoded.questions![0];
  const target = p.cname ? "target.example.com" : question.name;
  const answers: dnsPacket.Answer[] = [];
  if (p.cname) {
    answers.push({ type: "CNAME", name: question.name, class: "IN", ttl: 60, data: target });
  }
  for (const strings of p.records) {
    answers.push({
      type: "TXT",
      name: target,
      class: "IN",
      ttl: 300,
      data: strings.map((s) => Buffer.from(fromLatin1(s))),
    });
  }
  const packet = dnsPacket.encode({
    type: "response",
    id: decoded.id,
    flags: dnsPacket.RECURSION_DESIRED | (p.tc ? dnsPacket.TRUNCATED_RESPONSE : 0) | p.rcode,
    questions: [question],
    answers,
    authorities: p.soa
      ? [{
        type: "SOA",
        name: "example.com",
        class: "IN",
        ttl: 3600,
        data: {
          mname: "ns.example.com",
          rname: "hostmaster.example.com",
          serial: 1,
          refresh: 1,
          retry: 1,
          expire: 1,
          minimum: 60,
        },
      }]
      : [],
    additionals: p.opt
      ? [{
        type: "OPT",
        name: ".",
        udpPayloadSize: 1232,
        extendedRcode: 0,
        ednsVersion: 0,
        flags: 0,
        flag_do: false,
        options: [],
      }]
      : [],
  });
  let bytes = new Uint8Array(packet.buffer, packet.byteOffset, packet.byteLength);
  if (p.pointer) {
    // One more TXT record whose owner is a compression pointer to the question name.
    const rr = Uint8Array.of(0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 60, 0, 4, 3, 0x61, 0x62, 0x63);
    const out = new Uint8Array(bytes.length + rr.length);
    out.set(bytes);
    out.set(rr, bytes.length);
    out[7] = out[7] + 1; // ANCOUNT, low byte
    bytes = out;
  }
  return bytes;
}

// Changes the answer after its ID and question (so the resolver accepts it as the answer and
// must parse it), and the flags and counts in between; QR stays set and QDCOUNT 1.
function mutateAnswer(
  answer: Uint8Array,
  query: Uint8Array,
  header: readonly [number, number][],
  tail: readonly Edit[],
): Uint8Array {
  const end = questionEnd(query);
  const head = answer.slice(0, end);
  for (const [at, byte] of header) head[2 + (at % 10)] = byte;
  head[2] |= 0x80;
  head[4] = 0;
  head[5] = 1;
  const rest = applyEdits(answer.subarray(end), tail);
  const out = new Uint8Array(head.length + rest.length);
  out.set(head);
  out.set(rest, head.length);
  return out;
}

const pointerTokens = [
  Uint8Array.of(0xc0, 0x0c),
  Uint8Array.of(0xc0, 0x00),
  Uint8Array.of(0xff, 0xff),
  Uint8Array.of(0x3f),
  Uint8Array.of(0, 16, 0, 1),
  Uint8Array.of(0, 5, 0, 1),
  Uint8Array.of(0xff),
];
const tailEdits: fc.Arbitrary<readonly Edit[]> = fc.oneof(
  edits(4),
  fc.array(
    fc.record({
      kind: fc.constant("insert" as const),
      at: fc.nat(),
      bytes: fc.constantFrom(...pointerTokens),
    }),
    { minLength: 1, maxLength: 3 },
  ),
  fc.constant([] as readonly Edit[]),
);

Deno.test("StubResolver.resolveTxt() gives records or a DnsError for any mutated answer", async () => {
  let current: { plan: AnswerPlan; header: [number, number][]; tail: readonly Edit[] } | undefined;
  const server = await startFakeDnsServer({
    [NAME]: {
      raw: (query) => {
        const c = current!;
        return mutateAnswer(buildAnswer(query, c.plan), query, c.header, c.tail);
      },
    },
  });
  try {
    const resolver = new StubResolver({
      nameservers: [{ address: "127.0.0.1", port: server.port, family: 4 }],
      attempts: 1,
      timeoutMs: 5000,
    });
    let records = 0;
    let failures = 0;
    await fc.assert(
      fc.asyncProperty(
        plan,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 2 }),
        tailEdits,
        async (p, header, tail) => {
          current = { plan: p, header, tail };
          try {
            const answer = await resolver.resolveTxtWithTtl(NAME);
            if (answer.type === "records") {
              records++;
              for (const r of answer.records) assert.equal(typeof r, "string");
              assert.ok(answer.ttl === undefined || answer.ttl >= 0);
            }
          } catch (error) {
            failures++;
            assert.ok(error instanceof DnsError, String(error));
            // Every answer keeps its ID and question, so none is ignored until the timeout.
            assert.notEqual(error.code, "timeout", error.message);
          }
        },
      ),
      fuzzParams(1000),
    );
    assert.ok(records + failures > 0);
  } finally {
    await server.close();
  }
});

const keyFileText = fc.oneof(
  latin1Text(40, [
    "sel._domainkey.example.com",
    " v=DKIM1; p=AAAA",
    "\n",
    "#",
    "\t",
    ".",
    "..",
    "a".repeat(64),
  ]),
  anyText(80),
);

Deno.test("parseKeyFile() returns records by name or throws KeyFileSyntaxError naming a line", () => {
  fc.assert(
    fc.property(keyFileText, (text) => {
      const lines = text.split("\n").length;
      try {
        const keys = parseKeyFile(text, "keys.txt");
        let count = 0;
        for (const [name, records] of keys) {
          assert.equal(name, name.toLowerCase().replace(/\.$/, ""));
          count += records.length;
        }
        assert.ok(count <= lines);
      } catch (error) {
        assert.ok(error instanceof KeyFileSyntaxError, String(error));
        assert.equal(error.file, "keys.txt");
        assert.ok(error.line >= 1 && error.line <= lines, `line ${error.line} of ${lines}`);
      }
    }),
    fuzzParams(2000),
  );
});

const resolvConf = fc.oneof(
  fc.array(
    fc.oneof(
      fc.tuple(
        fc.constantFrom("nameserver", "options", "search", "domain", "#", ";"),
        fc.oneof(
          fc.constantFrom(
            "127.0.0.1",
            "::1",
            "fe80::1%eth0",
            "10.0.0.1%x",
            "timeout:3",
            "attempts:9",
            "timeout:999999999999",
            "attempts:-1",
            "ndots:1 timeout:1",
            "1.2.3.4.5",
          ),
          latin1Text(6),
        ),
      ).map(([k, v]) => `${k} ${v}`),
      latin1Text(10),
    ),
    { maxLength: 12 },
  ).map((lines) => lines.join("\n")),
  anyText(100),
);

Deno.test("parseResolvConf() always gives bounded, usable settings", () => {
  fc.assert(
    fc.property(resolvConf, (text) => {
      const conf = parseResolvConf(text);
      assert.ok(conf.nameservers.length >= 1);
      assert.ok(conf.nameservers.length <= RESOLV_CONF_MAX_NAMESERVERS);
      for (const ns of conf.nameservers) {
        assert.deepEqual(parseIpAddress(ns.address), { address: ns.address, family: ns.family });
      }
      if (conf.timeoutMs !== undefined) {
        assert.ok(
          conf.timeoutMs >= 1000 && conf.timeoutMs <= RESOLV_CONF_MAX_TIMEOUT_SECONDS * 1000,
        );
      }
      if (conf.attempts !== undefined) {
        assert.ok(conf.attempts >= 1 && conf.attempts <= RESOLV_CONF_MAX_ATTEMPTS);
      }
    }),
    fuzzParams(2000),
  );
});

const nameserverText = fc.oneof(
  latin1Text(12, ["127.0.0.1", "::1", "[", "]", "@", ":", "53", "65536", "0", "1.2.3.4", "::"]),
  fc.tuple(fc.ipV4(), fc.nat(70000)).map(([a, p]) => `${a}:${p}`),
  fc.tuple(fc.ipV6(), fc.nat(70000)).map(([a, p]) => `[${a}]:${p}`),
  fc.tuple(fc.oneof(fc.ipV4(), fc.ipV6()), fc.nat(70000)).map(([a, p]) => `${a}@${p}`),
  fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended()),
  anyText(40),
);

Deno.test("parseNameserver() and parseNameserverList() return servers or throw NameserverSyntaxError", () => {
  fc.assert(
    fc.property(fc.array(nameserverText, { maxLength: MAX_NAMESERVERS + 2 }), (items) => {
      for (const item of items) {
        try {
          const ns = parseNameserver(item);
          assert.ok(ns.port >= 1 && ns.port <= 65535);
          assert.deepEqual(parseIpAddress(ns.address), { address: ns.address, family: ns.family });
        } catch (error) {
          assert.ok(error instanceof NameserverSyntaxError, String(error));
        }
      }
      try {
        const list = parseNameserverList(items.join(","));
        assert.ok(list.length >= 1 && list.length <= MAX_NAMESERVERS);
      } catch (error) {
        assert.ok(error instanceof NameserverSyntaxError, String(error));
      }
    }),
    fuzzParams(2000),
  );
});

Deno.test("parseIpAddress() reads every IPv4 and IPv6 address back from its canonical form", () => {
  fc.assert(
    fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (text) => {
      const ip = parseIpAddress(text);
      assert.ok(ip, text);
      assert.deepEqual(parseIpAddress(ip.address), ip);
    }),
    fuzzParams(2000),
  );
});
