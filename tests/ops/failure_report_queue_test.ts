import assert from "node:assert/strict";
import { FailureReportQueue, type RunCommand } from "../../lib/ops/failure_report_queue.ts";
import type { FailureReportRequest } from "../../lib/filter/failure_reports.ts";
import type { ReportedVerdict } from "../../lib/dkim/failure_report.ts";
import { DnsError } from "../../lib/dns/resolver.ts";
import { fromLatin1 } from "../../lib/bytes.ts";

/** A failed signature of `domain` with r=y. */
function verdict(domain: string, reason = "signature did not verify"): ReportedVerdict {
  return {
    result: "fail",
    reason,
    domain,
    selector: "s1",
    identity: `@${domain}`,
    signature: { domain, selector: "s1", identity: `@${domain}`, tags: new Map([["r", "y"]]) },
  } as unknown as ReportedVerdict;
}

/** A request for `domain`, whose reporting record is `record` (undefined: NXDOMAIN). */
function request(domain: string, record?: string, jobId = "Q1"): FailureReportRequest {
  return {
    verdict: verdict(domain),
    fields: [{ name: "From", raw: fromLatin1(`From: a@${domain}`) }],
    envelopeFrom: `<a@${domain}>`,
    sourceIp: "192.0.2.7",
    jobId,
    hostname: "mx.example.net",
    date: new Date(0),
    resolver: {
      resolveTxt: (name) =>
        name === `_report._domainkey.${domain}` && record !== undefined
          ? Promise.resolve([record])
          : Promise.reject(new DnsError("nxdomain", name)),
    },
    mtaCommand: "/usr/sbin/sendmail",
  };
}

/** A fake MTACommand recording each run; `gate` holds every run until it resolves. */
function recorder(code = 0, gate?: Promise<void>) {
  const runs: { command: string; args: readonly string[]; input: string }[] = [];
  const run: RunCommand = async (command, args, input) => {
    runs.push({ command, args, input });
    await gate;
    return { code, stderr: code === 0 ? "" : "sendmail: cannot connect" };
  };
  return { runs, run };
}

function logs() {
  const lines: string[] = [];
  return {
    lines,
    log: { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(`W ${m}`) },
  };
}

Deno.test("FailureReportQueue sends a report to ra=@d= through MTACommand -t -f", async () => {
  const { runs, run } = recorder();
  const { lines, log } = logs();
  const queue = new FailureReportQueue({ log, run, defaultFrom: "opendkim@mx.example.net" });
  assert.equal(queue.offer(request("example.com", "ra=dkim")), true);
  await queue.idle();
  assert.equal(runs.length, 1);
  assert.equal(runs[0].command, "/usr/sbin/sendmail");
  assert.deepEqual(runs[0].args, ["-t", "-fopendkim@mx.example.net"]);
  assert.match(runs[0].input, /^From: opendkim@mx\.example\.net\nTo: dkim@example\.com\n/);
  assert.match(runs[0].input, /\nAuth-Failure: signature \(signature did not verify\)\n/);
  assert.deepEqual(lines, ["Q1: failure report sent to dkim@example.com"]);
});

Deno.test("FailureReportQueue: ReportAddress names the From and -f; ReportBccAddress a Bcc", async () => {
  const { runs, run } = recorder();
  const queue = new FailureReportQueue({ log: logs().log, run, defaultFrom: "x@y" });
  queue.offer({
    ...request("example.com", "ra=dkim"),
    reportAddress: "DKIM Reports <reports@mx.example.net>",
    reportBccAddress: "audit@mx.example.net",
  });
  await queue.idle();
  assert.deepEqual(runs[0].args, ["-t", "-freports@mx.example.net"]);
  assert.match(runs[0].input, /^From: DKIM Reports <reports@mx\.example\.net>\n/);
  assert.match(runs[0].input, /\nBcc: audit@mx\.example\.net\n/);
});

