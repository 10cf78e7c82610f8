/**
 * The DKIM filter: implements the milter layer's {@link Filter} on top of the DKIM core. Per
 * message it decides (sign, verify, or leave alone), streams the body through a signer or a
 * verifier, and at end of message answers with header changes (DKIM-Signature,
 * Authentication-Results, DKIM-Filter, forged Authentication-Results removed) and the action the
 * configuration gives the outcome.
 *
 * Key lookups start at end of headers and run while the body streams. The configuration in
 * force is taken once per transaction, so a reload applies from the next message on.
 *
 * @module
 */
import { asciiLower, CR, fromLatin1, HTAB, latin1, LF, SP } from "../bytes.ts";
import type { LoadedConfig } from "../config/load.ts";
import { actionSettingName } from "../config/settings.ts";
import type { SigningKey } from "../crypto/keys.ts";
import { AUTH_RESULTS_FIELD, formatAuthResults, parseAuthservId } from "../dkim/auth_results.ts";
import { fieldValue, fieldValueText, type HeaderField, isField } from "../dkim/header.ts";
import { KeyCache } from "../dkim/key_cache.ts";
import type { Verdict } from "../dkim/result.ts";
import { Signer, type SignOptions } from "../dkim/sign.ts";
import { SIGNATURE_FIELD } from "../dkim/signature.ts";
import { Verifier } from "../dkim/verify.ts";
import type { TxtResolver } from "../dns/resolver.ts";
import { SMFIF_ADDHDRS, SMFIF_CHGHDRS, SMFIF_QUARANTINE } from "../milter/constants.ts";
import type { FilterNeeds } from "../milter/negotiate.ts";
import type {
  Action,
  ConnectInfo,
  EndOfMessage,
  Filter,
  FilterConnection,
  MacroReader,
  MaybeAction,
  MilterLogger,
  Modification,
} from "../milter/session.ts";
import type { SignerChoice } from "../policy/signers.ts";
import { VERSION } from "../version.ts";
import { clientLabel, decide, type Decision } from "./decide.ts";
import { domainClass, type FilterObserver, NO_OBSERVER } from "./observer.ts";
import { milterAction, type Outcome, verifyOutcome } from "./outcome.ts";
import { findSender } from "./sender.ts";

/** What one transaction runs with: the configuration and the resolver built from it. */
export interface Runtime {
  /** The loaded configuration, keys imported. */
  readonly loaded: LoadedConfig<SigningKey>;
  /** Where key records come from. */
  readonly resolver: TxtResolver;
}

/** The filter's capabilities, passed in (DESIGN.md, "Pure core, I/O at the edge"). */
export interface DkimFilterDeps {
  /** The runtime in force; asked once per transaction. */
  readonly runtime: () => Runtime;
  /** Where log lines go. */
  readonly logger: MilterLogger;
  /** This host's name: the authserv-id with `AuthservID HOSTNAME`, and in DKIM-Filter. */
  readonly hostname: string;
  /** The current time in seconds since the epoch (default: the system clock). */
  readonly now?: () => number;
  /** Receives reports for metrics. */
  readonly observer?: FilterObserver;
  /** Imported public keys shared between messages. */
  readonly keyCache?: KeyCache;
}

/** The DKIM-Filter field SoftwareHeader adds. */
export const SOFTWARE_FIELD = "DKIM-Filter";

/**
 * The milter events, actions and macros the DKIM filter needs. MAIL, recipients, headers and
 * body chunks are never answered (no-reply flags), so the MTA streams them without waiting; end
 * of headers is answered so a message that needs nothing more can be accepted there and its body
 * never sent. DATA is asked for only to be answered: Postfix sends the DATA macros even when DATA
 * is skipped, then its cleanup server writes the content on the same socket, and Nagle's
 * algorithm holds that write until this side's delayed ACK of the macros (about 40 ms per
 * message, measured behind a real Postfix 3.7); the reply carries the ACK at once.
 */
