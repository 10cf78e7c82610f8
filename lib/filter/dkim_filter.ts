/**
 * The DKIM filter: implements the milter layer's {@link Filter} on top of the DKIM core. Per
 * message it decides (sign, verify, or leave alone), streams the body through a signer or a
 * verifier, and at end of message answers with header changes (DKIM-Signature,
 * Authentication-Results, DKIM-Filter, forged Authentication-Results removed) and the action the
 * configuration gives the outcome.
 *
 * This file follows the milter events: it collects the envelope and the header fields, decides
 * at end of headers (decide.ts, ResignMailTo, the setup script, BodyLengthDB), streams the body,
 * and hands each message to its steps, which live in files of their own: sign_step.ts,
 * verify_step.ts (with arc_sealing.ts), malformed_mail.ts, lua_call.ts; they take the
 * connection as their scope (connection_scope.ts).
 *
 * Key lookups start at end of headers and run while the body streams. The policy in force is
 * taken once per transaction, so a reload applies from the next message on; every table in it
 * is asked through an interface whose answers are promises (filter_policy.ts).
 *
 * @module
 */
import { errorMessage } from "../error_message.ts";
import { asciiLower, fromLatin1, latin1 } from "../bytes.ts";
import { FIELD_COUNT_RULES, fieldCountProblem } from "../dkim/field_counts.ts";
import { CrlfFixer } from "../dkim/crlf_fixer.ts";
import { KeyCache } from "../dkim/key_cache.ts";
import type {
  Action,
  ConnectInfo,
  EndOfMessage,
  Filter,
  FilterConnection,
  FilterNeeds,
  MacroReader,
  MaybeAction,
} from "../milter/filter.ts";
import { SMFIF_QUARANTINE } from "../milter/constants.ts";
import { applyReplaceRules } from "../policy/replace_rules.ts";
import { isReported } from "../policy/data_set_lookup.ts";
import { clientLabel, decide } from "./decide.ts";
import { arcBody } from "./arc_work.ts";
import { dkimFilterNeeds, optionalActionsFor } from "./filter_needs.ts";
import { QUARANTINE_REASONS } from "./failure_actions.ts";
import { makeField } from "./mta_fields.ts";
import { type FilterObserver, NO_OBSERVER } from "./observer.ts";
import {
  describeAction,
  type HeaderLimit,
  headerLimitAnswer,
  milterAction,
  unauthorizedSignerAction,
} from "./outcome.ts";
import { bodyLengthRecipient } from "./body_length_recipients.ts";
import { resignDecision } from "./resign.ts";
import { findSender, macroName, macroSender, parseAddress } from "./sender.ts";
import { newTransaction, type Transaction } from "./transaction.ts";
import { finishVerifying, startVerifying } from "./verify_step.ts";
import { finishSigning, startSigning } from "./sign_step.ts";
import { answerMalformed, malformedSender } from "./malformed_mail.ts";
import { applySetup, type LuaState } from "./lua_hooks.ts";
import { luaCall, luaFailed } from "./lua_call.ts";
import { type ConnectionScope, type DkimFilterDeps, reportEnd } from "./connection_scope.ts";

export type { Runtime } from "./filter_policy.ts";

/**
 * Makes the DKIM filter.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DkimFilter } from "./dkim_filter.ts";
 * import { buildPolicy, NO_KEYS } from "../config/build_policy.ts";
 * import { readOpendkimConf } from "../config/opendkim_conf.ts";
 * const { policy } = buildPolicy(readOpendkimConf("Mode v\n", "dkimd.conf"), {}, NO_KEYS);
 * const resolver = { resolveTxt: () => Promise.resolve([]) };
 * const logger = { debug() {}, info() {}, warn() {}, error() {} };
 * const filter = new DkimFilter({ runtime: () => ({ loaded: policy, resolver }), logger, hostname: "mx" });
 * assert.ok(filter.needs.events.includes("body"));
 * ```
 */
export class DkimFilter implements Filter {
  readonly #deps: DkimFilterDeps;
  readonly #keyCache: KeyCache;

  /** Makes the filter. */
  constructor(deps: DkimFilterDeps) {
    this.#deps = deps;
    this.#keyCache = deps.keyCache ?? new KeyCache();
  }

  /** What to ask the MTA for, from the configuration in force (MacroList, SenderMacro add macros). */
  get needs(): FilterNeeds {
    const { macroList, config, luaScripts } = this.#deps.runtime().loaded;
    const senderMacro = config.senderMacro === undefined ? [] : [macroName(config.senderMacro)];
    return dkimFilterNeeds(
      [...macroList?.rules.map((r) => r.name) ?? [], ...senderMacro],
      optionalActionsFor(config, luaScripts?.final !== undefined),
    );
  }

