/**
 * Metrics in the Prometheus text exposition format (version 0.0.4), the "Beyond 4" item of the
 * research: OpenDKIM has none and people parse its logs. {@link Metrics} implements the
 * filter's `FilterObserver` (messages by disposition and action, those AuthorizedSigners refused
 * among them, signatures added by algorithm, verification results, latency and body size, key
 * lookups and their latency, open connections) plus reloads and errors; {@link serveMetrics}
 * serves it at `/metrics` and a health check at `/healthz` on the optional `MetricsListen`
 * address. Label values come from small fixed sets, and each metric keeps at most
 * {@link MAX_SERIES_PER_METRIC} label sets, so odd input cannot grow memory.
 *
 * @module
 */

import { errorMessage } from "../error_message.ts";
import type { ListenAddress } from "../config/listen_address.ts";
import type { FilterObserver, LookupReport, TransactionReport } from "../filter/observer.ts";
import type { MilterLogger } from "../milter/logger.ts";
import { VERSION } from "../version.ts";
import type { TableKeyOutcome, TableObserver } from "../tables/cached_table.ts";

/** Most label sets kept per metric; further ones are counted under `other`. */
export const MAX_SERIES_PER_METRIC = 64;

/** Longest label value kept; longer ones are cut (values come from fixed sets, so this never bites). */
export const MAX_LABEL_VALUE_LENGTH = 64;

/**
 * Histogram bucket bounds in seconds, for milter answers and DNS lookups: a signature takes
 * about a millisecond, a DNS lookup tens, and an MTA's milter timeout is tens of seconds.
 */
export const LATENCY_BUCKETS: readonly number[] = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
];

/** The Content-Type of the text format (Prometheus "Exposition formats", text 0.0.4). */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type Labels = Readonly<Record<string, string>>;

function escapeLabel(value: string): string {
  const cut = value.length > MAX_LABEL_VALUE_LENGTH
    ? value.slice(0, MAX_LABEL_VALUE_LENGTH)
    : value;
  return cut.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function formatLabels(labels: Labels, extra?: [string, string]): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  if (extra) pairs.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
}

function formatNumber(n: number): string {
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  if (Number.isNaN(n)) return "NaN";
  return String(n);
}

/** One metric family with its label sets, bounded. */
abstract class Family<T> {
  readonly #series = new Map<string, { labels: Labels; value: T }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  protected abstract fresh(): T;

  protected series(labels: Labels): T {
    let key = this.labelNames.map((n) => labels[n] ?? "").join("\0");
    let entry = this.#series.get(key);
    if (!entry && this.#series.size >= MAX_SERIES_PER_METRIC) {
      const other = Object.fromEntries(this.labelNames.map((n) => [n, "other"]));
      key = this.labelNames.map(() => "other").join("\0");
      entry = this.#series.get(key);
      labels = other;
    }
    if (!entry) {
      const ordered = Object.fromEntries(this.labelNames.map((n) => [n, labels[n] ?? ""]));
      entry = { labels: ordered, value: this.fresh() };
      this.#series.set(key, entry);
    }
    return entry.value;
  }

  protected entries(): { labels: Labels; value: T }[] {
    return [...this.#series.values()];
  }

  abstract render(out: string[]): void;
}

class Counter extends Family<{ n: number }> {
  protected fresh() {
    return { n: 0 };
  }

  inc(labels: Labels = {}, by = 1): void {
    this.series(labels).n += by;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    for (const { labels, value } of this.entries()) {
      out.push(`${this.name}${formatLabels(labels)} ${formatNumber(value.n)}`);
    }
  }
}

class Gauge extends Family<{ n: number }> {
  protected fresh() {
    return { n: 0 };
  }

  add(labels: Labels, by: number): void {
    this.series(labels).n += by;
  }

