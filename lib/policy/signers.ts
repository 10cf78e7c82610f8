/**
 * Which keys sign a message from a given sender: the SigningTable and KeyTable, or the single
 * key of Domain/Selector/KeyFile, put together into a list of signatures to make, each with the
 * reason it was chosen (the table line and key line), or the reason nothing was chosen in
 * OpenDKIM's LogWhy words (`no signing table match for 'user@example.org'`). The DKIM filter,
 * `dkimd explain` and LogWhy all read this one answer.
 *
 * @module
 */

import { formatOrigin, type Origin } from "./origin.ts";
import {
  algorithmFor,
  type KeyLookup,
  type PrivateKeyInfo,
  type SigningAlgorithm,
} from "./key_table.ts";
import type { SigningLookup, SigningMatch } from "./signing_table.ts";
import type { DomainLookup, DomainMatch } from "./signing_domains.ts";

/** The single key of Domain, Selector and KeyFile. */
export interface SingleKeyPolicy<K extends PrivateKeyInfo> {
  /** The Domain data set. */
  readonly domains: DomainLookup;
  /** The Selector. */
  readonly selector: string;
  /** The imported KeyFile. */
  readonly key: K;
  /** The KeyFile path. */
  readonly keyFile: string;
  /** Where KeyFile was set. */
  readonly origin: Origin;
}

/** The settings {@link chooseSigners} follows (a configuration has them under these names). */
export interface SigningSettings {
  /** MultipleSignatures: sign with every matching table entry, not just the first. */
  readonly multipleSignatures: boolean;
  /** SubDomains: the single key also signs for subdomains of the Domain entries. */
  readonly subDomains: boolean;
  /** The global SignatureAlgorithm, which applies to RSA keys without an algorithm of their own. */
  readonly signatureAlgorithm: SigningAlgorithm;
}

/**
 * Everything {@link chooseSigners} needs: the tables, each asked through an interface whose
 * answers are promises, so a table may be held in memory or kept in a database.
 */
export interface SigningPolicy<K extends PrivateKeyInfo> {
  /** The SigningTable, when signing by table. */
  readonly signingTable?: SigningLookup;
  /** The KeyTable, when signing by table. */
  readonly keyTable?: KeyLookup<K>;
  /** The single key, when signing by Domain/Selector/KeyFile. */
  readonly singleKey?: SingleKeyPolicy<K>;
  /** The settings that shape the choice. */
  readonly config: SigningSettings;
}

/** One signature to make. */
export interface SignerChoice<K extends PrivateKeyInfo> {
  /** The signing domain (`d=`). */
  readonly domain: string;
  /** The selector (`s=`). */
  readonly selector: string;
  /** The private key. */
  readonly key: K;
  /** The algorithm (`a=`). */
  readonly algorithm: SigningAlgorithm;
  /** The agent or user identifier (`i=`), when one applies to this `d=`. */
  readonly identity?: string;
  /** The KeyTable name, when signing by table. */
  readonly keyName?: string;
  /** The SigningTable match, when signing by table. */
  readonly tableMatch?: SigningMatch;
  /** The Domain match, when signing with the single key. */
  readonly domainMatch?: DomainMatch;
  /** Where the key was defined (KeyTable line or KeyFile setting). */
  readonly keyOrigin: Origin;
  /** One line saying why: which entry matched and which key it named. */
  readonly explanation: string;
}

/** The answer of {@link chooseSigners}. */
export interface SignerDecision<K extends PrivateKeyInfo> {
  /** The signatures to make, in order; empty when the mail is not to be signed. */
  readonly signers: readonly SignerChoice<K>[];
  /** When `signers` is empty, why, in OpenDKIM's LogWhy words. */
  readonly reason?: string;
  /** Other remarks, such as a signer identity dropped because it does not fit `d=`. */
  readonly notes: readonly string[];
}

/**
 * True when the identity `i=` fits the signing domain: its domain is `d=` or below it
 * (RFC 6376 §3.5, the "i=" tag).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { identityFits } from "./signers.ts";
 * assert.ok(identityFits("@mail.example.com", "example.com"));
 * assert.ok(identityFits("joe@Example.com", "example.com"));
 * assert.ok(!identityFits("joe@example.org", "example.com"));
 * assert.ok(!identityFits("joe@badexample.com", "example.com"));
 * ```
 */
