/**
 * ARC in the milter (issue 17): with ARCMode, the filter verifies the ARC chain of the mail it
 * verifies beside DKIM and says `arc=` in its Authentication-Results, the log and the metrics;
 * with ARCMode s it adds the next ARC set to that mail, its AAR carrying this pass's results and
 * its cv= the chain's verdict. Hops are played in memory: each hop's modifications are applied
 * to the message the next hop receives.
 */
import assert from "node:assert/strict";
import { concat, CRLF, fromLatin1, latin1, toBase64 } from "../../lib/bytes.ts";
import { verifyArcMessage } from "../../lib/arc/verify.ts";
import { splitMessage } from "../../lib/dkim/header.ts";
import { signMessage } from "../../lib/dkim/sign.ts";
import { DkimFilter } from "../../lib/filter/dkim_filter.ts";
import type { Reply } from "../../lib/milter/reply.ts";
import { Metrics } from "../../lib/ops/metrics.ts";
import { KEYS_DIR, loadKey } from "../helpers/dkim_fixtures.ts";
import { MemoryLogger } from "../helpers/milter_logger.ts";
import { type MemoryMessage, MemoryMta } from "../helpers/memory_mta.ts";
import { exampleSigning, memoryRuntime } from "../helpers/memory_runtime.ts";
import { applyModifications, buildMessage, type HeaderPair } from "../helpers/milter_apply.ts";
import { unfold } from "../helpers/folding.ts";
import type { ZoneEntry } from "../helpers/zone_resolver.ts";

const NOW = 1_800_000_000;
const INTERNAL = "127.0.0.1";
const EXTERNAL = "192.0.2.25";

const HEADER = "From: Alice <alice@example.com>\r\nTo: list@lists.example.net\r\n" +
  "Subject: Lunch\r\nDate: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n";
const BODY = "Hi all,\r\n\r\nNoon?\r\n";
const MESSAGE = fromLatin1(`${HEADER}\r\n${BODY}`);

/** The sealing key of lists.example.net (selector `arc`), and the zone with every key. */
async function zoneAndFiles() {
  const signing = await exampleSigning();
  const rsa = await loadKey("rsa2048_pkcs8.pem");
  const pem = await Deno.readTextFile(new URL("rsa2048_pkcs8.pem", KEYS_DIR));
  return {
    signing,
    files: { ...signing.files, "/etc/dkimd/keys/arc.pem": pem },
    zone: {
      ...signing.zone,
      "arc._domainkey.lists.example.net": [`v=DKIM1; k=rsa; p=${toBase64(rsa.publicKey)}`],
    } as Record<string, ZoneEntry>,
  };
}

const SEALING =
  "ARCDomain lists.example.net\nARCSelector arc\nARCKeyFile /etc/dkimd/keys/arc.pem\n";

interface Hop {
  readonly log: MemoryLogger;
  readonly metrics: Metrics;
  /** Sends `bytes` from `address`; resolves to the reply and the message as delivered. */
  send(
    bytes: Uint8Array,
    address?: string,
  ): Promise<{ final: Reply; mods: readonly Reply[]; out: Uint8Array }>;
}

/** A dkimd hop named `host` with `conf` (ARC lines) after example.com's signing setup. */
async function hop(
  host: string,
  conf: string,
  zone: Record<string, ZoneEntry> = {},
  signing = true,
): Promise<Hop> {
  const base = await zoneAndFiles();
  const runtime = await memoryRuntime(
    `${signing ? `Mode sv\n${base.signing.conf}` : "Mode v\n"}AuthservID ${host}\n${conf}`,
    { files: base.files, zone: { ...base.zone, ...zone } },
  );
  const log = new MemoryLogger();
  const metrics = new Metrics();
  const filter = new DkimFilter({
    runtime: () => runtime,
    logger: log,
    hostname: host,
    now: () => NOW,
    observer: metrics,
  });
  return {
    log,
    metrics,
    async send(bytes, address = EXTERNAL) {
      const { fields, bodyOffset } = splitMessage(bytes);
      const headers: HeaderPair[] = fields.map((f) => [
        f.name,
        latin1(f.raw.subarray(f.raw.indexOf(0x3a) + 1)),
      ]);
      const body = latin1(bytes.subarray(bodyOffset));
      const message: MemoryMessage = {
        connect: { hostname: "client.test", address, port: 25 },
        macros: { connect: { j: host }, mail: { i: "4AB12C" } },
        from: "<alice@example.com>",
        rcpts: ["<list@lists.example.net>"],
        headers,
        body,
      };
      const r = await new MemoryMta(filter).sendMessage(message);
      return {
        final: r.final,
        mods: r.modifications,
        out: buildMessage(applyModifications(headers, r.modifications), body),
      };
    },
  };
}

