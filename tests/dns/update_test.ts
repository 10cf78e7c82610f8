import assert from "node:assert/strict";
import dgram from "node:dgram";
import { Buffer } from "node:buffer";
import * as packet from "dns-packet";
import {
  DnsUpdateError,
  type DnsUpdateErrorCode,
  encodeUpdate,
  sendUpdate,
  signRequest,
  type UpdateChange,
  type UpdateRequest,
} from "../../lib/dns/update.ts";
import type { TsigKey } from "../../lib/dns/tsig_key.ts";
import { StubResolver } from "../../lib/dns/stub.ts";
import { DnsError } from "../../lib/dns/resolver.ts";
import { fromBase64, toBase64 } from "../../lib/bytes.ts";
import { type KnotZone, startKnotZone } from "../helpers/knot_servers.ts";

const SECRET = toBase64(crypto.getRandomValues(new Uint8Array(32)));
const KEY: TsigKey = { name: "dkimd-rotate", algorithm: "hmac-sha256", secret: fromBase64(SECRET) };
const ZONE = "example.com";
const NAME = "s2026._domainkey.example.com";
/** A 2048-bit RSA key record's length: over 255 bytes, so several strings, and over UDP's 512. */
const RSA_RECORD = "v=DKIM1; k=rsa; p=" +
  "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA".padEnd(392, "Q") + "IDAQAB";
const ED_RECORD = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

async function withKnot(
  options: { allowUpdate?: boolean },
  fn: (dns: KnotZone, update: (o: Partial<UpdateRequest>) => Promise<void>) => Promise<void>,
) {
  const dns = await startKnotZone({
    zone: ZONE,
    records: { "old._domainkey.example.com": ["v=DKIM1; p="] },
    key: { name: KEY.name, secret: SECRET },
    ...options,
  });
  try {
    await fn(dns, (o) =>
      sendUpdate({
        server: { address: "127.0.0.1", port: dns.primary.port, family: 4 },
        zone: ZONE,
        key: KEY,
        changes: [],
        timeoutMs: 5000,
        ...o,
      }));
  } finally {
    await dns.close();
  }
}

function ask(port: number, name: string): Promise<string[]> {
  const resolver = new StubResolver({
    nameservers: [{ address: "127.0.0.1", port, family: 4 }],
    timeoutMs: 1000,
    attempts: 1,
  });
  return resolver.resolveTxt(name).catch((e) => {
    if (e instanceof DnsError && (e.code === "nxdomain" || e.code === "nodata")) return [];
    throw e;
  });
}

async function rejectsWith(p: Promise<unknown>, code: DnsUpdateErrorCode, message: RegExp) {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof DnsUpdateError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
}

Deno.test("encodeUpdate() writes RFC 2136 sections that dns-packet reads back", () => {
  const changes: UpdateChange[] = [
    { op: "replace-txt", name: NAME, ttl: 600, records: [RSA_RECORD] },
    { op: "delete-txt-record", name: "old._domainkey.example.com", record: "v=DKIM1; p=" },
    { op: "delete-txt", name: "older._domainkey.example.com" },
  ];
  const bytes = encodeUpdate(ZONE, changes, 0x4242);
  const m = packet.decode(Buffer.from(bytes));
  assert.equal(m.id, 0x4242);
  assert.equal((m as unknown as { opcode: string }).opcode, "UPDATE");
  assert.deepEqual(m.questions, [{ name: ZONE, type: "SOA", class: "IN" }]);
  const updates = m.authorities as unknown as {
    name: string;
    type: string;
    class: string;
    ttl: number;
    data: unknown;
  }[];
  assert.deepEqual(
    updates.map((u) => [u.name, u.type, u.class, u.ttl]),
    [
      [NAME, "TXT", "ANY", 0],
      [NAME, "TXT", "IN", 600],
      // dns-packet has no name for class NONE (254).
      ["old._domainkey.example.com", "TXT", "UNKNOWN_254", 0],
      ["older._domainkey.example.com", "TXT", "ANY", 0],
    ],
  );
  const strings = updates[1].data as Buffer[];
  assert.deepEqual(strings.map((s) => s.length), [255, RSA_RECORD.length - 255]);
  assert.equal(Buffer.concat(strings).toString("latin1"), RSA_RECORD);
});

Deno.test("signRequest() appends a TSIG record dns-packet reads, with the original ID", () => {
  const message = encodeUpdate(ZONE, [{ op: "delete-txt", name: NAME }], 0x1234);
  const signed = signRequest(message, KEY, 1_800_000_000);
  const m = packet.decode(Buffer.from(signed.bytes));
  assert.equal(m.additionals?.length, 1);
  const tsig = m.additionals![0] as unknown as { name: string; type: string; class: string };
  assert.deepEqual([tsig.name, tsig.class], [KEY.name, "ANY"]);
  // The RDATA ends with the original ID (0x1234), error 0 and no other data.
  assert.deepEqual([...signed.bytes.subarray(-6)], [0x12, 0x34, 0, 0, 0, 0]);
});

