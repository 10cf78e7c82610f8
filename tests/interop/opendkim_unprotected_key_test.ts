/**
 * UnprotectedKey beside Debian's opendkim (built with libunbound, `opendkim -V`: USE_UNBOUND):
 * knot serves an unsigned zone and a signed one, unbound validates them on 127.0.0.1
 * (tests/helpers/dnssec_world.ts), and both filters verify the same messages through it on the
 * same opendkim.conf (TrustAnchorFile, ResolverConfiguration, Nameservers) for each value of
 * the setting, comparing reply and header changes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { loadKey, MESSAGE, recordFor, signed } from "../helpers/dkim_fixtures.ts";
import { DNSSEC_ZONES, startDnssecWorld, withDnssecPair } from "../helpers/dnssec_world.ts";
import { mtaMessage } from "../helpers/mta_message.ts";
import type { MessageResult } from "../../lib/milter/client.ts";
import { HAVE_OPENDKIM, observe, sendTo } from "../helpers/opendkim_milter.ts";

const SELECTOR = "k";
const HAVE_SERVERS = await Promise.all(
  ["/usr/sbin/unbound", "/usr/sbin/knotd", "/usr/sbin/keymgr"].map((p) =>
    Deno.stat(p).then(() => true, () => false)
  ),
).then((all) => all.every(Boolean));

/**
 * What a filter did with a message: its final reply and, for each header it added, the name
 * and, for Authentication-Results, each dkim result with its key's DNSSEC word and header.d
 * (`dkim=pass unprotected plain.test`); the reason= texts are each filter's own words.
 */
function outcome(result: MessageResult): string[] {
  const { final, changes } = observe(result);
  const fields = result.modifications.flatMap((m) => {
    if (m.type !== "insheader" && m.type !== "addheader") return [];
    const value = (typeof m.value === "string" ? m.value : latin1(m.value)).replace(/\s+/g, " ");
    if (m.name !== "Authentication-Results") return [`${m.name}`];
    return [
      ...value.matchAll(
        /dkim=(\w+)(?: reason="[^"]*")? \(\d+-bit key; (\w+)\)[^;]*?header\.d=([^\s;]+)/g,
      ),
    ]
      .map(([, result, dnssec, d]) => `dkim=${result} ${dnssec} ${d}`);
  });
  assert.equal(changes.length, fields.length, JSON.stringify(changes));
  return [final, ...fields];
}

/**
 * The expected outcomes by UnprotectedKey value and message: [OpenDKIM, dkimd].
 *
 * - An unprotected key whose signature passes: pass with none, neutral with neutral, policy with
 *   fail, in both (opendkim.conf(5)); a secure key is never touched.
 * - OpenDKIM 2.11 answers the neutral case with SMFIR_CONTINUE at the end of the message (its
 *   DKIMF_STATUS_VERIFYERR leaves the reply unset), which the MTA takes as accept; dkimd says
 *   accept.
 * - Departure: a signature that FAILS with an unprotected key stays fail in dkimd: the setting
 *   is documented for keys that verified, and turning a broken signature into "neutral" would
 *   hide the failure; OpenDKIM's code rewrites any result to neutral or policy.
 */
const EXPECTED: Record<string, Record<string, readonly [string[], string[]]>> = {
  none: {
    plain: [["accept", "dkim=pass unprotected plain.test"], [
      "accept",
      "dkim=pass unprotected plain.test",
    ]],
    plainBroken: [["accept", "dkim=fail unprotected plain.test"], [
      "accept",
      "dkim=fail unprotected plain.test",
    ]],
  },
  neutral: {
    plain: [["continue", "dkim=neutral unprotected plain.test"], [
      "accept",
      "dkim=neutral unprotected plain.test",
    ]],
    plainBroken: [["accept", "dkim=neutral unprotected plain.test"], [
      "accept",
      "dkim=fail unprotected plain.test",
    ]],
  },
  fail: {
    plain: [["accept", "dkim=policy unprotected plain.test"], [
      "accept",
      "dkim=policy unprotected plain.test",
    ]],
    plainBroken: [["accept", "dkim=policy unprotected plain.test"], [
      "accept",
      "dkim=fail unprotected plain.test",
    ]],
  },
};

Deno.test({
  name: "UnprotectedKey none, neutral, fail: compared with opendkim through a validating unbound",
  ignore: !HAVE_SERVERS || !HAVE_OPENDKIM,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const key = await loadKey("rsa2048_pkcs8.pem");
    const world = await startDnssecWorld(SELECTOR, recordFor(key));
    try {
      const now = Date.now() / 1000;
      const message = async (zone: string, qid: string, tamper = false) => {
        const bytes = await signed(MESSAGE, [{ domain: zone, selector: SELECTOR, key }], now);
        const text = latin1(bytes);
        return mtaMessage(tamper ? fromLatin1(text.replace("Noon", "Nine")) : bytes, {
          qid,
          address: "192.0.2.7",
          hostname: "mx.example.net",
        });
      };
      const messages = {
        plain: await message(DNSSEC_ZONES.plain, "PLAIN"),
        plainBroken: await message(DNSSEC_ZONES.plain, "BROKEN", true),
        secure: await message(DNSSEC_ZONES.secure, "SECURE"),
      };
      for (const setting of ["none", "neutral", "fail"]) {
        await withDnssecPair(world, "dkimd-od18-unprotected-", [
          `UnprotectedKey ${setting}`,
          "DNSTimeout 5",
        ], async (pair) => {
          try {
            for (const [name, m] of Object.entries(messages)) {
              const [o, d] = await Promise.all([
                sendTo(pair.opendkim.port, m),
                sendTo(pair.dkimd.port, m),
              ]);
              const want = EXPECTED[setting][name] ??
                [["accept", "dkim=pass secure secure.test"], [
                  "accept",
                  "dkim=pass secure secure.test",
                ]];
              assert.deepEqual(outcome(o), want[0], `opendkim, UnprotectedKey ${setting}, ${name}`);
              assert.deepEqual(outcome(d), want[1], `dkimd, UnprotectedKey ${setting}, ${name}`);
            }
          } catch (e) {
            throw new Error(`${e}\n${pair.opendkim.log()}\n${pair.dkimd.log()}`, { cause: e });
          }
        });
      }
    } catch (e) {
      throw new Error(`${e}\n${world.log()}`, { cause: e });
    } finally {
      await world.close();
    }
  },
});
