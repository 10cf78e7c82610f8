/**
 * What `check-config` and `explain` say about key rotation: for each key of a rotated domain,
 * the selector that signs and for how long (since its rotation's activation, else its key
 * file's modification time, as the metrics say), and the step of the rotation in progress with
 * what it waits for, from the rotation state file `dkimd rotate` leaves behind.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import type { KeyAge, KeyAges } from "../ops/key_ages.ts";
import { decide, type RotationTiming } from "../rotate/rotation.ts";
import { overlapKeyName } from "../rotate/overlap_edit.ts";

/** TTL of the records rotate publishes: short, so a fix or a revocation spreads quickly. */
export const ROTATION_RECORD_TTL = 300;

/**
 * The rotation's timing from `config`: retirement never before the old signatures expire, and
 * a switched database row complete only once dkimds' caches of it have expired.
 */
export function rotationTiming(
  config:
    & Pick<
      Config,
      "rotationRetireAfter" | "rotationDeleteAfter" | "signatureTtl" | "rotationOverlap"
    >
    & Partial<Pick<Config, "dataSetCacheTtl" | "dataSetStaleLimit">>,
): RotationTiming {
  return {
    retireAfter: config.rotationRetireAfter,
    deleteAfter: config.rotationDeleteAfter,
    minimumRetire: (config.signatureTtl ?? 0) + ROTATION_RECORD_TTL,
    overlap: config.rotationOverlap,
    // A switched database row is used by every dkimd once their cached rows have expired.
    cacheDelay: (config.dataSetCacheTtl ?? 0) + (config.dataSetStaleLimit ?? 0),
  };
}

/**
 * Whether rotation concerns this configuration: a `RotationInterval`, or rotations (or an
 * unreadable file) in the state file; otherwise the tools say nothing about it.
 */
export function rotationInUse(config: Pick<Config, "rotationInterval">, ages: KeyAges): boolean {
  return config.rotationInterval > 0 || ages.rotations.length > 0 ||
    ages.stateError !== undefined;
}

/**
 * An age in seconds for people: days past one day, else hours and minutes, else seconds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatAge } from "./rotation_summary.ts";
 * assert.equal(formatAge(12), "12 s");
 * assert.equal(formatAge(3720), "1 h 2 min");
 * assert.equal(formatAge(3 * 86400 + 5), "3 days");
 * ```
 */
export function formatAge(seconds: number): string {
  if (seconds >= 86400) {
    const days = Math.floor(seconds / 86400);
    return `${days} day${days === 1 ? "" : "s"}`;
  }
  if (seconds >= 3600) {
    return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  }
  if (seconds >= 60) return `${Math.floor(seconds / 60)} min`;
  return `${seconds} s`;
}

/**
 * One line about `key` at `now` (seconds): `s=SELECTOR signing for AGE (since DATE, from the
 * rotation's activation | the key file's modification time)`, then the rotation it is part
 * of, if one is unfinished: its step and what it waits for, and its last error.
 */
export function describeKeyRotation(
  key: KeyAge,
  ages: KeyAges,
  config: Parameters<typeof rotationTiming>[0],
  now: number,
): string {
  const age = key.since === undefined
    ? "signing for an unknown time (the key file cannot be read)"
    : `signing for ${formatAge(Math.max(0, now - key.since))} (since ${
      new Date(key.since * 1000).toISOString()
    }, ${
      key.sinceFrom === "activation"
        ? "its rotation's activation"
        : "the key file's modification time"
    })`;
  const open = ages.rotations.filter((r) => r.step !== "done" && r.domain === key.domain);
  const own = open.find((r) => r.keyName === key.keyName);
  const overlap = open.find((r) => overlapKeyName(r.keyName, r.newSelector) === key.keyName);
  let rotation = "";
  if (own) {
    const d = decide(own, now, rotationTiming(config));
    const waits = d.kind === "wait"
      ? `, waits for ${d.reason} (until ${new Date(d.until * 1000).toISOString()})`
      : d.kind === "do" && (d.step === "prove" || d.step === "prove-revoked")
      ? ", waits for DNS to serve the record (dkimd rotate proves it)"
      : "";
    rotation = `; rotation "${own.oldSelector}" → "${own.newSelector}" in progress, next step: ${
      own.overlapStartedAt !== undefined && own.step === "activate"
        ? "activate (both keys sign now)"
        : own.step
    }${waits}${own.lastError ? `; last error: ${own.lastError}` : ""}`;
  } else if (overlap) {
    rotation = `; the new key of "${overlap.keyName}", signing beside "${overlap.oldSelector}" ` +
      `during RotationOverlap`;
  }
  return `s=${key.selector} ${age}${rotation}`;
}

/**
 * `check-config`'s lines about rotation (none when {@link rotationInUse} is false): the
 * settings and the state file, then each key of the KeyTable as {@link describeKeyRotation}.
 */
export function rotationConfigLines(
  config:
    & Parameters<typeof rotationTiming>[0]
    & Pick<Config, "rotationInterval" | "rotationStateFile">,
  ages: KeyAges,
  now: number,
): string[] {
  if (!rotationInUse(config, ages)) return [];
  const out = [
    `  ${"Key rotation".padEnd(20)} RotationInterval ${config.rotationInterval} s${
      config.rotationInterval === 0 ? " (only with dkimd rotate --now)" : ""
    }, RotationOverlap ${config.rotationOverlap} s, RotationRetireAfter ${config.rotationRetireAfter} s, ` +
    `RotationDeleteAfter ${config.rotationDeleteAfter} s; state in ${config.rotationStateFile}`,
  ];
  if (ages.stateError !== undefined) out.push(`    ${ages.stateError}`);
  for (const key of ages.keys) {
    out.push(`    ${key.keyName}: d=${key.domain} ${describeKeyRotation(key, ages, config, now)}`);
  }
  return out;
}
