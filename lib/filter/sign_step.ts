/**
 * The sign step of a message (RFC 6376 §5): at end of headers the signer is made from the
 * signers the policy chose and the settings (SignHeaders, OmitHeaders, Canonicalization,
 * IdentityHeader, StrictHeaders...) and fed the header fields, with a verifier beside it when the
 * message is verified too (ResignMailTo, the Lua scripts); at end of message the signatures (or
 * none, when re-signing mail that does not verify) become header changes with the results of
 * that verification.
 *
 * @module
 */
import { asciiLower } from "../bytes.ts";
import type { Config } from "../config/schema.ts";
import type { SigningKey } from "../crypto/private_key.ts";
import { AUTH_RESULTS_FIELD, formatAuthResults } from "../dkim/auth_results.ts";
import { FIELD_COUNT_RULES, fieldCountProblem } from "../dkim/field_counts.ts";
import { type HeaderField, isField } from "../dkim/header.ts";
import type { Verdict } from "../dkim/result.ts";
import { Signer, type SignOptions } from "../dkim/sign.ts";
import { SIGNATURE_FIELD } from "../dkim/signature.ts";
import { Verifier } from "../dkim/verify.ts";
import { errorMessage } from "../error_message.ts";
import type { Action, EndOfMessage, MacroReader, Modification } from "../milter/filter.ts";
import type { SignerChoice } from "../policy/signers.ts";
import { type ConnectionScope, reportEnd } from "./connection_scope.ts";
import { headerIdentity, signingViewFields } from "./identity_header.ts";
import { hasFinalHook, luaEnded, runFinal } from "./lua_call.ts";
import { deletions, makeField, mtaFieldValue, mtaText } from "./mta_fields.ts";
import { describeAction, milterAction, outcomeAction, verifyOutcome } from "./outcome.ts";
import { authservId, forgedResults, softwareField } from "./result_fields.ts";
import { selectCanonicalization } from "./select_canonicalization.ts";
import type { Transaction, Work } from "./transaction.ts";
import { logVerdicts } from "./verdict_log.ts";
import { prepareVerifier } from "./verify_step.ts";

/**
 * Starts signing at end of headers; an action when the message is answered now (it cannot be
 * signed, or verifying it too failed). `verify`: the message is verified too (OpenDKIM's
 * verifying handle beside the signing ones), and with `resign` signed only when it verifies.
 */
export async function startSigning(
  scope: ConnectionScope,
  tx: Transaction,
  signers: readonly SignerChoice<SigningKey>[],
  qid: string,
  bodyLength = false,
  verify?: { readonly macros: MacroReader; readonly resign: boolean },
  senderDomain = "",
): Promise<Action | void> {
  const { config, headers } = tx.runtime.loaded;
  // IdentityHeader: i= for the signatures the policy gave none (OpenDKIM's mlfi_eoh()).
  const fromHeader = config.identityHeader === undefined
    ? undefined
    : headerIdentity(tx.fields, config.identityHeader, senderDomain);
  const signHeaders = signedNames(headers);
  const canon = config.selectCanonicalizationHeader === undefined
    ? config.canonicalization
    : selectCanonicalization(
      tx.fields,
      config.selectCanonicalizationHeader,
      config.canonicalization,
    );
  const options: SignOptions[] = signers.map((s) => ({
    domain: s.domain,
    selector: s.selector,
    key: s.key,
    algorithm: s.algorithm === "rsa-sha1" ? undefined : s.algorithm,
    canonicalization: [canon.header, canon.body],
    signHeaders,
    oversignHeaders: headers.oversign,
    identity: s.identity ?? fromHeader,
    copyHeaders: config.diagnostics,
    ttl: config.signatureTtl > 0 ? config.signatureTtl : undefined,
    maxSignedBytes: config.maximumSignedBytes,
    ...(bodyLength ? { bodyLength } : {}),
    ...(config.requestReports ? { requestReports: true } : {}),
  }));
  // StrictHeaders: OpenDKIM's library refuses to sign such a message too (dkim_eoh_sign()).
  // OpenDKIM then passes it on unsigned; dkimd lets On-SignatureError decide, the setting for
  // "a message [that] cannot be signed because of issues with the message" (opendkim.conf(5)).
  const problem = config.strictHeaders
    ? fieldCountProblem(tx.fields, FIELD_COUNT_RULES)
    : undefined;
  if (problem !== undefined) return cannotSign(scope, tx, qid, `${problem} (StrictHeaders)`);
  let signer: Signer;
  try {
    signer = new Signer(options, { now: scope.deps.now });
  } catch (e) {
    return cannotSign(scope, tx, qid, errorMessage(e));
  }
  signer.headers(signedFields(tx));
  let verifier: Verifier | undefined;
  if (verify) {
    const prepared = await prepareVerifier(scope, tx, verify.macros, qid, true);
    if (!(prepared instanceof Verifier)) return prepared;
    verifier = prepared;
  }
  // A message that arrived unsigned is only signed (OpenDKIM drops mctx_resign for it).
  const resign = verify?.resign === true && tx.fields.some((f) => isField(f, SIGNATURE_FIELD));
  tx.work = {
    mode: "signing",
    signer,
    signers,
    ...(verifier ? { verifier } : {}),
    ...(resign ? { resign } : {}),
  };
  return undefined;
}

