import assert from "node:assert/strict";
import { DkimError, type FailResult } from "../../lib/dkim/dkim_error.ts";

Deno.test("DkimError carries each failing result word, its reason and its cause", () => {
  const results: FailResult[] = ["fail", "neutral", "policy", "temperror", "permerror"];
  for (const result of results) {
    const cause = new SyntaxError("tag list");
    const e = new DkimError(result, `why ${result}`, { cause });
    assert.ok(e instanceof Error);
    assert.equal(e.name, "DkimError");
    assert.equal(e.result, result);
    assert.equal(e.message, `why ${result}`);
    assert.equal(e.cause, cause);
  }
  assert.equal(new DkimError("permerror", "x").cause, undefined);
});