export function dkimFilterNeeds(macroList: readonly string[] = []): FilterNeeds {
  const extra = macroList.map((m) => (m.length === 1 ? m : `{${m}}`));
  return {
    actions: SMFIF_ADDHDRS | SMFIF_CHGHDRS,
    optionalActions: SMFIF_QUARANTINE,
    events: ["connect", "envFrom", "envRcpt", "data", "header", "endOfHeaders", "body"],
    noReply: ["envFrom", "envRcpt", "header", "body"],
    macros: {
      connect: ["j", "{daemon_name}", ...extra],
      envFrom: ["i", "{auth_type}", "{auth_authen}", ...extra],
      envRcpt: ["i"],
      data: ["i"],
      endOfHeaders: ["i", ...extra],
      endOfMessage: ["i"],
    },
    headerLeadingSpace: true,
  };
}

/**
 * Makes the DKIM filter.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DkimFilter } from "./dkim_filter.ts";
 * import { denoLoadIo, loadConfig } from "../config/load.ts";
 * import { importPrivateKey } from "../crypto/keys.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/dkimd.conf`, "Mode v\n");
 * const loaded = await loadConfig(`${dir}/dkimd.conf`, denoLoadIo(importPrivateKey));
 * const resolver = { resolveTxt: () => Promise.resolve([]) };
 * const logger = { debug() {}, info() {}, warn() {}, error() {} };
 * const filter = new DkimFilter({ runtime: () => ({ loaded, resolver }), logger, hostname: "mx" });
 * assert.ok(filter.needs.events.includes("body"));
 * await Deno.remove(dir, { recursive: true });
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

  /** What to ask the MTA for, from the configuration in force (MacroList adds macros). */
  get needs(): FilterNeeds {
    const macroList = this.#deps.runtime().loaded.macroList;
    return dkimFilterNeeds(macroList?.rules.map((r) => r.name) ?? []);
  }

  /** Starts a connection; PeerList clients are accepted at once and never filtered. */
  connect(info: ConnectInfo, _macros: MacroReader): FilterConnection {
    return new DkimConnection(this.#deps, this.#keyCache, info);
  }
}

/** The per-message state. */
interface Transaction {
  readonly runtime: Runtime;
  readonly recipients: string[];
  readonly fields: HeaderField[];
  headerBytes: number;
  /** Which header limit the message crossed, if any. */
  oversized?: "MaximumHeaders" | "MaximumHeaderFields";
  /** What each failed key lookup said, by name, for the log. */
  readonly dnsFailures: Map<string, string>;
  decision?: Decision<SigningKey>;
  signer?: Signer;
  verifier?: Verifier;
  started: number;
  bodyBytes: number;
  /** The final answer decided early (at end of headers), already reported. */
  done: boolean;
}

class DkimConnection implements FilterConnection {
  readonly #deps: DkimFilterDeps;
  readonly #keyCache: KeyCache;
  readonly #info: ConnectInfo;
  readonly #observer: FilterObserver;
  #tx?: Transaction;
  #peer = false;
  /** A PeerList client is accepted at connect and never filtered. */
  readonly decided?: Action;

  constructor(
    deps: DkimFilterDeps,
    keyCache: KeyCache,
    info: ConnectInfo,
  ) {
    this.#deps = deps;
    this.#keyCache = keyCache;
    this.#info = info;
    this.#observer = deps.observer ?? NO_OBSERVER;
    this.#observer.connections(1);
    const peers = deps.runtime().loaded.hosts.peers;
    const match = peers?.match(info.hostname || undefined, info.address || undefined);
    if (match?.matched) {
      this.#peer = true;
      this.decided = "accept";
      deps.logger.debug(
        `${clientLabel(info)} is in PeerList ("${match.rule?.text}"); not filtering`,
      );
    }
  }

  envFrom(): MaybeAction {
    this.#begin();
    return undefined;
  }