// A message that is not signed: On-SignatureError decides. At end of headers a modification
// cannot be made, so quarantine degrades to accept.
function cannotSign(scope: ConnectionScope, tx: Transaction, qid: string, why: string): Action {
  const { config } = tx.runtime.loaded;
  scope.deps.logger.error(`${qid}: cannot sign: ${why}`);
  const { action } = milterAction("signatureError", config.actions.signatureError);
  reportEnd(scope, tx, { disposition: "error", action: describeAction(action) });
  return action;
}

/**
 * Ends a signed message: the signatures (and the results of verifying it too) as header changes,
 * and the answer.
 */
export async function finishSigning(
  scope: ConnectionScope,
  tx: Transaction,
  work: Extract<Work, { mode: "signing" }>,
  macros: MacroReader,
  qid: string,
): Promise<EndOfMessage> {
  const { config } = tx.runtime.loaded;
  const checked = work.verifier
    ? await verifiedToo(scope, tx, work.verifier, macros, qid)
    : undefined;
  const verdicts = checked?.verdicts ?? [];
  // Re-signing: a message that does not verify is passed on with its results, unsigned.
  const withhold = work.resign === true && !config.resignAll &&
    verifyOutcome(verdicts) !== "pass";
  if (withhold) {
    scope.deps.logger.info(`${qid}: not re-signing: the message did not verify`);
  }
  const signing = withhold ? 0 : work.signers.length;
  // The final script runs before the signatures are computed, so its odkim.xtag() tags are
  // in them (OpenDKIM's mlfi_eom() runs it before dkim_eom() on its signing handles).
  // Without a final or statistics script there is nothing to call: no sender parsed for it.
  const lua = hasFinalHook(tx.runtime.loaded)
    ? await runFinal(scope, tx, macros, qid, verdicts, signing)
    : undefined;
  const before = checked?.modifications ?? [];
  if (lua?.action) {
    return luaEnded(scope, tx, [...before, ...lua.modifications], lua.action, qid);
  }
  // Re-signed, the new signatures cover the Authentication-Results field added (OpenDKIM
  // feeds it to its signing handles before their end of headers).
  if (work.resign && checked) {
    work.signer.headers([
      makeField(AUTH_RESULTS_FIELD, checked.results, scope.info.session.leadingSpace),
      ...signedFields(tx),
    ]);
  }
  let fields: HeaderField[];
  try {
    fields = withhold ? [] : await work.signer.finish(lua?.xtags);
  } catch (e) {
    const text = errorMessage(e);
    scope.deps.logger.error(`${qid}: signing failed: ${text}`);
    const { action, modification } = milterAction(
      "signatureError",
      config.actions.signatureError,
    );
    reportEnd(scope, tx, { disposition: "error", action: describeAction(action) });
    return { modifications: modification ? [modification] : [], action };
  }
  const mods: Modification[] = [...before];
  if (config.removeOldSignatures && !withhold) {
    mods.push(...deletions(tx.fields, (f) => isField(f, SIGNATURE_FIELD)));
  }
  // IdentityHeaderRemove: the first instance goes, whether or not a signature is added, as
  // OpenDKIM removes it whenever it has signing handles (mlfi_eom()).
  const identityHeader = config.identityHeaderRemove ? config.identityHeader : undefined;
  if (identityHeader !== undefined && tx.fields.some((f) => isField(f, identityHeader))) {
    mods.push({ type: "chgheader", index: 1, name: identityHeader, value: new Uint8Array(0) });
  }
  // Inserted at the top in reverse, so the first signature ends up first.
  for (const f of [...fields].reverse()) {
    mods.push({
      type: "insheader",
      index: 0,
      name: SIGNATURE_FIELD,
      value: mtaFieldValue(f, scope.info.session.leadingSpace),
    });
  }
  if (config.softwareHeader) mods.push(softwareField(scope, qid));
  if (lua) mods.push(...lua.modifications);
  if (config.syslogSuccess && !withhold) {
    for (const s of work.signers) {
      scope.deps.logger.info(
        `${qid}: DKIM-Signature field added (s=${s.selector}, d=${s.domain})`,
      );
    }
  }
  const action = checked ? verifiedAction(scope, verdicts, config, mods, qid) : "accept";
  reportEnd(
    scope,
    tx,
    withhold
      ? { disposition: "verified", verdicts, action: describeAction(action) }
      : { disposition: "signed", signers: work.signers },
  );
  return { modifications: mods, action };
}

