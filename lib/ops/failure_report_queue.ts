/**
 * SendReports' sender: failure reports (RFC 6651) wait in a bounded queue and are sent one at a
 * time, off the milter's path: the reporting record is looked up, `rp=` and `rr=` obeyed, the
 * report written (lib/dkim/failure_report.ts) and piped to MTACommand `-t -f ADDRESS`, as
 * OpenDKIM's `dkimf_sigreport()` does. Unlike OpenDKIM, which runs the command inside the
 * milter callback, a slow or failing sendmail never delays a reply: a report that does not fit
 * is dropped and logged. RFC 6651 §5 asks report generators to limit their rate; each reported
 * domain gets at most one report per interval.
 *
 * @module
 */

import { errorMessage } from "../error_message.ts";
import {
  formatFailureReport,
  parseReportingRecord,
  REPORT_PREFIX,
  wantsVerifyFailure,
} from "../dkim/failure_report.ts";
import type { FailureReportRequest, FailureReports } from "../filter/failure_reports.ts";
import { VERSION } from "../version.ts";
import { readUserDb } from "./run_as.ts";

/** Most reports waiting to be sent; more are dropped. */
export const MAX_QUEUED_REPORTS = 100;

/** Least time between two reports to one signing domain (RFC 6651 §5: limit the rate). */
export const REPORT_DOMAIN_INTERVAL_MS = 60_000;

/** Longest MTACommand may take with one report before it is killed. */
export const REPORT_COMMAND_TIMEOUT_MS = 30_000;

/** What running MTACommand gave. */
export interface CommandResult {
  /** The exit status. */
  readonly code: number;
  /** What it wrote to standard error, for the log. */
  readonly stderr: string;
}

/** Runs `command` with `args`, writing `input` to its standard input. */
export type RunCommand = (
  command: string,
  args: readonly string[],
  input: string,
  signal: AbortSignal,
) => Promise<CommandResult>;

/** Where the queue logs. */
export interface ReportLog {
  /** A report sent. */
  info(message: string): void;
  /** A report that could not be sent. */
  warn(message: string): void;
}

/** The queue's capabilities and limits. */
export interface ReportQueueOptions {
  /** Where lines go. */
  readonly log: ReportLog;
  /** The From when ReportAddress is not set: the user dkimd runs as at this host (OpenDKIM's). */
  readonly defaultFrom: string;
  /** Runs MTACommand (default: Deno.Command). */
  readonly run?: RunCommand;
  /** Most reports waiting (default {@link MAX_QUEUED_REPORTS}). */
  readonly maxQueued?: number;
  /** Least time between reports to one domain (default {@link REPORT_DOMAIN_INTERVAL_MS}). */
  readonly domainIntervalMs?: number;
  /** MTACommand's time limit (default {@link REPORT_COMMAND_TIMEOUT_MS}). */
  readonly commandTimeoutMs?: number;
  /** The clock in milliseconds (default Date.now). */
  readonly now?: () => number;
  /** A number in [0, 1) for `rp=` (default Math.random). */
  readonly random?: () => number;
}

/** Runs a command through Deno.Command, its input piped, its output discarded. */
export const runCommand: RunCommand = async (command, args, input, signal) => {
  const child = new Deno.Command(command, {
    args: [...args],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
    signal,
  }).spawn();
  const writer = child.stdin.getWriter();
  try {
    await writer.write(new TextEncoder().encode(input));
    await writer.close();
  } catch {
    // A command that exits without reading its input: its status says what went wrong.
  }
  const out = await child.output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr).trim() };
};

/** The address part of ReportAddress (`Name <a@b>` → `a@b`), for `-f`. */
function envelopeAddress(from: string): string {
  const angle = /<([^<>]*)>/.exec(from);
  return (angle ? angle[1] : from).trim();
}

/**
 * The queue. `offer` takes a report or drops it at once; one report at a time is looked up and
 * sent in the background.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FailureReportQueue } from "./failure_report_queue.ts";
 * const log = { info() {}, warn() {} };
 * const queue = new FailureReportQueue({ log, defaultFrom: "opendkim@mx.example.net" });
 * await queue.idle();
 * assert.equal(queue.pending, 0);
 * ```
 */
export class FailureReportQueue implements FailureReports {
  readonly #options: ReportQueueOptions;
  readonly #queue: FailureReportRequest[] = [];
  readonly #lastByDomain = new Map<string, number>();
  #running: Promise<void> | undefined;

  /** Makes an empty queue. */
  constructor(options: ReportQueueOptions) {
    this.#options = options;
  }

  /** Reports waiting or being sent. */
  get pending(): number {
    return this.#queue.length + (this.#running ? 1 : 0);
  }

