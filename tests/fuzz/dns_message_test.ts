// Fuzzing of dkimd's own DNS message decoder (lib/dns/dns_message.ts), which reads every byte a
// name server, or anyone who can spoof one, sends: random bytes and byte-level mutations of real
// answers (dns-packet encodes them) give a message or a DnsMessageError, never another error; and
// what decodes agrees with dns-packet on the TXT strings of an unmutated answer.
import assert from "node:assert/strict";
import fc from "fast-check";
import { Buffer } from "node:buffer";
// @ts-types="@types/dns-packet"
import * as dnsPacket from "dns-packet";
import { decodeMessage, DnsMessageError } from "../../lib/dns/dns_message.ts";
import { applyEdits, edits, fuzzParams } from "../helpers/fuzz.ts";

function decodeOrTypedError(bytes: Uint8Array): void {
  try {
    decodeMessage(bytes);
  } catch (error) {
    if (!(error instanceof DnsMessageError)) throw error;
  }
}

const label = fc.stringMatching(/^[a-z0-9-]{1,20}$/);
const domain = fc.array(label, { minLength: 1, maxLength: 5 }).map((l) => l.join("."));
const txtStrings = fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 4 });

// An answer as a name server writes it: the question, TXT records (some under a CNAME), compressed
// names, and an OPT record.
const answer = fc.record({
  id: fc.integer({ min: 0, max: 0xffff }),
  name: domain,
  alias: domain,
  txt: fc.array(txtStrings, { minLength: 1, maxLength: 3 }),
  viaCname: fc.boolean(),
  ttl: fc.integer({ min: 0, max: 0x7fffffff }),
}).map((a) => {
  const owner = a.viaCname ? a.alias : a.name;
  const packet: dnsPacket.Packet = {
    id: a.id,
    type: "response",
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    questions: [{ type: "TXT", name: a.name }],
    answers: [
      ...(a.viaCname ? [{ type: "CNAME" as const, name: a.name, ttl: a.ttl, data: a.alias }] : []),
      ...a.txt.map((strings) => ({
        type: "TXT" as const,
        name: owner,
        ttl: a.ttl,
        data: strings.map((s) => Buffer.from(s)),
      })),
    ],
    additionals: [{ type: "OPT", name: ".", udpPayloadSize: 1232, flags: 0, options: [] }],
  } as unknown as dnsPacket.Packet;
  const b = dnsPacket.encode(packet);
  return { bytes: new Uint8Array(b.buffer, b.byteOffset, b.byteLength), txt: a.txt };
});

Deno.test("decodeMessage() gives a message or a DnsMessageError for any bytes (property)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => decodeOrTypedError(bytes)),
    fuzzParams(3000),
  );
});

Deno.test("decodeMessage() gives a message or a DnsMessageError for mutated answers (property)", () => {
  fc.assert(
    fc.property(answer, edits(6), (a, list) => decodeOrTypedError(applyEdits(a.bytes, list))),
    fuzzParams(2000),
  );
});

Deno.test("decodeMessage() reads back every TXT string dns-packet wrote (property)", () => {
  fc.assert(
    fc.property(answer, (a) => {
      const message = decodeMessage(a.bytes);
      const got = message.answers.flatMap((r) =>
        r.data.type === "TXT" ? [r.data.strings.map((s) => [...s])] : []
      );
      assert.deepEqual(got, a.txt.map((strings) => strings.map((s) => [...s])));
    }),
    fuzzParams(500),
  );
});
