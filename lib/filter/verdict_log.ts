/**
 * The log lines for a verified message, in OpenDKIM's words: one line per signature with
 * LogResults or LogWhy, why each failure failed, the DNS error behind a key that could not be
 * fetched, and always a warning when `l=` leaves part of the body unsigned.
 *
 * @module
 */
import { asciiLower } from "../bytes.ts";
import type { Config } from "../config/schema.ts";
import { messageReason, messageValue } from "../dkim/message_value.ts";
import type { Verdict } from "../dkim/result.ts";
import type { MilterLogger } from "../milter/logger.ts";

/**
 * Logs the verdicts of message `qid`. `dnsFailures` holds what each failed key lookup said, by
 * record name in lower case (a verdict's reason has only the kind of failure).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { logVerdicts } from "./verdict_log.ts";
 * const lines: string[] = [];
 * const log = { debug() {}, info: (m: string) => lines.push(m), warn() {}, error() {} };
 * logVerdicts(log, { syslogSuccess: true, logResults: false, logWhy: false, maximumKeyBits: 8192 }, [], "4AB12C", new Map());
 * assert.deepEqual(lines, ["4AB12C: no signature data"]);
 * ```
 */
export function logVerdicts(
  log: MilterLogger,
  config: Pick<Config, "syslogSuccess" | "logResults" | "logWhy" | "maximumKeyBits">,
  verdicts: readonly Verdict[],
  qid: string,
  dnsFailures: ReadonlyMap<string, string>,
): void {
  if (verdicts.length === 0) {
    if (config.syslogSuccess) log.info(`${qid}: no signature data`);
    return;
  }
  // Every value from the message is cut and escaped (issue 13): a signature chooses them.
  const s = (v: Verdict) => v.selector === undefined ? "?" : messageValue(v.selector);
  const d = (v: Verdict) => v.domain === undefined ? "?" : messageValue(v.domain);
  const why = (v: Verdict) => v.reason === undefined ? undefined : messageReason(v.reason);
  if (config.logResults || config.logWhy) {
    for (const v of verdicts) {
      const a = v.algorithm === undefined ? "?" : messageValue(v.algorithm);
      log.info(
        `${qid}: s=${s(v)} d=${d(v)} a=${a} ` +
          `result=${v.result}${v.reason ? ` reason="${why(v)}"` : ""}`,
      );
    }
  }
  // RFC 6376 §8.2: content after l= is unsigned, whatever it says; always worth a line.
  // Whether PartialBodyResult made it a pass or a policy result, the line is the same.
  for (const v of verdicts) {
    if (v.unsignedBodyBytes !== undefined) {
      log.warn(
        `${qid}: s=${s(v)} d=${d(v)} signs only l=${v.signature?.length} ` +
          `body bytes: ${v.unsignedBodyBytes} bytes after them are unsigned`,
      );
    }
  }
  if (verdicts.some((v) => v.result === "pass")) {
    if (config.syslogSuccess) log.info(`${qid}: DKIM verification successful`);
    return;
  }
  for (const v of verdicts) {
    const where = `s=${s(v)} d=${d(v)}`;
    if (v.result === "temperror") {
      const name = `${v.selector}._domainkey.${v.domain}`;
      const detail = dnsFailures.get(asciiLower(name));
      log.warn(
        `${qid}: key retrieval failed (${where}): ${why(v)}${detail ? `: ${detail}` : ""}`,
      );
    } else if (v.reason === "no key for signature") log.info(`${qid}: ${where}: key not found`);
    else if (v.reason?.startsWith("key too large")) {
      log.info(
        `${qid}: bad signature data (${where}): ${
          why(v)
        }: over MaximumKeyBits (${config.maximumKeyBits})`,
      );
    } else log.info(`${qid}: bad signature data (${where}): ${why(v)}`);
  }
}