  envRcpt(args: readonly string[]): MaybeAction {
    const tx = this.#begin(false);
    const address = (args[0] ?? "").replace(/^<|>$/g, "").trim();
    if (address !== "") tx.recipients.push(asciiLower(address));
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
    // makeField copies: the milter lends `value` only for this call (FilterConnection).
    tx.fields.push(makeField(name, value, this.#info.session.leadingSpace));
    return undefined;
  }

  async endOfHeaders(macros: MacroReader): Promise<Action | void> {
    if (this.#peer) return "accept";
    const tx = this.#begin(false);
    const { loaded } = tx.runtime;
    const qid = queueId(macros);
    tx.started = performance.now();
    if (tx.oversized) {
      const { maximumHeaders, maximumHeaderFields } = loaded.config;
      this.#deps.logger.warn(
        tx.oversized === "MaximumHeaders"
          ? `${qid}: header block exceeds MaximumHeaders (${maximumHeaders} bytes); rejecting`
          : `${qid}: more than MaximumHeaderFields (${maximumHeaderFields}) header fields; rejecting`,
      );
      this.#report(tx, "error", [], [], "reject");
      tx.done = true;
      return {
        replycode: 552,
        xcode: "5.3.4",
        text: tx.oversized === "MaximumHeaders"
          ? "Message header block too large"
          : "Too many header fields",
      };
    }
    const sender = findSender(tx.fields, loaded.headers.sender);
    const decision = await decide({
      loaded,
      client: this.#info,
      macros: (name) => macros.get(name),
      sender,
      recipients: tx.recipients,
    });
    tx.decision = decision;
    if (loaded.config.logWhy) {
      for (const line of decision.why) this.#deps.logger.info(`${qid}: ${line}`);
    }
    switch (decision.kind) {
      case "skip":
        this.#report(tx, "skipped", [], [], "accept");
        tx.done = true;
        return "accept";
      case "sign":
        return this.#startSigning(tx, decision.signers, qid);
      case "verify":
        return this.#startVerifying(tx, macros, qid);
    }
  }

  // The chunk is only lent for this call: it goes through the body hashes now, and none of it
  // is kept.
  body(chunk: Uint8Array): void {
    const tx = this.#tx;
    if (!tx || tx.done) return;
    tx.bodyBytes += chunk.length;
    tx.signer?.body(chunk);
    tx.verifier?.body(chunk);
  }

  async endOfMessage(macros: MacroReader): Promise<EndOfMessage> {
    const tx = this.#tx;
    this.#tx = undefined;
    if (this.#peer || !tx || tx.done || !tx.decision) {
      return { modifications: [], action: "accept" };
    }
    const qid = queueId(macros);
    const { config } = tx.runtime.loaded;
    try {
      if (tx.signer) return await this.#finishSigning(tx, qid);
      if (tx.verifier) return await this.#finishVerifying(tx, macros, qid);
      return { modifications: [], action: "accept" };
    } catch (e) {
      const text = e instanceof Error ? e.message : String(e);
      this.#deps.logger.error(`${qid}: internal error: ${text}`);
      const { action, modification } = milterAction("internalError", config.actions.internalError);
      this.#report(tx, "error", [], [], describeAction(action));
      return { modifications: modification ? [modification] : [], action };
    }
  }

  abort(): void {
    this.#tx?.verifier?.abort();
    this.#tx = undefined;
  }

  close(): void {
    this.abort();
    this.#observer.connections(-1);
  }

  // The transaction in progress, started when MAIL FROM comes (or at the first event after it
  // when the MTA did not send MAIL). `fresh` starts a new one whatever is there.
  #begin(fresh = true): Transaction {
    if (!fresh && this.#tx) return this.#tx;
    this.#tx?.verifier?.abort();
    this.#tx = {
      runtime: this.#deps.runtime(),
      recipients: [],
      fields: [],
      headerBytes: 0,
      dnsFailures: new Map(),
      started: performance.now(),
      bodyBytes: 0,
      done: false,
    };
    return this.#tx;
  }

  #startSigning(
    tx: Transaction,
    signers: readonly SignerChoice<SigningKey>[],
    qid: string,
  ): Action | void {
    const { config, headers } = tx.runtime.loaded;
    const signHeaders = signedNames(headers);
    const options: SignOptions[] = signers.map((s) => ({
      domain: s.domain,
      selector: s.selector,
      key: s.key,
      algorithm: s.algorithm === "rsa-sha1" ? undefined : s.algorithm,
      canonicalization: [config.canonicalization.header, config.canonicalization.body],
      signHeaders,
      oversignHeaders: headers.oversign,
      identity: s.identity,
      ttl: config.signatureTtl > 0 ? config.signatureTtl : undefined,
      maxSignedBytes: config.maximumSignedBytes,
    }));
    try {
      tx.signer = new Signer(options, { now: this.#deps.now });
    } catch (e) {
      const text = e instanceof Error ? e.message : String(e);
      this.#deps.logger.error(`${qid}: cannot sign: ${text}`);
      const { action } = milterAction("signatureError", config.actions.signatureError);
      this.#report(tx, "error", [], [], describeAction(action));
      tx.done = true;
      // At end of headers a modification cannot be made, so quarantine degrades to accept.
      return action;
    }
    // Old signatures are not signed by the new one when RemoveOldSignatures drops them.
    const fields = config.removeOldSignatures
      ? tx.fields.filter((f) => !isField(f, SIGNATURE_FIELD))
      : tx.fields;
    tx.signer.headers(fields);
    return undefined;
  }

  #startVerifying(tx: Transaction, macros: MacroReader, qid: string): Action | void {
    const { config } = tx.runtime.loaded;
    const maxSignatures = config.maximumSignaturesToVerify === 0
      ? Number.MAX_SAFE_INTEGER
      : config.maximumSignaturesToVerify;
    const verifier = new Verifier({
      resolver: this.#observedResolver(tx.runtime.resolver, tx.dnsFailures),
      now: this.#deps.now,
      maxSignatures,
      minimumKeyBits: config.minimumKeyBits,
      maximumKeyBits: config.maximumKeyBits,
      clockDrift: config.clockDrift,
      keyCache: this.#keyCache,
    });
    verifier.headers(tx.fields);
    tx.verifier = verifier;
    const present = tx.fields.filter((f) => isField(f, SIGNATURE_FIELD)).length;
    if (present > maxSignatures) {
      this.#deps.logger.info(
        `${qid}: ${present} DKIM-Signature fields; verifying the first ${maxSignatures} ` +
          `(MaximumSignaturesToVerify)`,
      );
    }
    // Nothing to verify and nothing to add or remove: accept now, and the body is never sent.
    if (
      verifier.signatureCount === 0 && !config.alwaysAddArHeader && !config.softwareHeader &&
      config.actions.noSignature === "accept" &&
      this.#forgedResults(tx, this.#authservId(tx, macros)).length === 0
    ) {
      if (config.syslogSuccess) this.#deps.logger.info(`${qid}: no signature data`);
      this.#report(tx, "verified", ["none"], [], "accept", [undefined]);
      tx.done = true;
      return "accept";
    }
    return undefined;
  }

