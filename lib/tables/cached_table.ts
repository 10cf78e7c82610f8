/**
 * A data set kept in a database, as the filter asks it: a {@link DataSetLookup} over a
 * {@link TableBackend}, with everything a database needs and a file does not, built once for
 * every back end:
 *
 * - one back-end query per lookup call, for the keys the cache cannot answer;
 * - a cache of positive and negative answers with a TTL, so a row added or changed in the
 *   database is used by every dkimd within the TTL, without a reload;
 * - identical misses asked at once (two messages from one domain) share one query;
 * - a per-query timeout, passed to the back end as an `AbortSignal` and enforced here too;
 * - during an outage an entry up to the stale limit past its TTL is still served, so a short
 *   outage defers only mail from senders not seen lately;
 * - after a failure, lookups fail fast (no query) until a retry delay has passed, doubling
 *   after each failed retry up to a cap, so a database that is down is not hammered by every
 *   message; one probe query at a time tests whether it is back;
 * - one log line when an outage starts and one when it ends, not one per message;
 * - metrics through a {@link TableObserver}.
 *
 * A lookup that cannot be answered rejects with {@link TableUnavailableError}: the filter turns
 * a rejected lookup into the On-InternalError action (default tempfail), so mail is deferred,
 * never signed with a wrong key nor passed unsigned.
 *
 * A row's data columns become the entry's value joined with `:`, which is how OpenDKIM hands
 * several columns to the KeyTable (`domain:selector:key`).
 *
 * @module
 */

import type { DataSetLookup } from "../policy/data_set_lookup.ts";
import type { DataSetEntry } from "../policy/dataset.ts";
import type { TableBackend } from "./table_backend.ts";

/** Default cache TTL: a changed row is used within a minute, a lookup per domain a minute at most. */
export const DEFAULT_TABLE_CACHE_TTL_SECONDS = 60;

/** Default stale limit: an entry is served up to five minutes past its TTL while the database is down. */
export const DEFAULT_TABLE_STALE_SECONDS = 300;

/** Default per-query timeout: well under an MTA's milter timeouts (Postfix: 30 s for a reply). */
export const DEFAULT_TABLE_QUERY_TIMEOUT_SECONDS = 5;

/** First retry delay after a failed query. */
export const TABLE_RETRY_INITIAL_MS = 1_000;

/** Longest retry delay while the database stays down: recovery is noticed within this. */
export const TABLE_RETRY_MAX_MS = 30_000;

/** Most cached keys per data set: bounds memory against a flood of distinct sender domains. */
export const MAX_TABLE_CACHE_ENTRIES = 100_000;

/** How a key of one lookup was answered, for metrics. */
export type TableKeyOutcome = "cache" | "database" | "stale" | "failed";

/** What a {@link CachedTable} tells its observer (the metrics). */
export interface TableObserver {
  /** `count` keys of data set `dataSet` were answered by `outcome`. */
  tableKeys(dataSet: string, outcome: TableKeyOutcome, count: number): void;
  /** A query to the back end of `dataSet` ended, after `seconds`. */
  tableQuery(dataSet: string, ok: boolean, seconds: number): void;
}

/** Where a {@link CachedTable} logs the start and the end of an outage. */
export type TableLogger = (level: "warning" | "info", message: string) => void;

/** The options of a {@link CachedTable}. */
export interface CachedTableOptions {
  /** The setting the data set belongs to (`KeyTable`), for logs, origins and metrics. */
  readonly setting: string;
  /** How long an answer, positive or negative, is used without asking again. */
  readonly cacheTtlMs: number;
  /** How long past its TTL an answer may still be served while the database cannot answer. */
  readonly staleMs: number;
  /** Longest a query may take. */
  readonly queryTimeoutMs: number;
  /** The time in milliseconds (injected by tests); default `Date.now`. */
  readonly clock?: () => number;
  /** Where outages are logged; default nowhere. */
  readonly log?: TableLogger;
  /** Metrics. */
  readonly observer?: TableObserver;
  /** First retry delay after a failure; default {@link TABLE_RETRY_INITIAL_MS}. */
  readonly retryInitialMs?: number;
  /** Longest retry delay; default {@link TABLE_RETRY_MAX_MS}. */
  readonly retryMaxMs?: number;
  /** Most cached keys; default {@link MAX_TABLE_CACHE_ENTRIES}. */
  readonly maxEntries?: number;
}

/** A lookup the database could not answer (down, slow past the timeout, refusing). */
export class TableUnavailableError extends Error {
  /** The setting whose data set failed. */
  readonly setting: string;
  /** Logged already, once per outage (see `isReported()` in lib/policy/data_set_lookup.ts). */
  readonly reported = true;

  /** Makes an error for `setting`. */
  constructor(setting: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TableUnavailableError";
    this.setting = setting;
  }
}

