/**
 * What dkimd does with mail whose signature fails, through a real private Postfix (the path a
 * user's mail takes): SendReports hands an ARF failure report (RFC 6651, RFC 5965) to
 * MTACommand, here that Postfix's own `sendmail -C DIR`, and Postfix delivers it to the report
 * address; RedirectFailuresTo makes Postfix deliver the message to the redirect address instead
 * of its recipients; Quarantine puts it in Postfix's hold queue. Keys and the reporting record
 * come from a real DNS server (knot on 127.0.0.1); Postfix relays everything to its sink.
 *
 * dkimd runs as root here, as the tests do: Postfix's postdrop accepts `-C` (MAIL_CONFIG) from
 * root, and from other users only for directories listed in `alternate_config_directories` of
 * the default main.cf.
 */
import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { loadKey, MESSAGE, recordFor, signed } from "../helpers/dkim_fixtures.ts";
import { type DnsServer, startDnsServer } from "../helpers/dns_server.ts";
import { type DkimdProcess, startDkimd } from "../helpers/dkimd_process.ts";
import { type PostfixInstance, startPostfix } from "../helpers/postfix.ts";

const DELIVERY_TIMEOUT_MS = 20_000;
const REPORT_ADDRESS = "dkim-reports@mx.example.net";

interface World {
  readonly dir: string;
  readonly dns: DnsServer;
  readonly dkimd: DkimdProcess;
  readonly postfix: PostfixInstance;
  /** MAIL, tampered after signing (r=y): its signature fails with a body hash mismatch. */
  readonly bad: Uint8Array;
  /** MAIL, signed: it verifies. */
  readonly good: Uint8Array;
  close(): Promise<void>;
}

/**
 * knot with example.com's key and reporting record, dkimd (Mode v, `extra` lines) as the
 * milter of a private Postfix, and MTACommand a script running that Postfix's sendmail.
 */
async function world(extra: readonly string[]): Promise<World> {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-pfx18-" });
  await Deno.chmod(dir, 0o755);
  const key = await loadKey("rsa2048_pkcs8.pem");
  const cleanup: (() => Promise<unknown>)[] = [() => Deno.remove(dir, { recursive: true })];
  const close = async () => {
    for (const f of cleanup.reverse()) await f().catch(() => undefined);
  };
  try {
    const dns = await startDnsServer({
      zone: "example.com",
      records: {
        "rsa._domainkey.example.com": [recordFor(key)],
        "_report._domainkey.example.com": ["ra=dkim-failures; rr=v"],
      },
    });
    cleanup.push(() => dns.close());
    // The script exists before dkimd starts; it learns the Postfix instance once that runs.
    const mtaCommand = `${dir}/sendmail`;
    await Deno.writeTextFile(mtaCommand, "#!/bin/sh\nexit 75\n");
    await Deno.chmod(mtaCommand, 0o755);
    const dkimd = await startDkimd(dir, (socket) =>
      [
        "Mode v",
        "Syslog no",
        "LogWhy yes",
        "AuthservID mx.example.net",
        // Not the default (127.0.0.1, ::1): ::1 is the outside client here.
        "InternalHosts 127.0.0.1",
        `Nameservers ${dns.nameserver}`,
        `MTACommand ${mtaCommand}`,
        `Socket ${socket}`,
        ...extra,
        "",
      ].join("\n"));
    cleanup.push(() => dkimd.stop());
    const postfix = await startPostfix({ smtpdMilters: `inet:127.0.0.1:${dkimd.port}` });
    cleanup.push(() => postfix.stop());
    // Postfix's sendmail with this instance's configuration: postdrop writes into its
    // maildrop, pickup hands the report to cleanup (and through non_smtpd_milters to dkimd).
    await Deno.writeTextFile(
      mtaCommand,
      `#!/bin/sh\nexec /usr/sbin/sendmail -C '${postfix.configDirectory}' "$@"\n`,
    );
    const good = await signed(MESSAGE, [{
      domain: "example.com",
      selector: "rsa",
      key,
      canonicalization: ["relaxed", "relaxed"],
      signHeaders: ["From", "To", "Subject", "Date", "Message-ID"],
      requestReports: true,
    }], Math.floor(Date.now() / 1000));
    assert.match(latin1(good), /; r=y;/);
    const bad = fromLatin1(latin1(good).replace("Noon at", "Midnight at"));
    return { dir, dns, dkimd, postfix, bad, good, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Sends `data` from an outside client (::1, not in InternalHosts) over SMTP. */
async function submit(w: World, data: Uint8Array, to: readonly string[]): Promise<void> {
  const r = await w.postfix.sendSmtp({
    from: "alice@example.com",
    to,
    data,
    sourceAddress: "::1",
  });
  assert.equal(r.reply.code, 250, r.reply.lines.join(" "));
}

/** The header fields of a block, unfolded, by lower-case name (the first of each). */
function fieldsOf(block: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of block.replace(/\n[ \t]+/g, " ").split("\n")) {
    const m = /^([^:\s]+):\s*(.*)$/.exec(line);
    if (m && !out.has(m[1].toLowerCase())) out.set(m[1].toLowerCase(), m[2].trim());
  }
  return out;
}

/** A delivered message's top header, and its MIME parts by Content-Type. */
function parseReport(data: Uint8Array) {
  const text = latin1(data).replaceAll("\r\n", "\n");
  const end = text.indexOf("\n\n");
  const top = fieldsOf(text.slice(0, end));
  const boundary = /boundary="([^"]+)"/.exec(top.get("content-type") ?? "")?.[1];
  assert.ok(boundary, `a multipart/report with a boundary:\n${text}`);
  const parts = new Map<string, string>();
  for (const part of text.slice(end + 2).split(`--${boundary}`).slice(1)) {
    const [head, ...body] = part.replace(/^\n/, "").split("\n\n");
    const type = fieldsOf(head).get("content-type");
    if (type) parts.set(type, body.join("\n\n"));
  }
  return { text, top, parts };
}

