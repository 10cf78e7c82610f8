/**
 * One key rotation as data, and its steps as pure functions: what to do next given the time,
 * and the rotation after a step is done. The order is the one that cannot break mail
 * (RFC 6376 §3.6.1 for revocation; M3AAWG's DKIM key rotation practice for the rest):
 *
 *     generate → publish → prove → activate → retire (p= revoked) → prove-revoked → delete → done
 *
 * Nothing signs with the new key before every server serves it (prove), and the old record is
 * revoked only after signatures made with it have expired (retire). Each step is idempotent, so
 * a run killed between a step's effect and the state write repeats the step harmlessly.
 *
 * @module
 */

import type { KeyType } from "../crypto/key_type.ts";

/** The step a rotation does next; `done` when nothing is left. */
export type RotationStep =
  | "generate"
  | "publish"
  | "prove"
  | "activate"
  | "retire"
  | "prove-revoked"
  | "delete"
  | "done";

/** One rotation of one KeyTable entry's key, as the state file keeps it. */
export interface Rotation {
  /** The KeyTable entry's name, which the SigningTable refers to and which stays the same. */
  readonly keyName: string;
  /** The signing domain. */
  readonly domain: string;
  /** The key type, the old key's. */
  readonly keyType: KeyType;
  /** The selector being replaced. */
  readonly oldSelector: string;
  /** The private key file being replaced. */
  readonly oldKeyFile: string;
  /** The new selector. */
  readonly newSelector: string;
  /** The new private key file. */
  readonly newKeyFile: string;
  /** What to do next. */
  readonly step: RotationStep;
  /** When the rotation started, in seconds since the epoch. */
  readonly startedAt: number;
  /**
   * When both keys started signing (RotationOverlap): the activation is then half done, and
   * completes once the overlap has passed.
   */
  readonly overlapStartedAt?: number;
  /**
   * When a KeyTable row in a database was switched to the new key (committed): the activation
   * is then half done, and completes once no running dkimd can still use its cached old row
   * ({@link RotationTiming.cacheDelay} later).
   */
  readonly switchedAt?: number;
  /** When the KeyTable switched to the new key alone: the old key's last signature. */
  readonly activatedAt?: number;
  /** When the state last changed. */
  readonly updatedAt: number;
  /** The last error, until a step succeeds. */
  readonly lastError?: string;
}

/** The times that gate retirement and deletion, in seconds. */
export interface RotationTiming {
  /** RotationRetireAfter. */
  readonly retireAfter: number;
  /** RotationDeleteAfter. */
  readonly deleteAfter: number;
  /**
   * The least time before revoking: the longest a signature made with the old key stays valid
   * to verifiers (SignatureTTL, when set) plus the time resolvers may cache the old record.
   */
  readonly minimumRetire: number;
  /** RotationOverlap: how long both keys sign before the old one stops (default 0). */
  readonly overlap?: number;
  /**
   * For a KeyTable in a database: how long a running dkimd may still sign with a row it cached
   * (DataSetCacheTTL + DataSetStaleLimit); default 0.
   */
  readonly cacheDelay?: number;
}

/** What to do with a rotation now. */
export type Decision =
  | { readonly kind: "do"; readonly step: Exclude<RotationStep, "done"> }
  | { readonly kind: "wait"; readonly until: number; readonly reason: string }
  | { readonly kind: "done" };

/** The step after each step. */
const NEXT: { readonly [S in Exclude<RotationStep, "done">]: RotationStep } = {
  generate: "publish",
  publish: "prove",
  prove: "activate",
  activate: "retire",
  retire: "prove-revoked",
  "prove-revoked": "delete",
  delete: "done",
};

/**
 * What to do with `rotation` at `now`: its step, unless the step waits for a time (retire and
 * delete count from activation; an activation begun with both keys signing waits for the
 * overlap to end, and one whose database row is switched waits for the caches of running
 * dkimds to expire).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decide } from "./rotation.ts";
 * const r = {
 *   keyName: "k", domain: "example.com", keyType: "ed25519" as const,
 *   oldSelector: "old", oldKeyFile: "/k/old.private", newSelector: "new", newKeyFile: "/k/new.private",
 *   step: "retire" as const, startedAt: 0, activatedAt: 100, updatedAt: 100,
 * };
 * const timing = { retireAfter: 50, deleteAfter: 500, minimumRetire: 80 };
 * assert.deepEqual(decide(r, 150, timing), { kind: "wait", until: 180, reason: "the old key's signatures to expire" });
 * assert.deepEqual(decide(r, 180, timing), { kind: "do", step: "retire" });
 * ```
 */
