// The CI soak: dkimd under steady load for CI_SOAK_SECONDS (`deno task soak` runs the same for
// 10 minutes, with tighter limits). Every answer must be right; dkimd's descriptors must come
// back to their count before the load; its memory floor must not grow past CI_SOAK_LIMITS after
// warm-up. The slope and latency percentiles are printed; latency is never asserted.
import assert from "node:assert/strict";
import {
  CI_SOAK_LIMITS,
  CI_SOAK_SECONDS,
  formatSoakReport,
  runSoak,
  soakProblems,
} from "./soak.ts";

Deno.test("runSoak(): dkimd under steady load answers every message, and its memory and descriptors stay flat", async () => {
  const report = await runSoak({ seconds: CI_SOAK_SECONDS });
  console.log(formatSoakReport(report));
  assert.deepEqual(soakProblems(report, CI_SOAK_LIMITS), []);
});
