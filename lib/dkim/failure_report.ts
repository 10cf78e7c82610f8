/**
 * DKIM failure reports (RFC 6651), written in the Abuse Reporting Format (RFC 5965, with RFC
 * 6591's authentication-failure fields) as OpenDKIM's `dkimf_sigreport()` writes them: which
 * signature a message's report is about, the reporting record a signing domain publishes at
 * `_report._domainkey.DOMAIN`, and the report itself. Pure: the lookup and the sending are the
 * caller's.
 *
 * @module
 */

import { fieldValueText, type HeaderField } from "./header.ts";
import type { Verdict } from "./result.ts";
import { decodeQuotedPrintable } from "./signature.ts";
import { parseTagList, TagListError } from "./tag_list.ts";

/** Where a signing domain publishes its reporting record (RFC 6651 §3.1). */
export const REPORT_PREFIX = "_report._domainkey";

/** What a signing domain asks for in its reporting record (RFC 6651 §3.2). */
export interface ReportingRecord {
  /** `ra=`: the local-part reports go to, at the signing domain. */
  readonly address: string;
  /** `rp=`: the percentage of failures to report (default all). */
  readonly percent: number;
  /**
   * `rr=` (RFC 6651), or `ro=` (the draft's name, which OpenDKIM reads): the failures wanted,
   * lower-cased; absent: all.
   */
  readonly requested?: readonly string[];
}

/**
 * Reads a reporting record; undefined when it asks for no reports (no usable `ra=`) or is not one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseReportingRecord } from "./failure_report.ts";
 * assert.deepEqual(parseReportingRecord("ra=dkim-reports; rp=50; rr=v:x"), {
 *   address: "dkim-reports", percent: 50, requested: ["v", "x"],
 * });
 * assert.equal(parseReportingRecord("rp=100"), undefined);
 * ```
 */
