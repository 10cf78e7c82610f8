/**
 * The key rotation's metrics as the serving dkimd renders them at each scrape: its KeyTable's
 * keys with their age and the rotation state file's unfinished rotations
 * ({@link rotationMetricLines}). Read at scrape time because `dkimd rotate` is another process,
 * and the files are what it leaves behind.
 *
 * @module
 */

import type { Config } from "../config/schema.ts";
import type { KeyTableEntry } from "../policy/key_table.ts";
import { rotationMetricLines } from "../rotate/rotation_metrics.ts";
import { readKeyAges } from "./key_ages.ts";

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
  const { keys, rotations, stateError } = await readKeyAges(config, keyTable);
  const readable = stateError === undefined ? 1 : 0;
  return [
    "# HELP dkimd_rotation_state_readable 1 when RotationStateFile is absent or readable.",
    "# TYPE dkimd_rotation_state_readable gauge",
    `dkimd_rotation_state_readable ${readable}`,
    ...rotationMetricLines(keys, rotations, Math.floor(now / 1000)),
  ].join("\n") + "\n";
}
