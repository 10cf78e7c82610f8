/**
 * The key rotation's metrics as the serving dkimd renders them at each scrape: its KeyTable's
 * keys with their age and the rotation state file's unfinished rotations
 * ({@link rotationMetricLines}). Read at scrape time because `dkimd rotate` is another process,
 * and the files are what it leaves behind.
 *
 * @module
 */

import { isAbsolute, join, normalize } from "node:path";
import type { Config } from "../config/schema.ts";
import type { KeyTableEntry } from "../policy/key_table.ts";
import { keySignedSince, type Rotation } from "../rotate/rotation.ts";
import { rotationMetricLines, type SigningKeyAge } from "../rotate/rotation_metrics.ts";
import { readRotationState } from "../rotate/state_file.ts";

/**
 * The rotation metric lines for `config` and its loaded `keyTable` at `now` (milliseconds):
 * every key file entry with its age, and when the state file can be read, the rotations in it
 * (an unreadable state file gives `dkimd_rotation_state_readable 0`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scrapeRotation } from "./rotation_scrape.ts";
 * const text = await scrapeRotation({ rotationStateFile: "/nonexistent/rotation.json" }, undefined, 0);
 * assert.match(text, /^dkimd_rotation_state_readable 1$/m);
 * ```
 */
export async function scrapeRotation(
  config: Pick<Config, "rotationStateFile"> & Partial<Pick<Config, "baseDirectory">>,
  keyTable: { readonly entries: readonly KeyTableEntry[] } | undefined,
  now: number,
): Promise<string> {
  let rotations: readonly Rotation[] = [];
  let readable = 1;
  try {
    rotations = (await readRotationState(config.rotationStateFile)).rotations;
  } catch {
    readable = 0;
  }
  const keys: SigningKeyAge[] = [];
  for (const e of keyTable?.entries ?? []) {
    if (e.source.kind !== "file" || e.domain === "%") continue;
    let since = keySignedSince(rotations, e.name, e.selector);
    if (since === undefined) {
      const base = config.baseDirectory ?? ".";
      const path = isAbsolute(e.source.path)
        ? e.source.path
        : normalize(join(isAbsolute(base) ? base : join(Deno.cwd(), base), e.source.path));
      try {
        const mtime = (await Deno.stat(path)).mtime;
        if (mtime) since = Math.floor(mtime.getTime() / 1000);
      } catch {
        // An unreadable key file has no age to report; the key's own errors say why.
      }
    }
    keys.push({ keyName: e.name, domain: e.domain, selector: e.selector, since });
  }
  return [
    "# HELP dkimd_rotation_state_readable 1 when RotationStateFile is absent or readable.",
    "# TYPE dkimd_rotation_state_readable gauge",
    `dkimd_rotation_state_readable ${readable}`,
    ...rotationMetricLines(keys, rotations, Math.floor(now / 1000)),
  ].join("\n") + "\n";
}