  async #finishSigning(tx: Transaction, qid: string): Promise<EndOfMessage> {
    const { loaded } = tx.runtime;
    const { config } = loaded;
    let fields: HeaderField[];
    try {
      fields = await tx.signer!.finish();
    } catch (e) {
      const text = e instanceof Error ? e.message : String(e);
      this.#deps.logger.error(`${qid}: signing failed: ${text}`);
      const { action, modification } = milterAction(
        "signatureError",
        config.actions.signatureError,
      );
      this.#report(tx, "error", [], [], describeAction(action));
      return { modifications: modification ? [modification] : [], action };
    }
    const mods: Modification[] = [];
    if (config.removeOldSignatures) {
      mods.push(...deletions(tx.fields, (f) => isField(f, SIGNATURE_FIELD)));
    }
    // Inserted at the top in reverse, so the first signature ends up first.
    for (const f of [...fields].reverse()) {
      mods.push({ type: "insheader", index: 0, name: SIGNATURE_FIELD, value: this.#value(f) });
    }
    if (config.softwareHeader) mods.push(this.#softwareField(qid));
    const choices = (tx.decision as { signers: readonly SignerChoice<SigningKey>[] }).signers;
    if (config.syslogSuccess) {
      for (const s of choices) {
        this.#deps.logger.info(
          `${qid}: DKIM-Signature field added (s=${s.selector}, d=${s.domain})`,
        );
      }
    }
    this.#report(
      tx,
      "signed",
      [],
      choices.map((s) => s.algorithm),
      "accept",
      choices.map((s) => s.domain),
    );
    return { modifications: mods, action: "accept" };
  }

