/**
 * A strict reader of the Prometheus text exposition format 0.0.4, for tests: every line must be
 * a HELP, a TYPE or a sample of the family last declared; names, labels, escapes and values must
 * be well formed; no series may repeat; counters end in `_total`; histograms have increasing
 * buckets ending in `+Inf` equal to `_count`, and a `_sum`. It throws on the first fault, naming
 * the line.
 *
 * @module
 */

/** One sample. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** One metric family. */
export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge" | "histogram" | "summary" | "untyped";
  readonly samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function fail(line: number, text: string, why: string): never {
  throw new SyntaxError(`line ${line} "${text}": ${why}`);
}

function parseValue(text: string): number | undefined {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (!/^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/.test(text)) return undefined;
  return Number(text);
}

function parseLabels(body: string, line: number, text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < body.length) {
    const eq = body.indexOf("=", i);
    if (eq < 0) fail(line, text, "label without '='");
    const name = body.slice(i, eq);
    if (!LABEL_NAME.test(name)) fail(line, text, `bad label name "${name}"`);
    if (name in labels) fail(line, text, `label "${name}" repeated`);
    if (body[eq + 1] !== '"') fail(line, text, "label value not quoted");
    let j = eq + 2;
    let value = "";
    for (;;) {
      if (j >= body.length) fail(line, text, "unterminated label value");
      const c = body[j];
      if (c === "\\") {
        const n = body[j + 1];
        if (n === "\\") value += "\\";
        else if (n === '"') value += '"';
        else if (n === "n") value += "\n";
        else fail(line, text, `bad escape "\\${n}"`);
        j += 2;
      } else if (c === '"') {
        j++;
        break;
      } else if (c === "\n") {
        fail(line, text, "newline in label value");
      } else {
        value += c;
        j++;
      }
    }
    labels[name] = value;
    if (j === body.length) break;
    if (body[j] !== ",") fail(line, text, "expected ',' between labels");
    i = j + 1;
  }
  return labels;
}

function familyOf(sample: string, families: Map<string, MetricFamily>): MetricFamily | undefined {
  if (families.has(sample)) return families.get(sample);
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (sample.endsWith(suffix)) {
      const f = families.get(sample.slice(0, -suffix.length));
      if (f && (f.type === "histogram" || f.type === "summary")) return f;
    }
  }
  return undefined;
}

/** Parses and checks `text`; returns the families in order. */
export function parsePrometheusText(text: string): MetricFamily[] {
  if (!text.endsWith("\n")) throw new SyntaxError("the text must end with a line feed");
  const families = new Map<string, MetricFamily>();
  const seen = new Set<string>();
  let current: MetricFamily | undefined;
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((t, index) => {
    const n = index + 1;
    if (t === "") fail(n, t, "empty line");
    if (t.startsWith("#")) {
      const m = /^# (HELP|TYPE) ([^ ]+) (.*)$/.exec(t);
      if (!m) fail(n, t, "a comment must be HELP or TYPE here");
      const [, kind, name, rest] = m;
      if (!NAME.test(name)) fail(n, t, `bad metric name "${name}"`);
      if (kind === "HELP") {
        if (families.has(name)) fail(n, t, `family "${name}" declared twice`);
        if (rest.trim() === "") fail(n, t, "empty HELP");
        current = { name, help: rest, type: "untyped", samples: [] };
        families.set(name, current);
        return;
      }
      if (!current || current.name !== name) fail(n, t, "TYPE must follow its HELP");
      if (current.samples.length > 0) fail(n, t, "TYPE after samples");
      if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest)) {
        fail(n, t, `unknown type "${rest}"`);
      }
      (current as { type: string }).type = rest;
      if (rest === "counter" && !name.endsWith("_total")) {
        fail(n, t, "a counter's name must end in _total");
      }
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([^ ]+)$/.exec(t);
    if (!m) fail(n, t, "not a sample line");
    const [, name, body, valueText] = m;
    const labels = body === undefined ? {} : parseLabels(body, n, t);
    const value = parseValue(valueText);
    if (value === undefined) fail(n, t, `bad value "${valueText}"`);
    const family = familyOf(name, families);
    if (!family || family !== current) fail(n, t, "sample outside its family");
    const key = name + JSON.stringify(Object.entries(labels).sort());
    if (seen.has(key)) fail(n, t, "series repeated");
    seen.add(key);
    if (family.type === "counter" && !(value >= 0)) fail(n, t, "a counter must be >= 0");
    family.samples.push({ name, labels, value });
  });
  for (const f of families.values()) {
    if (f.type === "histogram") checkHistogram(f);
  }
  return [...families.values()];
}

function checkHistogram(f: MetricFamily): void {
  const groups = new Map<string, Sample[]>();
  for (const s of f.samples) {
    const { le: _le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const list = groups.get(key) ?? [];
    list.push(s);
    groups.set(key, list);
  }
  for (const [key, samples] of groups) {
    const buckets = samples.filter((s) => s.name === `${f.name}_bucket`);
    const sum = samples.filter((s) => s.name === `${f.name}_sum`);
    const count = samples.filter((s) => s.name === `${f.name}_count`);
    if (buckets.length === 0 || sum.length !== 1 || count.length !== 1) {
      throw new SyntaxError(`${f.name}${key}: a histogram needs buckets, one _sum and one _count`);
    }
    let lastBound = -Infinity;
    let lastCount = 0;
    for (const b of buckets) {
      const le = b.labels.le;
      const bound = le === undefined ? undefined : parseValue(le);
      if (bound === undefined || Number.isNaN(bound)) {
        throw new SyntaxError(`${f.name}${key}: bad le "${le}"`);
      }
      if (bound <= lastBound) throw new SyntaxError(`${f.name}${key}: buckets not increasing`);
      if (b.value < lastCount) throw new SyntaxError(`${f.name}${key}: bucket counts decrease`);
      lastBound = bound;
      lastCount = b.value;
    }
    if (lastBound !== Infinity) throw new SyntaxError(`${f.name}${key}: no +Inf bucket`);
    if (lastCount !== count[0].value) {
      throw new SyntaxError(`${f.name}${key}: +Inf bucket != _count`);
    }
  }
}
