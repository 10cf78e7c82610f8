/**
 * ARC behind real Postfix (issue 17): a post signed at its origin reaches a mailing list's host,
 * the list changes it as lists do (a Subject tag, a footer) and sends it on, dkimd seals it on
 * that forwarding hop, and a second dkimd at the next hop says `dkim=fail` and `arc=pass`, the
 * chain's ARC-Authentication-Results i=1 still showing the origin's `dkim=pass`.
 *
 * The list host is Postfix #1 with dkimd #1 (Mode v, ARCMode sv). The post arrives over SMTP from
 * ::1, an outside client (InternalHosts lists 127.0.0.1 alone): dkimd verifies it (dkim=pass) and seals it as it arrives; Postfix
 * delivers it to the list's mailbox (the sink). The "list" (this test, as Mailman would) reads it
 * there, tags and footers it and re-injects it over SMTP from 127.0.0.1, which is in
 * InternalHosts, addressed to a subscriber at example.org; dkimd #1 verifies it again (now
 * dkim=fail) and, since it is a post re-injected by a trusted client carrying the results dkimd
 * wrote when it arrived, seals it recording those arrival results, in place of its own arrival
 * set (lib/filter/arrival_results.ts, as tests/filter/arc_test.ts plays it in memory). Postfix #1
 * routes example.org to Postfix #2, whose dkimd #2 (Mode v, ARCMode v) verifies; Postfix #2
 * delivers to its sink, whose bytes are what is asserted on, and checked by dkimpy and Mail::DKIM
 * too. Every key is served by knot.
 */
import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { splitMessage } from "../../lib/dkim/header.ts";
import { ARC_PEERS, arcSealWithPeer, arcVerifyWithPeer } from "../helpers/arc_peers.ts";
import { type DnsServer, startDnsServer } from "../helpers/dns_server.ts";
import { type DkimdProcess, startDkimd } from "../helpers/dkimd_process.ts";
import { unfold } from "../helpers/folding.ts";
import { generateTestKey, signAllWithDkimpy, verifyAllWithDkimpy } from "../helpers/peers.ts";
import { type PostfixInstance, startPostfix } from "../helpers/postfix.ts";
import { runCli } from "../helpers/run_cli.ts";

const DELIVERY_TIMEOUT_MS = 20_000;
/** The one zone knot serves: the origin (example.com) and the list host (lists.example.com). */
const ZONE = "example.com";
const LIST_HOST = "mx.lists.example.com";
const NEXT_HOST = "mx.example.org";

function fieldsNamed(bytes: Uint8Array, name: string): string[] {
  return splitMessage(bytes).fields.filter((f) => f.name.toLowerCase() === name.toLowerCase())
    .map((f) => unfold(latin1(f.raw)));
}

/** Our Authentication-Results fields of `host`, unfolded. */
function resultsOf(bytes: Uint8Array, host: string): string[] {
  return fieldsNamed(bytes, "Authentication-Results").filter((v) =>
    v.startsWith(`Authentication-Results: ${host};`)
  );
}

/** The post as the author's MTA sends it: signed by dkimpy for example.com (selector origin). */
function post(): Uint8Array {
  return fromLatin1(
    "From: Alice <alice@example.com>\r\nTo: friends@lists.example.com\r\n" +
      "Subject: Lunch on Friday\r\nDate: Fri, 27 Nov 2026 12:00:00 +0000\r\n" +
      "Message-ID: <lunch-1@example.com>\r\n\r\nHi all,\r\n\r\nnoon at the usual place?\r\n",
  );
}

/**
 * What a mailing list does to a post (Mailman's defaults): a tag in front of the Subject, List-*
 * fields, and a footer appended to the body; every other byte, the Received and
 * Authentication-Results fields included, is kept.
 */
function listify(delivered: Uint8Array): Uint8Array {
  const text = latin1(delivered).replace(/^Subject: /m, "Subject: [list] ");
  const split = text.indexOf("\r\n\r\n");
  const header = text.slice(0, split + 2) +
    "List-Id: Friends <friends.lists.example.com>\r\n" +
    "List-Post: <mailto:friends@lists.example.com>\r\n";
  const body = text.slice(split + 4);
  return fromLatin1(
    `${header}\r\n${body}_______________________________________________\r\n` +
      "friends mailing list -- friends@lists.example.com\r\n",
  );
}

interface World {
  readonly dir: string;
  readonly dns: DnsServer;
  readonly originPem: string;
  /** The key of upstream.example.com, an earlier ARC sealer (selector arc). */
  readonly upstreamPem: string;
  readonly close: () => Promise<void>;
}