  /** Queues `request`, or drops it when the queue is full or its domain was reported lately. */
  offer(request: FailureReportRequest): boolean {
    const now = (this.#options.now ?? Date.now)();
    const domain = request.verdict.signature.domain;
    const last = this.#lastByDomain.get(domain);
    const interval = this.#options.domainIntervalMs ?? REPORT_DOMAIN_INTERVAL_MS;
    if (last !== undefined && now - last < interval) return false;
    if (this.#queue.length >= (this.#options.maxQueued ?? MAX_QUEUED_REPORTS)) return false;
    // Domains not reported within the interval are forgotten, so the map stays bounded.
    if (this.#lastByDomain.size >= 10_000) {
      for (const [d, t] of this.#lastByDomain) {
        if (now - t >= interval) this.#lastByDomain.delete(d);
      }
    }
    this.#lastByDomain.set(domain, now);
    this.#queue.push(request);
    this.#running ??= this.#drain();
    return true;
  }

  /** Resolves when every queued report has been sent or given up on. */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #drain(): Promise<void> {
    try {
      for (let r = this.#queue.shift(); r !== undefined; r = this.#queue.shift()) {
        try {
          await this.#send(r);
        } catch (e) {
          const why = e instanceof Deno.errors.NotCapable
            ? "SendReports was off when dkimd started, so it may not run MTACommand; restart it"
            : errorMessage(e);
          this.#options.log.warn(`${r.jobId}: failure report not sent: ${why}`);
        }
      }
    } finally {
      this.#running = undefined;
    }
  }

  async #send(r: FailureReportRequest): Promise<void> {
    const domain = r.verdict.signature.domain;
    const name = `${REPORT_PREFIX}.${domain}`;
    let records: string[];
    try {
      records = await r.resolver.resolveTxt(name);
    } catch {
      return; // No reporting record (or none to be had now): nothing was asked for.
    }
    const record = records.map(parseReportingRecord).find((x) => x !== undefined);
    if (record === undefined || !wantsVerifyFailure(record)) return;
    if (record.percent < 100 && (this.#options.random ?? Math.random)() * 100 >= record.percent) {
      return;
    }
    const from = r.reportAddress ?? this.#options.defaultFrom;
    const to = `${record.address}@${domain}`;
    const text = formatFailureReport({
      from,
      to,
      ...(r.reportBccAddress ? { bcc: r.reportBccAddress } : {}),
      date: r.date,
      hostname: r.hostname,
      jobId: r.jobId,
      envelopeFrom: r.envelopeFrom,
      sourceIp: r.sourceIp,
      fields: r.fields,
      verdict: r.verdict,
      userAgent: `dkimd/${VERSION}`,
    });
    const timeout = AbortSignal.timeout(
      this.#options.commandTimeoutMs ?? REPORT_COMMAND_TIMEOUT_MS,
    );
    const run = this.#options.run ?? runCommand;
    let result: CommandResult;
    try {
      result = await run(r.mtaCommand, ["-t", `-f${envelopeAddress(from)}`], text, timeout);
    } catch (e) {
      // A command that cannot be started (missing, or not executable by this user: under UserID
      // the worker's user, not root, runs it): the line names the setting, the path and the user.
      const cannotStart = e instanceof Deno.errors.PermissionDenied ||
        e instanceof Deno.errors.NotFound;
      if (!cannotStart || e instanceof Deno.errors.NotCapable) throw e;
      const why = errorMessage(e).replace(`Failed to spawn '${r.mtaCommand}': `, "");
      this.#options.log.warn(
        `${r.jobId}: failure report to ${to} not sent: MTACommand ${r.mtaCommand} cannot be ` +
          `run${runningAs()}: ${why}`,
      );
      return;
    }
    if (result.code !== 0) {
      const detail = result.stderr ? `: ${result.stderr.slice(0, 200)}` : "";
      this.#options.log.warn(
        `${r.jobId}: failure report to ${to} not sent: ${r.mtaCommand} exited ${result.code}${detail}`,
      );
      return;
    }
    this.#options.log.info(`${r.jobId}: failure report sent to ${to}`);
  }
}

/** " by uid N", the user this process runs as, for a command it cannot run; "" when unknown. */
function runningAs(): string {
  try {
    const uid = Deno.uid();
    return uid === null ? "" : ` by uid ${uid}`;
  } catch {
    return "";
  }
}

/**
 * ReportAddress's default, as OpenDKIM makes it: the name of the user dkimd runs as (its uid when
 * /etc/passwd has none) at `hostname`.
 */
export async function defaultReportAddress(hostname: string): Promise<string> {
  const uid = Deno.uid();
  if (uid === null) return `dkimd@${hostname}`;
  try {
    return `${(await readUserDb()).userName(uid)}@${hostname}`;
  } catch {
    return `${uid}@${hostname}`;
  }
}
