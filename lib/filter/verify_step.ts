/**
 * The verify step of a message (RFC 6376 §6): at end of headers the verifier is made and fed the
 * header fields the prescreen (MaximumSignaturesToVerify, TrustSignaturesFrom) and the screen
 * script leave it, with ARC beside it; at end of message the verdicts become the
 * Authentication-Results field, the ARC seal, the failure actions (Quarantine,
 * RedirectFailuresTo), the final script's changes, a failure report, and the On-* answer. The
 * sign step uses the same verifier for mail it verifies too (sign_step.ts).
 *
 * @module
 */
import { arcResultParts } from "../arc/arc_auth_result.ts";
import { AUTH_RESULTS_FIELD, formatAuthResults } from "../dkim/auth_results.ts";
import { reportedSignature } from "../dkim/failure_report.ts";
import { type HeaderField, isField } from "../dkim/header.ts";
import type { Verdict } from "../dkim/result.ts";
import { SIGNATURE_FIELD, summarizeSignature } from "../dkim/signature.ts";
import { MAX_BODY_HASHES_DEFAULT, MAX_SIGNATURES_CEILING, Verifier } from "../dkim/verify.ts";
import { errorMessage } from "../error_message.ts";
import type { Action, EndOfMessage, MacroReader, Modification } from "../milter/filter.ts";
import { isReported } from "../policy/data_set_lookup.ts";
import { arrivalAar, arrivalOf, seal, sealDecision } from "./arc_sealing.ts";
import { isArcField, logArc, startArc } from "./arc_work.ts";
import { type ConnectionScope, reportEnd } from "./connection_scope.ts";
import { allowedOnly, failureModifications, verificationFailed } from "./failure_actions.ts";
import { signingViewFields } from "./identity_header.ts";
import { hasFinalHook, luaCall, luaEnded, luaFailed, runFinal } from "./lua_call.ts";
import { hasHook, runPolicyHook, screenSignatures, withoutIgnored } from "./lua_hooks.ts";
import { mtaText } from "./mta_fields.ts";
import { observedResolver } from "./observed_resolver.ts";
import {
  describeAction,
  milterAction,
  type Outcome,
  outcomeAction,
  verifyOutcome,
} from "./outcome.ts";
import { prescreenSignatures } from "./prescreen.ts";
import { authservId, forgedResults, softwareField } from "./result_fields.ts";
import { findSender } from "./sender.ts";
import type { Transaction, Work } from "./transaction.ts";
import { logVerdicts } from "./verdict_log.ts";

/**
 * Starts verifying at end of headers; an action when the message is answered now (nothing to
 * verify and nothing to change, or a failure).
 */
export async function startVerifying(
  scope: ConnectionScope,
  tx: Transaction,
  macros: MacroReader,
  qid: string,
): Promise<Action | void> {
  const { config } = tx.runtime.loaded;
  const verifier = await prepareVerifier(scope, tx, macros, qid);
  if (!(verifier instanceof Verifier)) return verifier;
  const resolver = observedResolver(tx.runtime.resolver, tx.dnsFailures, scope.observer);
  const arc = startArc(tx.runtime.loaded, tx.fields, {
    resolver,
    keyCache: scope.keyCache,
    now: scope.deps.now,
  }, await arrivalOf(scope, tx, authservId(scope, tx, macros)));
  // Nothing to verify and nothing to add or remove: accept now, and the body is never sent.
  if (
    verifier.signatureCount === 0 && !config.alwaysAddArHeader && !config.softwareHeader &&
    !(arc && (arc.sealer || tx.fields.some(isArcField))) &&
    config.actions.noSignature === "accept" && !hasHook(tx.runtime.loaded, "final") &&
    !hasHook(tx.runtime.loaded, "statistics") &&
    (await forgedResults(tx, authservId(scope, tx, macros))).length === 0
  ) {
    if (config.syslogSuccess) scope.deps.logger.info(`${qid}: no signature data`);
    reportEnd(scope, tx, { disposition: "verified", verdicts: [], action: "accept" });
    return "accept";
  }
  tx.work = { mode: "verifying", verifier, ...(arc ? { arc } : {}) };
  return undefined;
}

/**
 * The verifier of a message, fed its header fields: the prescreen and the screen script have
 * chosen the signatures it verifies. An action when the message is answered instead.
 */
