/**
 * A declarative in-memory {@link TxtResolver} for tests: a zone of names and what to answer,
 * recording every name asked.
 *
 * @module
 */

import { asciiLower } from "../../lib/bytes.ts";
import { DnsError, type DnsErrorCode, type LookupOptions } from "../../lib/dns/resolver.ts";
import type { TtlTxtResolver, TxtAnswer } from "../../lib/dns/stub.ts";

/** TTL given to records listed without one. */
export const ZONE_RESOLVER_DEFAULT_TTL = 300;

/** How long a `"timeout"` name waits when no signal aborts first: short, so tests stay fast. */
export const ZONE_RESOLVER_TIMEOUT_MS = 100;

/**
 * What a name answers: TXT records (a list, or with a TTL), a negative answer with a TTL, or a
 * {@link DnsErrorCode}. `"timeout"` waits until the caller's abort signal fires or
 * {@link ZONE_RESOLVER_TIMEOUT_MS} pass, as a real resolver's timeout would, and then rejects
 * with `timeout`: it never hangs a test.
 */
export type ZoneEntry =
  | readonly string[]
  | { readonly txt: readonly string[]; readonly ttl: number }
  | { readonly negative: "nxdomain" | "nodata"; readonly ttl: number }
  | DnsErrorCode;

/**
 * A resolver answering from a zone given as data. Names match ignoring ASCII case and a final
 * dot; unknown names are `nxdomain`. `calls` lists the names asked, in order, as given.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ZoneResolver } from "./zone_resolver.ts";
 * const zone = new ZoneResolver({
 *   "s._domainkey.example.com": ["v=DKIM1; p=abc"],
 *   "bad.example": "servfail",
 * });
 * assert.deepEqual(await zone.resolveTxt("s._domainkey.example.com"), ["v=DKIM1; p=abc"]);
 * await assert.rejects(zone.resolveTxt("bad.example"), { code: "servfail" });
 * await assert.rejects(zone.resolveTxt("other.example"), { code: "nxdomain" });
 * assert.deepEqual(zone.calls, ["s._domainkey.example.com", "bad.example", "other.example"]);
 * ```
 */
export class ZoneResolver implements TtlTxtResolver {
  /** Names asked, in order, exactly as passed. */
  readonly calls: string[] = [];
  readonly #zone = new Map<string, ZoneEntry>();
  #held: Promise<void> | undefined;
  #release: (() => void) | undefined;

  /** Makes a resolver answering from `zone`. */
  constructor(zone: Record<string, ZoneEntry> = {}) {
    for (const [name, entry] of Object.entries(zone)) this.set(name, entry);
  }

  /** Sets or replaces what `name` answers. */
  set(name: string, entry: ZoneEntry): void {
    this.#zone.set(key(name), entry);
  }

  /** Removes `name`, which then answers `nxdomain`. */
  delete(name: string): void {
    this.#zone.delete(key(name));
  }

  /**
   * Holds every lookup (an abort signal still ends it) until the returned function is called,
   * so a test can start several and look at what is in flight.
   */
  hold(): () => void {
    if (!this.#held) {
      this.#held = new Promise((resolve) => {
        this.#release = () => {
          this.#held = undefined;
          resolve();
        };
      });
    }
    return this.#release!;
  }

  /** The TXT records at `name`; rejects with {@link DnsError}. */
  async resolveTxt(name: string, options?: LookupOptions): Promise<string[]> {
    const answer = await this.resolveTxtWithTtl(name, options);
    if (answer.type === "records") return answer.records;
    throw new DnsError(answer.type, name);
  }

  /** The answer at `name` with its TTL. */
  async resolveTxtWithTtl(name: string, options?: LookupOptions): Promise<TxtAnswer> {
    this.calls.push(name);
    const signal = options?.signal;
    const aborted = () => new DnsError("timeout", name, "aborted", { cause: signal?.reason });
    if (signal?.aborted) throw aborted();
    if (this.#zone.get(key(name)) === "timeout") {
      await sleep(ZONE_RESOLVER_TIMEOUT_MS, signal);
      throw signal?.aborted ? aborted() : new DnsError("timeout", name);
    }
    // Always yield once, so concurrent callers really are concurrent.
    await untilAborted(this.#held ?? Promise.resolve(), signal);
    if (signal?.aborted) throw aborted();
    // Read after the wait: a held lookup answers from the zone as it is when released.
    const entry = this.#zone.get(key(name));
    if (entry === undefined) return { type: "nxdomain", ttl: undefined };
    if (typeof entry === "string") {
      if (entry === "nxdomain" || entry === "nodata") return { type: entry, ttl: undefined };
      throw new DnsError(entry, name);
    }
    if (isList(entry)) {
      return { type: "records", records: [...entry], ttl: ZONE_RESOLVER_DEFAULT_TTL };
    }
    if ("txt" in entry) return { type: "records", records: [...entry.txt], ttl: entry.ttl };
    return { type: entry.negative, ttl: entry.ttl };
  }
}

function key(name: string): string {
  return asciiLower(name.endsWith(".") ? name.slice(0, -1) : name);
}

function isList(entry: ZoneEntry): entry is readonly string[] {
  return Array.isArray(entry);
}

/** Waits `ms` or until `signal` aborts, leaving no timer or listener behind. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Waits for `promise` or for `signal` to abort, whichever is first, leaving no listener. */
function untilAborted(promise: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return promise;
  return new Promise((resolve) => {
    const done = () => {
      signal.removeEventListener("abort", done);
      resolve();
    };
    signal.addEventListener("abort", done, { once: true });
    promise.then(done);
  });
}
