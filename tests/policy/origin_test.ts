import assert from "node:assert/strict";
import { formatOrigin, SourceError } from "../../lib/policy/origin.ts";

Deno.test("formatOrigin() writes file:line, the file alone for line 0, and the YAML path", () => {
  const cases: [Parameters<typeof formatOrigin>[0], string][] = [
    [{ file: "/etc/opendkim.conf", line: 12 }, "/etc/opendkim.conf:12"],
    [{ file: "/etc/opendkim.conf", line: 0 }, "/etc/opendkim.conf"],
    [{ file: "dkimd.yaml", line: 3, path: "keyTable.a" }, "dkimd.yaml:3 (keyTable.a)"],
    [{ file: "dkimd.yaml", line: 0, path: "signingTable" }, "dkimd.yaml (signingTable)"],
    [{ file: "dkimd.yaml", line: 4, path: "" }, "dkimd.yaml:4"],
    [{ file: "(built-in default configuration)", line: 1 }, "(built-in default configuration):1"],
  ];
  for (const [origin, want] of cases) assert.equal(formatOrigin(origin), want);
});

Deno.test("SourceError names its place in the message and carries it, the detail and the cause", () => {
  const cause = new RangeError("out of range");
  const origin = { file: "d.yaml", line: 7, path: "dnsTimeout" };
  const e = new SourceError('Cannot parse "DNSTimeout"', origin, '"9999": at most 3600', {
    cause,
  });
  assert.ok(e instanceof SyntaxError);
  assert.equal(e.name, "SourceError");
  assert.equal(
    e.message,
    'Cannot parse "DNSTimeout" at d.yaml:7 (dnsTimeout): "9999": at most 3600',
  );
  assert.deepEqual([e.file, e.line, e.detail], ["d.yaml", 7, '"9999": at most 3600']);
  assert.equal(e.origin, origin);
  assert.equal(e.cause, cause);
  const whole = new SourceError('Cannot read "KeyTable"', { file: "/k", line: 0 }, "no such file");
  assert.equal(whole.message, 'Cannot read "KeyTable" at /k: no such file');
  assert.equal(whole.line, 0);
  assert.equal(whole.cause, undefined);
});
