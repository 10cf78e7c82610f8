/**
 * A TTL cache in front of a resolver: OpenDKIM's `QueryCache`. Answers are kept for their TTL
 * (capped), negative answers (NXDOMAIN, NODATA) for their RFC 2308 negative TTL, failures never;
 * concurrent lookups of one name share one query.
 *
 * @module
 */

import { asciiLower } from "../bytes.ts";
import {
  type CheckedTxt,
  DnsError,
  type LookupOptions,
  resolveTxtChecked,
  type TxtResolver,
} from "./resolver.ts";
import type { DnssecStatus } from "./dnssec.ts";
import { checkedOf, type TtlTxtResolver, type TxtAnswer } from "./stub.ts";

/** Most names cached: ten thousand ordinary key records take about 5 MiB. */
export const QUERY_CACHE_MAX_ENTRIES_DEFAULT = 10_000;

/**
 * Most bytes cached: 4 MiB of names and record text, by {@link CachingResolver}'s estimate. A
 * sender picks the selectors, so without it the cache would hold whatever records (each up to
 * `DNSMaxAnswerBytes`) its mail names; with it, ordinary records (about 400 bytes) still fill
 * thousands of entries.
 */
export const QUERY_CACHE_MAX_BYTES_DEFAULT = 4 * 1024 * 1024;

/** What one cached answer costs besides its name and text, by estimate: the objects around them. */
const ENTRY_BYTES = 256;

/** Longest time an answer is kept, in seconds: one day, so a changed key is seen within it. */
export const QUERY_CACHE_MAX_TTL_DEFAULT = 86_400;

/**
 * Longest time a negative answer is kept, in seconds: one hour, within the one to three hours
 * RFC 2308 §5 calls sensible, so a newly published key is found soon.
 */
export const QUERY_CACHE_MAX_NEGATIVE_TTL_DEFAULT = 3_600;

/**
 * TTL in seconds for answers that come without one: from a resolver that has no TTLs (a key
 * file, a test double), or a negative answer without an SOA.
 */
export const QUERY_CACHE_DEFAULT_TTL = 300;

/** A source of the current time in milliseconds, injected so tests control expiry. */
export interface Clock {
  /** Milliseconds since some fixed point, never going backwards. */
  now(): number;
}

/** Options for {@link CachingResolver}. */
export interface CachingResolverOptions {
  /** The time source (default `Date.now`). */
  readonly clock?: Clock;
  /** Most names kept; the least recently used goes first (default {@link QUERY_CACHE_MAX_ENTRIES_DEFAULT}). */
  readonly maxEntries?: number;
  /**
   * Most bytes kept, each answer charged its name, its record text and 256 bytes; the least
   * recently used go first (default {@link QUERY_CACHE_MAX_BYTES_DEFAULT}).
   */
  readonly maxBytes?: number;
  /** TTL cap in seconds (default {@link QUERY_CACHE_MAX_TTL_DEFAULT}). */
  readonly maxTtl?: number;
  /** Negative TTL cap in seconds (default {@link QUERY_CACHE_MAX_NEGATIVE_TTL_DEFAULT}). */
  readonly maxNegativeTtl?: number;
  /** TTL for answers without one, in seconds (default {@link QUERY_CACHE_DEFAULT_TTL}). */
  readonly defaultTtl?: number;
}

interface Entry {
  readonly answer: TxtAnswer;
  readonly expiresAt: number;
  readonly bytes: number;
}

interface Shared {
  readonly promise: Promise<TxtAnswer>;
  readonly controller: AbortController;
  waiters: number;
}

function cacheKey(name: string): string {
  return asciiLower(name.endsWith(".") ? name.slice(0, -1) : name);
}

function hasTtl(resolver: TxtResolver): resolver is TtlTxtResolver {
  return typeof (resolver as Partial<TtlTxtResolver>).resolveTxtWithTtl === "function";
}

/** An answer whose TTL may be unknown, before the cache decides one. */
type RawAnswer =
  | {
    readonly type: "records";
    readonly records: string[];
    readonly ttl: number | undefined;
    readonly dnssec?: DnssecStatus;
  }
  | { readonly type: "nxdomain" | "nodata"; readonly ttl: number | undefined };