  /** Starts a connection; PeerList clients are accepted at once and never filtered. */
  connect(info: ConnectInfo, _macros: MacroReader): FilterConnection | Promise<FilterConnection> {
    const peers = this.#deps.runtime().loaded.hosts.peers;
    if (!peers) return new DkimConnection(this.#deps, this.#keyCache, info);
    return peers.match(info.hostname || undefined, info.address || undefined).then((match) => {
      if (!match.matched) return new DkimConnection(this.#deps, this.#keyCache, info);
      this.#deps.logger.debug(
        `${clientLabel(info)} is in PeerList ("${match.rule?.text}"); not filtering`,
      );
      return new DkimConnection(this.#deps, this.#keyCache, info, "accept");
    });
  }
}

const NOTHING: EndOfMessage = { modifications: [], action: "accept" };

// The connection is the scope its messages' steps are given (connection_scope.ts).
class DkimConnection implements FilterConnection, ConnectionScope {
  readonly deps: DkimFilterDeps;
  readonly keyCache: KeyCache;
  readonly info: ConnectInfo;
  readonly observer: FilterObserver;
  #tx?: Transaction;
  envelopeFrom = "";
  lua: LuaState = { exported: new Map() };
  /** A PeerList client is accepted at connect and never filtered. */
  readonly decided?: Action;

  constructor(deps: DkimFilterDeps, keyCache: KeyCache, info: ConnectInfo, decided?: "accept") {
    this.deps = deps;
    this.keyCache = keyCache;
    this.info = info;
    this.observer = deps.observer ?? NO_OBSERVER;
    this.observer.connections(1);
    if (decided) this.decided = decided;
  }

  envFrom(args: readonly string[] = []): MaybeAction {
    this.#begin();
    this.envelopeFrom = args[0] ?? "";
    return undefined;
  }

  envRcpt(args: readonly string[]): MaybeAction {
    const tx = this.#begin(false);
    const address = (args[0] ?? "").replace(/^<|>$/g, "").trim();
    if (address !== "") {
      tx.recipients.push(asciiLower(address));
      tx.envelopeRecipients.push(address);
    }
    return undefined;
  }

  header(name: string, value: Uint8Array): MaybeAction {
    const tx = this.#begin(false);
    if (tx.oversized) return undefined;
    const { maximumHeaders, maximumHeaderFields } = tx.runtime.loaded.config;
    tx.headerBytes += name.length + value.length + 3;
    if (maximumHeaders > 0 && tx.headerBytes > maximumHeaders) {
      tx.oversized = "MaximumHeaders";
      return undefined;
    }
    if (maximumHeaderFields > 0 && tx.fields.length >= maximumHeaderFields) {
      tx.oversized = "MaximumHeaderFields";
      return undefined;
    }
    // ReplaceRules work on the value as the MTA sent it, before anything reads the field, as in
    // OpenDKIM's mlfi_header(): the sender, the signature and verification see the result.
    const { replaceRules, replaceHeaders } = tx.runtime.loaded;
    const replaced = replaceRules && (!replaceHeaders || replaceHeaders.has(asciiLower(name)))
      ? fromLatin1(applyReplaceRules(latin1(value), replaceRules))
      : value;
    // makeField copies: the milter lends `value` only for this call (FilterConnection).
    tx.fields.push(makeField(name, replaced, this.info.session.leadingSpace));
    return undefined;
  }

  async endOfHeaders(macros: MacroReader): Promise<Action | void> {
    if (this.decided) return "accept";
    const tx = this.#begin(false);
    const { loaded } = tx.runtime;
    const qid = queueId(macros);
    tx.started = performance.now();
    if (tx.oversized) return this.#headerLimitCrossed(tx, tx.oversized, qid);
    // SenderMacro first: a value the MTA sent decides, even one without an address (OpenDKIM).
    const fromMacro = loaded.config.senderMacro === undefined
      ? undefined
      : macroSender(loaded.config.senderMacro, (name) => macros.get(name));
    let sender = fromMacro === undefined
      ? findSender(tx.fields, loaded.headers.sender)
      : fromMacro ?? undefined;
    // DefaultSender (OpenDKIM's _FFR_DEFAULT_SENDER): the sender when the message names none
    // that can be read, so a relay signs such mail for its own domain.
    if (sender === undefined && loaded.config.defaultSender !== undefined) {
      const fallback = parseAddress(loaded.config.defaultSender);
      if (fallback) sender = { ...fallback, field: "DefaultSender" };
    }
    if (sender === undefined && malformedSender(tx.fields, loaded, fromMacro)) {
      return await answerMalformed(this, tx, macros, qid, "can't determine message sender");
    }
    let decision;
    try {
      decision = await decide({
        policy: loaded,
        client: this.info,
        macros: (name) => macros.get(name),
        sender,
        recipients: tx.recipients,
      });
    } catch (e) {
      // A data set in a database that cannot answer (or a bad row in it) has logged that once;
      // the message gets On-InternalError without a line of its own (one line per outage).
      if (!isReported(e)) throw e;
      const { action } = milterAction("internalError", loaded.config.actions.internalError);
      if (loaded.config.logWhy) {
        this.deps.logger.info(`${qid}: ${errorMessage(e)}; On-InternalError`);
      }
      reportEnd(this, tx, { disposition: "error", action: describeAction(action) });
      return action;
    }
    if (loaded.config.logWhy) {
      for (const line of decision.why) this.deps.logger.info(`${qid}: ${line}`);
    }
    // OpenDKIM checks RequiredHeaders in mlfi_eoh() once it knows it will sign or verify; mail it
    // leaves alone (PeerList, ExemptDomains, a mode that does not apply) is not its business.
    if (decision.kind !== "skip" && loaded.config.requiredHeaders) {
      const problem = fieldCountProblem(tx.fields, FIELD_COUNT_RULES);
      if (problem !== undefined) {
        this.deps.logger.info(
          `${qid}: RFC 5322 header requirement error: ${problem}; rejecting (RequiredHeaders)`,
        );
        reportEnd(this, tx, { disposition: "error", action: "reject" });
        return { replycode: 550, xcode: "5.6.0", text: problem };
      }
    }
    let bodyLength = false;
    // Verification beside signing: ResignMailTo, odkim.verify(), odkim.resign().
    let also: { verify: boolean; resign: boolean } = { verify: false, resign: false };
    if (loaded.resignMailTo && (decision.kind === "sign" || decision.kind === "verify")) {
      let answer;
      try {
        answer = await resignDecision(
          loaded,
          decision,
          tx.recipients,
          sender?.domain ?? "",
          (l) => this.deps.logger.info(`${qid}: ${l}`),
        );
      } catch (e) {
        if (!isReported(e)) throw e;
        const { action } = milterAction("internalError", loaded.config.actions.internalError);
        reportEnd(this, tx, { disposition: "error", action: describeAction(action) });
        return action;
      }
      if (answer) {
        if (loaded.config.logWhy) {
          for (const line of answer.why.slice(decision.why.length)) {
            this.deps.logger.info(`${qid}: ${line}`);
          }
        }
        decision = answer;
        if (answer.kind === "sign") also = { verify: true, resign: true };
      }
    }
    if (loaded.luaScripts?.setup || loaded.config.luaOnlySigning) {
      let answer;
      try {
        answer = await applySetup(luaCall(this, tx, macros, sender?.domain ?? "", qid), decision);
      } catch (e) {
        return luaFailed(this, tx, "SetupPolicyScript", e, qid);
      }
      if ("action" in answer) {
        this.deps.logger.info(`${qid}: ${answer.why}`);
        reportEnd(this, tx, { disposition: "skipped", action: describeAction(answer.action) });
        return answer.action;
      }
      decision = answer.decision;
      bodyLength = answer.bodyLength;
      also = {
        verify: also.verify || answer.verify === true,
        resign: also.resign || answer.resign === true,
      };
    }
    // BodyLengthDB: OpenDKIM checks it in mlfi_eoh() before the setup script, which can only add
    // l= (odkim.use_ltag()); a data set that cannot answer means no l=, logged, as there.
    if (decision.kind === "sign" && !bodyLength && loaded.bodyLengthDb) {
      const recipient = await bodyLengthRecipient(loaded.bodyLengthDb, tx.recipients).catch(
        (e) => {
          this.deps.logger.warn(`${qid}: BodyLengthDB: ${errorMessage(e)}`);
          return undefined;
        },
      );
      if (recipient !== undefined) {
        bodyLength = true;
        if (loaded.config.logWhy) {
          this.deps.logger.info(`${qid}: recipient '${recipient}' is in BodyLengthDB; adding l=`);
        }
      }
    }
    switch (decision.kind) {
      case "skip":
        reportEnd(this, tx, { disposition: "skipped", action: "accept" });
        return "accept";
      case "unauthorized":
        // Logged whatever LogWhy says: a login sending as someone else is worth knowing.
        this.deps.logger.warn(
          `${qid}: ${decision.refusal}; not signing (On-UnauthorizedSigner ${decision.action})`,
        );
        reportEnd(this, tx, { disposition: "unauthorized", action: decision.action });
        return unauthorizedSignerAction(decision.action);
      case "sign":
        return await startSigning(
          this,
          tx,
          decision.signers,
          qid,
          bodyLength,
          also.verify ? { macros, resign: also.resign } : undefined,
          sender?.domain ?? "",
        );
      case "verify":
        return await startVerifying(this, tx, macros, qid);
    }
  }

  // The chunk is only lent for this call: it goes through the body hashes now, and none of it
  // is kept.
  body(chunk: Uint8Array): void {
    const tx = this.#tx;
    if (!tx || tx.work.mode === "inactive" || tx.work.mode === "held") return;
    tx.bodyBytes += chunk.length;
    this.#feed(tx, this.#fixCrlf(tx)?.push(chunk) ?? chunk);
  }

  // FixCRLF: one fixer per transaction, so a CR left pending by an aborted message never
  // reaches the next one.
  #crlf: { tx: Transaction; fixer: CrlfFixer } | undefined;

  #fixCrlf(tx: Transaction): CrlfFixer | undefined {
    if (!tx.runtime.loaded.config.fixCrlf) return undefined;
    if (this.#crlf?.tx !== tx) this.#crlf = { tx, fixer: new CrlfFixer() };
    return this.#crlf.fixer;
  }

  #feed(tx: Transaction, chunk: Uint8Array): void {
    if (tx.work.mode === "inactive" || tx.work.mode === "held" || chunk.length === 0) return;
    if (tx.work.mode === "signing") {
      tx.work.signer.body(chunk);
      tx.work.verifier?.body(chunk);
    } else {
      tx.work.verifier.body(chunk);
      if (tx.work.arc) arcBody(tx.work.arc, chunk);
    }
  }

  async endOfMessage(macros: MacroReader): Promise<EndOfMessage> {
    const tx = this.#tx;
    this.#tx = undefined;
    if (tx && this.#crlf?.tx === tx) {
      this.#feed(tx, this.#crlf.fixer.flush());
      this.#crlf = undefined;
    }
    if (this.decided || !tx || tx.work.mode === "inactive") return NOTHING;
    const { work } = tx;
    if (work.mode === "held") return work.end;
    const qid = queueId(macros);
    const { config } = tx.runtime.loaded;
    try {
      return work.mode === "signing"
        ? await finishSigning(this, tx, work, macros, qid)
        : await finishVerifying(this, tx, work, macros, qid);
    } catch (e) {
      const text = errorMessage(e);
      this.deps.logger.error(`${qid}: internal error: ${text}`);
      // CaptureUnknownErrors: OpenDKIM quarantines the message and accepts it (mlfi_eom()).
      // A failing final script is not captured: OpenDKIM answers it with tempfail, dkimd with
      // On-InternalError (lua_hooks.ts).
      const capture = config.captureUnknownErrors &&
        !(e instanceof Error && e.name === "LuaRunError") &&
        (this.info.session.actions & SMFIF_QUARANTINE) !== 0;
      const { action, modification } = capture
        ? {
          action: "accept" as const,
          modification: { type: "quarantine" as const, reason: QUARANTINE_REASONS.capture },
        }
        : milterAction("internalError", config.actions.internalError);
      reportEnd(this, tx, { disposition: "error", action: describeAction(action) });
      return { modifications: modification ? [modification] : [], action };
    }
  }

  abort(): void {
    this.#stopLookups();
    this.#tx = undefined;
  }

  close(): void {
    this.abort();
    this.observer.connections(-1);
  }

  // Pending key lookups of the transaction in progress are of no use once it ends.
  #stopLookups(): void {
    const work = this.#tx?.work;
    if (work?.mode === "verifying") {
      work.verifier.abort();
      work.arc?.verifier.abort();
    } else if (work?.mode === "signing") work.verifier?.abort();
  }

  // The transaction in progress, started when MAIL FROM comes (or at the first event after it
  // when the MTA did not send MAIL). `fresh` starts a new one whatever is there.
  #begin(fresh = true): Transaction {
    if (!fresh && this.#tx) return this.#tx;
    this.#stopLookups();
    this.lua = { exported: new Map() };
    this.#tx = newTransaction(this.deps.runtime());
    return this.#tx;
  }

  // A header limit crossed: On-Security decides (outcome.ts).
  #headerLimitCrossed(tx: Transaction, limit: HeaderLimit, qid: string): Action | void {
    const answer = headerLimitAnswer(limit, tx.runtime.loaded.config);
    this.deps.logger.warn(`${qid}: ${answer.log}`);
    reportEnd(this, tx, { disposition: "error", action: answer.action });
    if (answer.held) tx.work = { mode: "held", end: answer.held };
    return answer.now;
  }
}

function queueId(macros: MacroReader): string {
  return macros.get("i") || "NOQUEUE";
}
