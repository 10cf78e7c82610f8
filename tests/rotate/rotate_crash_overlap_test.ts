/**
 * `dkimd rotate` with RotationOverlap killed with SIGKILL before and after each SigningTable
 * write (both keys in, then out), then run again: tests/helpers/rotate_crash.ts says how the
 * boundaries are found and what holds after each kill.
 */
import assert from "node:assert/strict";
import { crashAtEveryBoundary, startCrashZone } from "../helpers/rotate_crash.ts";

Deno.test({
  name:
    "dkimd rotate with RotationOverlap killed (SIGKILL) before and after each SigningTable write (both keys in, then out), then run again: consistent end state, never an unproven key",
  fn: async () => {
    const dns = await startCrashZone();
    try {
      const killedAt = await crashAtEveryBoundary(dns, true, /\/\.signing\.table\./);
      // The twins' addition and their removal, each killed before and after its rename.
      assert.equal(killedAt.length, 4, killedAt.join("\n"));
      assert.equal(killedAt.filter((k) => k.startsWith("before the rename")).length, 2);
    } finally {
      await dns.close();
    }
  },
});
