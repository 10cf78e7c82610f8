/**
 * The Lua policy scripts at OpenDKIM's hook points (opendkim.c): the setup script at end of
 * headers, after the signing decision and before any DKIM work (mlfi_eoh); the screen script
 * once the signatures are known, before verification (mlfi_eoh, after dkim_eoh); the
 * statistics and final scripts at end of message, after verification and before the
 * signatures and Authentication-Results are added (mlfi_eom). The Lua VM and the `odkim.*`
 * functions are loaded only when a script is configured.
 *
 * What OpenDKIM does with a script's requests, matched here: the setup script's `odkim.sign()`
 * requests are added to those of the SigningTable (not applied with LuaOnlySigning); a message
 * with a signing request is signed, else verified; a result set by the setup or final script is
 * the milter's answer at once (in the final script, `SMFIS_ACCEPT` changes nothing); a script
 * that fails answers the message with On-InternalError (OpenDKIM: always tempfail).
 *
 * @module
 */
import type { SigningKey } from "../crypto/private_key.ts";
import { fieldValueText, type HeaderField, isField } from "../dkim/header.ts";
import type { Verdict } from "../dkim/result.ts";
import { SIGNATURE_FIELD, summarizeSignature } from "../dkim/signature.ts";
import type {
  LuaExport,
  LuaHook,
  LuaResult,
  OdkimEffects,
  OdkimMessage,
  OdkimSignature,
} from "../lua/odkim_api.ts";
import type { Action, MacroReader, Modification } from "../milter/filter.ts";
import type { DataSetLookup } from "../policy/data_set_lookup.ts";
import { NameSet } from "../policy/name_set.ts";
import { SigningTable } from "../policy/signing_table.ts";
import { SMFIF_ADDRCPT, SMFIF_DELRCPT } from "../milter/constants.ts";
import { algorithmFor } from "../policy/key_table.ts";
import { allowedOnly } from "./failure_actions.ts";
import { rblQuery } from "./rbl_query.ts";
import { chooseSigners, type SignerChoice } from "../policy/signers.ts";
import type { Decision } from "./decide.ts";
import type { FilterPolicy } from "./filter_policy.ts";

/** What one message's hooks share: the values scripts export to later scripts. */
export interface LuaState {
  /** `odkim.export()` values so far. */
  readonly exported: Map<string, LuaExport>;
}

/** The message as the scripts see it, besides the policy. */
export interface LuaCall {
  /** The policy in force. */
  readonly policy: FilterPolicy<SigningKey>;
  /** The SMTP client. */
  readonly client: { readonly hostname: string; readonly address: string };
  /** The MTA's macros. */
  readonly macros: MacroReader;
  /** The header fields as received. */
  readonly fields: readonly HeaderField[];
  /** The envelope sender, as MAIL FROM gave it. */
  readonly envelopeFrom: string;
  /** The envelope recipients. */
  readonly recipients: readonly string[];
  /** The sender's domain, or "". */
  readonly fromDomain: string;
  /** Where `odkim.log()` lines go (already prefixed with the queue id by the caller). */
  readonly log: (line: string) => void;
  /** The message's shared Lua state. */
  readonly state: LuaState;
  /** The `SMFIF_*` actions the MTA allowed at negotiation. */
  readonly actions: number;
  /**
   * Replaces a field in the header that is signed and verified, not in the message delivered
   * (`odkim.replace_header()`): the `n`th field named `name` (from the bottom when negative);
   * false when there is none.
   */
  readonly replaceField?: (name: string, n: number, value: string) => boolean;
}

/** Whether any script of `hook` is configured. */
export function hasHook(policy: FilterPolicy<SigningKey>, hook: LuaHook): boolean {
  return policy.luaScripts?.[hook] !== undefined;
}

/**
 * Runs the script of `hook` (which must be configured), resolving to what it asked for; its
 * exports are kept for later hooks. Rejects with the script's error (LuaRunError).
 */