Deno.test("FailureReportQueue sends nothing without a reporting record, or when rr= or rp= say no", async () => {
  const { runs, run } = recorder();
  const queue = new FailureReportQueue({
    log: logs().log,
    run,
    defaultFrom: "x@y",
    random: () => 0.5,
    domainIntervalMs: 0,
  });
  queue.offer(request("none.example")); // NXDOMAIN
  queue.offer(request("nora.example", "rp=100")); // no ra=
  queue.offer(request("expired.example", "ra=r; rr=x")); // only expired signatures
  queue.offer(request("few.example", "ra=r; rp=40")); // 0.5 * 100 >= 40: not this one
  queue.offer(request("all.example", "ra=r; rr=all"));
  queue.offer(request("v.example", "ra=r; ro=v")); // OpenDKIM's ro=
  queue.offer(request("half.example", "ra=r; rp=60"));
  await queue.idle();
  assert.deepEqual(runs.map((r) => /\nTo: (.*)\n/.exec(r.input)?.[1]), [
    "r@all.example",
    "r@v.example",
    "r@half.example",
  ]);
});

Deno.test("FailureReportQueue: one report per domain per interval, at most maxQueued waiting", async () => {
  let now = 1_000_000;
  let open!: () => void;
  const gate = new Promise<void>((r) => open = r);
  const { runs, run } = recorder(0, gate);
  const queue = new FailureReportQueue({
    log: logs().log,
    run,
    defaultFrom: "x@y",
    maxQueued: 2,
    domainIntervalMs: 60_000,
    now: () => now,
  });
  assert.equal(queue.offer(request("a.example", "ra=r", "1")), true);
  assert.equal(queue.offer(request("a.example", "ra=r", "2")), false, "same domain, too soon");
  // The first is being sent (held by the gate); two more fit, the third does not.
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(queue.offer(request("b.example", "ra=r", "3")), true);
  assert.equal(queue.offer(request("c.example", "ra=r", "4")), true);
  assert.equal(queue.offer(request("d.example", "ra=r", "5")), false, "queue full");
  now += 60_000;
  open();
  await queue.idle();
  assert.equal(queue.offer(request("a.example", "ra=r", "6")), true, "a minute later");
  await queue.idle();
  assert.deepEqual(runs.map((r) => /for (\d)\n/.exec(r.input)?.[1]), ["1", "3", "4", "6"]);
});

Deno.test("FailureReportQueue: a hanging sendmail never delays offer; a failing one is logged", async () => {
  let open!: () => void;
  const gate = new Promise<void>((r) => open = r);
  const { run } = recorder(75, gate);
  const { lines, log } = logs();
  const queue = new FailureReportQueue({ log, run, defaultFrom: "x@y" });
  const started = performance.now();
  for (let i = 0; i < 50; i++) queue.offer(request(`d${i}.example`, "ra=r", `J${i}`));
  assert.ok(performance.now() - started < 50, "offer returns at once");
  assert.equal(queue.pending, 50);
  open();
  await queue.idle();
  assert.equal(lines.length, 50);
  assert.match(
    lines[0],
    /^W J0: failure report to r@d0\.example not sent: \/usr\/sbin\/sendmail exited 75: sendmail: cannot connect$/,
  );
});

Deno.test("FailureReportQueue kills an MTACommand that outlives its time limit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/slow-sendmail`;
    await Deno.writeTextFile(script, "#!/bin/sh\nexec sleep 30\n");
    await Deno.chmod(script, 0o755);
    const { lines, log } = logs();
    const queue = new FailureReportQueue({ log, defaultFrom: "x@y", commandTimeoutMs: 200 });
    const started = performance.now();
    queue.offer({ ...request("example.com", "ra=r"), mtaCommand: script });
    await queue.idle();
    assert.ok(performance.now() - started < 10_000);
    assert.equal(lines.length, 1);
    assert.match(lines[0], /^W Q1: failure report (to r@example\.com )?not sent/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
