import assert from "node:assert/strict";
import { ConfigError, ConfigErrors, throwIfErrors } from "../../lib/config/config_error.ts";
import { SourceError } from "../../lib/policy/origin.ts";

const at = (line: number) => ({ file: "/etc/opendkim.conf", line });

Deno.test("ConfigError is a SourceError that may name its setting", () => {
  const cause = new Error("strtol");
  const e = new ConfigError('Cannot parse "DNSTimeout"', at(4), '"x": not a number', {
    setting: "DNSTimeout",
    cause,
  });
  assert.ok(e instanceof SourceError);
  assert.equal(e.name, "ConfigError");
  assert.equal(e.message, 'Cannot parse "DNSTimeout" at /etc/opendkim.conf:4: "x": not a number');
  assert.deepEqual([e.setting, e.line, e.detail, e.cause], [
    "DNSTimeout",
    4,
    '"x": not a number',
    cause,
  ]);
  const plain = new ConfigError("Cannot read configuration", at(0), "no such file");
  assert.equal(plain.setting, undefined);
  assert.equal(plain.message, "Cannot read configuration at /etc/opendkim.conf: no such file");
});

Deno.test("ConfigErrors holds every error and lists their messages, one a line", () => {
  const errors = [
    new ConfigError("A", at(1), "x"),
    new SourceError("B", { file: "/etc/key.table", line: 2 }, "y"),
    new ConfigError("C", at(9), "z"),
  ];
  const e = new ConfigErrors(errors);
  assert.ok(e instanceof AggregateError);
  assert.equal(e.name, "ConfigErrors");
  assert.deepEqual(e.errors, errors);
  assert.notEqual(e.errors, errors, "a copy: the caller's list may change");
  assert.equal(
    e.message,
    "3 configuration errors:\n" +
      "A at /etc/opendkim.conf:1: x\nB at /etc/key.table:2: y\nC at /etc/opendkim.conf:9: z",
  );
});

Deno.test("throwIfErrors() throws nothing, the one error, or ConfigErrors of several", () => {
  assert.doesNotThrow(() => throwIfErrors([]));
  const one = new ConfigError("A", at(1), "x");
  assert.throws(() => throwIfErrors([one]), (e) => e === one);
  const two = [one, new ConfigError("B", at(2), "y")];
  assert.throws(
    () => throwIfErrors(two),
    (e) => e instanceof ConfigErrors && e.errors.length === 2 && e.errors[1] === two[1],
  );
});