Deno.test("SendReports: the ARF report goes through Postfix's sendmail and arrives at the report address", async () => {
  const w = await world([
    "SendReports yes",
    `ReportAddress DKIM Reports <${REPORT_ADDRESS}>`,
    "ReportBccAddress audit@mx.example.net",
  ]);
  try {
    await submit(w, w.bad, ["bob@example.org"]);
    const got = await w.postfix.waitForMessages(2, DELIVERY_TIMEOUT_MS);
    assert.equal(got.length, 2);
    const original = got.find((m) => m.rcptTo.includes("bob@example.org"));
    const report = got.find((m) => m.rcptTo.includes("dkim-failures@example.com"));
    assert.ok(original && report, got.map((m) => m.rcptTo.join(",")).join(" | "));
    // The message itself goes on (On-BadSignature accept), saying dkim=fail.
    assert.match(latin1(original.data), /Authentication-Results: mx\.example\.net;\s+dkim=fail/);
    // -f ReportAddress's address, -t: To and Bcc are the recipients; Postfix drops the Bcc field.
    assert.equal(report.mailFrom, REPORT_ADDRESS);
    assert.deepEqual([...report.rcptTo].sort(), [
      "audit@mx.example.net",
      "dkim-failures@example.com",
    ]);
    const { text, top, parts } = parseReport(report.data);
    assert.equal(top.get("bcc"), undefined);
    // Postfix's pickup took it from sendmail (run by root, as dkimd runs in the tests).
    assert.match(top.get("received")!, /by mx\.postfix\.test \(Postfix, from userid 0\)/);
    assert.equal(top.get("from"), `DKIM Reports <${REPORT_ADDRESS}>`);
    assert.equal(top.get("to"), "dkim-failures@example.com");
    // The Postfix queue id of the failed message, as the milter's {i} macro gave it.
    const qid = /^DKIM failure report for ([0-9A-F]+)$/.exec(top.get("subject") ?? "")?.[1];
    assert.ok(qid, top.get("subject"));
    await w.postfix.waitForLog(new RegExp(`${qid}: .*from=<alice@example\\.com>`), 5_000);
    assert.match(top.get("content-type")!, /^multipart\/report; report-type=feedback-report;/);
    assert.deepEqual([...parts.keys()], [
      "text/plain",
      "message/feedback-report",
      "text/rfc822-headers",
    ]);
    const arf = fieldsOf(parts.get("message/feedback-report")!);
    assert.equal(arf.get("feedback-type"), "auth-failure");
    assert.equal(arf.get("version"), "1");
    assert.equal(arf.get("auth-failure"), "bodyhash");
    assert.equal(arf.get("dkim-domain"), "example.com");
    assert.equal(arf.get("dkim-selector"), "rsa");
    assert.equal(arf.get("reported-domain"), "example.com");
    assert.equal(arf.get("original-mail-from"), "alice@example.com");
    assert.equal(arf.get("original-envelope-id"), qid);
    assert.equal(arf.get("source-ip"), "::1");
    assert.equal(arf.get("message-id"), "<1@example.com>");
    assert.match(arf.get("user-agent")!, /^dkimd\//);
    // The failed message's header block, as Postfix handed it to the milter.
    const headers = fieldsOf(parts.get("text/rfc822-headers")!);
    assert.equal(headers.get("subject"), "Lunch  tomorrow?");
    assert.match(headers.get("dkim-signature")!, /d=example\.com/);
    assert.doesNotMatch(text, /Midnight at/, "the body is not attached");
    assert.match(w.dkimd.log(), /failure report sent to dkim-failures@example\.com/);
  } finally {
    await w.close();
  }
});

Deno.test("RedirectFailuresTo: Postfix delivers a failed message to the redirect address, not to its recipients", async () => {
  const w = await world(["RedirectFailuresTo failures@mx.example.net"]);
  try {
    await submit(w, w.bad, ["bob@example.org", "carol@example.org"]);
    await submit(w, w.good, ["dave@example.org"]);
    const got = await w.postfix.waitForMessages(2, DELIVERY_TIMEOUT_MS);
    const redirected = got.find((m) => latin1(m.data).includes("Midnight at"));
    const passed = got.find((m) => latin1(m.data).includes("Noon at"));
    assert.ok(redirected && passed);
    assert.deepEqual(redirected.rcptTo, ["failures@mx.example.net"]);
    const text = latin1(redirected.data);
    assert.match(text, /\r\nOriginal-Recipient: rfc822;bob@example\.org\r\n/);
    assert.match(text, /\r\nOriginal-Recipient: rfc822;carol@example\.org\r\n/);
    assert.match(text, /dkim=fail/);
    // A message that verifies keeps its recipients.
    assert.deepEqual(passed.rcptTo, ["dave@example.org"]);
    assert.doesNotMatch(latin1(passed.data), /Original-Recipient/);
    assert.match(w.dkimd.log(), /: redirected to failures@mx\.example\.net \(RedirectFailuresTo\)/);
    // Nothing else was delivered: bob and carol got nothing.
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(w.postfix.sink.messages.length, 2);
  } finally {
    await w.close();
  }
});

/** Runs a Postfix tool on `w`'s instance; its standard output. */
async function postfixTool(w: World, program: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(program, {
    args: ["-c", w.postfix.configDirectory, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, `${program}: ${new TextDecoder().decode(out.stderr)}`);
  return text;
}

Deno.test("Quarantine: Postfix holds a failed message in its hold queue; dkimd logs the reason", async () => {
  const w = await world(["Quarantine yes"]);
  try {
    await submit(w, w.bad, ["bob@example.org"]);
    // Postfix logs the milter's hold, but keeps no reason: its milter8 client reads the
    // SMFIR_QUARANTINE text and drops it. dkimd's log has the reason.
    const log = await w.postfix.waitForLog(
      /([0-9A-F]+): milter-hold: END-OF-MESSAGE from unknown\[::1\]: milter triggers HOLD action;/,
      DELIVERY_TIMEOUT_MS,
    );
    const qid = /([0-9A-F]+): milter-hold: END-OF-MESSAGE/.exec(log)![1];
    assert.match(
      w.dkimd.log(),
      new RegExp(`${qid}: quarantined \\(Quarantine\\): dkimd: DKIM signature verification failed`),
    );
    // postqueue -j: one JSON object per queued message.
    const queued = (await postfixTool(w, "/usr/sbin/postqueue", ["-j"])).trim().split("\n")
      .filter((l) => l !== "").map((l) => JSON.parse(l));
    assert.deepEqual(queued.map((q) => [q.queue_id, q.queue_name]), [[qid, "hold"]]);
    assert.deepEqual(queued[0].recipients.map((r: { address: string }) => r.address), [
      "bob@example.org",
    ]);
    // postcat shows the held message, with the results dkimd added.
    const held = await postfixTool(w, "/usr/sbin/postcat", ["-q", qid]);
    assert.match(held, new RegExp(`\\*\\*\\* MESSAGE CONTENTS hold/${qid} \\*\\*\\*`));
    assert.match(held, /Authentication-Results: mx\.example\.net;\s+dkim=fail/);
    assert.match(held, /Midnight at/);
    // Held, not delivered.
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(w.postfix.sink.messages.length, 0);
  } finally {
    await w.close();
  }
});
