/**
 * "Did you mean": the known name closest to a misspelt one, for the unknown-setting errors of
 * opendkim.conf and YAML (STYLE.md: unknown keys are errors, with the closest known name).
 *
 * @module
 */

/** Longest name compared for suggestions: bounds the quadratic edit distance. */
export const MAX_SUGGEST_LENGTH = 64;

/**
 * The known name closest to `name` (case-insensitive edit distance), when it is close enough
 * to be a likely typo: at most 2 edits, or a third of the name; failing that, the one name that
 * `name` abbreviates. Of equally close names, the first in `candidates` wins.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closestName } from "./did_you_mean.ts";
 * import { knownSettingNames } from "./settings.ts";
 * assert.equal(closestName("SigningTabel", knownSettingNames()), "SigningTable");
 * assert.equal(closestName("keytable", knownSettingNames()), "KeyTable");
 * assert.equal(closestName("Frobnicate", knownSettingNames()), undefined);
 * assert.equal(closestName("badSig", ["badSignature", "dnsError"]), "badSignature");
 * ```
 */
export function closestName(name: string, candidates: readonly string[]): string | undefined {
  if (name.length > MAX_SUGGEST_LENGTH) return undefined;
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(lower, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const limit = Math.max(2, Math.floor(name.length / 3));
  if (bestDistance <= limit) return best;
  // An abbreviation ("badSig") is far in edits but plain to a reader.
  const prefixed = lower.length >= 3
    ? candidates.filter((c) => c.toLowerCase().startsWith(lower))
    : [];
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

// Levenshtein distance in one row of memory.
function editDistance(a: string, b: string): number {
  const prev = new Array(b.length + 1).fill(0).map((_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length];
}
