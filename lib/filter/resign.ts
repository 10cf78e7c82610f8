/**
 * ResignMailTo: mail to these recipients is verified and signed again, as a mailing list or a
 * relay re-signs what it passes on (opendkim.conf(5); OpenDKIM's `_FFR_RESIGN`, compiled out of
 * Debian's build). The entry's value names the KeyTable key to sign with; without a KeyTable, or
 * with no value, the single key (KeyFile) signs for the sender's domain. A message that arrived
 * signed is signed only when it verifies, unless ResignAll (dkim_filter.ts).
 *
 * @module
 */
import type { SigningKey } from "../crypto/private_key.ts";
import type { DataSetLookup } from "../policy/data_set_lookup.ts";
import type { Decision } from "./decide.ts";
import type { FilterPolicy } from "./filter_policy.ts";
import { requestedSigners } from "./lua_hooks.ts";

/**
 * The keys OpenDKIM's mlfi_eoh() tries for one recipient, in its order: the full address, its
 * domain, then the domain's parents written with their leading dot. An address without `@`
 * gives itself only.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resignKeys } from "./resign.ts";
 * assert.deepEqual(resignKeys("list@lists.example.com"), [
 *   "list@lists.example.com", "lists.example.com", ".example.com", ".com",
 * ]);
 * ```
 */
export function resignKeys(recipient: string): string[] {
  const at = recipient.indexOf("@");
  if (at === -1) return [recipient];
  const domain = recipient.slice(at + 1);
  const keys = [recipient, domain];
  for (let dot = domain.indexOf("."); dot !== -1; dot = domain.indexOf(".", dot + 1)) {
    keys.push(domain.slice(dot));
  }
  return keys;
}

/**
 * The first recipient (in envelope order) ResignMailTo lists in one of its forms, with the
 * entry's value (the key name, "" for none); undefined when none is listed.
 */
export async function resignRecipient(
  set: DataSetLookup,
  recipients: readonly string[],
): Promise<{ recipient: string; keyName: string } | undefined> {
  const keys = recipients.map(resignKeys);
  const hits = await set.lookup(keys.flat());
  let at = 0;
  for (const [i, forms] of keys.entries()) {
    const hit = forms.map((_, j) => hits[at + j]).find((h) => h !== undefined);
    if (hit) return { recipient: recipients[i], keyName: hit.value ?? "" };
    at += forms.length;
  }
  return undefined;
}

/**
 * The decision for mail to a ResignMailTo recipient: signed with the entry's key in place of
 * what the SigningTable would choose, whoever sent it (OpenDKIM treats it as ours), and verified
 * too; left alone unless both modes are on (OpenDKIM accepts it untouched then). Undefined when
 * no recipient is listed, or the key cannot be used (logged; the decision stands).
 */
export async function resignDecision(
  policy: FilterPolicy<SigningKey>,
  decision: Decision<SigningKey>,
  recipients: readonly string[],
  senderDomain: string,
  log: (line: string) => void,
): Promise<Decision<SigningKey> | undefined> {
  if (!policy.resignMailTo) return undefined;
  const found = await resignRecipient(policy.resignMailTo, recipients);
  if (!found) return undefined;
  const why = [...decision.why, `recipient '${found.recipient}' is in ResignMailTo`];
  const { mode } = policy.config;
  if (!mode.sign || !mode.verify) {
    return { kind: "skip", why: [...why, "re-signing needs Mode sv; leaving the message alone"] };
  }
  const request = found.keyName !== "" && policy.keyTable ? { keyName: found.keyName } : {};
  const signers = await requestedSigners(
    policy,
    { sign: [request] },
    senderDomain,
    log,
    "ResignMailTo",
  );
  if (signers.length === 0) return undefined;
  return { kind: "sign", signers, why: [...why, ...signers.map((s) => s.explanation)] };
}
