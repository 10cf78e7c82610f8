/**
 * ARCMode: whether the milter verifies ARC chains, seals mail, both or neither. OpenARC's
 * `Mode` (openarc.conf(5)) takes `s`, `v` or `sv`; dkimd's setting carries the ARC prefix
 * because opendkim.conf already has a `Mode`, and adds `none` (its default) so that upgrading
 * changes nothing.
 *
 * @module
 */
import { ValueError } from "./values.ts";

/** What the milter does with ARC (RFC 8617). */
export interface ArcMode {
  /** `s`: add the next ARC set to the mail dkimd verifies. */
  readonly seal: boolean;
  /** `v`: verify the ARC chain of the mail dkimd verifies, and say so in Authentication-Results. */
  readonly verify: boolean;
}

/** The default: no ARC at all. */
export const ARC_MODE_NONE: ArcMode = { seal: false, verify: false };

/**
 * Reads ARCMode: `none`, or the letters `s` and `v`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseArcMode } from "./arc_mode.ts";
 * assert.deepEqual(parseArcMode("sv"), { seal: true, verify: true });
 * assert.deepEqual(parseArcMode("none"), { seal: false, verify: false });
 * assert.throws(() => parseArcMode("x"), /unknown ARC mode "x"/);
 * ```
 */
export function parseArcMode(text: string): ArcMode {
  const t = text.trim().toLowerCase();
  if (t === "none") return ARC_MODE_NONE;
  let seal = false;
  let verify = false;
  for (const c of t) {
    if (c === "s") seal = true;
    else if (c === "v") verify = true;
    else throw new ValueError(`unknown ARC mode "${c}" (expected "none", "s", "v" or "sv")`);
  }
  if (!seal && !verify) throw new ValueError('expected "none", "s", "v" or "sv"');
  return { seal, verify };
}

/** Formats an ARC mode as it is written in the configuration (`none`, `s`, `v`, `sv`). */
export function formatArcMode(mode: ArcMode): string {
  return (mode.seal ? "s" : "") + (mode.verify ? "v" : "") || "none";
}
