/**
 * Where the DKIM filter hands a failure report (RFC 6651) it owes: a message whose signature
 * failed and asked for reports with `r=y`, while SendReports is on. Structural, so the filter
 * never imports the operations layer that queues and sends it (lib/ops/failure_report_queue.ts);
 * handing one over never waits, so the reply to the MTA never waits on a report.
 *
 * @module
 */

import type { TxtResolver } from "../dns/resolver.ts";
import type { HeaderField } from "../dkim/header.ts";
import type { ReportedVerdict } from "../dkim/failure_report.ts";

/** One report owed: the message's facts and the settings in force when it was verified. */
export interface FailureReportRequest {
  /** The failed signature that asked for reports. */
  readonly verdict: ReportedVerdict;
  /** The message's header fields, as received. */
  readonly fields: readonly HeaderField[];
  /** MAIL FROM as the MTA gave it. */
  readonly envelopeFrom: string;
  /** The client's address. */
  readonly sourceIp: string;
  /** The queue id. */
  readonly jobId: string;
  /** This host's name (Reporting-MTA). */
  readonly hostname: string;
  /** When the message was verified. */
  readonly date: Date;
  /** Where the reporting record is looked up: the resolver keys come from. */
  readonly resolver: TxtResolver;
  /** ReportAddress, when set. */
  readonly reportAddress?: string;
  /** ReportBccAddress, when set. */
  readonly reportBccAddress?: string;
  /** MTACommand. */
  readonly mtaCommand: string;
}

/** Takes failure reports; `offer` returns at once (false when the report is dropped). */
export interface FailureReports {
  /** Queues a report, or drops it (queue full, domain over its rate); never waits. */
  offer(request: FailureReportRequest): boolean;
}