export function identityFits(identity: string, domain: string): boolean {
  const at = identity.lastIndexOf("@");
  if (at < 0) return false;
  const idDomain = identity.slice(at + 1).toLowerCase();
  const d = domain.toLowerCase();
  return idDomain === d || idDomain.endsWith(`.${d}`);
}

/**
 * Chooses the keys to sign mail from `user@domain` with (the sender found in the From field or
 * SenderHeaders). Does not look at hosts or authentication: that decision comes first and is
 * the filter's. Rejects with `KeyResolutionError` when a matching entry names a key that cannot
 * be used (OpenDKIM then temp-fails the message: "signing table references unknown key").
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NameSet } from "./name_set.ts";
 * import { chooseSigners } from "./signers.ts";
 * import { SigningDomains } from "./signing_domains.ts";
 * const at = { file: "/etc/opendkim.conf", line: 4 };
 * const policy = {
 *   singleKey: {
 *     domains: new SigningDomains(new NameSet([{ key: "example.com", origin: at }], true)),
 *     selector: "mail", key: { type: "rsa" as const, bits: 2048 }, keyFile: "/k", origin: at,
 *   },
 *   config: { multipleSignatures: false, subDomains: false, signatureAlgorithm: "rsa-sha256" as const },
 * };
 * const yes = await chooseSigners(policy, "joe", "example.com");
 * assert.equal(yes.signers[0].selector, "mail");
 * const no = await chooseSigners(policy, "joe", "example.org");
 * assert.equal(no.reason, "no signing domain match for 'example.org'");
 * ```
 */
export async function chooseSigners<K extends PrivateKeyInfo>(
  policy: SigningPolicy<K>,
  user: string,
  domain: string,
): Promise<SignerDecision<K>> {
  const notes: string[] = [];
  const lower = domain.toLowerCase();
  const { multipleSignatures, subDomains, signatureAlgorithm } = policy.config;
  if (policy.signingTable && policy.keyTable) {
    const matches = await policy.signingTable.lookup(user, lower, multipleSignatures);
    if (matches.length === 0) {
      return { signers: [], reason: `no signing table match for '${user}@${lower}'`, notes };
    }
    const signers: SignerChoice<K>[] = [];
    for (const m of matches) {
      const resolved = await policy.keyTable.resolve(m.keyName, lower);
      const algorithm = algorithmFor(
        resolved.entry.algorithm,
        resolved.key.type,
        signatureAlgorithm,
      );
      let identity = m.signer;
      if (identity !== undefined && !identityFits(identity, resolved.domain)) {
        notes.push(
          `signer "${identity}" from ${formatOrigin(m.rule.origin)} is not in ` +
            `"${resolved.domain}"; signing without i= (RFC 6376 §3.5)`,
        );
        identity = undefined;
      }
      const base = {
        domain: resolved.domain,
        selector: resolved.selector,
        key: resolved.key,
        algorithm,
        keyName: m.keyName,
        tableMatch: m,
        keyOrigin: resolved.entry.origin,
        explanation: `SigningTable entry "${m.rule.pattern}" at ${formatOrigin(m.rule.origin)} ` +
          `names key "${m.keyName}" (KeyTable ${formatOrigin(resolved.entry.origin)}: ` +
          `d=${resolved.domain} s=${resolved.selector} a=${algorithm})`,
      };
      signers.push(identity === undefined ? base : { ...base, identity });
    }
    return { signers, notes };
  }
  if (policy.singleKey) {
    const single = policy.singleKey;
    const m = await single.domains.match(lower, subDomains);
    if (!m) {
      const reason = subDomains
        ? `no signing subdomain match for '${lower}'`
        : `no signing domain match for '${lower}'`;
      return { signers: [], reason, notes };
    }
    const algorithm = algorithmFor(undefined, single.key.type, signatureAlgorithm);
    const base = {
      domain: m.domain,
      selector: single.selector,
      key: single.key,
      algorithm,
      domainMatch: m,
      keyOrigin: single.origin,
      explanation: `Domain entry "${m.entry}" at ${formatOrigin(m.origin)} matches ` +
        `"${lower}"; KeyFile "${single.keyFile}" (d=${m.domain} s=${single.selector} ` +
        `a=${algorithm})`,
    };
    return {
      signers: [m.identity === undefined ? base : { ...base, identity: m.identity }],
      notes,
    };
  }
  return { signers: [], reason: "no signing keys are configured", notes };
}