function copy(answer: RawAnswer, ttl: number): TxtAnswer {
  if (answer.type !== "records") return { type: answer.type, ttl };
  const records = [...answer.records];
  return answer.dnssec === undefined
    ? { type: "records", records, ttl }
    : { type: "records", records, ttl, dnssec: answer.dnssec };
}

/**
 * Caches the answers of another resolver. TTLs come from the inner resolver's
 * `resolveTxtWithTtl` when it has one ({@link StubResolver} does); otherwise every answer gets
 * the default TTL. A TTL of 0 is not cached. Temporary failures (servfail, refused, timeout,
 * malformed, network) are never cached, so the next message asks again.
 *
 * Concurrent lookups of one name wait for one inner query. A caller's abort signal rejects
 * only that caller; the shared query is aborted when every caller waiting for it has gone.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CachingResolver } from "./cache.ts";
 * let asked = 0;
 * const inner = { resolveTxt: async () => { asked++; return ["v=DKIM1; p=abc"]; } };
 * let now = 0;
 * const cache = new CachingResolver(inner, { clock: { now: () => now }, defaultTtl: 60 });
 * await cache.resolveTxt("s._domainkey.example.com");
 * await cache.resolveTxt("S._domainkey.example.com.");
 * assert.equal(asked, 1);
 * now += 61_000;
 * await cache.resolveTxt("s._domainkey.example.com");
 * assert.equal(asked, 2);
 * ```
 */
export class CachingResolver implements TtlTxtResolver {
  readonly #inner: TxtResolver;
  readonly #clock: Clock;
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #maxTtl: number;
  readonly #maxNegativeTtl: number;
  readonly #defaultTtl: number;
  /** Insertion order is recency order: a hit moves its entry to the end. */
  readonly #entries = new Map<string, Entry>();
  readonly #inflight = new Map<string, Shared>();
  #bytes = 0;

