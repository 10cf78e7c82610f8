import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
// @ts-types="@types/dns-packet"
import * as dnsPacket from "dns-packet";
import { latin1 } from "../../lib/bytes.ts";
import {
  decodeMessage,
  DnsMessageError,
  encodeTxtQuery,
  RR_TYPE,
} from "../../lib/dns/dns_message.ts";

function bytesOf(packet: dnsPacket.Packet): Uint8Array {
  const b = dnsPacket.encode(packet);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

Deno.test("encodeTxtQuery() writes the query dns-packet writes", () => {
  const name = "sel._domainkey.Example.COM";
  const theirs = bytesOf({
    type: "query",
    id: 0xbeef,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: "TXT", name, class: "IN" }],
    additionals: [{
      type: "OPT",
      name: ".",
      udpPayloadSize: 1232,
      extendedRcode: 0,
      ednsVersion: 0,
      flags: 0,
      flag_do: false,
      options: [],
    }],
  });
  assert.deepEqual(encodeTxtQuery(name, 0xbeef, 1232), theirs);
});

Deno.test("decodeMessage() reads TXT, CNAME, SOA and OPT records, compressed names included", () => {
  const bytes = bytesOf({
    type: "response",
    id: 42,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    questions: [{ type: "TXT", name: "a.example.com", class: "IN" }],
    answers: [
      { type: "CNAME", name: "a.example.com", class: "IN", ttl: 60, data: "b.example.com" },
      {
        type: "TXT",
        name: "b.example.com",
        class: "IN",
        ttl: 0x80000000,
        data: [Buffer.from("v=DKIM1; p="), Buffer.from([0xe9, 0x41])],
      },
    ],
    authorities: [{
      type: "SOA",
      name: "example.com",
      class: "IN",
      ttl: 300,
      data: {
        mname: "ns.example.com",
        rname: "hostmaster.example.com",
        serial: 1,
        refresh: 2,
        retry: 3,
        expire: 4,
        minimum: 77,
      },
    }],
    additionals: [{
      type: "OPT",
      name: ".",
      udpPayloadSize: 4096,
      extendedRcode: 1,
      ednsVersion: 0,
      flags: 0,
      flag_do: false,
      options: [],
    }],
  });
  const m = decodeMessage(bytes);
  assert.equal(m.id, 42);
  assert.equal(m.flags & 0x8000, 0x8000);
  assert.deepEqual(m.answers[0], {
    name: "a.example.com",
    class: 1,
    ttl: 60,
    data: { type: "CNAME", target: "b.example.com" },
  });
  const txt = m.answers[1];
  assert.equal(txt.name, "b.example.com");
  assert.equal(txt.ttl, 0x80000000);
  assert.equal(txt.data.type, "TXT");
  if (txt.data.type === "TXT") {
    assert.deepEqual(txt.data.strings.map(latin1), ["v=DKIM1; p=", "\xe9A"]);
  }
  assert.deepEqual(m.authorities[0].data, { type: "SOA", minimum: 77 });
  assert.equal(m.authorities[0].name, "example.com");
  assert.deepEqual(m.additionals[0].data, {
    type: "OPT",
    extendedRcode: 1,
    dnssecOk: false,
    extendedErrors: [],
  });
  assert.equal(m.additionals[0].class, 4096);
});

Deno.test("decodeMessage() keeps other record types as their type code", () => {
  const m = decodeMessage(bytesOf({
    type: "response",
    id: 1,
    answers: [{ type: "A", name: "x.example", class: "IN", ttl: 5, data: "192.0.2.1" }],
  }));
  assert.deepEqual(m.answers[0].data, { type: "other", code: 1 });
  assert.notEqual(RR_TYPE.TXT, 1);
});

Deno.test("decodeMessage() rejects a message cut anywhere inside a record", () => {
  const bytes = bytesOf({
    type: "response",
    id: 1,
    questions: [{ type: "TXT", name: "x.example", class: "IN" }],
    answers: [{ type: "TXT", name: "x.example", class: "IN", ttl: 5, data: "v=DKIM1" }],
  });
  decodeMessage(bytes);
  for (let n = 0; n < bytes.length; n++) {
    assert.throws(() => decodeMessage(bytes.subarray(0, n)), DnsMessageError, `cut at ${n}`);
  }
});

Deno.test("decodeMessage() rejects a pointer loop, a bad label type and an overrunning TXT string", () => {
  const header = [0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0];
  // A record whose owner name points at itself.
  const loop = Uint8Array.from([...header, 0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 5, 0, 0]);
  assert.throws(() => decodeMessage(loop), /pointers loop/);
  const label = Uint8Array.from([...header, 0x40, 0, 16, 0, 1, 0, 0, 0, 5, 0, 0]);
  assert.throws(() => decodeMessage(label), /unknown label type/);
  // RDLENGTH 3 holds a string that says it has 5 bytes.
  const txt = Uint8Array.from([...header, 0, 0, 16, 0, 1, 0, 0, 0, 5, 0, 3, 5, 0x61, 0x62, 0, 0]);
  assert.throws(() => decodeMessage(txt), /overruns its record/);
});