async function signedByEd(message: Uint8Array): Promise<Uint8Array> {
  const key = await loadKey("ed25519.pem");
  const fields = await signMessage(message, [{ domain: "example.com", selector: "ed", key }], {
    now: () => NOW,
  });
  return concat([...fields.flatMap((f) => [f.raw, CRLF]), message]);
}

/** The message as a mailing list changes it: a tag in Subject, a footer. */
function listified(bytes: Uint8Array): Uint8Array {
  const text = latin1(bytes).replace("Subject: Lunch", "Subject: [friends] Lunch");
  return fromLatin1(`${text}-- \r\nfriends mailing list\r\n`);
}

function fieldsNamed(bytes: Uint8Array, name: string): string[] {
  const { fields } = splitMessage(bytes);
  return fields.filter((f) => f.name.toLowerCase() === name.toLowerCase()).map((f) =>
    unfold(latin1(f.raw))
  );
}

const ourAr = (bytes: Uint8Array, host: string) =>
  fieldsNamed(bytes, "Authentication-Results").filter((v) => v.includes(` ${host};`)).join("\n");

async function zoneResolver() {
  const { zone } = await zoneAndFiles();
  const { ZoneResolver } = await import("../helpers/zone_resolver.ts");
  return new ZoneResolver(zone);
}

Deno.test("DkimFilter with ARCMode v says arc=none beside dkim=pass for a message without ARC sets", async () => {
  const h = await hop("mx.example.org", "ARCMode v\n");
  const r = await h.send(await signedByEd(MESSAGE));
  assert.deepEqual(r.final, { type: "accept" });
  const ar = ourAr(r.out, "mx.example.org");
  assert.match(ar, /dkim=pass .*header\.d=example\.com/);
  assert.match(ar, /;\sarc=none$/);
  assert.deepEqual(fieldsNamed(r.out, "ARC-Seal"), []);
  assert.match(h.metrics.render(), /dkimd_arc_results_total\{result="none"\} 1/);
});

Deno.test("DkimFilter with ARCMode sv seals verified mail (cv=none), and the next hop says arc=pass header.oldest-pass=0 smtp.remote-ip", async () => {
  const forwarder = await hop("mx.lists.example.net", `ARCMode sv\n${SEALING}`);
  const first = await forwarder.send(await signedByEd(MESSAGE));
  assert.deepEqual(first.final, { type: "accept" });
  const seal = fieldsNamed(first.out, "ARC-Seal");
  assert.equal(seal.length, 1);
  assert.match(
    seal[0],
    /^ARC-Seal: i=1; a=rsa-sha256; t=1800000000; cv=none;\s+d=lists\.example\.net; s=arc; b=/,
  );
  const aar = fieldsNamed(first.out, "ARC-Authentication-Results");
  assert.match(
    aar[0],
    /^ARC-Authentication-Results: i=1; mx\.lists\.example\.net; dkim=pass .*header\.d=example\.com/,
  );
  // The new set is on top, seal first, as other sealers write it.
  assert.deepEqual(splitMessage(first.out).fields.slice(0, 3).map((f) => f.name), [
    "ARC-Seal",
    "ARC-Message-Signature",
    "ARC-Authentication-Results",
  ]);
  assert.ok(
    forwarder.log.find("info", /4AB12C: ARC set i=1 added \(d=lists\.example\.net, cv=none\)/),
  );
  assert.match(forwarder.metrics.render(), /dkimd_arc_sets_added_total 1/);
  // The library verifier agrees, with the same keys.
  assert.equal(
    (await verifyArcMessage(first.out, { resolver: await zoneResolver(), now: () => NOW })).result,
    "pass",
  );

  const next = await hop("mx.example.org", "ARCMode v\n");
  const second = await next.send(first.out, "198.51.100.7");
  assert.match(
    ourAr(second.out, "mx.example.org"),
    /dkim=pass .*;\sarc=pass header\.oldest-pass=0 smtp\.remote-ip=198\.51\.100\.7/,
  );
  assert.ok(next.log.find("info", /4AB12C: ARC chain of 1 set\(s\): arc=pass \(oldest-pass=0\)/));
  assert.match(next.metrics.render(), /dkimd_arc_results_total\{result="pass"\} 1/);
});

Deno.test("DkimFilter: a footer added after the seal gives dkim=fail and arc=fail (reason) at the next hop", async () => {
  const forwarder = await hop("mx.lists.example.net", `ARCMode sv\n${SEALING}`);
  const sealed = (await forwarder.send(await signedByEd(MESSAGE))).out;
  const next = await hop("mx.example.org", "ARCMode v\n");
  const r = await next.send(listified(sealed));
  const ar = ourAr(r.out, "mx.example.org");
  assert.match(ar, /dkim=fail/);
  assert.match(ar, /arc=fail \(ARC-Message-Signature i=1 body hash did not verify\)/);
  assert.match(next.metrics.render(), /dkimd_arc_results_total\{result="fail"\} 1/);
});