export async function prepareVerifier(
  scope: ConnectionScope,
  tx: Transaction,
  macros: MacroReader,
  qid: string,
  signing = false,
): Promise<Verifier | Action> {
  const { config } = tx.runtime.loaded;
  // The prescreen (MaximumSignaturesToVerify, TrustSignaturesFrom) chooses which signatures
  // are verified; dkimd keeps a hard ceiling on them whatever the settings say.
  const setting = config.maximumSignaturesToVerify;
  const ceiling = setting === 0 || setting > MAX_SIGNATURES_CEILING;
  const maxSignatures = ceiling ? MAX_SIGNATURES_CEILING : setting;
  let prescreened: ReadonlySet<number>;
  try {
    prescreened = await prescreen(tx, Math.min(setting, MAX_SIGNATURES_CEILING));
  } catch (e) {
    // As at the decision: a database that cannot answer has said so once; On-InternalError.
    if (!isReported(e)) throw e;
    const { action } = milterAction("internalError", config.actions.internalError);
    if (config.logWhy) scope.deps.logger.info(`${qid}: ${errorMessage(e)}; On-InternalError`);
    reportEnd(scope, tx, { disposition: "error", action: describeAction(action) });
    return action;
  }
  const resolver = observedResolver(tx.runtime.resolver, tx.dnsFailures, scope.observer);
  const verifier = new Verifier({
    resolver,
    now: scope.deps.now,
    maxSignatures: tx.runtime.loaded.trustSignaturesFrom || setting === 0
      ? MAX_SIGNATURES_CEILING
      : maxSignatures,
    minimumKeyBits: config.minimumKeyBits,
    maximumKeyBits: config.maximumKeyBits,
    clockDrift: config.clockDrift,
    keyCache: scope.keyCache,
    partialBodyResult: config.partialBodyResult,
    strictHeaders: config.strictHeaders,
    mustBeSigned: tx.runtime.loaded.headers.mustBeSigned,
    bogusKey: config.bogusKey,
    unprotectedKey: config.unprotectedKey,
  });
  let screened: readonly HeaderField[] = withoutIgnored(tx.fields, prescreened);
  if (hasHook(tx.runtime.loaded, "screen")) {
    try {
      const call = luaCall(
        scope,
        tx,
        macros,
        findSender(tx.fields, tx.runtime.loaded.headers.sender)?.domain ?? "",
        qid,
      );
      const effects = await runPolicyHook("screen", call, screenSignatures(tx.fields));
      screened = withoutIgnored(tx.fields, new Set([...prescreened, ...effects.ignored]));
    } catch (e) {
      return luaFailed(scope, tx, "ScreenPolicyScript", e, qid);
    }
  }
  verifier.headers(signing ? signingViewFields(screened, config) : screened);
  const present = tx.fields.filter((f) => isField(f, SIGNATURE_FIELD)).length;
  const kept = present - prescreened.size;
  if (kept > MAX_SIGNATURES_CEILING || (!tx.runtime.loaded.trustSignaturesFrom && setting > 0)) {
    if (present > maxSignatures) {
      scope.deps.logger.info(
        `${qid}: ${present} DKIM-Signature fields; verifying the first ${maxSignatures} ` +
          (ceiling ? `(the ceiling of MaximumSignaturesToVerify)` : `(MaximumSignaturesToVerify)`),
      );
    }
  } else if (prescreened.size > 0) {
    scope.deps.logger.info(
      `${qid}: ignoring ${prescreened.size} of ${present} DKIM-Signature fields (` +
        (setting === 0
          ? "MaximumSignaturesToVerify 0: neither first-party nor in TrustSignaturesFrom)"
          : "MaximumSignaturesToVerify beside TrustSignaturesFrom)"),
    );
  }
  if (verifier.overBodyHashLimit > 0) {
    scope.deps.logger.info(
      `${qid}: ${verifier.overBodyHashLimit} signature(s) not verified: more than ` +
        `${MAX_BODY_HASHES_DEFAULT} distinct body hashes in the message`,
    );
  }
  return verifier;
}

// OpenDKIM's prescreen (prescreen.ts): the indexes of the signatures not to verify. The
// author's domain is the From field's, as libopendkim's dkim_getdomain() gives it.
async function prescreen(tx: Transaction, max: number): Promise<ReadonlySet<number>> {
  const trust = tx.runtime.loaded.trustSignaturesFrom;
  const signatures = tx.fields.filter((f) => isField(f, SIGNATURE_FIELD));
  // The usual case (a limit, no TrustSignaturesFrom) needs no d=: no tag list parsed for it.
  if (signatures.length === 0 || (!trust && max > 0)) return new Set();
  const domains = signatures.map((f) => summarizeSignature(f).domain);
  const known = domains.filter((d): d is string => d !== undefined);
  const hits = trust && known.length > 0 ? await trust.lookup(known) : [];
  const trusted = new Set(known.filter((_, i) => hits[i] !== undefined));
  const screened = domains.map((domain) => ({
    ...(domain !== undefined ? { domain } : {}),
    trusted: domain !== undefined && trusted.has(domain),
  }));
  return prescreenSignatures(screened, max, findSender(tx.fields, ["From"])?.domain);
}

