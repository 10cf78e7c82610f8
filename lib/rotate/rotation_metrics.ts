/**
 * The key rotation's metrics, in the Prometheus text format: each signing key's age, the step
 * each unfinished rotation is at, and whether its last step failed. `dkimd rotate` is a separate
 * process that exits, so it keeps no metrics of its own: the serving dkimd renders these when
 * scraped, from its KeyTable and the rotation state file as they are then.
 *
 * @module
 */

import type { Rotation } from "./rotation.ts";

/** One signing key of the KeyTable, with when it started signing if known. */
export interface SigningKeyAge {
  /** The KeyTable entry's name. */
  readonly keyName: string;
  /** Its domain. */
  readonly domain: string;
  /** Its selector. */
  readonly selector: string;
  /** When it started signing, in seconds since the epoch; undefined when unknown. */
  readonly since?: number;
}

function label(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/**
 * The metric lines for `keys` and `rotations` at `now` (seconds): `dkimd_key_age_seconds`,
 * `dkimd_rotation_step` (1 for the step an unfinished rotation is at), `dkimd_rotation_error`
 * (1 while its last step failed; the message is in `dkimd rotate --status`) and
 * `dkimd_rotation_updated_time_seconds`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rotationMetricLines } from "./rotation_metrics.ts";
 * const lines = rotationMetricLines(
 *   [{ keyName: "main", domain: "example.com", selector: "old", since: 100 }],
 *   [{
 *     keyName: "main", domain: "example.com", keyType: "rsa", oldSelector: "old",
 *     oldKeyFile: "/k/old", newSelector: "new", newKeyFile: "/k/new", step: "prove",
 *     startedAt: 150, updatedAt: 160, lastError: "x",
 *   }],
 *   400,
 * );
 * assert.ok(lines.includes('dkimd_key_age_seconds{domain="example.com",selector="old",key="main"} 300'));
 * assert.ok(lines.includes('dkimd_rotation_step{domain="example.com",key="main",new_selector="new",step="prove"} 1'));
 * assert.ok(lines.includes('dkimd_rotation_error{domain="example.com",key="main"} 1'));
 * ```
 */
export function rotationMetricLines(
  keys: readonly SigningKeyAge[],
  rotations: readonly Rotation[],
  now: number,
): string[] {
  const out = [
    "# HELP dkimd_key_age_seconds How long each KeyTable key has signed (since its rotation's activation, else its file's modification time).",
    "# TYPE dkimd_key_age_seconds gauge",
  ];
  for (const k of keys) {
    if (k.since === undefined) continue;
    out.push(
      `dkimd_key_age_seconds{domain="${label(k.domain)}",selector="${label(k.selector)}",key="${
        label(k.keyName)
      }"} ${Math.max(0, now - k.since)}`,
    );
  }
  const open = rotations.filter((r) => r.step !== "done");
  const series = (r: Rotation) => `domain="${label(r.domain)}",key="${label(r.keyName)}"`;
  out.push(
    "# HELP dkimd_rotation_step The step each unfinished key rotation does next (dkimd rotate).",
    "# TYPE dkimd_rotation_step gauge",
    ...open.map((r) =>
      `dkimd_rotation_step{${series(r)},new_selector="${label(r.newSelector)}",step="${r.step}"} 1`
    ),
    "# HELP dkimd_rotation_error 1 while a rotation's last step failed (dkimd rotate --status says why).",
    "# TYPE dkimd_rotation_error gauge",
    ...open.map((r) => `dkimd_rotation_error{${series(r)}} ${r.lastError ? 1 : 0}`),
    "# HELP dkimd_rotation_updated_time_seconds When a rotation's state last changed.",
    "# TYPE dkimd_rotation_updated_time_seconds gauge",
    ...open.map((r) => `dkimd_rotation_updated_time_seconds{${series(r)}} ${r.updatedAt}`),
  );
  return out;
}