Deno.test("DkimFilter seals with cv=pass over a passing chain and cv=fail over a broken one; a chain ended by cv=fail is not sealed again", async () => {
  const first = await hop("mx.lists.example.net", `ARCMode sv\n${SEALING}`);
  const one = (await first.send(await signedByEd(MESSAGE))).out;
  const second = await hop("relay.lists.example.net", `ARCMode sv\n${SEALING}`);
  const two = await second.send(one);
  assert.match(
    fieldsNamed(two.out, "ARC-Seal")[0],
    /^ARC-Seal: i=2; a=rsa-sha256; t=\d+; cv=pass;/,
  );
  assert.match(
    fieldsNamed(two.out, "ARC-Authentication-Results")[0],
    /^ARC-Authentication-Results: i=2; relay\.lists\.example\.net; dkim=pass .*;\sarc=pass header\.oldest-pass=0 smtp\.remote-ip=192\.0\.2\.25$/,
  );
  const verdict = await verifyArcMessage(two.out, {
    resolver: await zoneResolver(),
    now: () => NOW,
  });
  assert.deepEqual([verdict.result, verdict.instances], ["pass", 2]);

  // Broken (a footer after set 1): sealed with cv=fail, which ends the chain.
  const broken = await second.send(listified(one));
  assert.match(
    fieldsNamed(broken.out, "ARC-Seal")[0],
    /^ARC-Seal: i=2; a=rsa-sha256; t=\d+; cv=fail;/,
  );
  const third = await hop("mx.example.org", `ARCMode sv\n${SEALING}`);
  const r = await third.send(broken.out);
  assert.equal(fieldsNamed(r.out, "ARC-Seal").length, 2, "no third set after cv=fail");
  assert.match(ourAr(r.out, "mx.example.org"), /arc=fail \(ARC-Seal i=2 says cv=fail\)/);
  assert.ok(third.log.find("info", /ARC chain ended with cv=fail at i=2; not sealing/));
});

Deno.test("DkimFilter does not seal mail it DKIM-signs as the origin, and with ARCMode v alone seals nothing", async () => {
  const h = await hop("mx.example.com", `ARCMode sv\n${SEALING}`);
  const own = await h.send(MESSAGE, INTERNAL);
  assert.equal(fieldsNamed(own.out, "DKIM-Signature").length, 1);
  assert.deepEqual(fieldsNamed(own.out, "ARC-Seal"), []);
  const verifyOnly = await hop("mx.example.org", "ARCMode v\n");
  const r = await verifyOnly.send(await signedByEd(MESSAGE));
  assert.deepEqual(fieldsNamed(r.out, "ARC-Seal"), []);
});

