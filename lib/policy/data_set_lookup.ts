/**
 * The one lookup interface behind the data sets dkimd asks while mail flows (opendkim(8), DATA
 * SETS): keys in, the entry of each key out, asynchronously. It is OpenDKIM's `dkimf_db_get()`
 * made batch-wise: the tables built on a data set ask their keys in OpenDKIM's documented order
 * (the SigningTable's full address, domain, parent domains; the Domain set's name, `*`,
 * parents; ExemptDomains', DontSignMailTo's and MTA's names) and never walk the set, so a back
 * end that holds millions of rows answers a message with one query, and a new back end is one
 * class implementing this interface, the filter unchanged.
 *
 * A file or `csl:` list is read whole at load and held in a {@link NameSet}, which answers at
 * once. A database back end (`dsn:`, `ldap:`) answers with one query for all the keys of a call,
 * or from its cache of positive and negative answers, and rejects when the database cannot
 * answer, so the message gets the On-InternalError action instead of a wrong decision.
 *
 * @module
 */

import type { DataSetEntry } from "./dataset.ts";

/**
 * A data set asked by exact key.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { DataSetLookup } from "./data_set_lookup.ts";
 * import { NameSet } from "./name_set.ts";
 * const at = { file: "/etc/opendkim/exempt", line: 1 };
 * const exempt: DataSetLookup = new NameSet([{ key: "example.org", origin: at }], true);
 * const [hit, miss] = await exempt.lookup(["Example.ORG", "example.com"]);
 * assert.equal(hit?.origin.line, 1);
 * assert.equal(miss, undefined);
 * ```
 */
export interface DataSetLookup {
  /**
   * The first entry of each of `keys`, in the order asked (`undefined` where the set has none).
   * Keys compare as the set was opened: ASCII case-insensitively for every set but MTA's, as
   * OpenDKIM opens them (`DKIMF_DB_FLAG_ICASE`). Rejects when the back end cannot answer.
   */
  lookup(keys: readonly string[]): Promise<readonly (DataSetEntry | undefined)[]>;
}

/**
 * True for an error its data set has logged already: the first failure of an outage (with the
 * line when it ends), or a bad database row (once). The filter then applies On-InternalError to
 * the message without logging the same failure again for every message, so an outage is one log
 * line, not one per message.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isReported } from "./data_set_lookup.ts";
 * assert.equal(isReported(Object.assign(new Error("down"), { reported: true })), true);
 * assert.equal(isReported(new Error("unexpected")), false);
 * ```
 */
export function isReported(e: unknown): boolean {
  return e instanceof Error && (e as { reported?: unknown }).reported === true;
}
