/**
 * `dkimd rotate` killed with SIGKILL before and after each of its atomic writes (the state file
 * at each step, the new key file, the KeyTable), then run again: tests/helpers/rotate_crash.ts
 * says how the boundaries are found and what holds after each kill. The RotationOverlap cases
 * are in rotate_crash_overlap_test.ts (a file of their own, so the two run in parallel).
 */
import assert from "node:assert/strict";
import { crashAtEveryBoundary, startCrashZone } from "../helpers/rotate_crash.ts";

Deno.test({
  name:
    "dkimd rotate killed (SIGKILL) before and after each of its atomic writes, then run again: consistent end state, never an unproven key",
  fn: async () => {
    const dns = await startCrashZone();
    try {
      const killedAt = await crashAtEveryBoundary(dns, false);
      // Each of the rotation's atomic writes was killed before and after: the state file at
      // each step, the new key file, the KeyTable.
      assert.ok(killedAt.length >= 16, killedAt.join("\n"));
      assert.ok(killedAt.some((k) => /before the rename of DIR\/\.key\.table\./.test(k)));
      assert.ok(killedAt.some((k) => /after the rename of DIR\/keys\/\./.test(k)));
    } finally {
      await dns.close();
    }
  },
});
