/**
 * The resolver a message's key lookups go through: each lookup is reported to the observer (for
 * the metrics), and what each failure said is kept by name for the log, as the verdict's reason
 * has only the kind of failure (verdict_log.ts).
 *
 * @module
 */
import { asciiLower } from "../bytes.ts";
import { resolveTxtChecked, type TxtResolver } from "../dns/resolver.ts";
import { errorMessage } from "../error_message.ts";
import type { FilterObserver } from "./observer.ts";

/**
 * `resolver`, reporting each lookup to `observer` and keeping each failure's message in
 * `failures` under the lower-cased name looked up.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NO_OBSERVER } from "./observer.ts";
 * import { observedResolver } from "./observed_resolver.ts";
 * const failures = new Map<string, string>();
 * const resolver = observedResolver(
 *   { resolveTxt: () => Promise.reject(new Error("timed out")) },
 *   failures,
 *   NO_OBSERVER,
 * );
 * await assert.rejects(resolver.resolveTxt("S._domainkey.example.com"));
 * assert.equal(failures.get("s._domainkey.example.com"), "timed out");
 * ```
 */
export function observedResolver(
  resolver: TxtResolver,
  failures: Map<string, string>,
  observer: FilterObserver,
): TxtResolver {
  const observed = async <T>(name: string, lookup: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    try {
      const answer = await lookup();
      observer.lookup({ outcome: "ok", milliseconds: performance.now() - start });
      return answer;
    } catch (e) {
      const code = e instanceof Object && "code" in e && typeof e.code === "string"
        ? e.code
        : "error";
      observer.lookup({ outcome: code, milliseconds: performance.now() - start });
      failures.set(asciiLower(name), errorMessage(e));
      throw e;
    }
  };
  return {
    resolveTxt: (name, options) => observed(name, () => resolver.resolveTxt(name, options)),
    // The DNSSEC status goes through too, for the key's comment and BogusKey/UnprotectedKey.
    resolveTxtChecked: (name, options) =>
      observed(name, () => resolveTxtChecked(resolver, name, options)),
  };
}