  async #finishVerifying(tx: Transaction, macros: MacroReader, qid: string): Promise<EndOfMessage> {
    const { config } = tx.runtime.loaded;
    const verdicts = await tx.verifier!.finish();
    const id = this.#authservId(tx, macros);
    const mods: Modification[] = [...this.#forgedResults(tx, id)];
    if (mods.length > 0) {
      this.#deps.logger.info(
        `${qid}: removed ${mods.length} Authentication-Results field(s) claiming to be from "${id}"`,
      );
    }
    if (verdicts.length > 0 || config.alwaysAddArHeader) {
      const value = formatAuthResults(
        config.authservIdWithJobId ? `${id}/${qid}` : id,
        verdicts,
        { noHeaderB: config.noHeaderB },
      );
      mods.push({
        type: "insheader",
        index: 0,
        name: AUTH_RESULTS_FIELD,
        value: this.#text(` ${value}`),
      });
    }
    if (config.softwareHeader) mods.push(this.#softwareField(qid));
    this.#logVerdicts(tx, verdicts, qid);
    const outcome: Outcome = verifyOutcome(verdicts);
    let action: Action = "accept";
    if (outcome !== "pass") {
      const chosen = milterAction(outcome, config.actions[outcome]);
      action = chosen.action;
      if (chosen.modification) mods.push(chosen.modification);
      if (action !== "accept") {
        this.#deps.logger.info(
          `${qid}: ${outcome} → ${config.actions[outcome]} (On-${onName(outcome)})`,
        );
      }
    }
    this.#report(
      tx,
      "verified",
      verdicts.length === 0 ? ["none"] : verdicts.map((v) => v.result),
      [],
      describeAction(action),
      verdicts.length === 0 ? [undefined] : verdicts.map((v) => v.domain),
    );
    return { modifications: mods, action };
  }

  #logVerdicts(tx: Transaction, verdicts: readonly Verdict[], qid: string): void {
    const { config } = tx.runtime.loaded;
    const log = this.#deps.logger;
    if (verdicts.length === 0) {
      if (config.syslogSuccess) log.info(`${qid}: no signature data`);
      return;
    }
    if (config.logResults || config.logWhy) {
      for (const v of verdicts) {
        log.info(
          `${qid}: s=${v.selector ?? "?"} d=${v.domain ?? "?"} a=${v.algorithm ?? "?"} ` +
            `result=${v.result}${v.reason ? ` reason="${v.reason}"` : ""}`,
        );
      }
    }
    // RFC 6376 §8.2: content after l= is unsigned, whatever it says; always worth a line.
    for (const v of verdicts) {
      if (v.unsignedBodyBytes !== undefined) {
        log.warn(
          `${qid}: s=${v.selector ?? "?"} d=${
            v.domain ?? "?"
          } signs only l=${v.signature.length} ` +
            `body bytes: ${v.unsignedBodyBytes} bytes after them are unsigned`,
        );
      }
    }
    if (verdicts.some((v) => v.result === "pass")) {
      if (config.syslogSuccess) log.info(`${qid}: DKIM verification successful`);
      return;
    }
    for (const v of verdicts) {
      const where = `s=${v.selector ?? "?"} d=${v.domain ?? "?"}`;
      if (v.result === "temperror") {
        const name = `${v.selector}._domainkey.${v.domain}`;
        const detail = tx.dnsFailures.get(asciiLower(name));
        log.warn(
          `${qid}: key retrieval failed (${where}): ${v.reason}${detail ? `: ${detail}` : ""}`,
        );
      } else if (v.reason === "no key for signature") log.info(`${qid}: ${where}: key not found`);
      else if (v.reason?.startsWith("key too large")) {
        log.info(
          `${qid}: bad signature data (${where}): ${v.reason}: over MaximumKeyBits (${config.maximumKeyBits})`,
        );
      } else log.info(`${qid}: bad signature data (${where}): ${v.reason}`);
    }
  }

  // The authserv-id: AuthservID, or the MTA's name (macro j), or this host's name.
  #authservId(tx: Transaction, macros: MacroReader): string {
    const a = tx.runtime.loaded.config.authservId;
    if (a.kind === "name") return a.name;
    if (a.kind === "mta") return macros.get("j") || this.#deps.hostname;
    return this.#deps.hostname;
  }

  // Deletions for every Authentication-Results field that claims our authserv-id (RFC 8601 §5),
  // and those from RemoveARFrom hosts that carry a DKIM result (all of theirs with RemoveARAll).
  #forgedResults(tx: Transaction, id: string): Modification[] {
    const { loaded } = tx.runtime;
    const ours = asciiLower(id);
    const from = loaded.hosts.removeArFrom;
    return deletions(tx.fields, (f) => {
      if (!isField(f, AUTH_RESULTS_FIELD)) return false;
      const value = fieldValueText(f);
      const claimed = parseAuthservId(value);
      if (claimed === undefined) return false;
      // AuthservIDWithJobID writes "id/jobid": compare the id part.
      const base = asciiLower(claimed.replace(/\/[^/]*$/, ""));
      if (base === ours || asciiLower(claimed) === ours) return true;
      if (from?.matchName(claimed).matched) {
        return loaded.config.removeArAll || /(^|[;\s])dkim\s*=/i.test(value);
      }
      return false;
    });
  }

  #softwareField(qid: string): Modification {
    return {
      type: "insheader",
      index: 0,
      name: SOFTWARE_FIELD,
      value: this.#text(` dkimd ${VERSION} ${this.#deps.hostname} ${qid}`),
    };
  }

  // A header value for the MTA from a field we made: the text after the colon.
  #value(field: HeaderField): Uint8Array {
    return this.#bytes(fieldValue(field));
  }

  #text(value: string): Uint8Array {
    return this.#bytes(fromLatin1(value));
  }

  // Header values go to the MTA with bare LF folds (MTAs store lines with LF and write CRLF on
  // the wire), and with the space after the colon only when the MTA agreed to keep it
  // (SMFIP_HDR_LEADSPC); otherwise the MTA adds it.
  #bytes(value: Uint8Array): Uint8Array {
    let text = latin1(value).replaceAll("\r\n", "\n");
    if (!this.#info.session.leadingSpace) text = text.replace(/^ /, "");
    return fromLatin1(text);
  }

  // The resolver, reporting each lookup to the observer and keeping what each failure said
  // (the verdict's reason has only the kind of failure) for the log.
  #observedResolver(resolver: TxtResolver, failures: Map<string, string>): TxtResolver {
    const observer = this.#observer;
    return {
      async resolveTxt(name, options) {
        const start = performance.now();
        try {
          const records = await resolver.resolveTxt(name, options);
          observer.lookup({ outcome: "ok", milliseconds: performance.now() - start });
          return records;
        } catch (e) {
          const code = (e as { code?: string }).code ?? "error";
          observer.lookup({ outcome: code, milliseconds: performance.now() - start });
          failures.set(asciiLower(name), e instanceof Error ? e.message : String(e));
          throw e;
        }
      },
    };
  }

  // `domains` are the signing domains of `results` (verifying) or of `algorithms` (signing), in
  // the same order; the metrics class each against the From domain.
  #report(
    tx: Transaction,
    disposition: "signed" | "verified" | "skipped" | "error",
    results: readonly string[],
    algorithms: readonly string[],
    action: string,
    domains: readonly (string | undefined)[] = [],
  ): void {
    try {
      let author: string | undefined;
      if (domains.some((d) => d !== undefined)) author = findSender(tx.fields, ["From"])?.domain;
      this.#observer.transaction({
        disposition,
        results,
        algorithms,
        domainClasses: domains.map((d) => domainClass(d, author)),
        action,
        milliseconds: performance.now() - tx.started,
        bodyBytes: tx.bodyBytes,
      });
    } catch {
      // An observer must never break mail flow.
    }
  }
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

