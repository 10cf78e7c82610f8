/**
 * Failure reports (RFC 6651) compared with Debian's opendkim: both milters verify the same
 * message, whose signature asks for reports (r=y) and fails, with the signing domain publishing
 * a reporting record (ra=, rr=) in a local DNS server; MTACommand is a script that records its
 * arguments and input. What each sends is compared field by field; where dkimd departs (it
 * attaches no canonicalized header or body, writes ARF's Version 1 and a blank line before the
 * first part, and obeys RFC 6651's rr=, which OpenDKIM does not read), the test says so.
 * tests/e2e/postfix_failure_actions_test.ts sends dkimd's reports through a real Postfix.
 *
 * @module
 */
import assert from "node:assert/strict";
import { loadKey, MESSAGE, recordFor, signed } from "../helpers/dkim_fixtures.ts";
import { startFakeDnsServer } from "../helpers/fake_dns_server.ts";
import { mtaMessage } from "../helpers/mta_message.ts";
import { startDkimd } from "../helpers/dkimd_process.ts";
import { HAVE_OPENDKIM, sendTo, startOpenDkim, startPair } from "../helpers/opendkim_milter.ts";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";

/** A sendmail stand-in: each run writes its arguments and its input to OUT/N.args and OUT/N.eml. */
async function recordingSendmail(dir: string): Promise<{ path: string; out: string }> {
  const out = `${dir}/sent`;
  await Deno.mkdir(out, { recursive: true });
  const path = `${dir}/sendmail`;
  await Deno.writeTextFile(
    path,
    `#!/bin/sh\nn=$$.$(date +%s%N)\nprintf '%s\\n' "$@" > "${out}/$n.args"\ncat > "${out}/$n.eml"\n`,
  );
  await Deno.chmod(path, 0o755);
  await Deno.chmod(dir, 0o755);
  return { path, out };
}

/** Waits (up to `waitMs`) for `count` recorded runs in `out`; returns each as {args, text}. */
async function sentMail(
  out: string,
  count: number,
  waitMs = 15_000,
): Promise<{ args: string[]; text: string }[]> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const names = [];
    for await (const e of Deno.readDir(out)) if (e.name.endsWith(".args")) names.push(e.name);
    if (names.length >= count || Date.now() > deadline) {
      // The script writes the arguments first: give it a moment to finish the message.
      await new Promise((r) => setTimeout(r, 300));
      const runs = [];
      for (const n of names.sort()) {
        const base = n.slice(0, -".args".length);
        runs.push({
          args: (await Deno.readTextFile(`${out}/${n}`)).trim().split("\n"),
          text: await Deno.readTextFile(`${out}/${base}.eml`),
        });
      }
      return runs;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The header fields of a report part (or the top header), unfolded, by lower-case name. */
function fieldsOf(block: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of block.replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/)) {
    const m = /^([^:\s]+):\s*(.*)$/.exec(line);
    if (m) out.set(m[1].toLowerCase(), m[2].trim());
  }
  return out;
}

/** A report split into its top header, and its parts by Content-Type. */
function parseReport(text: string): { top: Map<string, string>; parts: Map<string, string> } {
  // The top header ends at a blank line, or (OpenDKIM's) at the first boundary line.
  const end = text.search(/\n\n|\n--/);
  const head = text.slice(0, end);
  const rest = [text.slice(end).replace(/^\n\n?/, "")];
  const top = fieldsOf(head);
  const boundary = /boundary="([^"]+)"/.exec(top.get("content-type") ?? "")?.[1];
  assert.ok(boundary, "a multipart/report with a boundary");
  const body = rest.join("\n\n");
  const parts = new Map<string, string>();
  for (const part of body.split(`--${boundary}`).slice(1)) {
    const [partHead, ...partBody] = part.replace(/^\n/, "").split("\n\n");
    const type = fieldsOf(partHead).get("content-type");
    if (type) parts.set(type, partBody.join("\n\n"));
  }
  return { top, parts };
}

