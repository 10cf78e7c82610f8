/**
 * Single-key signing (opendkim.conf(5), Domain, Selector, KeyFile, SubDomains): one key signs
 * mail from every domain in the Domain data set. The lookup is OpenDKIM's (`mlfi_eoh()`): the
 * sender's domain exactly (case-insensitively), then the entry `*` (any domain, kept "for
 * back-compatibility"), then, with SubDomains, each parent domain from the nearest up. A parent
 * match signs as the parent (`d=example.com`) with the sender's domain as the identity
 * (`i=@mail.example.com`), as OpenDKIM's `setidentity` does.
 *
 * The set is asked through {@link DataSetLookup}, every candidate in one call, so the Domain
 * set may live in memory or in a database alike.
 *
 * @module
 */

import type { DataSetLookup } from "./data_set_lookup.ts";
import type { Origin } from "./origin.ts";

/** The outcome of a successful {@link SigningDomains.match}. */
export interface DomainMatch {
  /** The signing domain (`d=`): the sender's domain, or the parent that matched. */
  readonly domain: string;
  /** The identity (`i=`) to set, only for a parent-domain match: `@` and the sender's domain. */
  readonly identity?: string;
  /** The Domain entry that matched. */
  readonly entry: string;
  /** Where that entry was written. */
  readonly origin: Origin;
}

/** The Domain data set as the signer choice asks it, once per message to sign. */
export interface DomainLookup {
  /**
   * Finds the entry that makes mail from `senderDomain` signable, or `undefined`. `subDomains`
   * is the SubDomains setting. Rejects when the data set cannot answer.
   */
  match(senderDomain: string, subDomains: boolean): Promise<DomainMatch | undefined>;
}

/**
 * The Domain data set, ready for lookups.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NameSet } from "./name_set.ts";
 * import { SigningDomains } from "./signing_domains.ts";
 * const origin = { file: "/etc/opendkim.conf", line: 3 };
 * const domains = new SigningDomains(new NameSet([{ key: "example.com", origin }], true));
 * assert.equal((await domains.match("EXAMPLE.com", false))?.domain, "example.com");
 * assert.equal(await domains.match("mail.example.com", false), undefined);
 * assert.deepEqual(await domains.match("mail.example.com", true), {
 *   domain: "example.com", identity: "@mail.example.com", entry: "example.com", origin,
 * });
 * ```
 */
export class SigningDomains implements DomainLookup {
  readonly #set: DataSetLookup;

  /** Makes the lookup over the Domain data set (its keys; values are ignored). */
  constructor(set: DataSetLookup) {
    this.#set = set;
  }

  /**
   * Finds the entry that makes mail from `senderDomain` signable, or `undefined`. `subDomains`
   * is the SubDomains setting. Rejects when the data set cannot answer.
   */
  async match(senderDomain: string, subDomains: boolean): Promise<DomainMatch | undefined> {
    const domain = senderDomain.toLowerCase();
    const keys = [domain, "*"];
    if (subDomains) {
      for (let i = domain.indexOf("."); i >= 0; i = domain.indexOf(".", i + 1)) {
        const parent = domain.slice(i + 1);
        if (parent === "") break;
        keys.push(parent);
      }
    }
    const hits = await this.#set.lookup(keys);
    for (let i = 0; i < keys.length; i++) {
      const hit = hits[i];
      if (!hit) continue;
      // The exact name and `*` sign as the sender's domain; a parent signs as itself.
      return i < 2
        ? { domain, entry: hit.key, origin: hit.origin }
        : { domain: keys[i], identity: `@${domain}`, entry: hit.key, origin: hit.origin };
    }
    return undefined;
  }
}
