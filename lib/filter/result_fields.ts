/**
 * The Authentication-Results and DKIM-Filter fields as dkimd writes them at end of message: the
 * authserv-id its results carry, the forged fields removed before ours is added (RFC 8601 §5,
 * RemoveARFrom), and the DKIM-Filter field SoftwareHeader adds. Shared by the signing, verifying
 * and malformed-mail answers, which all write them.
 *
 * @module
 */
import { AUTH_RESULTS_FIELD, parseAuthservId } from "../dkim/auth_results.ts";
import { fieldValueText, type HeaderField, isField } from "../dkim/header.ts";
import type { MacroReader, Modification } from "../milter/filter.ts";
import { VERSION } from "../version.ts";
import { claimsAuthservId } from "./arrival_results.ts";
import type { ConnectionScope } from "./connection_scope.ts";
import { deletions, mtaText } from "./mta_fields.ts";
import type { Transaction } from "./transaction.ts";

/** The DKIM-Filter field SoftwareHeader adds. */
export const SOFTWARE_FIELD = "DKIM-Filter";

/** The authserv-id: AuthservID, or the MTA's name (macro j), or this host's name. */
export function authservId(scope: ConnectionScope, tx: Transaction, macros: MacroReader): string {
  const a = tx.runtime.loaded.config.authservId;
  if (a.kind === "name") return a.name;
  if (a.kind === "mta") return macros.get("j") || scope.deps.hostname;
  return scope.deps.hostname;
}

/**
 * Deletions for every Authentication-Results field that claims our authserv-id (RFC 8601 §5),
 * and those from RemoveARFrom hosts that carry a DKIM result (all of theirs with RemoveARAll).
 */
export async function forgedResults(tx: Transaction, id: string): Promise<Modification[]> {
  const { loaded } = tx.runtime;
  const from = loaded.hosts.removeArFrom;
  const picked: HeaderField[] = [];
  for (const f of tx.fields) {
    if (!isField(f, AUTH_RESULTS_FIELD)) continue;
    const value = fieldValueText(f);
    const claimed = parseAuthservId(value);
    if (claimed === undefined) continue;
    if (claimsAuthservId(value, id)) {
      picked.push(f);
    } else if (
      from && (loaded.config.removeArAll || /(^|[;\s])dkim\s*=/i.test(value)) &&
      (await from.matchName(claimed)).matched
    ) {
      picked.push(f);
    }
  }
  return picked.length === 0 ? [] : deletions(tx.fields, (f) => picked.includes(f));
}

/** The DKIM-Filter field (SoftwareHeader): dkimd's version, this host and the job. */
export function softwareField(scope: ConnectionScope, qid: string): Modification {
  return {
    type: "insheader",
    index: 0,
    name: SOFTWARE_FIELD,
    value: mtaText(
      ` dkimd ${VERSION} ${scope.deps.hostname} ${qid}`,
      scope.info.session.leadingSpace,
    ),
  };
}