async function world(): Promise<World> {
  const dir = await Deno.makeTempDir();
  await Deno.chmod(dir, 0o755);
  const origin = await generateTestKey("rsa-sha256");
  const arc = await generateTestKey("rsa-sha256");
  const upstream = await generateTestKey("rsa-sha256");
  for (const sub of ["list", "next"]) await Deno.mkdir(`${dir}/${sub}`, { mode: 0o755 });
  await Deno.writeTextFile(`${dir}/list/arc.private`, arc.privatePem, { mode: 0o600 });
  await Deno.chmod(`${dir}/list/arc.private`, 0o600);
  // Only the list host's own address is internal there; the next hop trusts no one.
  await Deno.writeTextFile(`${dir}/list/InternalHosts`, "127.0.0.1\n");
  await Deno.writeTextFile(`${dir}/next/InternalHosts`, "192.0.2.99\n");
  const dns = await startDnsServer({
    zone: ZONE,
    records: {
      [`origin._domainkey.${ZONE}`]: [origin.record],
      [`arc._domainkey.lists.${ZONE}`]: [arc.record],
      [`arc._domainkey.upstream.${ZONE}`]: [upstream.record],
    },
  });
  return {
    dir,
    dns,
    originPem: origin.privatePem,
    upstreamPem: upstream.privatePem,
    async close() {
      await dns.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function config(w: World, host: string, lines: string) {
  return (socket: string) =>
    `Syslog no\nSyslogSuccess Yes\nLogWhy Yes\nMode v\nAuthservID ${host}\n` +
    `Nameservers 127.0.0.1@${w.dns.port}\nSocket ${socket}\n${lines}`;
}

Deno.test("Postfix + dkimd: a list post sealed on the forwarding hop reaches the next hop with dkim=fail, arc=pass and the origin's dkim=pass in AAR i=1", async () => {
  const w = await world();
  const started: { stop(): Promise<unknown> }[] = [];
  try {
    // The next hop: Postfix #2 with dkimd #2, verifying DKIM and ARC.
    const nextDkimd: DkimdProcess = await startDkimd(
      `${w.dir}/next`,
      config(w, NEXT_HOST, `InternalHosts ${w.dir}/next/InternalHosts\nARCMode v\n`),
    );
    started.push(nextDkimd);
    const next: PostfixInstance = await startPostfix({
      hostname: NEXT_HOST,
      smtpdMilters: `inet:127.0.0.1:${nextDkimd.port}`,
    });
    started.push(next);

    // The list host: Postfix #1 with dkimd #1 verifying and sealing; example.org goes to #2.
    const listDkimd = await startDkimd(
      `${w.dir}/list`,
      config(
        w,
        LIST_HOST,
        `InternalHosts ${w.dir}/list/InternalHosts\nARCMode sv\n` +
          `ARCDomain lists.${ZONE}\nARCSelector arc\nARCKeyFile ${w.dir}/list/arc.private\n`,
      ),
    );
    started.push(listDkimd);
    const list = await startPostfix({
      hostname: LIST_HOST,
      smtpdMilters: `inet:127.0.0.1:${listDkimd.port}`,
      mainCf: { transport_maps: `inline:{ example.org=smtp:[127.0.0.1]:${next.smtpPort} }` },
    });
    started.push(list);

    // 1. The post arrives at the list host from outside, DKIM-signed at its origin.
    const [signed] = await signAllWithDkimpy([post()], {
      domain: ZONE,
      selector: "origin",
      keyPem: w.originPem,
      algorithm: "rsa-sha256",
      canonicalization: "relaxed/relaxed",
    });
    const arrival = await list.sendSmtp({
      from: "alice@example.com",
      to: "friends@lists.example.com",
      data: signed,
      sourceAddress: "::1",
    });
    assert.equal(arrival.reply.code, 250, arrival.reply.lines.join(" "));
    const [atList] = await list.waitForMessages(1, DELIVERY_TIMEOUT_MS);
    assert.deepEqual(atList.rcptTo, ["friends@lists.example.com"]);
    const arrivalAr = resultsOf(atList.data, LIST_HOST);
    assert.equal(arrivalAr.length, 1, arrivalAr.join("\n"));
    assert.match(arrivalAr[0], /dkim=pass .*header\.d=example\.com .*header\.s=origin/);
    assert.match(arrivalAr[0], /arc=none/);
    assert.match(fieldsNamed(atList.data, "ARC-Seal")[0], /^ARC-Seal: i=1; .*cv=none;/);

    // 2. The list changes it and re-injects it from 127.0.0.1 (InternalHosts) to a subscriber.
    const changed = listify(atList.data);
    const resent = await list.sendSmtp({
      from: "friends-bounces@lists.example.com",
      to: "bob@example.org",
      data: changed,
      sourceAddress: "127.0.0.1",
    });
    assert.equal(resent.reply.code, 250, resent.reply.lines.join(" "));

    // 3. The next hop's sink: what the subscriber's side finally holds.
    const [delivered] = await next.waitForMessages(1, DELIVERY_TIMEOUT_MS);
    const bytes = delivered.data;
    assert.deepEqual(delivered.rcptTo, ["bob@example.org"]);
    const text = latin1(bytes);
    assert.match(text, /^Subject: \[list\] Lunch on Friday\r$/m);
    assert.ok(text.endsWith("friends mailing list -- friends@lists.example.com\r\n"));

    // The next hop: dkim=fail (the list broke the origin's signature), arc=pass.
    const nextAr = resultsOf(bytes, NEXT_HOST);
    assert.equal(nextAr.length, 1, nextAr.join("\n"));
    assert.match(nextAr[0], /dkim=fail .*header\.d=example\.com .*header\.s=origin/);
    assert.match(nextAr[0], /arc=pass header\.oldest-pass=0 smtp\.remote-ip=127\.0\.0\.1/);

    // The chain: one set, by the list host, recording what it saw when the post arrived.
    const aar = fieldsNamed(bytes, "ARC-Authentication-Results");
    assert.equal(aar.length, 1, aar.join("\n"));
    assert.match(
      aar[0],
      /^ARC-Authentication-Results: i=1; mx\.lists\.example\.com; dkim=pass .*header\.d=example\.com .*header\.s=origin.*; arc=none$/,
    );
    const seals = fieldsNamed(bytes, "ARC-Seal");
    assert.equal(seals.length, 1);
    assert.match(
      seals[0],
      /^ARC-Seal: i=1; a=rsa-sha256; t=\d+; cv=none;\s+d=lists\.example\.com; s=arc; b=/,
    );
    assert.match(
      fieldsNamed(bytes, "ARC-Message-Signature")[0],
      /^ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed\/relaxed;\s+d=lists\.example\.com;\s+s=arc;/,
    );
    // The list host's own A-R of the re-injected pass says what it saw then: dkim=fail.
    const listAr = resultsOf(bytes, LIST_HOST);
    assert.equal(listAr.length, 1, listAr.join("\n"));
    assert.match(listAr[0], /dkim=fail/);

    // The other implementations read the delivered bytes the same way.
    const keys = { nameserver: w.dns.nameserver };
    for (const peer of ARC_PEERS) {
      const [v] = await arcVerifyWithPeer(peer, [bytes], keys);
      assert.equal(v.result, "pass", `${peer}: ${v.detail}`);
    }
    const [py] = await verifyAllWithDkimpy([bytes], { nameserver: w.dns.nameserver });
    assert.deepEqual(py.map((v) => v.result), ["fail"], JSON.stringify(py));
    // And `dkimd arc verify` on the same bytes.
    const file = `${w.dir}/delivered.eml`;
    await Deno.writeFile(file, bytes);
    const cli = await runCli(["arc", "verify", "--json", "--nameserver", w.dns.nameserver, file]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(JSON.parse(cli.text).result, "pass");

    assert.match(listDkimd.log(), /ARC set i=1 added \(d=lists\.example\.com, cv=none\)/);
  } finally {
    for (const s of started.reverse()) await s.stop();
    await w.close();
  }
});

/** The list host alone: Postfix #1 with dkimd #1 (Mode v, ARCMode sv), delivering to its sink. */
async function listHost(w: World): Promise<{ postfix: PostfixInstance; dkimd: DkimdProcess }> {
  const dkimd = await startDkimd(
    `${w.dir}/list`,
    config(
      w,
      LIST_HOST,
      `InternalHosts ${w.dir}/list/InternalHosts\nARCMode sv\n` +
        `ARCDomain lists.${ZONE}\nARCSelector arc\nARCKeyFile ${w.dir}/list/arc.private\n`,
    ),
  );
  try {
    // The MTA's own name (macro j) differs from AuthservID: the A-R and the AAR must take
    // AuthservID, the authserv-id setting OpenARC's openarc.conf(5) names the same.
    const postfix = await startPostfix({
      hostname: "relay.lists.example.com",
      smtpdMilters: `inet:127.0.0.1:${dkimd.port}`,
    });
    return { postfix, dkimd };
  } catch (e) {
    await dkimd.stop();
    throw e;
  }
}

Deno.test("Postfix + dkimd: an ARC chain whose body a list changed before dkimd seals is arc=fail, sealed with cv=fail (fail for Mail::DKIM, a terminated chain for dkimpy), and never sealed again", async () => {
  const w = await world();
  let host: { postfix: PostfixInstance; dkimd: DkimdProcess } | undefined;
  try {
    host = await listHost(w);
    const { postfix, dkimd } = host;
    const keys = { nameserver: w.dns.nameserver };
    // An upstream forwarder (dkimpy) sealed the post with a valid chain of one set...
    const sealed = await arcSealWithPeer("dkimpy", post(), [{
      domain: `upstream.${ZONE}`,
      selector: "arc",
      key: w.upstreamPem,
      authservId: "mx.upstream.example.com",
    }], keys);
    for (const peer of ARC_PEERS) {
      const [v] = await arcVerifyWithPeer(peer, [sealed], keys);
      assert.equal(v.result, "pass", `upstream chain, ${peer}: ${v.detail}`);
    }
    // ...then a list changed the body (and Subject) before the post reached dkimd.
    const changed = listify(sealed);
    const r = await postfix.sendSmtp({
      from: "friends-bounces@lists.example.com",
      to: "bob@example.org",
      data: changed,
      sourceAddress: "::1",
    });
    assert.equal(r.reply.code, 250, r.reply.lines.join(" "));
    const [first] = await postfix.waitForMessages(1, DELIVERY_TIMEOUT_MS);
    const once = first.data;
    const ar = resultsOf(once, LIST_HOST);
    assert.equal(ar.length, 1, ar.join("\n"));
    assert.match(ar[0], /arc=fail \(ARC-Message-Signature i=1 body hash did not verify\)/);
    // RFC 8617 §5.1.2: the new set records the failure (cv=fail, its AAR says arc=fail).
    const seals = fieldsNamed(once, "ARC-Seal");
    assert.equal(seals.length, 2, seals.join("\n"));
    assert.match(
      seals[0],
      /^ARC-Seal: i=2; a=rsa-sha256; t=\d+; cv=fail;\s+d=lists\.example\.com;/,
    );
    assert.match(
      fieldsNamed(once, "ARC-Authentication-Results")[0],
      /^ARC-Authentication-Results: i=2; mx\.lists\.example\.com; .*arc=fail/,
    );
    assert.doesNotMatch(latin1(once), /relay\.lists\.example\.com;/);
    assert.match(dkimd.log(), /ARC set i=2 added \(d=lists\.example\.com, cv=fail\)/);
    // Neither peer passes it: Mail::DKIM says fail; dkimpy says the chain is terminated
    // (its arc_verify gives no cv for a chain whose newest seal says cv=fail).
    const [byMailDkim] = await arcVerifyWithPeer("Mail::DKIM", [once], keys);
    assert.equal(byMailDkim.result, "fail", byMailDkim.detail);
    const [byDkimpy] = await arcVerifyWithPeer("dkimpy", [once], keys);
    assert.notEqual(byDkimpy.result, "pass", byDkimpy.detail);
    assert.match(byDkimpy.detail, /ARC-Seal\[2\] reported failure, the chain is terminated/);

    // Sent on through the same kind of hop again: the ended chain is not sealed again (RFC 8617
    // §5.1 step 1); the hop still says arc=fail.
    const again = await postfix.sendSmtp({
      from: "friends-bounces@lists.example.com",
      to: "carol@example.org",
      data: once,
      sourceAddress: "::1",
    });
    assert.equal(again.reply.code, 250, again.reply.lines.join(" "));
    const all = await postfix.waitForMessages(2, DELIVERY_TIMEOUT_MS);
    const twice = all.find((m) => m.rcptTo.includes("carol@example.org"))!.data;
    assert.equal(fieldsNamed(twice, "ARC-Seal").length, 2);
    assert.deepEqual(fieldsNamed(twice, "ARC-Seal"), seals);
    assert.match(resultsOf(twice, LIST_HOST)[0], /arc=fail \(ARC-Seal i=2 says cv=fail\)/);
    assert.match(dkimd.log(), /ARC chain ended with cv=fail at i=2; not sealing/);
  } finally {
    await host?.postfix.stop();
    await host?.dkimd.stop();
    await w.close();
  }
});