Deno.test("sendUpdate() publishes a DKIM record knot then serves, over TCP and UDP", async () => {
  await withKnot({}, async (dns, update) => {
    // RSA: over 512 bytes, so TCP; Ed25519: small, so UDP.
    await update({ changes: [{ op: "replace-txt", name: NAME, ttl: 300, records: [RSA_RECORD] }] });
    assert.deepEqual(await ask(dns.primary.port, NAME), [RSA_RECORD]);
    await update({ changes: [{ op: "replace-txt", name: NAME, ttl: 300, records: [ED_RECORD] }] });
    assert.deepEqual(await ask(dns.primary.port, NAME), [ED_RECORD]);
    await update({
      transport: "tcp",
      changes: [{
        op: "delete-txt-record",
        name: "old._domainkey.example.com",
        record: "v=DKIM1; p=",
      }],
    });
    assert.deepEqual(await ask(dns.primary.port, "old._domainkey.example.com"), []);
    await update({ changes: [{ op: "delete-txt", name: NAME }] });
    assert.deepEqual(await ask(dns.primary.port, NAME), []);
  });
});

Deno.test("sendUpdate() reports a wrong secret as BADSIG, an unknown key as BADKEY, skew as BADTIME", async () => {
  await withKnot({}, async (dns, update) => {
    const changes: UpdateChange[] = [{
      op: "replace-txt",
      name: NAME,
      ttl: 300,
      records: [ED_RECORD],
    }];
    const wrong = { ...KEY, secret: crypto.getRandomValues(new Uint8Array(32)) };
    await rejectsWith(
      update({ key: wrong, changes }),
      "badsig",
      /^the DNS server 127\.0\.0\.1@\d+ \(zone "example\.com"\) answered NOTAUTH\/BADSIG: the signature did not verify: the secret of key "dkimd-rotate" differs from the server's$/,
    );
    await rejectsWith(
      update({ key: { ...KEY, name: "someone-else" }, changes }),
      "badkey",
      /answered NOTAUTH\/BADKEY: the server does not know key "someone-else"/,
    );
    await rejectsWith(
      update({ now: () => Date.now() - 3600_000, changes }),
      "badtime",
      /BADTIME: the clocks differ by more than 300 s/,
    );
    assert.deepEqual(await ask(dns.primary.port, NAME), [], "nothing was published");
  });
});

Deno.test("sendUpdate() reports knot's ACL refusal (NOTAUTH/BADKEY) and names the ACL", async () => {
  await withKnot({ allowUpdate: false }, async (dns, update) => {
    await rejectsWith(
      update({ changes: [{ op: "replace-txt", name: NAME, ttl: 300, records: [ED_RECORD] }] }),
      "badkey",
      /answered NOTAUTH\/BADKEY: .*no ACL lets that key update this zone$/,
    );
    assert.deepEqual(await ask(dns.primary.port, NAME), [], "nothing was published");
  });
});

Deno.test("sendUpdate() reports a zone the server does not serve as NOTAUTH", async () => {
  await withKnot({}, async (_dns, update) => {
    await rejectsWith(
      update({
        zone: "example.org",
        changes: [{ op: "delete-txt", name: "s._domainkey.example.org" }],
      }),
      "notauth",
      /zone "example\.org"\) answered NOTAUTH without a TSIG signature: .*not authoritative/,
    );
  });
});

/** A UDP server that answers each query with `answer(query)`, or never when it returns undefined. */
async function withUdpServer(
  answer: (query: Uint8Array) => Uint8Array | undefined,
  fn: (port: number) => Promise<void>,
) {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  socket.on("message", (msg, rinfo) => {
    const reply = answer(new Uint8Array(msg));
    if (reply) socket.send(reply, rinfo.port, rinfo.address);
  });
  try {
    await fn(socket.address().port);
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

Deno.test("sendUpdate() refuses an answer whose TSIG MAC does not verify", async () => {
  // Echo the request as the answer: its MAC is the request's, not one over our MAC + answer.
  await withUdpServer((q) => {
    const r = q.slice();
    r[2] |= 0x80;
    return r;
  }, async (port) => {
    await rejectsWith(
      sendUpdate({
        server: { address: "127.0.0.1", port, family: 4 },
        zone: ZONE,
        key: KEY,
        changes: [{ op: "delete-txt", name: NAME }],
      }),
      "badmac",
      /answered NOERROR with a TSIG MAC that does not verify/,
    );
  });
});

Deno.test("sendUpdate() reports REFUSED (BIND's update-policy denial) as refused", async () => {
  await withUdpServer((q) => {
    const r = q.slice(0, 12 + 13 + 4); // header and the zone section of "example.com"
    r[2] |= 0x80;
    r[3] = 5; // REFUSED
    r.fill(0, 6, 12); // no records
    return r;
  }, async (port) => {
    await rejectsWith(
      sendUpdate({
        server: { address: "127.0.0.1", port, family: 4 },
        zone: ZONE,
        key: KEY,
        changes: [{ op: "delete-txt", name: NAME }],
      }),
      "refused",
      /answered REFUSED without a TSIG signature: it does not accept updates signed with key "dkimd-rotate"/,
    );
  });
});

Deno.test("sendUpdate() gives up after its timeout", async () => {
  await withUdpServer(() => undefined, async (port) => {
    await rejectsWith(
      sendUpdate({
        server: { address: "127.0.0.1", port, family: 4 },
        zone: ZONE,
        key: KEY,
        changes: [{ op: "delete-txt", name: NAME }],
        timeoutMs: 200,
      }),
      "timeout",
      /did not answer the update within 200 ms/,
    );
  });
});
