/**
 * Single-key signing (opendkim.conf(5), Domain, Selector, KeyFile, SubDomains): one key signs
 * mail from every domain in the Domain data set. The lookup is OpenDKIM's (`mlfi_eoh()`): the
 * sender's domain exactly (case-insensitively), then the entry `*` (any domain, kept "for
 * back-compatibility"), then, with SubDomains, each parent domain from the nearest up. A parent
 * match signs as the parent (`d=example.com`) with the sender's domain as the identity
 * (`i=@mail.example.com`), as OpenDKIM's `setidentity` does.
 *
 * @module
 */

import type { DataSetEntry } from "./dataset.ts";
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

/**
 * The Domain data set, ready for lookups.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SigningDomains } from "./signing_domains.ts";
 * const origin = { file: "/etc/opendkim.conf", line: 3 };
 * const domains = new SigningDomains([{ key: "example.com", origin }]);
 * assert.equal(domains.match("EXAMPLE.com", false)?.domain, "example.com");
 * assert.equal(domains.match("mail.example.com", false), undefined);
 * assert.deepEqual(domains.match("mail.example.com", true), {
 *   domain: "example.com", identity: "@mail.example.com", entry: "example.com", origin,
 * });
 * ```
 */
export class SigningDomains {
  /** The entries as given. */
  readonly entries: readonly DataSetEntry[];
  readonly #byName = new Map<string, DataSetEntry>();

  /** Makes the set from the Domain data set's entries (keys; values are ignored). */
  constructor(entries: readonly DataSetEntry[]) {
    this.entries = entries;
    for (const e of entries) {
      const k = e.key.toLowerCase();
      if (!this.#byName.has(k)) this.#byName.set(k, e);
    }
  }

  /**
   * Finds the entry that makes mail from `senderDomain` signable, or `undefined`. `subDomains`
   * is the SubDomains setting.
   */
  match(senderDomain: string, subDomains: boolean): DomainMatch | undefined {
    const domain = senderDomain.toLowerCase();
    const exact = this.#byName.get(domain);
    if (exact) return { domain, entry: exact.key, origin: exact.origin };
    const any = this.#byName.get("*");
    if (any) return { domain, entry: any.key, origin: any.origin };
    if (!subDomains) return undefined;
    for (let i = domain.indexOf("."); i >= 0; i = domain.indexOf(".", i + 1)) {
      const parent = domain.slice(i + 1);
      if (parent === "") break;
      const hit = this.#byName.get(parent);
      if (hit) {
        return { domain: parent, identity: `@${domain}`, entry: hit.key, origin: hit.origin };
      }
    }
    return undefined;
  }
}