export async function runPolicyHook(
  hook: LuaHook,
  call: LuaCall,
  signatures: readonly OdkimSignature[] = [],
  signing?: number,
  signedFor?: SignerChoice<SigningKey>[],
): Promise<OdkimEffects> {
  const script = call.policy.luaScripts?.[hook];
  if (!script) throw new Error(`no ${hook} script is configured`);
  const { runHook } = await import("../lua/odkim_api.ts");
  const { policy, client } = call;
  const internal = await policy.hosts.internal.match(
    client.hostname || undefined,
    client.address || undefined,
  );
  const dbs = dbHandles(policy);
  const message: OdkimMessage = {
    headers: call.fields.map((f) => ({
      name: f.name,
      value: fieldValueText(f).replace(/^[ \t]+/, ""),
    })),
    macro: (name) => call.macros.get(name),
    client,
    envelopeFrom: call.envelopeFrom,
    recipients: call.recipients,
    fromDomain: call.fromDomain,
    internal: internal.matched,
    hasKeyTable: policy.keyTable !== undefined,
    // OpenDKIM asks the MTA for recipient changes only with RedirectFailuresTo; dkimd also asks
    // when a final script is configured, so odkim.add_rcpt()/del_rcpt() act there whatever the
    // settings (filter_needs.ts), as long as the MTA allowed them.
    canChangeRecipients: (call.actions & SMFIF_ADDRCPT) !== 0 &&
      (call.actions & SMFIF_DELRCPT) !== 0,
    signatures,
    ...(signing !== undefined ? { signing } : {}),
    exported: call.state.exported,
    log: call.log,
    dbHandle: (which) => dbs[which],
    ...(policy.openScriptDataSet ? { openDataSet: policy.openScriptDataSet } : {}),
    ...(signedFor
      ? { signFor: (user, domain, multi) => signFor(policy, user, domain, multi, signedFor) }
      : {}),
    ...(call.replaceField ? { replaceHeader: call.replaceField } : {}),
    rblCheck: async (name, timeout) => {
      const answer = await rblQuery(
        name,
        policy.config.nameservers,
        timeout ?? policy.config.dnsTimeout,
      );
      if (answer.kind === "error") throw new Error(answer.message);
      return answer.kind === "found" ? [...answer.octets] : undefined;
    },
  };
  const effects = await runHook(hook, script, message);
  for (const [k, v] of effects.exports) call.state.exported.set(k, v);
  return effects;
}

/**
 * `odkim.signfor()`: the SigningTable applied to `user@domain` as to a sender (every match with
 * `multiple`, else the first), the signers added to `into`; undefined without a SigningTable and
 * a KeyTable, as OpenDKIM answers nil then. A key that cannot be used is the script's error.
 */
async function signFor(
  policy: FilterPolicy<SigningKey>,
  user: string,
  domain: string,
  multiple: boolean,
  into: SignerChoice<SigningKey>[],
): Promise<number | undefined> {
  if (!policy.signingTable || !policy.keyTable) return undefined;
  const table = { ...policy, config: { ...policy.config, multipleSignatures: multiple } };
  let choice;
  try {
    choice = await chooseSigners(table, user, domain);
  } catch (e) {
    throw new Error(`odkim.signfor(): error processing key: ${(e as Error).message}`);
  }
  for (const s of choice.signers) {
    into.push({ ...s, explanation: `odkim.signfor("${user}@${domain}"): ${s.explanation}` });
  }
  return choice.signers.length;
}

/**
 * The configured data sets `odkim.get_dbhandle()` names (opendkim.c `DB_*`): DontSignMailTo,
 * MTA, MacroList's names, and the SigningTable's keys when it was read from a file. OpenDKIM
 * 2.11 answers nil for every one (it reads the code from the context argument), so a script
 * written for it never relies on them; dkimd gives what the documentation promises. The Domain
 * and TrustSignaturesFrom sets are not offered (nil): dkimd keeps them behind their own lookups.
 */
function dbHandles(policy: FilterPolicy<SigningKey>): Record<number, DataSetLookup | undefined> {
  const table = policy.signingTable;
  // The numbers of odkim_api.ts's DB_HANDLES, written out: importing it would load the Lua VM.
  return {
    3: policy.dontSignMailTo,
    4: policy.mta,
    5: policy.macroList &&
      new NameSet(policy.macroList.rules.map((r) => ({ key: r.name, origin: r.origin })), false),
    11: table instanceof SigningTable && table.rules.length > 0 && !table.patterns
      ? new NameSet(table.rules.map((r) => ({ key: r.pattern, origin: r.origin })), true)
      : undefined,
  };
}

/**
 * The signatures the setup script asked for: each `odkim.sign(ctx, keyname[, signer][, len])`
 * resolved through the KeyTable for the sender's domain (a `%` entry takes it), or the single
 * key (KeyFile) when no key name is given. A key that cannot be used is logged and left out, as
 * OpenDKIM does (`odkim.sign()` returned 0 already).
 */
