import assert from "node:assert/strict";
import {
  MAX_SERIES_PER_METRIC,
  Metrics,
  PROMETHEUS_CONTENT_TYPE,
  serveMetrics,
} from "../../lib/ops/metrics.ts";
import { parsePrometheusText } from "../helpers/prometheus_text.ts";

function busy(): Metrics {
  const m = new Metrics({ startTime: 1_700_000_000_000 });
  m.connections(1);
  m.connections(1);
  m.connections(-1);
  m.transaction({
    disposition: "signed",
    results: [],
    algorithms: ["rsa-sha256", "ed25519-sha256"],
    domainClasses: ["author", "third-party"],
    action: "accept",
    milliseconds: 2,
    bodyBytes: 1000,
  });
  m.transaction({
    disposition: "verified",
    results: ["pass", "fail"],
    algorithms: [],
    domainClasses: ["author", "author"],
    action: "accept",
    milliseconds: 40,
    bodyBytes: 500,
  });
  m.transaction({
    disposition: "verified",
    results: ["none"],
    algorithms: [],
    domainClasses: ["none"],
    action: "accept",
    milliseconds: 0.5,
    bodyBytes: 0,
  });
  m.transaction({
    disposition: "error",
    results: [],
    algorithms: [],
    domainClasses: [],
    action: "tempfail",
    milliseconds: 50_000,
    bodyBytes: 10,
  });
  m.lookup({ outcome: "ok", milliseconds: 12 });
  m.lookup({ outcome: "nxdomain", milliseconds: 3 });
  m.lookup({ outcome: "timeout", milliseconds: 5000 });
  m.reload(true);
  m.reload(false);
  m.error('odd "kind"\\\n');
  return m;
}

function value(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const f of parsePrometheusText(text)) {
    for (const s of f.samples) {
      if (s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels)) return s.value;
    }
  }
  return undefined;
}

Deno.test("Metrics.render() is strict Prometheus text", () => {
  const text = busy().render();
  const families = parsePrometheusText(text);
  assert.deepEqual(families.map((f) => `${f.name} ${f.type}`), [
    "dkimd_messages_total counter",
    "dkimd_signatures_added_total counter",
    "dkimd_verify_results_total counter",
    "dkimd_arc_results_total counter",
    "dkimd_arc_sets_added_total counter",
    "dkimd_message_duration_seconds histogram",
    "dkimd_body_bytes_total counter",
    "dkimd_dns_lookups_total counter",
    "dkimd_dns_lookup_duration_seconds histogram",
    "dkimd_table_lookups_total counter",
    "dkimd_table_queries_total counter",
    "dkimd_table_query_duration_seconds histogram",
    "dkimd_connections gauge",
    "dkimd_connections_total counter",
    "dkimd_reloads_total counter",
    "dkimd_errors_total counter",
    "dkimd_build_info gauge",
    "dkimd_start_time_seconds gauge",
    "process_resident_memory_bytes gauge",
    "dkimd_v8_heap_used_bytes gauge",
  ]);
  // A fresh registry is valid too.
  parsePrometheusText(new Metrics().render());
});

Deno.test("Metrics counts lookups, cache hits, errors and latency per data set in a database", () => {
  const m = new Metrics();
  m.tableKeys("KeyTable", "database", 1);
  m.tableKeys("KeyTable", "cache", 3);
  m.tableKeys("SigningTable", "failed", 2);
  m.tableQuery("KeyTable", true, 0.002);
  m.tableQuery("SigningTable", false, 5);
  const text = m.render();
  parsePrometheusText(text);
  const cases: [string, Record<string, string>, number][] = [
    ["dkimd_table_lookups_total", { data_set: "KeyTable", source: "cache" }, 3],
    ["dkimd_table_lookups_total", { data_set: "KeyTable", source: "database" }, 1],
    ["dkimd_table_lookups_total", { data_set: "SigningTable", source: "failed" }, 2],
    ["dkimd_table_queries_total", { data_set: "SigningTable", result: "error" }, 1],
    ["dkimd_table_queries_total", { data_set: "KeyTable", result: "ok" }, 1],
    ["dkimd_table_query_duration_seconds_bucket", { data_set: "KeyTable", le: "0.0025" }, 1],
    ["dkimd_table_query_duration_seconds_sum", { data_set: "SigningTable" }, 5],
  ];
  for (const [name, labels, want] of cases) {
    assert.equal(value(text, name, labels), want, `${name} ${JSON.stringify(labels)}`);
  }
});