  set(labels: Labels, to: number): void {
    this.series(labels).n = to;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`);
    for (const { labels, value } of this.entries()) {
      out.push(`${this.name}${formatLabels(labels)} ${formatNumber(value.n)}`);
    }
  }
}

interface HistogramData {
  readonly counts: number[];
  sum: number;
  count: number;
}

class Histogram extends Family<HistogramData> {
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly bounds: readonly number[],
  ) {
    super(name, help, labelNames);
  }

  protected fresh(): HistogramData {
    return { counts: this.bounds.map(() => 0), sum: 0, count: 0 };
  }

  observe(labels: Labels, value: number): void {
    if (!Number.isFinite(value) || value < 0) return;
    const h = this.series(labels);
    for (let i = 0; i < this.bounds.length; i++) if (value <= this.bounds[i]) h.counts[i]++;
    h.sum += value;
    h.count++;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    for (const { labels, value } of this.entries()) {
      this.bounds.forEach((b, i) => {
        out.push(
          `${this.name}_bucket${formatLabels(labels, ["le", formatNumber(b)])} ${value.counts[i]}`,
        );
      });
      out.push(`${this.name}_bucket${formatLabels(labels, ["le", "+Inf"])} ${value.count}`);
      out.push(`${this.name}_sum${formatLabels(labels)} ${formatNumber(value.sum)}`);
      out.push(`${this.name}_count${formatLabels(labels)} ${value.count}`);
    }
  }
}

/**
 * dkimd's metrics: a `FilterObserver` for the filter, plus {@link Metrics.reload} and
 * {@link Metrics.error} for `serve`. {@link Metrics.render} writes the text format.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Metrics } from "./metrics.ts";
 * const metrics = new Metrics();
 * metrics.transaction({
 *   disposition: "signed", results: [], algorithms: ["rsa-sha256"], domainClasses: ["author"],
 *   action: "accept", milliseconds: 3, bodyBytes: 120,
 * });
 * const text = metrics.render();
 * assert.match(text, /^dkimd_messages_total\{disposition="signed",action="accept"\} 1$/m);
 * assert.match(text, /^dkimd_signatures_added_total\{algorithm="rsa-sha256",domain_class="author"\} 1$/m);
 * ```
 */
export class Metrics implements FilterObserver, TableObserver {
  readonly #messages = new Counter(
    "dkimd_messages_total",
    "Messages finished, by what was done (signed, verified, skipped, unauthorized: AuthorizedSigners refused the login its From, error) and the milter action.",
    ["disposition", "action"],
  );
  readonly #signatures = new Counter(
    "dkimd_signatures_added_total",
    "DKIM-Signature fields added, by algorithm and domain class (author: d= is the From domain or a parent of it; third-party).",
    ["algorithm", "domain_class"],
  );
  readonly #results = new Counter(
    "dkimd_verify_results_total",
    "Verification results, one per signature evaluated (none for an unsigned message), by RFC 8601 result and domain class (author: d= is the From domain or a parent of it; third-party; none: no d=).",
    ["result", "domain_class"],
  );
  readonly #arcResults = new Counter(
    "dkimd_arc_results_total",
    "ARC chain results (RFC 8617), one per message verified with ARCMode (none: no ARC set).",
    ["result"],
  );
  readonly #arcSeals = new Counter(
    "dkimd_arc_sets_added_total",
    "ARC sets added (ARCMode s).",
    [],
  );
  readonly #latency = new Histogram(
    "dkimd_message_duration_seconds",
    "Time from end of headers to the end-of-message answer, by disposition.",
    ["disposition"],
    LATENCY_BUCKETS,
  );
  readonly #bodyBytes = new Counter("dkimd_body_bytes_total", "Message body bytes seen.", []);
  readonly #lookups = new Counter(
    "dkimd_dns_lookups_total",
    "DKIM key lookups, by outcome (ok or the DNS error).",
    ["outcome"],
  );
  readonly #lookupLatency = new Histogram(
    "dkimd_dns_lookup_duration_seconds",
    "Time a DKIM key lookup took.",
    [],
    LATENCY_BUCKETS,
  );
  readonly #tableKeys = new Counter(
    "dkimd_table_lookups_total",
    "Keys asked of data sets kept in databases (dsn:, ldap:), by data set and how each was answered (cache: a fresh cached answer; database: a query; stale: a cached answer past its TTL during an outage; failed: no answer, On-InternalError).",
    ["data_set", "source"],
  );
  readonly #tableQueries = new Counter(
    "dkimd_table_queries_total",
    "Queries sent to data sets kept in databases, by data set and result (ok, error: failed or timed out).",
    ["data_set", "result"],
  );
  readonly #tableLatency = new Histogram(
    "dkimd_table_query_duration_seconds",
    "Time a query to a data set kept in a database took, by data set.",
    ["data_set"],
    LATENCY_BUCKETS,
  );
  readonly #open = new Gauge("dkimd_connections", "MTA connections open now.", []);
  readonly #opened = new Counter("dkimd_connections_total", "MTA connections accepted.", []);
  readonly #reloads = new Counter(
    "dkimd_reloads_total",
    "Configuration reloads, by result (success, failure: the old configuration stays).",
    ["result"],
  );
  readonly #errors = new Counter("dkimd_errors_total", "Errors, by kind.", ["kind"]);
  readonly #info = new Gauge("dkimd_build_info", "Always 1; the version is a label.", ["version"]);
  readonly #start = new Gauge(
    "dkimd_start_time_seconds",
    "When the process started, in seconds since the Unix epoch.",
    [],
  );

  readonly #rss = new Gauge(
    "process_resident_memory_bytes",
    "Resident memory of the process, in bytes (read when scraped).",
    [],
  );
  readonly #heap = new Gauge(
    "dkimd_v8_heap_used_bytes",
    "Bytes of the JavaScript heap in use (read when scraped).",
    [],
  );

  /** Makes the metrics; `startTime` (milliseconds) defaults to now. */
  constructor(options: { startTime?: number } = {}) {
    this.#info.set({ version: VERSION }, 1);
    this.#start.set({}, (options.startTime ?? Date.now()) / 1000);
    this.#open.set({}, 0);
    this.#opened.inc({}, 0);
    this.#bodyBytes.inc({}, 0);
  }

  /** Records a finished transaction. */
  transaction(report: TransactionReport): void {
    this.#messages.inc({ disposition: report.disposition, action: report.action });
    report.algorithms.forEach((algorithm, i) => {
      this.#signatures.inc({ algorithm, domain_class: report.domainClasses[i] ?? "none" });
    });
    report.results.forEach((result, i) => {
      this.#results.inc({ result, domain_class: report.domainClasses[i] ?? "none" });
    });
    if (report.arc !== undefined) this.#arcResults.inc({ result: report.arc });
    if (report.sealed) this.#arcSeals.inc({});
    this.#latency.observe({ disposition: report.disposition }, report.milliseconds / 1000);
    if (Number.isFinite(report.bodyBytes) && report.bodyBytes > 0) {
      this.#bodyBytes.inc({}, report.bodyBytes);
    }
  }

  /** Records a key lookup. */
  lookup(report: LookupReport): void {
    this.#lookups.inc({ outcome: report.outcome });
    this.#lookupLatency.observe({}, report.milliseconds / 1000);
  }

  /** Records how `count` keys of data set `dataSet` (a setting name) were answered. */
  tableKeys(dataSet: string, outcome: TableKeyOutcome, count: number): void {
    this.#tableKeys.inc({ data_set: dataSet, source: outcome }, count);
  }

  /** Records a query to the database of data set `dataSet` and how long it took. */
  tableQuery(dataSet: string, ok: boolean, seconds: number): void {
    this.#tableQueries.inc({ data_set: dataSet, result: ok ? "ok" : "error" });
    this.#tableLatency.observe({ data_set: dataSet }, seconds);
  }

  /** Records a connection opening (+1) or closing (-1). */
  connections(delta: number): void {
    this.#open.add({}, delta);
    if (delta > 0) this.#opened.inc({}, delta);
  }

  /** Records a configuration reload (SIGUSR1/SIGHUP) and whether it worked. */
  reload(ok: boolean): void {
    this.#reloads.inc({ result: ok ? "success" : "failure" });
  }

  /** Records an error of a kind, such as `filter`, `connection` or `log`. */
  error(kind: string): void {
    this.#errors.inc({ kind });
  }

  /** The metrics in the Prometheus text format. */
  render(): string {
    const memory = Deno.memoryUsage();
    this.#rss.set({}, memory.rss);
    this.#heap.set({}, memory.heapUsed);
    const out: string[] = [];
    for (
      const family of [
        this.#messages,
        this.#signatures,
        this.#results,
        this.#arcResults,
        this.#arcSeals,
        this.#latency,
        this.#bodyBytes,
        this.#lookups,
        this.#lookupLatency,
        this.#tableKeys,
        this.#tableQueries,
        this.#tableLatency,
        this.#open,
        this.#opened,
        this.#reloads,
        this.#errors,
        this.#info,
        this.#start,
        this.#rss,
        this.#heap,
      ]
    ) {
      family.render(out);
    }
    return out.join("\n") + "\n";
  }
}

