/**
 * The environment a test starts dkimd with: this process's, less the variables through which a
 * service manager or dkimd itself tells dkimd how it was started ({@link SERVICE_ENV_NAMES}).
 * A test run inherits them from wherever it runs: under a systemd service (a CI runner, or
 * `systemd-run`) `INVOCATION_ID` is set, and a dkimd that sees it leaves AutoRestart to systemd
 * and never detaches, so the supervisor and Background tests would test another program. Pass
 * the result with `clearEnv: true`.
 *
 * @module
 */

import { SERVICE_ENV_NAMES } from "../../lib/ops/self_command.ts";

/**
 * This process's environment without {@link SERVICE_ENV_NAMES}, then `extra` (which may set
 * one of them on purpose).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dkimdEnv } from "./dkimd_env.ts";
 * const env = dkimdEnv({ NO_COLOR: "1", DKIMD_READY: "stdout" });
 * assert.equal(env.INVOCATION_ID, undefined);
 * assert.equal(env.DKIMD_READY, "stdout");
 * assert.equal(env.NO_COLOR, "1");
 * ```
 */
export function dkimdEnv(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  const env = Deno.env.toObject();
  for (const name of SERVICE_ENV_NAMES) delete env[name];
  return { ...env, ...extra };
}
