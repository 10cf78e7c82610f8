import assert from "node:assert/strict";
import { parsePrometheusText } from "./prometheus_text.ts";

Deno.test("parsePrometheusText() rejects what Prometheus would reject", () => {
  const head = "# HELP a_total A.\n# TYPE a_total counter\n";
  const hist = "# HELP h H.\n# TYPE h histogram\n";
  const cases: [string, RegExp][] = [
    [head + "a_total 1", /end with a line feed/],
    [head + 'a_total{x="1} 1\n', /unterminated label value/],
    [head + 'a_total{x="\\t"} 1\n', /bad escape/],
    [head + "a_total one\n", /bad value/],
    [head + "a_total -1\n", /counter must be >= 0/],
    [head + "a_total 1\na_total 2\n", /series repeated/],
    [head + "b_total 1\n", /sample outside its family/],
    ["# HELP a A.\n# TYPE a counter\n", /must end in _total/],
    [head + "\n", /empty line/],
    [
      hist + 'h_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
      /bucket counts decrease/,
    ],
    [hist + 'h_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', /no \+Inf bucket/],
    [hist + 'h_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n', /\+Inf bucket != _count/],
  ];
  for (const [text, want] of cases) {
    assert.throws(() => parsePrometheusText(text), want, text);
  }
});
