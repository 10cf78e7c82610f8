import assert from "node:assert/strict";
import {
  formatFailureReport,
  parseReportingRecord,
  reportDate,
  reportedSignature,
  wantsVerifyFailure,
} from "../../lib/dkim/failure_report.ts";
import { verifyMessage } from "../../lib/dkim/verify.ts";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { edit, MESSAGE, recordFor, rsaKey, signed } from "../helpers/dkim_fixtures.ts";

const NOW = 1_800_000_000;

async function verdictsOf(message: Uint8Array, requestReports: boolean) {
  const key = await rsaKey();
  const bytes = await signed(MESSAGE, [{
    domain: "example.com",
    selector: "s1",
    key,
    requestReports,
  }], NOW);
  const resolver = { resolveTxt: () => Promise.resolve([recordFor(key)]) };
  const text = latin1(bytes).replace(latin1(MESSAGE), latin1(message));
  return {
    text,
    verdicts: await verifyMessage(fromLatin1(text), { resolver, now: () => NOW }),
  };
}

Deno.test("RequestReports' r=y is written after x=/t= and verifies like any tag", async () => {
  const { text, verdicts } = await verdictsOf(MESSAGE, true);
  assert.match(text.replace(/\r\n\t/g, " "), /; t=1800000000; r=y;/);
  assert.equal(verdicts[0].result, "pass");
  assert.equal(verdicts[0].signature?.tags.get("r"), "y");
  assert.equal(reportedSignature(verdicts), undefined, "a pass is not reported");
});

Deno.test("reportedSignature() picks a failed signature with r=y, and nothing without r=y", async () => {
  const changed = edit(MESSAGE, "Noon", "Midnight");
  const asked = await verdictsOf(changed, true);
  assert.equal(asked.verdicts[0].result, "fail");
  assert.equal(reportedSignature(asked.verdicts), asked.verdicts[0]);
  const silent = await verdictsOf(changed, false);
  assert.equal(silent.verdicts[0].result, "fail");
  assert.equal(reportedSignature(silent.verdicts), undefined);
  // A signature without a key is not a "bad signature" to OpenDKIM: no report.
  assert.equal(
    reportedSignature([{ ...asked.verdicts[0], result: "permerror", reason: "no key" }]),
    undefined,
  );
});

Deno.test("parseReportingRecord() reads ra=, rp= and rr= (or OpenDKIM's ro=) of RFC 6651 §3.2", () => {
  assert.deepEqual(parseReportingRecord("ra=dkim=2Dreports@elsewhere.example; rp=250"), {
    address: "dkim-reports",
    percent: 100,
  });
  assert.deepEqual(parseReportingRecord("ra=r; rp=x"), { address: "r", percent: 100 });
  assert.deepEqual(parseReportingRecord("ra=r; ro=V:S"), {
    address: "r",
    percent: 100,
    requested: ["v", "s"],
  });
  assert.equal(parseReportingRecord("ra=a b"), undefined, "not a local-part");
  assert.equal(parseReportingRecord("ra=r; ra=s"), undefined, "a tag twice is no tag list");
  assert.equal(wantsVerifyFailure({ address: "r", percent: 100 }), true);
  assert.equal(wantsVerifyFailure({ address: "r", percent: 100, requested: ["d", "x"] }), false);
  assert.equal(wantsVerifyFailure({ address: "r", percent: 100, requested: ["all"] }), true);
});

Deno.test("formatFailureReport() writes OpenDKIM's ARF layout with RFC 5965's version", async () => {
  const { verdicts } = await verdictsOf(edit(MESSAGE, "Noon", "Midnight"), true);
  const text = formatFailureReport({
    from: "opendkim@mx.example.net",
    to: "dkim@example.com",
    date: new Date(Date.UTC(2026, 11, 7, 9, 5, 3)),
    hostname: "mx.example.net",
    jobId: "4AB12",
    envelopeFrom: "<alice@example.com>",
    sourceIp: "192.0.2.7",
    userAgent: "dkimd/0.1.0",
    fields: [
      { name: "From", raw: fromLatin1("From: Alice\r\n <alice@example.com>") },
      { name: "Subject", raw: fromLatin1("Subject: hi") },
    ],
    verdict: reportedSignature(verdicts)!,
  });
  assert.equal(
    reportDate(new Date(Date.UTC(2026, 11, 7, 9, 5, 3))),
    "Mon,  7 Dec 2026 09:05:03 +0000 (UTC)",
  );
  const boundary = "dkimreport/mx.example.net/4AB12";
  assert.ok(
    text.startsWith(
      "From: opendkim@mx.example.net\nTo: dkim@example.com\n" +
        "Date: Mon,  7 Dec 2026 09:05:03 +0000 (UTC)\nSubject: DKIM failure report for 4AB12\n" +
        "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=feedback-report;\n" +
        `\tboundary="${boundary}"\n\n--${boundary}\nContent-Type: text/plain\n\n`,
    ),
    text,
  );
  assert.ok(!text.includes("\r"), "LF line ends only");
  assert.ok(!text.includes("Bcc:"));
  for (
    const line of [
      "Version: 1",
      "Original-Envelope-Id: 4AB12",
      "Original-Mail-From: alice@example.com",
      "Reporting-MTA: mx.example.net",
      "Source-IP: 192.0.2.7",
      "Message-ID: (none)",
      "Reported-Domain: example.com",
      "Feedback-Type: auth-failure",
      "Auth-Failure: bodyhash",
      "DKIM-Failure: bodyhash",
      "DKIM-Domain: example.com",
      "DKIM-Selector: s1",
      "DKIM-Identity: @example.com",
    ]
  ) assert.ok(text.includes(`\n${line}\n`), line);
  assert.ok(
    text.endsWith(
      `--${boundary}\nContent-Type: text/rfc822-headers\n\n` +
        `From: Alice\n <alice@example.com>\nSubject: hi\n\n--${boundary}--\n`,
    ),
  );
});