Deno.test("DkimFilter never seals cv=fail for a chain whose key lookup timed out: On-DNSError tempfail by default, accept passes it unsealed", async () => {
  const first = await hop("mx.lists.example.net", `ARCMode sv\n${SEALING}`);
  const one = (await first.send(await signedByEd(MESSAGE))).out;
  const down = { "arc._domainkey.lists.example.net": "timeout" as const };
  const strict = await hop("relay.example.org", `ARCMode sv\n${SEALING}`, down);
  const r = await strict.send(one);
  assert.deepEqual(r.final, {
    type: "replycode",
    code: 451,
    text: "4.7.1 ARC key lookup failed, try later",
  });
  assert.ok(strict.log.find("info", /not sealing \(On-DNSError tempfail\)/));
  const lax = await hop("relay.example.org", `ARCMode sv\nOn-DNSError accept\n${SEALING}`, down);
  const passed = await lax.send(one);
  assert.deepEqual(passed.final, { type: "accept" });
  assert.equal(fieldsNamed(passed.out, "ARC-Seal").length, 1, "passed on unsealed");
  assert.match(ourAr(passed.out, "relay.example.org"), /arc=fail \(temporary: /);
});

Deno.test("DkimFilter sealing a post a list re-injects from InternalHosts: the AAR carries the dkim=pass dkimd wrote when it arrived, and the next hop sees dkim=fail, arc=pass", async () => {
  // The list host verifies (and seals) the post as it arrives, the list tags and footers it and
  // re-injects it from 127.0.0.1 (InternalHosts) through the same dkimd.
  const list = await hop("mx.lists.example.net", `ARCMode sv\n${SEALING}`, {}, false);
  const arrived = await list.send(await signedByEd(MESSAGE));
  assert.match(ourAr(arrived.out, "mx.lists.example.net"), /dkim=pass/);
  const resent = await list.send(listified(arrived.out), INTERNAL);
  assert.deepEqual(resent.final, { type: "accept" });
  // This pass's own result is dkim=fail; the forged-A-R removal still applies to the delivered
  // message: only this pass's field remains.
  assert.match(ourAr(resent.out, "mx.lists.example.net"), /dkim=fail/);
  assert.doesNotMatch(ourAr(resent.out, "mx.lists.example.net"), /dkim=pass/);
  // dkimd's own set from the arrival pass is replaced by the set in its place, which records the
  // arrival results (dkim=pass, the chain then: arc=none) with cv=none.
  const aar = fieldsNamed(resent.out, "ARC-Authentication-Results");
  assert.equal(aar.length, 1);
  assert.match(
    aar[0],
    /^ARC-Authentication-Results: i=1; mx\.lists\.example\.net; dkim=pass .*header\.d=example\.com .*; arc=none$/,
  );
  assert.match(fieldsNamed(resent.out, "ARC-Seal")[0], /^ARC-Seal: i=1; .*cv=none;/);

  const next = await hop("mx.example.org", "ARCMode v\n", {}, false);
  const r = await next.send(resent.out, "198.51.100.7");
  const ar = ourAr(r.out, "mx.example.org");
  assert.match(ar, /dkim=fail .*header\.d=example\.com/);
  assert.match(ar, /arc=pass header\.oldest-pass=0 smtp\.remote-ip=198\.51\.100\.7/);
});

Deno.test("DkimFilter: a list host verifying only (no ARCMode) on arrival, sealing the re-injected post: AAR i=1 has the arrival dkim=pass, then this pass's arc=", async () => {
  const arrival = await hop("mx.lists.example.net", "", {}, false);
  const arrived = await arrival.send(await signedByEd(MESSAGE));
  const list = await hop("mx.lists.example.net", `ARCMode sv\n${SEALING}`, {}, false);
  const resent = await list.send(listified(arrived.out), INTERNAL);
  const aar = fieldsNamed(resent.out, "ARC-Authentication-Results");
  assert.equal(aar.length, 1);
  assert.match(aar[0], /^ARC-Authentication-Results: i=1; mx\.lists\.example\.net; dkim=pass /);
  assert.doesNotMatch(aar[0], /dkim=fail/);
  assert.match(aar[0], /; arc=none$/, "the earlier results had no arc=: this pass's is added");
  assert.match(ourAr(resent.out, "mx.lists.example.net"), /dkim=fail/);
  const verdict = await verifyArcMessage(resent.out, {
    resolver: await zoneResolver(),
    now: () => NOW,
  });
  assert.equal(verdict.result, "pass");
});

Deno.test("DkimFilter never copies an Authentication-Results claiming its authserv-id from a client outside InternalHosts: it is forged, removed, and the AAR has this pass's results", async () => {
  const arrival = await hop("mx.lists.example.net", "", {}, false);
  const arrived = await arrival.send(await signedByEd(MESSAGE));
  const list = await hop("mx.lists.example.net", `ARCMode sv\n${SEALING}`, {}, false);
  const r = await list.send(listified(arrived.out), EXTERNAL);
  const aar = fieldsNamed(r.out, "ARC-Authentication-Results");
  assert.equal(aar.length, 1);
  assert.match(aar[0], /^ARC-Authentication-Results: i=1; mx\.lists\.example\.net; dkim=fail /);
  assert.doesNotMatch(aar[0], /dkim=pass/);
  assert.doesNotMatch(ourAr(r.out, "mx.lists.example.net"), /dkim=pass/);
  assert.ok(list.log.find("info", /removed 1 Authentication-Results field\(s\) claiming/));
});

Deno.test("loadConfig() refuses ARCMode s without the sealing domain, selector and key, and an unsafe ARCKeyFile", async () => {
  await assert.rejects(
    memoryRuntime("Mode v\nARCMode s\nARCSelector arc\n"),
    /"ARCMode" at \/etc\/dkimd\/dkimd\.conf:2: includes "s", which requires "ARCDomain", "ARCKeyFile"/,
  );
  await assert.rejects(
    memoryRuntime(`Mode v\nARCMode s\nARCDomain bad..name\nARCSelector arc\nARCKeyFile /k.pem\n`, {
      files: { "/k.pem": await Deno.readTextFile(new URL("rsa2048_pkcs8.pem", KEYS_DIR)) },
    }),
    /"ARCDomain" at \/etc\/dkimd\/dkimd\.conf:3: "bad\.\.name" is not a domain name/,
  );
  await assert.rejects(
    memoryRuntime("Mode v\nARCMode vx\n"),
    /unknown ARC mode "x"/,
  );
});