export async function requestedSigners(
  policy: FilterPolicy<SigningKey>,
  effects: Pick<OdkimEffects, "sign">,
  senderDomain: string,
  log: (line: string) => void,
  by = "SetupPolicyScript",
): Promise<SignerChoice<SigningKey>[]> {
  const out: SignerChoice<SigningKey>[] = [];
  const { signatureAlgorithm } = policy.config;
  for (const req of effects.sign) {
    if (req.keyName !== undefined && policy.keyTable) {
      try {
        const r = await policy.keyTable.resolve(req.keyName, senderDomain.toLowerCase());
        const algorithm = algorithmFor(r.entry.algorithm, r.key.type, signatureAlgorithm);
        out.push({
          domain: r.domain,
          selector: r.selector,
          key: r.key,
          algorithm,
          keyName: req.keyName,
          keyOrigin: r.entry.origin,
          ...(req.identity ? { identity: req.identity } : {}),
          explanation: `${by} asked for key "${req.keyName}" (d=${r.domain} ` +
            `s=${r.selector} a=${algorithm})`,
        });
      } catch (e) {
        log(`key '${req.keyName}' could not be applied: ${(e as Error).message}`);
      }
      continue;
    }
    const single = policy.singleKey;
    if (!single || senderDomain === "") {
      log("failed to load/apply default key");
      continue;
    }
    const algorithm = algorithmFor(undefined, single.key.type, signatureAlgorithm);
    const domain = senderDomain.toLowerCase();
    out.push({
      domain,
      selector: single.selector,
      key: single.key,
      algorithm,
      keyOrigin: single.origin,
      ...(req.identity ? { identity: req.identity } : {}),
      explanation: `${by} asked for the default key (d=${domain} s=${single.selector} ` +
        `a=${algorithm})`,
    });
  }
  return out;
}

/** The milter answer for a result a script set, with its `odkim.set_reply()` text if any. */
export function luaAction(
  result: LuaResult,
  reply?: { readonly rcode: string; readonly xcode: string; readonly text: string },
): Action {
  if ((result === "reject" || result === "tempfail") && reply) {
    // libmilter sends the reply only when its class matches the result.
    if ((reply.rcode[0] === "5") === (result === "reject")) {
      return {
        replycode: Number(reply.rcode),
        ...(reply.xcode ? { xcode: reply.xcode } : {}),
        text: reply.text,
      };
    }
  }
  return result;
}

/** The signatures of a message as the screen script sees them (`d=`, `i=`), in field order. */
export function screenSignatures(fields: readonly HeaderField[]): OdkimSignature[] {
  return fields.filter((f) => isField(f, SIGNATURE_FIELD)).map((f) => {
    const s = summarizeSignature(f);
    return {
      ...(s.domain !== undefined ? { domain: s.domain } : {}),
      ...(s.identity !== undefined ? { identity: s.identity } : {}),
    };
  });
}

/**
 * The header fields without the signatures the screen script ignored (`odkim.sig_ignore()`):
 * verification then acts as if they were not there, as opendkim-lua(3) says.
 */
export function withoutIgnored(
  fields: readonly HeaderField[],
  ignored: ReadonlySet<number>,
): readonly HeaderField[] {
  // Nothing ignored, the usual case: the fields as they are, not a copy per message.
  if (ignored.size === 0) return fields;
  let n = -1;
  return fields.filter((f) => !(isField(f, SIGNATURE_FIELD) && ignored.has(++n)));
}

/**
 * The signatures with their verdicts, for the statistics and final scripts. `bodyLength` is the
 * body as received (`sig_bodylength`), `canonLength` the `l=` count when the signature has one
 * (`sig_canonlength`; nil otherwise, where libopendkim would give the canonical length).
 */
export function finalSignatures(verdicts: readonly Verdict[], bodyBytes: number): OdkimSignature[] {
  return verdicts.map((v) => ({
    ...(v.domain !== undefined ? { domain: v.domain } : {}),
    ...(v.identity !== undefined ? { identity: v.identity } : {}),
    verdict: v,
    bodyLength: bodyBytes,
    ...(v.signature?.length !== undefined ? { canonLength: v.signature.length } : {}),
  }));
}

/** What the setup step decided: the decision to carry on with, or an answer now. */
export type SetupAnswer =
  | {
    readonly decision: Decision<SigningKey>;
    readonly bodyLength: boolean;
    /**
     * The message is verified as well as signed: the script called `odkim.verify()` (OpenDKIM
     * then makes its verifying handle beside the signing ones) or `odkim.resign()`.
     */
    readonly verify?: boolean;
    /** `odkim.resign()`: a signed message is signed only when it verifies (ResignAll aside). */
    readonly resign?: boolean;
  }
  | { readonly action: Action; readonly why: string };