export function parseReportingRecord(text: string): ReportingRecord | undefined {
  let tags: Map<string, string>;
  try {
    tags = parseTagList(text);
  } catch (e) {
    if (e instanceof TagListError) return undefined;
    throw e;
  }
  const ra = tags.get("ra");
  if (ra === undefined) return undefined;
  // ra= is a local-part; OpenDKIM drops any "@domain" given with it: reports go to d=.
  const address = decodeQuotedPrintable(ra).split("@")[0];
  if (!/^[!#-'*+\-/-9=?A-Z^-~.]+$/.test(address)) return undefined;
  const rp = tags.get("rp");
  const percent = rp !== undefined && /^\d{1,3}$/.test(rp) ? Math.min(Number(rp), 100) : 100;
  const rr = tags.get("rr") ?? tags.get("ro");
  const requested = rr?.split(":").map((r) => r.trim().toLowerCase()).filter((r) => r !== "");
  return { address, percent, ...(requested?.length ? { requested } : {}) };
}

/**
 * Whether `record` wants a report of a signature that failed to verify: `rr=` absent, `all`, or
 * `v` (RFC 6651 §3.2, "verification failures").
 */
export function wantsVerifyFailure(record: ReportingRecord): boolean {
  return record.requested === undefined ||
    record.requested.some((r) => r === "all" || r === "v");
}

/** A failed signature that asked for reports: a verdict whose signature was parsed. */
export type ReportedVerdict = Verdict & { readonly signature: NonNullable<Verdict["signature"]> };

/**
 * The signature a message's failure report is about, if any: none when a signature passed (the
 * message is good, as OpenDKIM sees it), else the first one that failed to verify (`fail`: the
 * signature or the body hash did not verify, OpenDKIM's "bad signature") and carries `r=y`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reportedSignature } from "./failure_report.ts";
 * const sig = { tags: new Map([["r", "y"]]) } as never;
 * const bad = { result: "fail", reason: "body hash did not verify", signature: sig } as const;
 * assert.equal(reportedSignature([bad]), bad);
 * assert.equal(reportedSignature([bad, { result: "pass", signature: sig }]), undefined);
 * ```
 */
export function reportedSignature(verdicts: readonly Verdict[]): ReportedVerdict | undefined {
  if (verdicts.some((v) => v.result === "pass")) return undefined;
  return verdicts.find((v): v is ReportedVerdict =>
    v.result === "fail" && v.signature?.tags.get("r") === "y"
  );
}

/** Everything a failure report says. */
export interface FailureReportInput {
  /** The report's From (ReportAddress). */
  readonly from: string;
  /** `ra=` at `d=`. */
  readonly to: string;
  /** ReportBccAddress. */
  readonly bcc?: string;
  /** When the message arrived. */
  readonly date: Date;
  /** The reporting MTA's name. */
  readonly hostname: string;
  /** The message's queue id. */
  readonly jobId: string;
  /** MAIL FROM as the MTA gave it. */
  readonly envelopeFrom: string;
  /** The client's address. */
  readonly sourceIp: string;
  /** The message's header fields, as received. */
  readonly fields: readonly HeaderField[];
  /** The failed signature. */
  readonly verdict: ReportedVerdict;
  /** `dkimd/VERSION`. */
  readonly userAgent: string;
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** A date as OpenDKIM's `%a, %e %b %Y %H:%M:%S %z (%Z)`, in UTC. */
export function reportDate(d: Date): string {
  const two = (n: number) => String(n).padStart(2, "0");
  return `${DAYS[d.getUTCDay()]}, ${String(d.getUTCDate()).padStart(2)} ` +
    `${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${two(d.getUTCHours())}:` +
    `${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000 (UTC)`;
}

/** A header field as one text line per physical line, with LF line ends (sendmail -t reads them). */
function fieldText(field: HeaderField): string {
  let text = "";
  for (const b of field.raw) text += String.fromCharCode(b);
  return text.replace(/\r\n/g, "\n");
}

/**
 * The report as OpenDKIM writes it: a multipart/report (report-type=feedback-report) with a text
 * part, a message/feedback-report part (Feedback-Type: auth-failure, RFC 6591's Auth-Failure and
 * DKIM-* fields) and the message's header as text/rfc822-headers; lines end in LF, for
 * `sendmail -t`. Where OpenDKIM 2.11 errs, dkimd follows the RFCs: a blank line ends the top
 * header before the first boundary, and `Version: 1` (RFC 5965 §3.1, not the draft's 0.1). The
 * canonicalized header and body OpenDKIM attaches are left out: dkimd keeps neither (bodies
 * stream through).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatFailureReport } from "./failure_report.ts";
 * const enc = new TextEncoder();
 * const signature = { domain: "example.com", selector: "s1", identity: "@example.com", tags: new Map() };
 * const text = formatFailureReport({
 *   from: "postmaster@mx.example.net", to: "dkim@example.com", date: new Date(0),
 *   hostname: "mx.example.net", jobId: "4AB12", envelopeFrom: "<a@example.com>",
 *   sourceIp: "192.0.2.7", userAgent: "dkimd/0.1.0",
 *   fields: [{ name: "From", raw: enc.encode("From: a@example.com") }],
 *   verdict: { result: "fail", reason: "body hash did not verify", signature } as never,
 * });
 * assert.match(text, /^From: postmaster@mx\.example\.net\nTo: dkim@example\.com\n/);
 * assert.match(text, /\nFeedback-Type: auth-failure\nAuth-Failure: bodyhash\nDKIM-Failure: bodyhash\n/);
 * assert.match(text, /\n--dkimreport\/mx\.example\.net\/4AB12--\n$/);
 * ```
 */
export function formatFailureReport(r: FailureReportInput): string {
  const sig = r.verdict.signature;
  const boundary = `dkimreport/${r.hostname}/${r.jobId}`;
  const date = reportDate(r.date);
  const bodyHash = r.verdict.reason === "body hash did not verify";
  const messageId = r.fields.find((f) => f.name.toLowerCase() === "message-id");
  const lines = [
    `From: ${r.from}`,
    `To: ${r.to}`,
    ...(r.bcc ? [`Bcc: ${r.bcc}`] : []),
    `Date: ${date}`,
    `Subject: DKIM failure report for ${r.jobId}`,
    "MIME-Version: 1.0",
    `Content-Type: multipart/report; report-type=feedback-report;\n\tboundary="${boundary}"`,
    "",
    `--${boundary}`,
    "Content-Type: text/plain",
    "",
    `DKIM failure report for job ${r.jobId} on ${r.hostname}`,
    "",
    "The canonicalized form of the failed message's header and body are",
    "not attached.",
    "",
    `--${boundary}`,
    "Content-Type: message/feedback-report",
    "",
    `User-Agent: ${r.userAgent}`,
    // RFC 5965 §3.1 says 1; OpenDKIM still writes its draft's 0.1.
    "Version: 1",
    `Original-Envelope-Id: ${r.jobId}`,
    `Original-Mail-From: ${r.envelopeFrom.replace(/^<(.*)>$/, "$1")}`,
    `Reporting-MTA: ${r.hostname}`,
    `Source-IP: ${r.sourceIp}`,
    `Message-ID: ${messageId ? fieldValueText(messageId).trim() : "(none)"}`,
    `Arrival-Date: ${date}`,
    `Reported-Domain: ${sig.domain}`,
    "Delivery-Result: other",
    "Feedback-Type: auth-failure",
    `Auth-Failure: ${bodyHash ? "bodyhash" : `signature (${r.verdict.reason})`}`,
    `DKIM-Failure: ${bodyHash ? "bodyhash" : "signature"}`,
    `DKIM-Domain: ${sig.domain}`,
    `DKIM-Selector: ${sig.selector}`,
    `DKIM-Identity: ${sig.identity}`,
    "",
    `--${boundary}`,
    "Content-Type: text/rfc822-headers",
    "",
    ...r.fields.map(fieldText),
    "",
    `--${boundary}--`,
  ];
  return lines.join("\n") + "\n";
}