interface CacheEntry {
  readonly columns: readonly string[] | undefined;
  readonly expires: number;
}

type Columns = readonly string[] | undefined;

/**
 * A data set in a database, cached (see the module documentation).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CachedTable } from "./cached_table.ts";
 * let queries = 0;
 * const table = new CachedTable({
 *   describe: "memory",
 *   query: (keys) => {
 *     queries++;
 *     return Promise.resolve(keys.map((k) => k === "example.com" ? ["example.com", "sel", "/k"] : undefined));
 *   },
 *   scan: () => Promise.resolve([]),
 *   close: () => Promise.resolve(),
 * }, { setting: "KeyTable", cacheTtlMs: 60_000, staleMs: 300_000, queryTimeoutMs: 1000 });
 * const [hit, miss] = await table.lookup(["example.com", "example.org"]);
 * assert.equal(hit?.value, "example.com:sel:/k");
 * assert.equal(miss, undefined);
 * await table.lookup(["example.com", "example.org"]);
 * assert.equal(queries, 1);
 * ```
 */
export class CachedTable implements DataSetLookup {
  /** The back end asked. */
  readonly backend: TableBackend;
  /** The setting the data set belongs to. */
  readonly setting: string;
  readonly #options: CachedTableOptions;
  readonly #clock: () => number;
  #log: TableLogger | undefined;
  #observer: TableObserver | undefined;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #inflight = new Map<string, Promise<Columns>>();
  // The outage: when it started and why, when the next query may be tried, the delay after it.
  #down: { since: number; reason: string } | undefined;
  #retryAt = 0;
  #retryDelay: number;
  #probing = false;

  /** Wraps `backend` with the cache and outage handling set by `options`. */
  constructor(backend: TableBackend, options: CachedTableOptions) {
    this.backend = backend;
    this.setting = options.setting;
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
    this.#log = options.log;
    this.#observer = options.observer;
    this.#retryDelay = options.retryInitialMs ?? TABLE_RETRY_INITIAL_MS;
  }

  /**
   * Sets where outages are logged and metrics go: the server attaches its logger and metrics
   * once it has them (the configuration is loaded before the logger exists).
   */
  attach(log: TableLogger | undefined, observer?: TableObserver): void {
    this.#log = log;
    this.#observer = observer;
  }

  /** Logs `message` about this data set (a bad row, for the tables built on it). */
  report(level: "warning" | "info", message: string): void {
    this.#log?.(level, message);
  }

  /** True while the database is failing (between the two log lines). */
  get down(): boolean {
    return this.#down !== undefined;
  }

  /**
   * The entry of each of `keys`: from the cache while fresh, else from one query for all the
   * keys missing. Rejects with {@link TableUnavailableError} when the database cannot answer a
   * key that has no entry within the stale limit.
   */
  async lookup(keys: readonly string[]): Promise<readonly (DataSetEntry | undefined)[]> {
    const now = this.#clock();
    const answers = new Map<string, Columns>();
    const waiting: [string, Promise<Columns>][] = [];
    const missing: string[] = [];
    let cached = 0;
    for (const key of new Set(keys)) {
      const entry = this.#cache.get(key);
      if (entry && now < entry.expires) {
        answers.set(key, entry.columns);
        cached++;
        continue;
      }
      const pending = this.#inflight.get(key);
      if (pending) waiting.push([key, pending]);
      else missing.push(key);
    }
    if (cached > 0) this.#observer?.tableKeys(this.setting, "cache", cached);
    const fetched = missing.length > 0 ? this.#fetch(missing, now) : undefined;
    const [waited, got] = await Promise.all([
      Promise.allSettled(waiting.map(([, p]) => p)),
      fetched ? Promise.allSettled([fetched]).then(([r]) => r) : undefined,
    ]);
    let failure: unknown;
    waiting.forEach(([key], i) => {
      const r = waited[i];
      if (r.status === "fulfilled") answers.set(key, r.value);
      else failure ??= r.reason;
    });
    if (got?.status === "fulfilled") {
      const rows = got.value;
      missing.forEach((key, i) => answers.set(key, rows[i]));
      this.#observer?.tableKeys(this.setting, "database", missing.length);
    } else if (got) {
      failure ??= got.reason;
    }
    if (failure !== undefined) this.#serveStale(keys, answers, now, failure);
    return keys.map((key) => {
      const columns = answers.get(key);
      return columns === undefined ? undefined : this.#entry(key, columns);
    });
  }

  /** Closes the back end; later lookups reject. */
  close(): Promise<void> {
    return this.backend.close();
  }