/** Ends a verified message: its verdicts, the header changes they bring and the On-* answer. */
export async function finishVerifying(
  scope: ConnectionScope,
  tx: Transaction,
  work: Extract<Work, { mode: "verifying" }>,
  macros: MacroReader,
  qid: string,
): Promise<EndOfMessage> {
  const { config } = tx.runtime.loaded;
  const verdicts = await work.verifier.finish();
  const arcVerdict = work.arc ? await work.arc.verifier.finish() : undefined;
  const id = authservId(scope, tx, macros);
  const mods: Modification[] = await forgedResults(tx, id);
  if (mods.length > 0) {
    scope.deps.logger.info(
      `${qid}: removed ${mods.length} Authentication-Results field(s) claiming to be from "${id}"`,
    );
  }
  const arcParts = arcVerdict && work.arc?.report
    ? [arcResultParts(arcVerdict, scope.info.address)]
    : [];
  const arId = config.authservIdWithJobId ? `${id}/${qid}` : id;
  const value = formatAuthResults(arId, verdicts, {
    noHeaderB: config.noHeaderB,
    extra: arcParts,
  });
  // A temporary key lookup failure in the chain: no seal says cv=fail for it (On-DNSError).
  const sealing = work.arc?.sealer && arcVerdict
    ? sealDecision(scope, arcVerdict, config, qid)
    : undefined;
  if (typeof sealing === "object") {
    reportEnd(scope, tx, {
      disposition: "verified",
      verdicts,
      action: describeAction(sealing.action),
      ...(arcVerdict && work.arc?.report ? { arc: arcVerdict.result } : {}),
    });
    return {
      modifications: sealing.modification ? [sealing.modification] : [],
      action: sealing.action,
    };
  }
  if (
    verdicts.length > 0 || config.alwaysAddArHeader || sealing === "seal" ||
    (arcVerdict !== undefined && arcVerdict.result !== "none" && work.arc?.report)
  ) {
    mods.push({
      type: "insheader",
      index: 0,
      name: AUTH_RESULTS_FIELD,
      value: mtaText(` ${value}`, scope.info.session.leadingSpace),
    });
  }
  let sealed = false;
  if (sealing === "seal" && work.arc?.sealer && arcVerdict) {
    const arrival = work.arc.arrival;
    const results = arrival
      ? arrivalAar(arrival.results, arcParts)
      : value.slice(value.indexOf(";") + 1).replace(/^\s+/, "");
    sealed = await seal(scope, tx, work.arc.sealer, arcVerdict, arId, results, arrival, mods, qid);
  }
  // RedirectFailuresTo and Quarantine act before the final script, as in OpenDKIM's mlfi_eom().
  const failed = verificationFailed(verdicts);
  if (failed) {
    const kept = allowedOnly(
      failureModifications(
        config,
        tx.envelopeRecipients,
        (t) => mtaText(t, scope.info.session.leadingSpace),
      ),
      scope.info.session.actions,
      (line) => scope.deps.logger.warn(`${qid}: ${line}`),
    );
    mods.push(...kept);
    // Said here because the MTA may not keep it: Postfix holds the message but drops the
    // quarantine reason, and logs a recipient change without why.
    for (const m of kept) {
      if (m.type === "quarantine") {
        scope.deps.logger.info(`${qid}: quarantined (Quarantine): ${m.reason}`);
      } else if (m.type === "addrcpt") {
        scope.deps.logger.info(`${qid}: redirected to ${m.address} (RedirectFailuresTo)`);
      }
    }
  }
  const lua = hasFinalHook(tx.runtime.loaded)
    ? await runFinal(scope, tx, macros, qid, verdicts)
    : undefined;
  if (lua?.action) return luaEnded(scope, tx, [...mods, ...lua.modifications], lua.action, qid);
  if (config.softwareHeader) mods.push(softwareField(scope, qid));
  if (lua) mods.push(...lua.modifications);
  logVerdicts(scope.deps.logger, config, verdicts, qid, tx.dnsFailures);
  if (config.sendReports) offerReport(scope, tx, verdicts, macros, qid);
  if (arcVerdict && work.arc?.report) logArc(scope.deps.logger, arcVerdict, qid);
  const outcome: Outcome = verifyOutcome(verdicts);
  const action: Action = outcome === "pass"
    ? "accept"
    : outcomeAction(outcome, config, mods, scope.deps.logger, qid);
  reportEnd(scope, tx, {
    disposition: "verified",
    verdicts,
    action: describeAction(action),
    ...(arcVerdict && work.arc?.report ? { arc: arcVerdict.result } : {}),
    ...(sealed ? { sealed } : {}),
  });
  return { modifications: mods, action };
}

// SendReports: a failed signature with r=y is reported (RFC 6651), off the reply's path. The
// reporting MTA is the MTA's name (macro j), as OpenDKIM's mlfi_eom() takes it.
function offerReport(
  scope: ConnectionScope,
  tx: Transaction,
  verdicts: readonly Verdict[],
  macros: MacroReader,
  qid: string,
): void {
  const verdict = reportedSignature(verdicts);
  const reports = scope.deps.reports;
  if (verdict === undefined || reports === undefined) return;
  const { config } = tx.runtime.loaded;
  const queued = reports.offer({
    verdict,
    fields: tx.fields,
    envelopeFrom: scope.envelopeFrom,
    sourceIp: scope.info.address,
    jobId: qid,
    hostname: macros.get("j") || scope.deps.hostname,
    date: new Date((scope.deps.now?.() ?? Date.now() / 1000) * 1000),
    resolver: tx.runtime.resolver,
    reportAddress: config.reportAddress,
    reportBccAddress: config.reportBccAddress,
    mtaCommand: config.mtaCommand,
  });
  if (!queued) scope.deps.logger.info(`${qid}: failure report for d=${verdict.domain} dropped`);
}
