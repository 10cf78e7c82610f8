import assert from "node:assert/strict";
import { generateSigningKey, type SigningKey } from "../../lib/crypto/private_key.ts";
import { toBase64 } from "../../lib/bytes.ts";
import { sendUpdate, type UpdateChange } from "../../lib/dns/update.ts";
import { type Nameserver, parseNameserver } from "../../lib/dns/nameserver.ts";
import { describeProof, type Proof, prove } from "../../lib/rotate/proof.ts";
import {
  findAuthoritativeServers,
  findZoneApex,
  proofServers,
} from "../../lib/rotate/zone_servers.ts";
import { type KnotZone, startKnotZone } from "../helpers/knot_servers.ts";

const ZONE = "example.com";
const NAME = "s202612._domainkey.example.com";
const SECRET = toBase64(crypto.getRandomValues(new Uint8Array(32)));
const TSIG = {
  name: "rotate",
  algorithm: "hmac-sha256" as const,
  secret: Uint8Array.from(atob(SECRET), (c) => c.charCodeAt(0)),
};

function recordOf(key: SigningKey): string {
  return `v=DKIM1; k=${key.type}; p=${toBase64(key.publicKey)}`;
}

async function withZone(
  fn: (dns: KnotZone, publish: (c: UpdateChange[]) => Promise<void>) => Promise<void>,
) {
  const dns = await startKnotZone({
    zone: ZONE,
    records: {},
    key: { name: TSIG.name, secret: SECRET },
    secondary: true,
  });
  try {
    await fn(
      dns,
      (changes) =>
        sendUpdate({
          server: parseNameserver(dns.primary.nameserver),
          zone: ZONE,
          key: TSIG,
          changes,
        }),
    );
  } finally {
    await dns.close();
  }
}

/** The servers as DNSProofServers lists them, and the primary as the resolver dkimd uses. */
function servers(dns: KnotZone) {
  const at = (ns: string): Nameserver => parseNameserver(ns);
  return proofServers(
    [{ server: at(dns.primary.nameserver) }, { server: at(dns.secondary!.nameserver) }],
    [at(dns.primary.nameserver)],
    { timeoutMs: 1000 },
  );
}

/** Proves until `want` or 15 s (knot NOTIFYs about a second after a change). */
async function proveUntil(dns: KnotZone, key: SigningKey, want: Proof["status"]): Promise<Proof> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const proof = await prove(NAME, { kind: "key", privateKey: key }, servers(dns));
    if (proof.status === want || Date.now() > deadline) return proof;
    await new Promise((r) => setTimeout(r, 200));
  }
}

Deno.test("prove() waits for a lagging secondary, then proves the key once it catches up", async () => {
  await withZone(async (dns, publish) => {
    const key = await generateSigningKey("ed25519");
    const before = await prove(NAME, { kind: "key", privateKey: key }, servers(dns));
    assert.equal(before.status, "waiting");
    // The secondary stops taking transfers, as one behind a broken link or a busy one does.
    await dns.secondary!.control("zone-freeze", ZONE);
    await publish([{ op: "replace-txt", name: NAME, ttl: 300, records: [recordOf(key)] }]);
    await new Promise((r) => setTimeout(r, 2500)); // past knot's NOTIFY delay
    const lagging = await prove(NAME, { kind: "key", privateKey: key }, servers(dns));
    assert.equal(lagging.status, "waiting", describeProof(lagging));
    assert.ok(lagging.status === "waiting");
    assert.deepEqual(lagging.lagging.map((v) => v.server), [dns.secondary!.nameserver]);
    assert.equal(
      describeProof(lagging),
      `waiting for 1 of 3 servers: ${
        dns.secondary!.nameserver
      } (authoritative) serves no such name at ${NAME} yet`,
    );
    await dns.secondary!.control("zone-thaw", ZONE);
    const proven = await proveUntil(dns, key, "proven");
    assert.equal(proven.status, "proven", describeProof(proven));
    assert.deepEqual(proven.servers.map((v) => v.state), ["agrees", "agrees", "agrees"]);
  });
});

Deno.test("prove() reports another key, two records and a broken record as wrong, saying what differs", async () => {
  await withZone(async (dns, publish) => {
    const key = await generateSigningKey("ed25519");
    const other = await generateSigningKey("ed25519");
    const rsa = await generateSigningKey("rsa", 1024);
    const cases: { records: string[]; detail: RegExp }[] = [
      {
        records: [recordOf(other)],
        detail: /serves a key that is not the public half of the new key/,
      },
      { records: [recordOf(rsa)], detail: /serves an RSA key, the new key is Ed25519/ },
      { records: [recordOf(key), recordOf(other)], detail: /serves 2 TXT records .*exactly one/ },
      { records: ["v=DKIM1; k=ed25519; p="], detail: /serves a revoked key/ },
      { records: ["v=DKIM2; p=abc"], detail: /serves a record verifiers refuse/ },
    ];
    for (const { records, detail } of cases) {
      await publish([{ op: "replace-txt", name: NAME, ttl: 300, records }]);
      const proof = await proveUntil(dns, key, "wrong");
      assert.equal(proof.status, "wrong", describeProof(proof));
      assert.ok(proof.status === "wrong");
      assert.match(proof.wrong[0].detail, detail);
      assert.match(describeProof(proof), /^wrong record on \d of 3 servers: /);
    }
  });
});

Deno.test("prove() follows a retirement: revoked, then absent", async () => {
  await withZone(async (dns, publish) => {
    const key = await generateSigningKey("ed25519");
    await publish([{ op: "replace-txt", name: NAME, ttl: 300, records: [recordOf(key)] }]);
    assert.equal((await proveUntil(dns, key, "proven")).status, "proven");
    assert.equal((await prove(NAME, { kind: "revoked" }, servers(dns))).status, "waiting");
    await publish([{
      op: "replace-txt",
      name: NAME,
      ttl: 300,
      records: ["v=DKIM1; k=ed25519; p="],
    }]);
    const deadline = Date.now() + 15_000;
    let proof = await prove(NAME, { kind: "revoked" }, servers(dns));
    while (proof.status !== "proven" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      proof = await prove(NAME, { kind: "revoked" }, servers(dns));
    }
    assert.equal(proof.status, "proven", describeProof(proof));
    assert.equal((await prove(NAME, { kind: "absent" }, servers(dns))).status, "waiting");
    await publish([{ op: "delete-txt", name: NAME }]);
    proof = await prove(NAME, { kind: "absent" }, servers(dns));
    while (proof.status !== "proven" && Date.now() < deadline + 15_000) {
      await new Promise((r) => setTimeout(r, 200));
      proof = await prove(NAME, { kind: "absent" }, servers(dns));
    }
    assert.equal(proof.status, "proven", describeProof(proof));
  });
});

Deno.test("findZoneApex() and findAuthoritativeServers() read the zone's SOA and NS through a resolver", async () => {
  await withZone(async (dns) => {
    const resolver = [parseNameserver(dns.primary.nameserver)];
    assert.deepEqual(await findZoneApex(NAME, resolver), { zone: ZONE, primary: `ns.${ZONE}` });
    const found = await findAuthoritativeServers(ZONE, resolver, dns.primary.port);
    assert.deepEqual(found, [
      { host: `ns.${ZONE}`, server: { address: "127.0.0.1", port: dns.primary.port, family: 4 } },
    ]);
    await assert.rejects(
      findZoneApex("s._domainkey.example.org", resolver),
      /Cannot find the zone of/,
    );
  });
});