Deno.test({
  name: "SendReports: a failed signature with r=y gets an ARF report at ra=@d= from both, " +
    "through MTACommand -t -f; dkimd attaches no canonicalized header or body",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "dkimd-rep18-" });
    const key = await loadKey("rsa2048_pkcs8.pem");
    const dns = await startFakeDnsServer({
      "rsa._domainkey.example.com": { txt: [recordFor(key)] },
      "_report._domainkey.example.com": { txt: ["ra=dkim-failures; rr=v"] },
      // example.net asks only for reports of expired signatures (rr=x), in RFC 6651's tag.
      "rsa._domainkey.example.net": { txt: [recordFor(key)] },
      "_report._domainkey.example.net": { txt: ["ra=dkim-failures; rr=x"] },
    });
    try {
      const sendmail = await recordingSendmail(dir);
      const common = [
        "Mode v",
        "SendReports yes",
        "ReportAddress DKIM Reports <dkim-reports@mx.example.net>",
        "ReportBccAddress audit@mx.example.net",
        `MTACommand ${sendmail.path}`,
        "RequireSafeKeys no",
      ];
      await Deno.mkdir(`${dir}/opendkim`);
      await Deno.mkdir(`${dir}/dkimd`);
      await Deno.writeTextFile(
        `${dir}/opendkim/unbound.conf`,
        [
          "server:",
          "  do-not-query-localhost: no",
          '  module-config: "iterator"',
          "  qname-minimisation: no",
          "  use-syslog: no",
          '  chroot: ""',
          '  username: ""',
          '  directory: ""',
          "forward-zone:",
          '  name: "."',
          `  forward-addr: 127.0.0.1@${dns.port}`,
          "",
        ].join("\n"),
      );
      const opendkim = await startOpenDkim(`${dir}/opendkim`, [
        ...common,
        `ResolverConfiguration ${dir}/opendkim/unbound.conf`,
      ]);
      const dkimd = await startDkimd(
        `${dir}/dkimd`,
        (socket) =>
          [...common, `Nameservers 127.0.0.1@${dns.port}`, `Socket ${socket}`, ""].join("\n"),
      );
      try {
        const good = await signed(MESSAGE, [{
          domain: "example.com",
          selector: "rsa",
          key,
          canonicalization: ["relaxed", "relaxed"],
          signHeaders: ["From", "To", "Subject", "Date"],
          requestReports: true,
        }], Math.floor(Date.now() / 1000));
        assert.match(latin1(good), /; r=y;/);
        const bad = fromLatin1(latin1(good).replace("Noon at", "Midnight at"));
        const message = (qid: string) =>
          mtaMessage(bad, { qid, address: "192.0.2.7", hostname: "mx.example.org" });
        const od = await sendTo(opendkim.port, message("REP1"));
        const dd = await sendTo(dkimd.port, message("REP2"));
        // The report changes nothing in the reply: both accept, saying dkim=fail.
        assert.equal(od.final.type, "accept");
        assert.equal(dd.final.type, "accept");
        const runs = await sentMail(sendmail.out, 2);
        assert.equal(
          runs.length,
          2,
          `one report from each:\n${runs.map((r) => r.text).join("\n---\n")}\n` +
            `opendkim: ${opendkim.log()}\ndkimd: ${dkimd.log()}`,
        );
        const byJob = new Map(runs.map((r) => [/for (REP\d)/.exec(r.text)?.[1], r]));
        const fromOd = byJob.get("REP1")!;
        const fromDd = byJob.get("REP2")!;
        assert.ok(fromOd && fromDd, runs.map((r) => r.text.slice(0, 300)).join("\n---\n"));
        // The same command line: -t, and -f the ReportAddress's address.
        assert.deepEqual(fromOd.args, ["-t", "-fdkim-reports@mx.example.net"]);
        assert.deepEqual(fromDd.args, fromOd.args);
        const a = parseReport(fromOd.text);
        const b = parseReport(fromDd.text);
        for (const name of ["from", "to", "bcc", "mime-version"]) {
          assert.equal(b.top.get(name), a.top.get(name), name);
        }
        assert.equal(a.top.get("to"), "dkim-failures@example.com");
        assert.equal(a.top.get("subject"), "DKIM failure report for REP1");
        assert.equal(b.top.get("subject"), "DKIM failure report for REP2");
        assert.match(
          b.top.get("content-type")!,
          /^multipart\/report; report-type=feedback-report;/,
        );
        assert.deepEqual([...b.parts.keys()], [...a.parts.keys()]);
        const fa = fieldsOf(a.parts.get("message/feedback-report")!);
        const fb = fieldsOf(b.parts.get("message/feedback-report")!);
        for (
          const name of [
            "original-mail-from",
            "reporting-mta",
            "source-ip",
            "message-id",
            "reported-domain",
            "delivery-result",
            "feedback-type",
            "auth-failure",
            "dkim-failure",
            "dkim-domain",
            "dkim-selector",
            "dkim-identity",
          ]
        ) assert.equal(fb.get(name), fa.get(name), name);
        assert.equal(fa.get("feedback-type"), "auth-failure");
        assert.equal(fa.get("auth-failure"), "bodyhash");
        assert.equal(fb.get("original-envelope-id"), "REP2");
        // Departures: OpenDKIM writes ARF's draft version and runs the first boundary into the
        // top header; dkimd writes RFC 5965's version and ends the header with a blank line.
        assert.equal(fa.get("version"), "0.1");
        assert.equal(fb.get("version"), "1");
        assert.match(fromOd.text, /\tboundary="[^"]+"\n--dkimreport/);
        assert.match(fromDd.text, /\tboundary="[^"]+"\n\n--dkimreport/);
        // Departures: OpenDKIM attaches the canonicalized header and body; dkimd keeps neither.
        assert.ok(fa.has("dkim-canonicalized-header"));
        assert.ok(!fb.has("dkim-canonicalized-header") && !fb.has("dkim-canonicalized-body"));
        assert.match(fa.get("user-agent")!, /^OpenDKIM-Filter\//);
        assert.match(fb.get("user-agent")!, /^dkimd\//);
        // The header block as received, the same in both (OpenDKIM keeps the CR of each fold
        // inside its LF-ended lines; dkimd ends every line in LF alone).
        const ha = a.parts.get("text/rfc822-headers")!.trim();
        const hb = b.parts.get("text/rfc822-headers")!.trim();
        assert.doesNotMatch(hb, /\r/);
        assert.equal(hb, ha.replaceAll("\r\n", "\n"));

        // Departure: rr=x asks for reports of expired signatures only. OpenDKIM reads the
        // draft's ro= and not RFC 6651's rr=, so it reports this body hash failure anyway;
        // dkimd does not.
        const other = await signed(MESSAGE, [{
          domain: "example.net",
          selector: "rsa",
          key,
          requestReports: true,
        }], Math.floor(Date.now() / 1000));
        const otherBad = fromLatin1(latin1(other).replace("Noon at", "Midnight at"));
        const otherMessage = (qid: string) =>
          mtaMessage(otherBad, { qid, address: "192.0.2.7", hostname: "mx.example.org" });
        await sendTo(opendkim.port, otherMessage("REP3"));
        await sendTo(dkimd.port, otherMessage("REP4"));
        await dkimd.waitForLog(/REP4: bad signature data/);
        // dkimd's queue has looked the record up within milliseconds; give it two seconds.
        const later = await sentMail(sendmail.out, 4, 2_000);
        const jobs = later.map((r) => /for (REP\d)/.exec(r.text)?.[1]).sort();
        assert.deepEqual(jobs, ["REP1", "REP2", "REP3"]);
      } finally {
        await Promise.all([opendkim.stop(), dkimd.stop()]);
      }
    } finally {
      await dns.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "RequestReports: both write r=y in the signatures they add",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "dkimd-req18-" });
    try {
      const keyFile = new URL("../testdata/keys/rsa2048_pkcs8.pem", import.meta.url).pathname;
      await Deno.writeTextFile(`${dir}/key_table`, `k example.com:rsa:${keyFile}\n`);
      await Deno.writeTextFile(`${dir}/signing_table`, `*@example.com k\n`);
      const pair = await startPair(dir, [
        "Mode s",
        `KeyTable ${dir}/key_table`,
        `SigningTable refile:${dir}/signing_table`,
        "RequireSafeKeys no",
        "RequestReports yes",
      ]);
      try {
        const message = mtaMessage(MESSAGE, { qid: "REQ1", address: "127.0.0.1" });
        const results = await Promise.all([
          sendTo(pair.opendkim.port, message),
          sendTo(pair.dkimd.port, message),
        ]);
        for (const [who, r] of [["opendkim", results[0]], ["dkimd", results[1]]] as const) {
          const sig = r.modifications.find((m) =>
            m.type === "insheader" && m.name === "DKIM-Signature"
          );
          assert.ok(sig && sig.type === "insheader", `${who} signed`);
          const value = typeof sig.value === "string" ? sig.value : latin1(sig.value);
          assert.match(value.replace(/\s+/g, ""), /;r=y;/, who);
        }
      } finally {
        await pair.stop();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