Deno.test("Metrics counts what the filter reports", () => {
  const text = busy().render();
  const cases: [string, Record<string, string>, number][] = [
    ["dkimd_messages_total", { disposition: "signed", action: "accept" }, 1],
    ["dkimd_messages_total", { disposition: "verified", action: "accept" }, 2],
    ["dkimd_messages_total", { disposition: "error", action: "tempfail" }, 1],
    ["dkimd_signatures_added_total", { algorithm: "rsa-sha256", domain_class: "author" }, 1],
    [
      "dkimd_signatures_added_total",
      { algorithm: "ed25519-sha256", domain_class: "third-party" },
      1,
    ],
    ["dkimd_verify_results_total", { result: "pass", domain_class: "author" }, 1],
    ["dkimd_verify_results_total", { result: "fail", domain_class: "author" }, 1],
    ["dkimd_verify_results_total", { result: "none", domain_class: "none" }, 1],
    ["dkimd_message_duration_seconds_bucket", { disposition: "verified", le: "0.001" }, 1],
    ["dkimd_message_duration_seconds_bucket", { disposition: "verified", le: "0.05" }, 2],
    ["dkimd_message_duration_seconds_bucket", { disposition: "error", le: "30" }, 0],
    ["dkimd_message_duration_seconds_bucket", { disposition: "error", le: "+Inf" }, 1],
    ["dkimd_message_duration_seconds_sum", { disposition: "verified" }, 0.0405],
    ["dkimd_body_bytes_total", {}, 1510],
    ["dkimd_dns_lookups_total", { outcome: "nxdomain" }, 1],
    ["dkimd_dns_lookup_duration_seconds_count", {}, 3],
    ["dkimd_dns_lookup_duration_seconds_bucket", { le: "0.005" }, 1],
    ["dkimd_connections", {}, 1],
    ["dkimd_connections_total", {}, 2],
    ["dkimd_reloads_total", { result: "failure" }, 1],
    ["dkimd_errors_total", { kind: 'odd "kind"\\\n' }, 1],
    ["dkimd_start_time_seconds", {}, 1_700_000_000],
  ];
  for (const [name, labels, want] of cases) {
    assert.equal(value(text, name, labels), want, `${name} ${JSON.stringify(labels)}`);
  }
});

Deno.test("Metrics bounds the label sets of a metric", () => {
  const m = new Metrics();
  for (let i = 0; i < MAX_SERIES_PER_METRIC * 3; i++) m.error(`kind${i}`);
  const errors = parsePrometheusText(m.render()).find((f) => f.name === "dkimd_errors_total")!;
  assert.equal(errors.samples.length, MAX_SERIES_PER_METRIC + 1);
  assert.equal(
    errors.samples.find((s) => s.labels.kind === "other")?.value,
    MAX_SERIES_PER_METRIC * 2,
  );
});

Deno.test({
  name: "Metrics.render() passes promtool check metrics",
  ignore: (() => {
    try {
      return !Deno.statSync("/usr/bin/promtool").isFile;
    } catch {
      return true;
    }
  })(),
  fn: async () => {
    const child = new Deno.Command("/usr/bin/promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(busy().render()));
    await writer.close();
    const out = await child.output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.equal(text.trim(), "");
  },
});

Deno.test("serveMetrics() serves /metrics and /healthz and refuses the rest", async () => {
  let healthy = true;
  const metrics = busy();
  const server = serveMetrics(metrics, { host: "127.0.0.1", port: 0 }, {
    health: () => healthy ? { ok: true } : { ok: false, reason: "not listening" },
  });
  try {
    const base = `http://127.0.0.1:${server.address.port}`;
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), PROMETHEUS_CONTENT_TYPE);
    const text = await res.text();
    parsePrometheusText(text);
    assert.equal(value(text, "dkimd_connections"), 1);
    const ok = await fetch(`${base}/healthz`);
    assert.deepEqual([ok.status, await ok.text()], [200, "ok\n"]);
    healthy = false;
    const bad = await fetch(`${base}/healthz`);
    assert.deepEqual([bad.status, await bad.text()], [503, "unhealthy: not listening\n"]);
    const missing = await fetch(`${base}/`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    const post = await fetch(`${base}/metrics`, { method: "POST", body: "x" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
  } finally {
    await server.close();
  }
});

Deno.test("serveMetrics() listens on IPv6 loopback", async () => {
  const server = serveMetrics(new Metrics(), { host: "::1", port: 0 });
  try {
    assert.equal(server.address.host, "::1");
    const res = await fetch(`http://[::1]:${server.address.port}/healthz`);
    assert.equal(await res.text(), "ok\n");
  } finally {
    await server.close();
  }
});
