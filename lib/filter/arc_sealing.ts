/**
 * ARC sealing at end of message (RFC 8617 §5.1), for mail dkimd verifies with ARCMode `s`:
 * whether to seal once the chain is verified ({@link sealDecision}), the results a post
 * re-injected by a local list carries from its arrival ({@link arrivalOf}, {@link arrivalAar}),
 * and the next ARC set added on top ({@link seal}). The sealer itself is started with the
 * verifier (arc_work.ts).
 *
 * @module
 */
import { type ArcSealer, ArcSealError } from "../arc/seal.ts";
import type { ArcVerdict } from "../arc/verify.ts";
import type { Config } from "../config/schema.ts";
import type { HeaderField } from "../dkim/header.ts";
import type { Action, Modification } from "../milter/filter.ts";
import type { Arrival } from "./arc_work.ts";
import { earlierResults, ownArrivalSet } from "./arrival_results.ts";
import type { ConnectionScope } from "./connection_scope.ts";
import { deletions, mtaFieldValue } from "./mta_fields.ts";
import { milterAction } from "./outcome.ts";
import type { Transaction } from "./transaction.ts";

/**
 * Whether to seal: yes, unless the chain failed only because a key lookup failed for now; then
 * On-DNSError decides (tempfail, the default, has the MTA retry; accept passes it unsealed).
 */
export function sealDecision(
  scope: ConnectionScope,
  verdict: ArcVerdict,
  config: Config,
  qid: string,
): "seal" | "unsealed" | { action: Action; modification?: Modification } {
  if (!verdict.temporary) return "seal";
  const chosen = milterAction("dnsError", config.actions.dnsError);
  scope.deps.logger.info(
    `${qid}: ARC chain not verified (${verdict.reason}); not sealing (On-DNSError ${config.actions.dnsError})`,
  );
  if (chosen.action === "accept") return "unsealed";
  // The reply names what failed: the lookup was for an ARC key, not a DKIM one.
  if (typeof chosen.action === "object") {
    const later = chosen.action.replycode === 451 ? ", try later" : "";
    return { ...chosen, action: { ...chosen.action, text: `ARC key lookup failed${later}` } };
  }
  return chosen;
}

/**
 * For a post re-injected by an InternalHosts client (a mailing list on this host) that carries
 * the Authentication-Results dkimd wrote when it first arrived: those results, and dkimd's own
 * ARC set from that pass if it sealed then (arrival_results.ts). Undefined otherwise: mail from
 * anyone else keeps this pass's results; its fields claiming our authserv-id are forged, removed
 * and never copied.
 */
export async function arrivalOf(
  scope: ConnectionScope,
  tx: Transaction,
  id: string,
): Promise<Arrival | undefined> {
  const { loaded } = tx.runtime;
  if (!loaded.config.arcMode.seal || !loaded.arcSealer) return undefined;
  const results = earlierResults(tx.fields, id);
  if (results === undefined) return undefined;
  const internal = await loaded.hosts.internal.match(
    scope.info.hostname || undefined,
    scope.info.address || undefined,
  );
  if (!internal.matched) return undefined;
  const replaced = ownArrivalSet(tx.fields, id, loaded.arcSealer.domain) ?? [];
  return { results, replaced };
}

/**
 * The AAR results of a re-injected post: the arrival results, then this pass's arc= unless they
 * already have one (the arrival evaluation of the chain is the one the AAR records).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { arrivalAar } from "./arc_sealing.ts";
 * assert.equal(arrivalAar("dkim=pass", [["arc=none"]]), "dkim=pass; arc=none");
 * assert.equal(arrivalAar("dkim=pass; arc=pass", [["arc=none"]]), "dkim=pass; arc=pass");
 * ```
 */
export function arrivalAar(results: string, arcParts: readonly (readonly string[])[]): string {
  const extra = /(^|[;\s])arc\s*=/i.test(results) ? [] : arcParts.map((p) => p.join(" "));
  return [results, ...extra].join("; ");
}

/**
 * Adds the next ARC set on top (to `mods`): its AAR carries `results` (this pass's
 * Authentication-Results after the authserv-id, or the arrival results above), its cv= the
 * chain's verdict. A chain that cannot be continued (one that already ended with cv=fail, or at
 * 50 sets) is passed on unsealed, with a log line. Resolves to whether a set was added.
 */
export async function seal(
  scope: ConnectionScope,
  tx: Transaction,
  sealer: ArcSealer,
  verdict: ArcVerdict,
  authservId: string,
  results: string,
  arrival: Arrival | undefined,
  mods: Modification[],
  qid: string,
): Promise<boolean> {
  const newest = verdict.sets.at(-1);
  if (newest?.seal.cv === "fail") {
    scope.deps.logger.info(
      `${qid}: ARC chain ended with cv=fail at i=${newest.instance}; not sealing`,
    );
    return false;
  }
  const replaced = arrival?.replaced ?? [];
  sealer.headers(tx.fields.filter((f) => !replaced.includes(f)));
  let set: HeaderField[];
  try {
    set = await sealer.finish({ authservId, results, cv: verdict.result });
  } catch (e) {
    if (!(e instanceof ArcSealError)) throw e;
    scope.deps.logger.warn(`${qid}: not sealing: ${e.message}`);
    return false;
  }
  if (replaced.length > 0) mods.push(...deletions(tx.fields, (f) => replaced.includes(f)));
  // [ARC-Seal, AMS, AAR]: inserted at the top in reverse, so the seal ends up first.
  for (const f of [...set].reverse()) {
    mods.push({
      type: "insheader",
      index: 0,
      name: f.name,
      value: mtaFieldValue(f, scope.info.session.leadingSpace),
    });
  }
  const i = (newest?.instance ?? 0) + 1;
  scope.deps.logger.info(
    `${qid}: ARC set i=${i} added (d=${tx.runtime.loaded.arcSealer?.domain}, cv=${verdict.result})`,
  );
  return true;
}
