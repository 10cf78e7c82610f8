// ReplaceRules as OpenDKIM's dkimf_load_replist() reads them and mlfi_header() applies them.
import assert from "node:assert/strict";
import {
  applyReplaceRules,
  basicRegExp,
  MAX_REPLACEMENTS_PER_RULE,
  parseReplaceRules,
} from "../../lib/policy/replace_rules.ts";
import { SourceError } from "../../lib/policy/origin.ts";

Deno.test("basicRegExp() reads POSIX basic syntax: \\( \\) \\{ \\} groups and counts, literal ( + ? |", () => {
  const cases: [string, string, boolean][] = [
    ["a\\(b\\)\\{2\\}", "abb", true],
    ["a+", "a+", true],
    ["a+", "aa", false],
    ["(x)", "(x)", true],
    ["*a", "*a", true],
    ["a\\|b", "b", true],
    ["x$y", "x$y", true],
    ["^a", "ba", false],
    ["[[:digit:]]\\+", "a12", true],
    ["[\\]", "\\", true],
    ["a.b", "a\nb", true],
  ];
  for (const [bre, text, want] of cases) assert.equal(basicRegExp(bre).test(text), want, bre);
});

Deno.test("parseReplaceRules() applies the last line first, splits at the last tab, and refuses a line without one", () => {
  const rules = parseReplaceRules("a\tb\n# comment\n\nb\tc # note\n", "/r");
  assert.deepEqual(rules.map((r) => [r.source, r.replacement]), [["b", "c "], ["a", "b"]]);
  assert.equal(applyReplaceRules("ab", rules), "bc ");
  assert.throws(() => parseReplaceRules("ok\tfine\nno tab\n", "/r"), (e: unknown) => {
    assert.ok(e instanceof SourceError);
    assert.match(e.message, /ReplaceRules at \/r:2: expected an expression, a tab/);
    return true;
  });
  assert.throws(() => parseReplaceRules("a\\(\tb\n", "/r"), /is not a regular expression/);
});

Deno.test("applyReplaceRules() replaces until no match, and stops a rule that would loop forever", () => {
  assert.equal(applyReplaceRules("aaa", parseReplaceRules("a\tb\n", "/r")), "bbb");
  const looping = applyReplaceRules("a", parseReplaceRules("a\taa\n", "/r"));
  assert.equal(looping.length, MAX_REPLACEMENTS_PER_RULE + 1);
});