/**
 * LuaOnlySigning and the setup script, applied to the filter's decision (mlfi_eoh's order: the
 * SigningTable, unless LuaOnlySigning; then the script; then sign if any signature is asked
 * for, else verify; `odkim.verify()` and `odkim.resign()` have a signed message verified too).
 * Rejects when the script fails.
 */
export async function applySetup(
  call: LuaCall,
  decision: Decision<SigningKey>,
): Promise<SetupAnswer> {
  const { config } = call.policy;
  let d = decision;
  if (config.luaOnlySigning && d.kind === "sign" && call.policy.signingTable) {
    const why = [...d.why, "LuaOnlySigning: the SigningTable is not applied"];
    d = config.mode.verify ? { kind: "verify", why } : { kind: "skip", why };
  }
  if (!hasHook(call.policy, "setup") || d.kind === "unauthorized") {
    return { decision: d, bodyLength: false };
  }
  // ExemptDomains and ExternalIgnoreList end OpenDKIM's work before the script runs.
  if (d.kind === "skip" && config.mode.verify) return { decision: d, bodyLength: false };
  const signedFor: SignerChoice<SigningKey>[] = [];
  const effects = await runPolicyHook("setup", call, [], undefined, signedFor);
  if (effects.result !== undefined) {
    return {
      action: luaAction(effects.result, effects.reply),
      why: `SetupPolicyScript set the result ${effects.result}`,
    };
  }
  const extra = [
    ...signedFor,
    ...await requestedSigners(call.policy, effects, call.fromDomain, call.log),
  ];
  const signers = [...(d.kind === "sign" ? d.signers : []), ...extra];
  const why = [...d.why, ...extra.map((s) => s.explanation)];
  if (signers.length > 0) {
    if (!config.mode.sign) {
      return { action: "accept", why: "signing requested but sign mode is not enabled" };
    }
    return {
      decision: { kind: "sign", signers, why },
      bodyLength: effects.useLtag,
      ...(effects.verify || effects.resign ? { verify: true } : {}),
      ...(effects.resign ? { resign: true } : {}),
    };
  }
  if (config.mode.verify) return { decision: { kind: "verify", why }, bodyLength: false };
  return { decision: { kind: "skip", why }, bodyLength: false };
}

/** What the statistics and final scripts decided at end of message. */
export interface FinalAnswer {
  /** A result that ends the message now (reject, discard, tempfail), else undefined. */
  readonly action?: Action;
  /** Header changes to make, after dkimd's own. */
  readonly modifications: readonly Modification[];
  /** Tags `odkim.xtag()` adds to the signatures being made. */
  readonly xtags: readonly (readonly [string, string])[];
}

/**
 * Runs the statistics script, then the final script, at end of message; resolves to undefined
 * when neither is configured. Rejects when a script fails.
 */
export async function applyFinal(
  call: LuaCall,
  signatures: readonly OdkimSignature[],
  value: (text: string) => Uint8Array,
  signing?: number,
): Promise<FinalAnswer | undefined> {
  if (hasHook(call.policy, "statistics")) await runPolicyHook("statistics", call, signatures);
  if (!hasHook(call.policy, "final")) return undefined;
  const effects = await runPolicyHook("final", call, signatures, signing);
  const modifications = allowedOnly(finalModifications(effects, value), call.actions, call.log);
  const xtags = signing ? effects.xtags : [];
  if (effects.result !== undefined && effects.result !== "accept") {
    return { action: luaAction(effects.result, effects.reply), modifications, xtags };
  }
  return { modifications, xtags };
}

/**
 * The changes the final script asked for: `add_header` inserts at position 1, as
 * OpenDKIM's `dkimf_insheader(ctx, 1, ...)`; `del_header` deletes the first instance;
 * `del_rcpt` and `add_rcpt` become recipient changes (OpenDKIM sends each as it is called, so its
 * order among header changes can differ); a quarantine request becomes the quarantine
 * modification.
 */
export function finalModifications(
  effects: OdkimEffects,
  value: (text: string) => Uint8Array,
): Modification[] {
  const mods: Modification[] = [];
  for (const h of effects.addHeaders) {
    mods.push({ type: "insheader", index: 1, name: h.name, value: value(` ${h.value}`) });
  }
  for (const name of effects.delHeaders) {
    mods.push({ type: "chgheader", index: 1, name, value: new Uint8Array() });
  }
  for (const address of effects.delRcpts) mods.push({ type: "delrcpt", address });
  for (const address of effects.addRcpts) mods.push({ type: "addrcpt", address });
  if (effects.quarantine !== undefined) {
    mods.push({ type: "quarantine", reason: effects.quarantine });
  }
  return mods;
}
