import assert from "node:assert/strict";
import { DnsError, type DnsErrorCode } from "../../lib/dns/resolver.ts";
import { StubResolver } from "../../lib/dns/stub.ts";
import { parseNameserver } from "../../lib/dns/nameserver.ts";
import { toBase64 } from "../../lib/bytes.ts";
import { buildZoneFile, type DnsServer, startDnsServer } from "../helpers/dns_server.ts";

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

async function code(promise: Promise<unknown>): Promise<DnsErrorCode> {
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

    assert.equal(await code(r.resolveTxt("missing._domainkey.example.com")), "nxdomain");
    assert.equal(await code(r.resolveTxt("empty.example.com")), "nodata");
    // An empty non-terminal exists (RFC 8020) and the apex has no TXT: both are NODATA.
    assert.equal(await code(r.resolveTxt("_domainkey.example.com")), "nodata");
    assert.equal(await code(r.resolveTxt("example.com")), "nodata");
    // Outside the zone, an authoritative server refuses.
    assert.equal(await code(r.resolveTxt("example.org")), "refused");

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

Deno.test("buildZoneFile() splits long strings, escapes bytes, and refuses names outside the zone", () => {
  const text = buildZoneFile(
    {
      zone: "Example.COM",
      records: { "a.example.com.": ["x".repeat(300), 'q"\\\xe9'], "b.example.com": [] },
    },
    "token",
  );
  assert.match(
    text,
    new RegExp(`a\\.example\\.com\\. TXT "${"x".repeat(255)}" "${"x".repeat(45)}"`),
  );
  assert.match(text, /a\.example\.com\. TXT "q\\"\\\\\\233"/);
  assert.match(text, /b\.example\.com\. A 192\.0\.2\.1/);
  assert.match(text, /_ready TXT "token"/);
  assert.throws(
    () => buildZoneFile({ zone: "example.com", records: { "example.org": ["x"] } }, "t"),
    /not inside/,
  );
  assert.throws(
    () => buildZoneFile({ zone: "example.com", records: { "badexample.com": ["x"] } }, "t"),
    /not inside/,
  );
  assert.throws(
    () => buildZoneFile({ zone: "example.com", records: { "a.example.com": ["x", "x"] } }, "t"),
    /only once/,
  );
});
