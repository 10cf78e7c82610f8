/**
 * When each KeyTable key started signing, as the rotation tools report it: since the activation
 * the rotation state file recorded for it ({@link keySignedSince}), else since its key file's
 * modification time (a key `dkimd rotate` did not make). Read from the files as they are now,
 * because `dkimd rotate` is another process: the metrics scrape, `check-config` and `explain`
 * all ask this.
 *
 * @module
 */

import { isAbsolute, join, normalize } from "node:path";
import type { Config } from "../config/schema.ts";
import type { KeyTableEntry } from "../policy/key_table.ts";
import { keySignedSince, type Rotation } from "../rotate/rotation.ts";
import type { SigningKeyAge } from "../rotate/rotation_metrics.ts";
import { readRotationState } from "../rotate/state_file.ts";

/** A key's age with what it was read from. */
export interface KeyAge extends SigningKeyAge {
  /** Where `since` came from: the recorded activation or the key file; undefined when unknown. */
  readonly sinceFrom?: "activation" | "key file";
}

/** The keys' ages and the rotation state they were read with. */
export interface KeyAges {
  /** Every key file entry of the KeyTable (no `%` entries), in its order. */
  readonly keys: readonly KeyAge[];
  /** The state file's rotations; empty when it is absent or unreadable. */
  readonly rotations: readonly Rotation[];
  /** The state file's error, when it exists but cannot be read. */
  readonly stateError?: string;
}

/**
 * The ages of the keys of `keyTable` (its file keys), with the rotations of
 * `config.rotationStateFile`; relative key paths are read from `BaseDirectory`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readKeyAges } from "./key_ages.ts";
 * const ages = await readKeyAges({ rotationStateFile: "/nonexistent/rotation.json" }, undefined);
 * assert.deepEqual(ages, { keys: [], rotations: [] });
 * ```
 */
export async function readKeyAges(
  config: Pick<Config, "rotationStateFile"> & Partial<Pick<Config, "baseDirectory">>,
  keyTable: { readonly entries: readonly KeyTableEntry[] } | undefined,
): Promise<KeyAges> {
  let rotations: readonly Rotation[] = [];
  let stateError: string | undefined;
  try {
    rotations = (await readRotationState(config.rotationStateFile)).rotations;
  } catch (error) {
    stateError = (error as Error).message;
  }
  const keys: KeyAge[] = [];
  for (const e of keyTable?.entries ?? []) {
    if (e.source.kind !== "file" || e.domain === "%") continue;
    const entry = { keyName: e.name, domain: e.domain, selector: e.selector };
    const activated = keySignedSince(rotations, e.name, e.selector);
    if (activated !== undefined) {
      keys.push({ ...entry, since: activated, sinceFrom: "activation" });
      continue;
    }
    const base = config.baseDirectory ?? ".";
    const path = isAbsolute(e.source.path)
      ? e.source.path
      : normalize(join(isAbsolute(base) ? base : join(Deno.cwd(), base), e.source.path));
    try {
      const mtime = (await Deno.stat(path)).mtime;
      keys.push(
        mtime
          ? { ...entry, since: Math.floor(mtime.getTime() / 1000), sinceFrom: "key file" }
          : entry,
      );
    } catch {
      // An unreadable key file has no age to report; the key's own errors say why.
      keys.push(entry);
    }
  }
  return { keys, rotations, ...(stateError !== undefined ? { stateError } : {}) };
}
