/**
 * DNSSEC through real servers: knot serves signed, broken and unsigned zones, unbound validates
 * them on 127.0.0.1, and dkimd's stub resolver, then dkimd itself (beside Debian's opendkim,
 * built with libunbound), report each key as secure, bogus or unprotected.
 */
import assert from "node:assert/strict";
import { latin1 } from "../../lib/bytes.ts";
import { parseNameserver } from "../../lib/dns/nameserver.ts";
import { DnsError } from "../../lib/dns/resolver.ts";
import { isLocalResolver } from "../../lib/dns/dnssec.ts";
import { StubResolver } from "../../lib/dns/stub.ts";
import { loadKey, MESSAGE, recordFor, signed } from "../helpers/dkim_fixtures.ts";
import {
  DNSSEC_ZONES,
  type DnssecWorld,
  startDnssecWorld,
  withDnssecPair,
} from "../helpers/dnssec_world.ts";
import { mtaMessage } from "../helpers/mta_message.ts";
import { HAVE_OPENDKIM, sendTo } from "../helpers/opendkim_milter.ts";

const SELECTOR = "k";
const HAVE_SERVERS = await Promise.all(
  ["/usr/sbin/unbound", "/usr/sbin/knotd", "/usr/sbin/keymgr"].map((p) =>
    Deno.stat(p).then(() => true, () => false)
  ),
).then((all) => all.every(Boolean));

async function withWorld(body: (world: DnssecWorld) => Promise<void>): Promise<void> {
  const key = await loadKey("rsa2048_pkcs8.pem");
  const world = await startDnssecWorld(SELECTOR, recordFor(key));
  try {
    await body(world);
  } catch (e) {
    throw new Error(`${e}\n${world.log()}`, { cause: e });
  } finally {
    await world.close();
  }
}

const keyName = (zone: string) => `${SELECTOR}._domainkey.${zone}`;

Deno.test({
  name: "the stub resolver reports secure, bogus and insecure keys from a local validating unbound",
  ignore: !HAVE_SERVERS,
  async fn() {
    await withWorld(async (world) => {
      const resolver = new StubResolver({
        nameservers: [parseNameserver(world.local)],
        dnssec: true,
      });
      const secure = await resolver.resolveTxtChecked(keyName(DNSSEC_ZONES.secure));
      assert.equal(secure.dnssec, "secure");
      assert.match(secure.records[0], /^v=DKIM1; k=rsa; p=/);
      const bogus = await resolver.resolveTxtChecked(keyName(DNSSEC_ZONES.bogus));
      assert.equal(bogus.dnssec, "bogus");
      assert.deepEqual(bogus.records, secure.records);
      assert.equal(
        (await resolver.resolveTxtChecked(keyName(DNSSEC_ZONES.plain))).dnssec,
        "insecure",
      );
      // Whoever does not ask for the bogus record gets the failure a validating resolver gives.
      await assert.rejects(
        resolver.resolveTxt(keyName(DNSSEC_ZONES.bogus)),
        (e) => e instanceof DnsError && e.code === "servfail" && /bogus/.test(e.message),
      );
      // Without DNSSEC asked, no status at all.
      const plain = new StubResolver({ nameservers: [parseNameserver(world.local)] });
      assert.deepEqual(await plain.resolveTxtChecked(keyName(DNSSEC_ZONES.secure)), {
        records: secure.records,
      });
    });
  },
});

Deno.test({
  name: "the AD bit of a resolver that is not on 127.0.0.0/8 or ::1 is not believed",
  ignore: !HAVE_SERVERS,
  async fn() {
    // The tests use loopback only: the local unbound stands in for a resolver elsewhere, the
    // stub told not to trust it as it is for any address isLocalResolver() refuses (192.0.2.1
    // in dnssec.ts's example) — the same path as a remote resolver's answers take.
    assert.equal(isLocalResolver(parseNameserver("192.0.2.2")), false);
    await withWorld(async (world) => {
      const resolver = new StubResolver({
        nameservers: [parseNameserver(world.local)],
        dnssec: true,
        trustsAd: () => false,
      });
      // The same unbound, the same validated answer: but reached over a path nobody secured.
      const secure = await resolver.resolveTxtChecked(keyName(DNSSEC_ZONES.secure));
      assert.equal(secure.dnssec, "insecure");
      // Its bogus answer is only a SERVFAIL: a temporary failure, never "bogus" on its word.
      await assert.rejects(
        resolver.resolveTxtChecked(keyName(DNSSEC_ZONES.bogus)),
        (e) => e instanceof DnsError && e.code === "servfail",
      );
    });
  },
});

/** The Authentication-Results value a milter inserted. */
function authResults(result: Awaited<ReturnType<typeof sendTo>>): string {
  const field = result.modifications.find((m) =>
    (m.type === "insheader" || m.type === "addheader") && m.name === "Authentication-Results"
  );
  if (!field || (field.type !== "insheader" && field.type !== "addheader")) {
    return `no Authentication-Results; ${result.final.type}`;
  }
  const value = typeof field.value === "string" ? field.value : latin1(field.value);
  return value.replace(/\r?\n\s+/g, " ");
}

Deno.test({
  name: "dkimd and opendkim through a validating unbound: secure, unprotected and bogus keys",
  ignore: !HAVE_SERVERS || !HAVE_OPENDKIM,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withWorld(async (world) => {
      const key = await loadKey("rsa2048_pkcs8.pem");
      const message = async (zone: string, qid: string) =>
        mtaMessage(
          await signed(MESSAGE, [{ domain: zone, selector: SELECTOR, key }], Date.now() / 1000),
          { qid, address: "192.0.2.7", hostname: "mx.example.net" },
        );
      for (const bogusKey of ["fail", "neutral", "none"]) {
        await withDnssecPair(
          world,
          "dkimd-dnssec-pair-",
          [`BogusKey ${bogusKey}`, "DNSTimeout 3"],
          async (pair) => {
            const seen: Record<string, { opendkim: string; dkimd: string }> = {};
            for (const [name, zone] of Object.entries(DNSSEC_ZONES)) {
              const m = await message(zone, `Q${name}`);
              const [o, d] = await Promise.all([
                sendTo(pair.opendkim.port, m),
                sendTo(pair.dkimd.port, m),
              ]);
              seen[name] = { opendkim: authResults(o), dkimd: authResults(d) };
            }
            // The same comment as OpenDKIM's for keys DNSSEC secured or left unprotected.
            for (const [name, word] of [["secure", "secure"], ["plain", "unprotected"]]) {
              const want = `dkim=pass (2048-bit key; ${word}) header.d=${
                DNSSEC_ZONES[name as "secure" | "plain"]
              }`;
              assert.ok(seen[name].opendkim.includes(want), seen[name].opendkim);
              assert.ok(seen[name].dkimd.includes(want), seen[name].dkimd);
            }
            // A bogus key: BogusKey as opendkim.conf(5) documents it. Debian's opendkim departs:
            // libunbound's callback never completes a bogus answer, so it waits out DNSTimeout
            // and adds no Authentication-Results at all.
            assert.equal(seen.bogus.opendkim, "no Authentication-Results; accept");
            const result = { fail: "fail", neutral: "neutral", none: "pass" }[bogusKey];
            assert.ok(
              seen.bogus.dkimd.includes(
                `dkim=${result} (2048-bit key; bogus)${
                  bogusKey === "none" ? "" : ' reason="key record failed DNSSEC validation (bogus)"'
                } header.d=bogus.test`,
              ),
              seen.bogus.dkimd,
            );
          },
        );
      }
    });
  },
});
