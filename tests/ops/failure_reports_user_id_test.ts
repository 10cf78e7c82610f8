/**
 * Failure reports (RFC 6651) the way a user runs dkimd: root starts it with `deno task start` from
 * a fresh clone after the README's setup (tests/helpers/fresh_clone.ts), with `UserID opendkim`
 * and `AutoRestart Yes`, so the worker (user opendkim), not root, runs MTACommand. The other
 * failure-report tests run dkimd as root: tests/interop/failure_reports_test.ts compares the
 * report with Debian's opendkim, tests/e2e/postfix_failure_actions_test.ts sends it through a
 * private Postfix.
 *
 * MTACommand is a script that records `id -u`, `id -G`, its arguments and its input into a
 * directory only opendkim may write, then waits to be released, so the test sees that the
 * milter's reply never waited for it. Made unexecutable by opendkim (mode 0700 root), it gives
 * one log line naming MTACommand and its path, and the same reply.
 */
import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { loadKey, MESSAGE, recordFor, signed } from "../helpers/dkim_fixtures.ts";
import { startFakeDnsServer } from "../helpers/fake_dns_server.ts";
import {
  FRESH_CLONE_IGNORE,
  freshMachine,
  OPENDKIM_USER,
  runReadmeSetup,
  startTask,
  uidOf,
  userEnv,
} from "../helpers/fresh_clone.ts";
import { mtaMessage } from "../helpers/mta_message.ts";
import { observe, sendTo } from "../helpers/opendkim_milter.ts";

const REPORT_ADDRESS = "dkim-reports@mx.example.net";
const BCC_ADDRESS = "audit@mx.example.net";
/** How long the recording MTACommand may take to appear: it runs after the reply, off its path. */
const RUN_TIMEOUT_MS = 30_000;

/** Whether `path` exists (as root sees it). */
function exists(path: string): Promise<boolean> {
  return Deno.lstat(path).then(() => true, () => false);
}

