// Replays every input in tests/fuzz/regressions/*.json: inputs that once crashed, hung or
// misled a parser. Each runs in a worker (tests/helpers/fuzz.ts boundedCall) so a regression
// to quadratic time shows as a failure here instead of a stuck test run.
import assert from "node:assert/strict";
import { boundedCall } from "../helpers/fuzz.ts";

/** One regression file. */
interface Regression {
  /** The export of regressions/targets.ts to call. */
  readonly target: string;
  /** What went wrong before the fix. */
  readonly found: string;
  /** The input as latin1 text parts, each optionally repeated: [text, count]. */
  readonly input: readonly (readonly [string, number?])[];
  /** The summary the target returns now, when it returns. */
  readonly returns?: unknown;
  /** The error name the target throws now, when it throws. */
  readonly throws?: string;
}

/** Far above the normal running time (well under a second): only a hang reaches it. */
const HANG_LIMIT_MS = 60_000;

const DIR = new URL("./regressions/", import.meta.url);
const TARGETS = new URL("targets.ts", DIR).href;

const names: string[] = [];
for await (const entry of Deno.readDir(DIR)) {
  if (entry.isFile && entry.name.endsWith(".json")) names.push(entry.name);
}
names.sort();

for (const name of names) {
  const regression: Regression = JSON.parse(await Deno.readTextFile(new URL(name, DIR)));
  Deno.test(`${regression.target}() replays regressions/${name}`, async () => {
    assert.ok(
      (regression.returns === undefined) !== (regression.throws === undefined),
      `${name} must give exactly one of "returns" and "throws"`,
    );
    const input = regression.input.map(([text, count]) => text.repeat(count ?? 1)).join("");
    const outcome = await boundedCall(TARGETS, regression.target, [input], HANG_LIMIT_MS);
    assert.notEqual(outcome.kind, "timeout", `${name} hung: ${regression.found}`);
    if (regression.throws !== undefined) {
      assert.equal(outcome.kind, "threw", `${name}: ${JSON.stringify(outcome)}`);
      if (outcome.kind === "threw") assert.equal(outcome.name, regression.throws, outcome.message);
    } else {
      assert.deepEqual(outcome, { kind: "returned", value: regression.returns }, name);
    }
  });
}
