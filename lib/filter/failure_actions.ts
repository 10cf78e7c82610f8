/**
 * What happens to mail whose signatures fail to verify, besides On-BadSignature: OpenDKIM's
 * RedirectFailuresTo (mlfi_eom: every recipient removed and recorded in an `Original-Recipient`
 * field, the configured address added) and Quarantine, and the guard that drops a change the MTA
 * did not allow at negotiation rather than fail the message over it.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import type { Verdict } from "../dkim/result.ts";
import { neededAction } from "../milter/action.ts";
import type { Modification } from "../milter/filter.ts";

/** The field each redirected recipient is recorded in (OpenDKIM's ORCPTHEADER, RFC 3461 §4.2's syntax). */
export const ORIGINAL_RECIPIENT = "Original-Recipient";

/** The quarantine reason for Quarantine, and for CaptureUnknownErrors (OpenDKIM's own words). */
export const QUARANTINE_REASONS = {
  failed: "dkimd: DKIM signature verification failed",
  capture: "capture requested",
} as const;

/**
 * True when verification failed as OpenDKIM's `DKIMF_STATUS_BAD` means it: no signature passed
 * and at least one was evaluated and did not verify (`fail`). A missing key, a DNS failure or a
 * malformed signature is not a failure here, as in OpenDKIM.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { verificationFailed } from "./failure_actions.ts";
 * assert.equal(verificationFailed([{ result: "fail", reason: "body hash mismatch" }]), true);
 * assert.equal(verificationFailed([{ result: "permerror", reason: "no key for signature" }]), false);
 * ```
 */
export function verificationFailed(verdicts: readonly Verdict[]): boolean {
  return !verdicts.some((v) => v.result === "pass") && verdicts.some((v) => v.result === "fail");
}

/**
 * The changes RedirectFailuresTo and Quarantine make to a message whose verification failed, in
 * OpenDKIM's order: for each recipient (as RCPT TO gave it, without angle brackets; the last
 * first), its removal
 * and an `Original-Recipient: rfc822;ADDRESS` field; then the redirect address; then quarantine.
 * `value` makes a header value for the MTA from its text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { failureModifications } from "./failure_actions.ts";
 * const mods = failureModifications(
 *   { redirectFailuresTo: "failures@example.com", quarantine: false },
 *   ["Bob@example.org"],
 *   (text) => text,
 * );
 * assert.deepEqual(mods.map((m) => m.type), ["delrcpt", "addheader", "addrcpt"]);
 * ```
 */
export function failureModifications<V extends Uint8Array | string>(
  config: Pick<Config, "redirectFailuresTo" | "quarantine">,
  recipients: readonly string[],
  value: (text: string) => V,
): Modification[] {
  const mods: Modification[] = [];
  if (config.redirectFailuresTo !== undefined) {
    // Last recipient first: OpenDKIM's mlfi_envrcpt() pushes each on the front of its list.
    for (const address of [...recipients].reverse()) {
      mods.push({ type: "delrcpt", address });
      mods.push({
        type: "addheader",
        name: ORIGINAL_RECIPIENT,
        value: value(` rfc822;${address}`),
      });
    }
    mods.push({ type: "addrcpt", address: config.redirectFailuresTo });
  }
  if (config.quarantine) mods.push({ type: "quarantine", reason: QUARANTINE_REASONS.failed });
  return mods;
}

/**
 * `mods` without those whose `SMFIF_*` action the MTA did not allow (`allowed`), each left out
 * reported to `log`: an MTA that cannot quarantine or change recipients still gets the message
 * with its header changes, as OpenDKIM's failed smfi_quarantine()/smfi_addrcpt() leave it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allowedOnly } from "./failure_actions.ts";
 * import { SMFIF_ADDHDRS } from "../milter/constants.ts";
 * const lines: string[] = [];
 * const kept = allowedOnly([{ type: "quarantine", reason: "x" }], SMFIF_ADDHDRS, (l) => lines.push(l));
 * assert.deepEqual(kept, []);
 * assert.equal(lines.length, 1);
 * ```
 */
export function allowedOnly(
  mods: readonly Modification[],
  allowed: number,
  log: (line: string) => void,
): Modification[] {
  return mods.filter((m) => {
    if ((allowed & neededAction(m)) !== 0) return true;
    log(`the MTA did not allow ${m.type} at negotiation; not done`);
    return false;
  });
}
