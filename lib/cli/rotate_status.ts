/**
 * `dkimd rotate --status`: each key that rotates, its age, its rotation's next step and what it
 * waits for, as lines or JSON. Apart from the command because it only reads: it takes no lock
 * and changes nothing.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { decide, type Rotation } from "../rotate/rotation.ts";
import { type Candidate, keyAge } from "./rotate_candidates.ts";
import { ROTATE_EXIT } from "./rotate_exit.ts";
import { rotationTiming } from "./rotation_summary.ts";

/** Prints every candidate's key and rotation (`--status`, `--json` for JSON); resolves exit 0. */
export async function printStatus(
  candidates: readonly Candidate[],
  rotations: readonly Rotation[],
  config: Config,
  deps: { readonly now: () => number; readonly out: (line: string) => void },
  json: boolean,
): Promise<number> {
  const now = Math.floor(deps.now() / 1000);
  const rows = [];
  for (const c of candidates) {
    let age: number | undefined;
    try {
      age = await keyAge(c, rotations, now);
    } catch {
      // Reported as an unknown age.
    }
    const r = rotations.find((x) => x.keyName === c.keyName && x.step !== "done");
    const decision = r ? decide(r, now, rotationTiming(config)) : undefined;
    rows.push({
      keyName: c.keyName,
      domain: c.domain,
      selector: c.selector,
      keyType: c.keyType,
      keyAgeDays: age === undefined ? null : Math.floor(age / 86400),
      step: r?.step ?? null,
      newSelector: r?.newSelector ?? null,
      waitsFor: decision?.kind === "wait"
        ? `${decision.reason} (until ${new Date(decision.until * 1000).toISOString()})`
        : decision?.kind === "do" &&
            (decision.step === "prove" || decision.step === "prove-revoked")
        ? "DNS to serve the record"
        : null,
      lastError: r?.lastError ?? null,
    });
  }
  if (json) {
    deps.out(JSON.stringify(rows, null, 2));
    return ROTATE_EXIT.ok;
  }
  for (const row of rows) {
    deps.out(
      `${row.keyName} (${row.domain}): selector "${row.selector}" (${row.keyType}, ${
        row.keyAgeDays ?? "?"
      } days old)${
        row.step ? `; rotating to "${row.newSelector}", next step: ${row.step}` : "; no rotation"
      }${row.waitsFor ? `; waits for ${row.waitsFor}` : ""}${
        row.lastError ? `; last error: ${row.lastError}` : ""
      }`,
    );
  }
  return ROTATE_EXIT.ok;
}
