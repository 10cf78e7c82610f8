/**
 * The ARC set parser both the verifier and the sealer use (lib/arc/arc_set.ts): how a broken
 * chain reads, and the instance a sealer numbers from when it is broken.
 */
import assert from "node:assert/strict";
import { fromLatin1 } from "../../lib/bytes.ts";
import { ArcSyntaxError, collectArcSets, highestArcInstance } from "../../lib/arc/arc_set.ts";
import { splitMessage } from "../../lib/dkim/header.ts";

Deno.test("collectArcSets() and highestArcInstance() report duplicate, missing and unnumbered ARC fields", () => {
  const seal2 = "ARC-Seal: i=2; a=rsa-sha256; cv=pass; d=a.example; s=s; b=AA==\r\n";
  // [header, collectArcSets' complaint (undefined: no ARC at all), highestArcInstance]
  const cases: [string, string | undefined, number][] = [
    [
      "ARC-Authentication-Results: i=1; mx; none\r\n",
      "ARC set 1 of 1 incomplete: no ARC-Message-Signature, ARC-Seal",
      1,
    ],
    [
      "ARC-Authentication-Results: i=1; mx; none\r\nARC-Authentication-Results: i=1; mx; none\r\n",
      "more than one ARC-Authentication-Results with i=1",
      1,
    ],
    ["ARC-Seal: i=2; cv=none; b=AA\r\n", "ARC-Seal missing required tag (a=)", 2],
    [
      seal2,
      "ARC set 1 of 2 incomplete: no ARC-Authentication-Results, ARC-Message-Signature, ARC-Seal",
      2,
    ],
    ["ARC-Seal: cv=none; b=AA\r\n", "ARC-Seal has no i= tag", 0],
    [
      "ARC-Authentication-Results: mx; i=1; none\r\n",
      "ARC-Authentication-Results does not start with i=N;",
      0,
    ],
    ["ARC-Seal: i=51; cv=pass; b=AA\r\n", 'ARC-Seal has an invalid instance i="51"', 0],
    ["Subject: no ARC\r\n", undefined, 0],
  ];
  for (const [head, problem, highest] of cases) {
    const { fields } = splitMessage(fromLatin1(`${head}From: a\r\n\r\n`));
    if (problem === undefined) {
      assert.deepEqual(collectArcSets(fields), [], head);
    } else {
      assert.throws(
        () => collectArcSets(fields),
        (e) => e instanceof ArcSyntaxError && e.message === problem,
        head,
      );
    }
    assert.equal(highestArcInstance(fields), highest, head);
  }
});