function queueId(macros: MacroReader): string {
  return macros.get("i") || "NOQUEUE";
}

function describeAction(action: Action): string {
  return typeof action === "string" ? action : action.replycode >= 500 ? "reject" : "tempfail";
}

function onName(outcome: Exclude<Outcome, "pass">): string {
  return actionSettingName(outcome).slice("On-".length);
}

/**
 * chgheader deletions for the fields `select` picks, numbered per field name from 1 as the
 * milter protocol counts them, highest first, so that deleting one never renumbers the next
 * (the bug OpenDKIM#185 had).
 */
export function deletions(
  fields: readonly HeaderField[],
  select: (field: HeaderField) => boolean,
): Modification[] {
  // Most messages have nothing to delete: pick first, number only when something was picked.
  const picked = fields.filter(select);
  if (picked.length === 0) return [];
  const seen = new Map<string, number>();
  const out: { index: number; name: string }[] = [];
  for (const f of fields) {
    const key = asciiLower(f.name);
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    if (picked.includes(f)) out.push({ index: n, name: f.name });
  }
  return out.reverse().map(({ index, name }) => ({
    type: "chgheader",
    index,
    name,
    value: new Uint8Array(0),
  }));
}

/**
 * A header field as the message has it, from what the milter received: the name, the colon,
 * and the value with its leading space put back when the MTA removed it (no SMFIP_HDR_LEADSPC;
 * Sendmail and Postfix then drop one space after the colon, and OpenDKIM restores it the same
 * way), and bare LF line ends made CRLF, as the field travels on the wire. The field owns its
 * bytes: `value` is copied, as the milter lends it only for the header call.
 */