/** Waits for `path` to exist; throws with `context()` after {@link RUN_TIMEOUT_MS}. */
async function waitForFile(path: string, context: () => string): Promise<void> {
  const deadline = Date.now() + RUN_TIMEOUT_MS;
  while (!(await exists(path))) {
    if (Date.now() > deadline) throw new Error(`No ${path} in ${RUN_TIMEOUT_MS} ms:\n${context()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The recording MTACommand: writes its uid, groups, arguments and input into `out`, marks
 * `recorded`, then waits (at most a minute) for the test to create `release` before it exits 0.
 */
function recordingScript(out: string): string {
  return [
    "#!/bin/sh",
    `out='${out}'`,
    'id -u > "$out/uid"',
    'id -G > "$out/groups"',
    `printf '%s\\n' "$@" > "$out/args"`,
    'cat > "$out/stdin"',
    ': > "$out/recorded"',
    "i=0",
    'while [ ! -e "$out/release" ] && [ "$i" -lt 600 ]; do sleep 0.1; i=$((i + 1)); done',
    ': > "$out/done"',
    "",
  ].join("\n");
}

/** The header fields of a block, unfolded, by lower-case name (the first of each). */
function fieldsOf(block: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of block.replace(/\n[ \t]+/g, " ").split("\n")) {
    const m = /^([^:\s]+):\s*(.*)$/.exec(line);
    if (m && !fields.has(m[1].toLowerCase())) fields.set(m[1].toLowerCase(), m[2].trim());
  }
  return fields;
}

Deno.test({
  name:
    "deno task start with UserID opendkim and SendReports, from a fresh clone: the worker runs MTACommand as opendkim with the ARF report, after the reply; one it cannot execute is one log line naming MTACommand",
  ignore: FRESH_CLONE_IGNORE,
  fn: async () => {
    const opendkim = OPENDKIM_USER!;
    const m = await freshMachine();
    const env = userEnv(m.home);
    const key = await loadKey("rsa2048_pkcs8.pem");
    const dns = await startFakeDnsServer({
      "rsa._domainkey.example.com": { txt: [recordFor(key)] },
      "_report._domainkey.example.com": { txt: ["ra=dkim-failures; rr=v"] },
      // A second domain, for the second case: dkimd reports one domain at most once a minute.
      "rsa._domainkey.example.net": { txt: [recordFor(key)] },
      "_report._domainkey.example.net": { txt: ["ra=dkim-failures; rr=v"] },
    });
    try {
      // The recording script (0755 root, as an administrator installs it) and the one
      // directory opendkim may write (0700 opendkim).
      const out = `${m.root}/sent`;
      await Deno.mkdir(out, { mode: 0o700 });
      await Deno.chown(out, opendkim.uid, opendkim.gid);
      const mtaCommand = `${m.root}/sendmail`;
      await Deno.writeTextFile(mtaCommand, recordingScript(out));
      await Deno.chmod(mtaCommand, 0o755);
      // A fresh configuration in place of the seed's: verify only, reports on.
      await Deno.writeTextFile(
        m.conf,
        [
          "UserID opendkim",
          "AutoRestart Yes",
          "Syslog no",
          "LogWhy yes",
          "Mode v",
          `Socket inet:${m.port}@localhost`,
          `PidFile ${m.root}/opendkim.pid`,
          `Nameservers 127.0.0.1@${dns.port}`,
          "SendReports yes",
          `ReportAddress DKIM Reports <${REPORT_ADDRESS}>`,
          `ReportBccAddress ${BCC_ADDRESS}`,
          `MTACommand ${mtaCommand}`,
          "",
        ].join("\n"),
      );
      // Messages whose signature asks for reports (r=y) and fails (the body changed after signing).
      const tampered = async (domain: string) => {
        const good = await signed(MESSAGE, [{
          domain,
          selector: "rsa",
          key,
          canonicalization: ["relaxed", "relaxed"],
          signHeaders: ["From", "To", "Subject", "Date"],
          requestReports: true,
        }], Math.floor(Date.now() / 1000));
        assert.match(latin1(good), /; r=y;/);
        return fromLatin1(latin1(good).replace("Noon at", "Midnight at"));
      };
      const fromOutside = (bytes: Uint8Array, qid: string) =>
        mtaMessage(bytes, { qid, address: "192.0.2.7", hostname: "mx.example.org" });

      await runReadmeSetup(m.checkout, env);
      const task = startTask(m, env);
      try {
        const worker = Number((await task.waitFor(/worker (\d+) is ready/))[1]);
        assert.equal(await uidOf(worker), opendkim.uid);

        // 1. The worker runs MTACommand as opendkim, and answers the MTA without waiting for it.
        const first = await sendTo(m.port, fromOutside(await tampered("example.com"), "REP1"));
        assert.equal(first.final.type, "accept");
        const answered = observe(first);
        assert.ok(
          answered.changes.some((c) => /dkim=fail header\.d=example\.com/.test(c)),
          answered.changes.join("\n"),
        );
        // The script cannot finish before `release`, which exists only after the reply.
        assert.equal(await exists(`${out}/done`), false);
        await waitForFile(`${out}/recorded`, task.log);
        assert.equal((await Deno.readTextFile(`${out}/uid`)).trim(), String(opendkim.uid));
        assert.notEqual(opendkim.uid, 0);
        // No group of root's kept: the worker has opendkim's own.
        const groups = (await Deno.readTextFile(`${out}/groups`)).trim().split(/\s+/);
        assert.ok(!groups.includes("0"), `groups ${groups.join(" ")}`);
        assert.ok(groups.includes(String(opendkim.gid)), `groups ${groups.join(" ")}`);
        // The recipients: -t (To and Bcc of the report), and -f ReportAddress's address.
        assert.deepEqual(
          (await Deno.readTextFile(`${out}/args`)).trim().split("\n"),
          ["-t", `-f${REPORT_ADDRESS}`],
        );
        // Its input is the ARF report (RFC 5965, RFC 6591) on the failed signature.
        const report = (await Deno.readTextFile(`${out}/stdin`)).replaceAll("\r\n", "\n");
        const top = fieldsOf(report.slice(0, report.indexOf("\n\n")));
        assert.match(top.get("content-type")!, /^multipart\/report; report-type=feedback-report;/);
        assert.equal(top.get("to"), "dkim-failures@example.com");
        assert.equal(top.get("bcc"), BCC_ADDRESS);
        assert.equal(top.get("from"), `DKIM Reports <${REPORT_ADDRESS}>`);
        assert.equal(top.get("subject"), "DKIM failure report for REP1");
        const arfStart = report.indexOf("Content-Type: message/feedback-report");
        assert.ok(arfStart > 0, report);
        const arfBlock = report.slice(arfStart).split("\n\n")[1];
        const arf = fieldsOf(arfBlock);
        assert.equal(arf.get("feedback-type"), "auth-failure");
        assert.equal(arf.get("auth-failure"), "bodyhash");
        assert.equal(arf.get("dkim-domain"), "example.com");
        assert.equal(arf.get("dkim-selector"), "rsa");
        assert.equal(arf.get("original-envelope-id"), "REP1");
        assert.equal(arf.get("source-ip"), "192.0.2.7");
        await Deno.writeTextFile(`${out}/release`, "");
        await waitForFile(`${out}/done`, task.log);
        await task.waitFor(/REP1: failure report sent to dkim-failures@example\.com/);

        // 2. A MTACommand opendkim cannot execute: one line names it; the reply is the same.
        await Deno.chmod(mtaCommand, 0o700);
        await Deno.remove(`${out}/recorded`);
        const second = await sendTo(m.port, fromOutside(await tampered("example.net"), "REP2"));
        assert.deepEqual(
          JSON.parse(JSON.stringify(observe(second)).replaceAll("example.net", "example.com")),
          answered,
        );
        const line = (await task.waitFor(/^.*REP2: failure report .*\n/m))[0].trim();
        assert.match(
          line,
          new RegExp(
            `REP2: failure report to dkim-failures@example\\.net not sent: ` +
              `MTACommand ${mtaCommand} cannot be run by uid ${opendkim.uid}: ` +
              `Permission denied \\(os error 13\\)$`,
          ),
        );
        assert.equal(task.log().split("\n").filter((l) => l.includes("MTACommand")).length, 1);
        assert.equal(await exists(`${out}/recorded`), false);
        // The worker goes on: the same process answers the next message.
        const third = await sendTo(m.port, fromOutside(await tampered("example.net"), "REP3"));
        assert.deepEqual(
          JSON.parse(JSON.stringify(observe(third)).replaceAll("example.net", "example.com")),
          answered,
        );
        assert.equal(await uidOf(worker), opendkim.uid);
        assert.doesNotMatch(task.log(), /worker \d+ exited/);

        const supervisor = Number(
          (await task.waitFor(/dkimd\[(\d+)\]: dkimd \S+ starting \(worker as opendkim\)/))[1],
        );
        Deno.kill(supervisor, "SIGTERM");
        assert.equal((await task.finished()).code, 0, task.log());
      } finally {
        task.kill();
        await task.done;
      }
    } finally {
      await dns.close();
      await Deno.remove(m.root, { recursive: true });
    }
  },
});
