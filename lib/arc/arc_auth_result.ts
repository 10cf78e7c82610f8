/**
 * The `arc=` result of an Authentication-Results field (RFC 8617 §8.1): what a verifier writes
 * for the chain it checked, with the properties other implementations write (OpenARC, dkimpy,
 * Gmail): `header.oldest-pass` on pass and `smtp.remote-ip` where the client is known.
 *
 * @module
 */
import { quoteValue } from "../dkim/auth_results.ts";
import { messageReason } from "../dkim/message_value.ts";
import type { ArcVerdict } from "./verify.ts";

/**
 * The properties of one `arc=` result, in order, for `formatAuthResults()`'s `extra`. A
 * failure's reason goes in a comment, its parentheses and backslashes replaced (a comment
 * cannot hold them unescaped, and the reason may quote the message).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { arcResultParts } from "./arc_auth_result.ts";
 * const pass = { result: "pass", instances: 2, oldestPass: 0, sets: [] } as const;
 * assert.deepEqual(arcResultParts(pass, "192.0.2.1"), ["arc=pass", "header.oldest-pass=0", "smtp.remote-ip=192.0.2.1"]);
 * const fail = { result: "fail", instances: 1, reason: "ARC-Seal i=1 did not verify", sets: [] } as const;
 * assert.deepEqual(arcResultParts(fail), ["arc=fail", "(ARC-Seal i=1 did not verify)"]);
 * ```
 */
export function arcResultParts(verdict: ArcVerdict, remoteIp?: string): string[] {
  const parts = [`arc=${verdict.result}`];
  if (verdict.result === "fail" && verdict.reason) {
    const reason = messageReason(verdict.reason).replace(/[()\\]/g, "?");
    parts.push(`(${verdict.temporary ? "temporary: " : ""}${reason})`);
  }
  if (verdict.result === "pass") parts.push(`header.oldest-pass=${verdict.oldestPass ?? 0}`);
  // An address is a token (dots, digits, hex and colons); a socket path or "" is not a client IP.
  if (verdict.result !== "none" && remoteIp && /^[0-9A-Fa-f.:]+$/.test(remoteIp)) {
    parts.push(`smtp.remote-ip=${quoteValue(remoteIp)}`);
  }
  return parts;
}