// Verification beside signing, finished: the forged Authentication-Results removed and ours
// added (always, with dkim=none for a message without signatures, as OpenDKIM adds it to the
// mail it signs), the verdicts logged.
async function verifiedToo(
  scope: ConnectionScope,
  tx: Transaction,
  verifier: Verifier,
  macros: MacroReader,
  qid: string,
): Promise<{ verdicts: Verdict[]; modifications: Modification[]; results: Uint8Array }> {
  const { config } = tx.runtime.loaded;
  const verdicts = [...await verifier.finish()];
  const id = authservId(scope, tx, macros);
  const modifications = await forgedResults(tx, id);
  const arId = config.authservIdWithJobId ? `${id}/${qid}` : id;
  const results = mtaText(
    ` ${formatAuthResults(arId, verdicts, { noHeaderB: config.noHeaderB })}`,
    scope.info.session.leadingSpace,
  );
  modifications.push({ type: "insheader", index: 0, name: AUTH_RESULTS_FIELD, value: results });
  logVerdicts(scope.deps.logger, config, verdicts, qid, tx.dnsFailures);
  return { verdicts, modifications, results };
}

// The On-* answer for a message verified beside signing: as for verified mail, but a message
// without signatures is fine (OpenDKIM's mlfi_eom() skips On-NoSignature once it adds the
// Authentication-Results field, which it always does to mail it signs).
function verifiedAction(
  scope: ConnectionScope,
  verdicts: readonly Verdict[],
  config: Config,
  mods: Modification[],
  qid: string,
): Action {
  const outcome = verifyOutcome(verdicts);
  if (outcome === "pass" || outcome === "noSignature") return "accept";
  return outcomeAction(outcome, config, mods, scope.deps.logger, qid);
}

// The fields a signer signs: old signatures are left out when RemoveOldSignatures drops them,
// the identity field when IdentityHeaderRemove deletes it.
function signedFields(tx: Transaction): readonly HeaderField[] {
  const { config } = tx.runtime.loaded;
  const fields = config.removeOldSignatures
    ? tx.fields.filter((f) => !isField(f, SIGNATURE_FIELD))
    : tx.fields;
  return signingViewFields(fields, config);
}

// SignHeaders less OmitHeaders, worked out once per loaded configuration.
const signedNamesOf = new WeakMap<object, readonly string[]>();

function signedNames(
  headers: { readonly sign: readonly string[]; readonly omit: readonly string[] },
): readonly string[] {
  let names = signedNamesOf.get(headers);
  if (!names) {
    const omit = new Set(headers.omit.map(asciiLower));
    names = headers.sign.filter((h) => !omit.has(asciiLower(h)));
    signedNamesOf.set(headers, names);
  }
  return names;
}