export function makeField(name: string, value: Uint8Array, leadingSpace: boolean): HeaderField {
  const addSpace = !leadingSpace && value.length > 0 && value[0] !== SP && value[0] !== HTAB;
  // Bare LFs, each of which gets a CR in front.
  let bare = 0;
  for (let i = value.indexOf(LF); i !== -1; i = value.indexOf(LF, i + 1)) {
    if (i === 0 || value[i - 1] !== CR) bare++;
  }
  const start = name.length + 1 + (addSpace ? 1 : 0);
  const raw = new Uint8Array(start + value.length + bare);
  for (let i = 0; i < name.length; i++) raw[i] = name.charCodeAt(i) & 0xff;
  raw[name.length] = 0x3a;
  if (addSpace) raw[name.length + 1] = SP;
  if (bare === 0) {
    raw.set(value, start);
  } else {
    let o = start;
    for (let i = 0; i < value.length; i++) {
      const c = value[i];
      if (c === LF && (i === 0 || value[i - 1] !== CR)) raw[o++] = CR;
      raw[o++] = c;
    }
  }
  // "Subject : x" keeps its bytes, but is found as "Subject" (h= names have no whitespace).
  const last = name.charCodeAt(name.length - 1);
  return { name: last === SP || last === HTAB ? name.replace(/[ \t]+$/, "") : name, raw };
}