  /** Wraps `inner`; throws `RangeError` for a bad limit. */
  constructor(inner: TxtResolver, options: CachingResolverOptions = {}) {
    const check = (key: string, value: number, min: number) => {
      if (!Number.isInteger(value) || value < min) {
        throw new RangeError(`Invalid "${key}" ${value}: expected an integer of at least ${min}`);
      }
      return value;
    };
    this.#inner = inner;
    this.#clock = options.clock ?? { now: () => Date.now() };
    this.#maxEntries = check(
      "maxEntries",
      options.maxEntries ?? QUERY_CACHE_MAX_ENTRIES_DEFAULT,
      1,
    );
    this.#maxBytes = check("maxBytes", options.maxBytes ?? QUERY_CACHE_MAX_BYTES_DEFAULT, 0);
    this.#maxTtl = check("maxTtl", options.maxTtl ?? QUERY_CACHE_MAX_TTL_DEFAULT, 0);
    this.#maxNegativeTtl = check(
      "maxNegativeTtl",
      options.maxNegativeTtl ?? QUERY_CACHE_MAX_NEGATIVE_TTL_DEFAULT,
      0,
    );
    this.#defaultTtl = check("defaultTtl", options.defaultTtl ?? QUERY_CACHE_DEFAULT_TTL, 0);
  }

  /** How many names are cached now, expired ones not yet evicted included. */
  get size(): number {
    return this.#entries.size;
  }

  /** The bytes the cached answers are charged, expired ones not yet evicted included. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Forgets every cached answer (as on a configuration reload). */
  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }

  /**
   * The TXT records at `name`, from the cache when fresh; rejects with {@link DnsError}, and
   * with a `servfail` for records DNSSEC found bogus.
   */
  async resolveTxt(name: string, options?: LookupOptions): Promise<string[]> {
    return checkedOf(name, await this.resolveTxtWithTtl(name, options), false).records;
  }

  /** The TXT records at `name` with their DNSSEC status, as the inner resolver gave it. */
  async resolveTxtChecked(name: string, options?: LookupOptions): Promise<CheckedTxt> {
    return checkedOf(name, await this.resolveTxtWithTtl(name, options), true);
  }

  /** The answer at `name` with the seconds it stays fresh. */
  resolveTxtWithTtl(name: string, options?: LookupOptions): Promise<TxtAnswer> {
    const key = cacheKey(name);
    const now = this.#clock.now();
    const entry = this.#entries.get(key);
    if (entry) {
      this.#entries.delete(key);
      if (entry.expiresAt > now) {
        this.#entries.set(key, entry);
        return Promise.resolve(copy(entry.answer, Math.ceil((entry.expiresAt - now) / 1000)));
      }
      this.#bytes -= entry.bytes;
    }
    const signal = options?.signal;
    if (signal?.aborted) {
      return Promise.reject(new DnsError("timeout", name, "aborted", { cause: signal.reason }));
    }
    let shared = this.#inflight.get(key);
    if (!shared) {
      const controller = new AbortController();
      const promise = this.#fetch(name, key, controller.signal);
      const created: Shared = { promise, controller, waiters: 0 };
      shared = created;
      this.#inflight.set(key, created);
      promise.then(
        () => this.#forget(key, created),
        () => this.#forget(key, created),
      );
    }
    return this.#wait(name, key, shared, signal);
  }

  #forget(key: string, shared: Shared): void {
    if (this.#inflight.get(key) === shared) this.#inflight.delete(key);
  }

  #wait(
    name: string,
    key: string,
    shared: Shared,
    signal: AbortSignal | undefined,
  ): Promise<TxtAnswer> {
    shared.waiters++;
    return new Promise<TxtAnswer>((resolve, reject) => {
      const onAbort = () => {
        reject(new DnsError("timeout", name, "aborted", { cause: signal!.reason }));
        if (--shared.waiters === 0) {
          // Nobody waits any more: stop the query, and let the next caller start a fresh one.
          this.#forget(key, shared);
          shared.controller.abort(signal!.reason);
        }
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      shared.promise.then(
        (answer) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(copy(answer, answer.ttl ?? 0)); // a copy each, so no caller edits the cache
        },
        (error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
      );
    });
  }

  async #fetch(name: string, key: string, signal: AbortSignal): Promise<TxtAnswer> {
    let answer: RawAnswer;
    try {
      if (hasTtl(this.#inner)) {
        answer = await this.#inner.resolveTxtWithTtl(name, { signal });
      } else {
        try {
          const { records, dnssec } = await resolveTxtChecked(this.#inner, name, { signal });
          answer = dnssec === undefined
            ? { type: "records", records, ttl: undefined }
            : { type: "records", records, ttl: dnssec === "bogus" ? 0 : undefined, dnssec };
        } catch (error) {
          if (!(error instanceof DnsError) || !error.permanent) throw error;
          answer = { type: error.code as "nxdomain" | "nodata", ttl: undefined };
        }
      }
    } catch (error) {
      if (error instanceof DnsError) throw error;
      throw new DnsError("network", name, "resolver failed", { cause: error });
    }
    const max = answer.type === "records" ? this.#maxTtl : this.#maxNegativeTtl;
    const ttl = Math.min(
      typeof answer.ttl === "number" && answer.ttl >= 0 ? answer.ttl : this.#defaultTtl,
      max,
    );
    const stored = copy(answer, ttl);
    if (ttl > 0) this.#store(key, stored, ttl);
    return stored;
  }

  #store(key: string, answer: TxtAnswer, ttl: number): void {
    this.#remove(key);
    let bytes = ENTRY_BYTES + key.length;
    if (answer.type === "records") { for (const r of answer.records) bytes += r.length; }
    this.#entries.set(key, { answer, expiresAt: this.#clock.now() + ttl * 1000, bytes });
    this.#bytes += bytes;
    // The newest answer stays whatever it costs: the stub bounds one answer (DNSMaxAnswerBytes).
    while (
      this.#entries.size > 1 &&
      (this.#entries.size > this.#maxEntries || this.#bytes > this.#maxBytes)
    ) {
      this.#remove(this.#entries.keys().next().value as string);
    }
  }

  #remove(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
  }
}