  // Every key without an answer gets its stale entry, or the lookup fails.
  #serveStale(keys: readonly string[], answers: Map<string, Columns>, now: number, why: unknown) {
    let stale = 0;
    let failed = 0;
    for (const key of new Set(keys)) {
      if (answers.has(key)) continue;
      const entry = this.#cache.get(key);
      if (entry && now < entry.expires + this.#options.staleMs) {
        answers.set(key, entry.columns);
        stale++;
      } else {
        failed++;
      }
    }
    if (stale > 0) this.#observer?.tableKeys(this.setting, "stale", stale);
    if (failed > 0) {
      this.#observer?.tableKeys(this.setting, "failed", failed);
      throw why;
    }
  }

  // One query for `keys`, shared with any lookup asking one of them meanwhile.
  #fetch(keys: string[], now: number): Promise<Columns[]> {
    const query = this.#query(keys, now);
    keys.forEach((key, i) => {
      const one = query.then((rows) => rows[i]);
      // A waiter that never comes must not turn into an unhandled rejection.
      one.catch(() => {});
      this.#inflight.set(key, one);
    });
    const done = () => {
      for (const key of keys) this.#inflight.delete(key);
    };
    query.then(done, done);
    return query;
  }

  async #query(keys: string[], now: number): Promise<Columns[]> {
    if (this.#down && (now < this.#retryAt || this.#probing)) {
      throw this.#unavailable();
    }
    const probe = this.#down !== undefined;
    if (probe) this.#probing = true;
    const started = performance.now();
    try {
      const rows = await this.#withTimeout(keys);
      this.#observer?.tableQuery(this.setting, true, (performance.now() - started) / 1000);
      this.#store(keys, rows);
      this.#recovered();
      return rows;
    } catch (e) {
      this.#observer?.tableQuery(this.setting, false, (performance.now() - started) / 1000);
      this.#failed(e);
      throw this.#unavailable(e);
    } finally {
      if (probe) this.#probing = false;
    }
  }

  // The back end's answer, or a rejection once the timeout passes even if it ignores the signal.
  #withTimeout(keys: string[]): Promise<Columns[]> {
    const ms = this.#options.queryTimeoutMs;
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const e = new Error(`no answer within ${ms} ms`);
        controller.abort(e);
        reject(e);
      }, ms);
    });
    const query = this.backend.query(keys, controller.signal).then((rows) => {
      if (rows.length !== keys.length) {
        throw new Error(`the back end answered ${rows.length} rows for ${keys.length} keys`);
      }
      return rows;
    });
    return Promise.race([query, timeout]).finally(() => clearTimeout(timer));
  }

  #store(keys: string[], rows: Columns[]): void {
    const expires = this.#clock() + this.#options.cacheTtlMs;
    const max = this.#options.maxEntries ?? MAX_TABLE_CACHE_ENTRIES;
    keys.forEach((key, i) => {
      this.#cache.delete(key);
      // The oldest entry goes first (a Map iterates in insertion order).
      if (this.#cache.size >= max) {
        const oldest = this.#cache.keys().next();
        if (!oldest.done) this.#cache.delete(oldest.value);
      }
      this.#cache.set(key, { columns: rows[i], expires });
    });
  }

  #failed(e: unknown): void {
    const reason = e instanceof Error ? e.message : String(e);
    const now = this.#clock();
    if (!this.#down) {
      this.#down = { since: now, reason };
      this.#log?.(
        "warning",
        `${this.setting} ${this.backend.describe} is unavailable: ${reason}; lookups fail ` +
          `(On-InternalError) until it answers, except for entries cached within the last ` +
          `${Math.round((this.#options.cacheTtlMs + this.#options.staleMs) / 1000)} s`,
      );
    } else {
      this.#retryDelay = Math.min(
        this.#retryDelay * 2,
        this.#options.retryMaxMs ?? TABLE_RETRY_MAX_MS,
      );
    }
    this.#retryAt = now + this.#retryDelay;
  }

  #recovered(): void {
    this.#retryDelay = this.#options.retryInitialMs ?? TABLE_RETRY_INITIAL_MS;
    this.#retryAt = 0;
    const down = this.#down;
    if (!down) return;
    this.#down = undefined;
    const seconds = Math.round((this.#clock() - down.since) / 1000);
    this.#log?.(
      "info",
      `${this.setting} ${this.backend.describe} answers again after ${seconds} s unavailable`,
    );
  }

  #unavailable(cause?: unknown): TableUnavailableError {
    const reason = cause instanceof Error ? cause.message : this.#down?.reason ?? "no answer";
    return new TableUnavailableError(
      this.setting,
      `${this.setting} ${this.backend.describe} is unavailable: ${reason}`,
      cause === undefined ? undefined : { cause },
    );
  }

  #entry(key: string, columns: readonly string[]): DataSetEntry {
    return {
      key,
      value: columns.join(":"),
      origin: { file: `${this.setting} ${this.backend.describe} row "${key}"`, line: 0 },
    };
  }
}