/** What `/healthz` reports: healthy, or not with a reason. */
export type Health = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Options of {@link serveMetrics}. */
export interface ServeMetricsOptions {
  /** Says whether the service is healthy; default always healthy. */
  readonly health?: () => Health;
  /** Where to log the listening address and errors. */
  readonly logger?: MilterLogger;
  /**
   * More metric text read at each scrape, appended (the key rotation's, which another process,
   * `dkimd rotate`, leaves in files).
   */
  readonly more?: () => Promise<string>;
}

/** A running metrics listener. */
export interface MetricsServer {
  /** Where it listens, with the port the system chose for port 0. */
  readonly address: ListenAddress;
  /** Stops listening and closes connections. */
  close(): Promise<void>;
}

/**
 * Serves `metrics` at `GET /metrics` and a health check at `GET /healthz` (`ok`, or 503 with
 * the reason) on `address`, with Deno.serve. Other paths are 404, other methods 405.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Metrics, serveMetrics } from "./metrics.ts";
 * const server = serveMetrics(new Metrics(), { host: "127.0.0.1", port: 0 });
 * const res = await fetch(`http://127.0.0.1:${server.address.port}/healthz`);
 * assert.equal(await res.text(), "ok\n");
 * await server.close();
 * ```
 */
export function serveMetrics(
  metrics: Metrics,
  address: ListenAddress,
  options: ServeMetricsOptions = {},
): MetricsServer {
  const health = options.health ?? (() => ({ ok: true }) as const);
  const server = Deno.serve({
    hostname: address.host,
    port: address.port,
    onListen: () => {},
    onError: (e) => {
      options.logger?.error(`metrics: ${errorMessage(e)}`);
      return new Response("internal error\n", { status: 500 });
    },
  }, (request) => {
    const path = new URL(request.url).pathname;
    if (path !== "/metrics" && path !== "/healthz") {
      return new Response("not found\n", { status: 404 });
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    if (path === "/metrics") {
      const text = metrics.render();
      const headers = { "content-type": PROMETHEUS_CONTENT_TYPE };
      if (!options.more) return new Response(text, { headers });
      return options.more().then(
        (more) => new Response(text + more, { headers }),
        (e) => {
          options.logger?.error(`metrics: ${errorMessage(e)}`);
          return new Response(text, { headers });
        },
      );
    }
    const h = health();
    return new Response(h.ok ? "ok\n" : `unhealthy: ${h.reason}\n`, {
      status: h.ok ? 200 : 503,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  });
  const addr = server.addr as Deno.NetAddr;
  options.logger?.info(
    `metrics listening on http://${
      addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname
    }:${addr.port}/metrics`,
  );
  return {
    address: { host: addr.hostname, port: addr.port },
    close: () => server.shutdown(),
  };
}