export function decide(rotation: Rotation, now: number, timing: RotationTiming): Decision {
  const { step } = rotation;
  if (step === "done") return { kind: "done" };
  const activated = rotation.activatedAt ?? now;
  if (step === "activate" && rotation.overlapStartedAt !== undefined) {
    const until = rotation.overlapStartedAt + (timing.overlap ?? 0);
    if (now < until) return { kind: "wait", until, reason: "the overlap of both keys to end" };
  }
  if (step === "activate" && rotation.switchedAt !== undefined) {
    const until = rotation.switchedAt + (timing.cacheDelay ?? 0);
    if (now < until) {
      return {
        kind: "wait",
        until,
        reason: "running dkimds to drop the old KeyTable row from their caches " +
          "(DataSetCacheTTL + DataSetStaleLimit)",
      };
    }
  }
  if (step === "retire") {
    const until = activated + Math.max(timing.retireAfter, timing.minimumRetire);
    if (now < until) return { kind: "wait", until, reason: "the old key's signatures to expire" };
  }
  if (step === "delete") {
    const until = activated +
      Math.max(timing.deleteAfter, timing.retireAfter, timing.minimumRetire);
    if (now < until) return { kind: "wait", until, reason: "the time to delete the old key" };
  }
  return { kind: "do", step };
}

/**
 * The rotation after `step` was done at `now`: the next step, the activation time when it was
 * the activation, and no error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { completeStep } from "./rotation.ts";
 * const r = {
 *   keyName: "k", domain: "example.com", keyType: "rsa" as const,
 *   oldSelector: "old", oldKeyFile: "/k/old.private", newSelector: "new", newKeyFile: "/k/new.private",
 *   step: "activate" as const, startedAt: 0, updatedAt: 0, lastError: "x",
 * };
 * const next = completeStep(r, "activate", 42);
 * assert.equal(next.step, "retire");
 * assert.equal(next.activatedAt, 42);
 * assert.equal(next.lastError, undefined);
 * ```
 */
export function completeStep(
  rotation: Rotation,
  step: Exclude<RotationStep, "done">,
  now: number,
): Rotation {
  if (rotation.step !== step) {
    throw new RangeError(`Cannot complete step "${step}": the rotation is at "${rotation.step}"`);
  }
  const { lastError: _, ...rest } = rotation;
  return {
    ...rest,
    step: NEXT[step],
    updatedAt: now,
    ...(step === "activate" ? { activatedAt: now } : {}),
  };
}

/** The KeyTable entry a rotation starts from. */
export interface RotatedKey {
  /** The entry's name. */
  readonly keyName: string;
  /** Its signing domain. */
  readonly domain: string;
  /** Its key's type. */
  readonly keyType: KeyType;
  /** Its selector. */
  readonly selector: string;
  /** Its private key file. */
  readonly keyFile: string;
}

/**
 * A new rotation of `key` to `newSelector` and `newKeyFile`, at its first step.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startRotation } from "./rotation.ts";
 * const key = { keyName: "k", domain: "example.com", keyType: "rsa" as const, selector: "old", keyFile: "/k/old.private" };
 * assert.equal(startRotation(key, "new", "/k/new.private", 7).step, "generate");
 * ```
 */
export function startRotation(
  key: RotatedKey,
  newSelector: string,
  newKeyFile: string,
  now: number,
): Rotation {
  return {
    keyName: key.keyName,
    domain: key.domain,
    keyType: key.keyType,
    oldSelector: key.selector,
    oldKeyFile: key.keyFile,
    newSelector,
    newKeyFile,
    step: "generate",
    startedAt: now,
    updatedAt: now,
  };
}

/**
 * Whether a key of age `ageSeconds` is due: always with `--now`, never when `interval` is 0
 * (RotationInterval's default: rotation off), else when it is at least `interval` old.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isDue } from "./rotation.ts";
 * assert.equal(isDue(100, 0, false), false);
 * assert.equal(isDue(100, 0, true), true);
 * assert.equal(isDue(100, 90, false), true);
 * ```
 */
export function isDue(ageSeconds: number, interval: number, now: boolean): boolean {
  if (now) return true;
  return interval > 0 && ageSeconds >= interval;
}

/**
 * When the key `selector` of KeyTable entry `keyName` started signing, as the state file
 * knows it: the activation of the latest rotation that made it. Undefined for a key no
 * rotation made (the admin's first key), whose age only its file's mtime can tell. The state
 * file wins over the mtime because a copy, a restore from backup or a package upgrade resets
 * an mtime and would make an old key look new, and because a key's age counts from the day it
 * started signing, not from the day it was generated and waited for DNS.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keySignedSince } from "./rotation.ts";
 * const r = {
 *   keyName: "k", domain: "example.com", keyType: "rsa" as const,
 *   oldSelector: "old", oldKeyFile: "/k/old.private", newSelector: "new", newKeyFile: "/k/new.private",
 *   step: "done" as const, startedAt: 0, activatedAt: 100, updatedAt: 900,
 * };
 * assert.equal(keySignedSince([r], "k", "new"), 100);
 * assert.equal(keySignedSince([r], "k", "old"), undefined);
 * ```
 */
export function keySignedSince(
  rotations: readonly Rotation[],
  keyName: string,
  selector: string,
): number | undefined {
  let since: number | undefined;
  for (const r of rotations) {
    if (r.keyName !== keyName || r.newSelector !== selector || r.activatedAt === undefined) {
      continue;
    }
    since = Math.max(since ?? 0, r.activatedAt);
  }
  return since;
}
