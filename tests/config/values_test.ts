import assert from "node:assert/strict";
import {
  formatRestartRate,
  formatUmask,
  parseAction,
  parseAuthservId,
  parseBoolean,
  parseCanonicalization,
  parseInteger,
  parseMode,
  parseRestartRate,
  parseSeconds,
  parseSignatureAlgorithm,
  parseSyslogFacility,
  parseUmask,
  parseUserId,
  ValueError,
} from "../../lib/config/values.ts";

Deno.test("parseBoolean() reads the first byte as OpenDKIM does", () => {
  const yes = ["yes", "Yes", "YES", "y", "true", "True", "T", "1", "yesplease"];
  const no = ["no", "No", "n", "false", "FALSE", "f", "0", "nope"];
  for (const t of yes) assert.equal(parseBoolean(t), true, t);
  for (const t of no) assert.equal(parseBoolean(t), false, t);
  for (const t of ["on", "off", "enabled", "2", "", "-1"]) {
    assert.throws(() => parseBoolean(t), ValueError, t);
  }
});

Deno.test("parseInteger() reads C strtol(..., 0) and refuses trailing text", () => {
  const good: [string, number][] = [
    ["0", 0],
    ["300", 300],
    ["65536", 65536],
    ["0x10", 16],
    ["0X1f", 31],
    ["010", 8],
    ["007", 7],
    ["-5", -5],
    ["+5", 5],
    ["2147483647", 2147483647],
  ];
  for (const [t, n] of good) assert.equal(parseInteger(t), n, t);
  for (const t of ["", "1k", "08", "1.5", "0x", "2147483648", "five", "1 2"]) {
    assert.throws(() => parseInteger(t), ValueError, t);
  }
});

Deno.test("parseSeconds() reads the YAML duration forms", () => {
  const good: [string, number][] = [
    ["5", 5],
    ["5s", 5],
    ["10m", 600],
    ["1h", 3600],
    ["2d", 172800],
    ["1H", 3600],
  ];
  for (const [t, n] of good) assert.equal(parseSeconds(t), n, t);
  for (const t of ["", "5x", "-1", "1.5h"]) assert.throws(() => parseSeconds(t), ValueError, t);
});

Deno.test("parseMode() takes s and v only", () => {
  assert.deepEqual(parseMode("s"), { sign: true, verify: false });
  assert.deepEqual(parseMode("vs"), { sign: true, verify: true });
  assert.deepEqual(parseMode("svv"), { sign: true, verify: true });
  for (const t of ["S", "sign", "x", "sv1"]) assert.throws(() => parseMode(t), ValueError, t);
});

Deno.test("parseCanonicalization() reads header[/body]", () => {
  assert.deepEqual(parseCanonicalization("simple"), { header: "simple", body: "simple" });
  assert.deepEqual(parseCanonicalization("relaxed/simple"), { header: "relaxed", body: "simple" });
  assert.deepEqual(parseCanonicalization("Relaxed/Relaxed"), {
    header: "relaxed",
    body: "relaxed",
  });
  for (const t of ["loose", "relaxed/", "/simple", "relaxed/simple/x", "nowsp"]) {
    assert.throws(() => parseCanonicalization(t), ValueError, t);
  }
});

Deno.test("parseSignatureAlgorithm() knows rsa-sha256, ed25519-sha256 and rsa-sha1", () => {
  assert.equal(parseSignatureAlgorithm("rsa-sha256"), "rsa-sha256");
  assert.equal(parseSignatureAlgorithm("ED25519-SHA256"), "ed25519-sha256");
  assert.equal(parseSignatureAlgorithm("rsa-sha1"), "rsa-sha1");
  for (const t of ["rsa-sha512", "ed25519", "sha256"]) {
    assert.throws(() => parseSignatureAlgorithm(t), t);
  }
});

Deno.test("parseAction() takes the names and their first letters", () => {
  const cases: [string, string][] = [
    ["accept", "accept"],
    ["a", "accept"],
    ["Reject", "reject"],
    ["r", "reject"],
    ["tempfail", "tempfail"],
    ["T", "tempfail"],
    ["discard", "discard"],
    ["d", "discard"],
    ["quarantine", "quarantine"],
    ["q", "quarantine"],
  ];
  for (const [t, want] of cases) assert.equal(parseAction(t), want, t);
  for (const t of ["bounce", "x", "acc", ""]) assert.throws(() => parseAction(t), ValueError, t);
});

Deno.test("parseRestartRate() reads n/t[u]", () => {
  assert.deepEqual(parseRestartRate("10/1h"), { count: 10, seconds: 3600 });
  assert.deepEqual(parseRestartRate("0/30"), { count: 0, seconds: 30 });
  assert.deepEqual(parseRestartRate("5/2D"), { count: 5, seconds: 172800 });
  assert.deepEqual(parseRestartRate("5/10m"), { count: 5, seconds: 600 });
  for (const t of ["10", "10/", "/1h", "10/1x", "10/0", "-1/1h", "10/1hh"]) {
    assert.throws(() => parseRestartRate(t), ValueError, t);
  }
  for (const t of ["10/1h", "3/90s", "1/2d", "4/5m"]) {
    assert.deepEqual(parseRestartRate(formatRestartRate(parseRestartRate(t))), parseRestartRate(t));
  }
});

Deno.test("parseUserId() reads user[:group]", () => {
  assert.deepEqual(parseUserId("opendkim"), { user: "opendkim" });
  assert.deepEqual(parseUserId("opendkim:mail"), { user: "opendkim", group: "mail" });
  assert.deepEqual(parseUserId("110:117"), { user: "110", group: "117" });
  for (const t of ["", ":grp", "user:", "us er", "user:gr:oup", "-user"]) {
    assert.throws(() => parseUserId(t), t);
  }
});

Deno.test("parseUmask() reads octal, with a note where OpenDKIM reads decimal", () => {
  const cases: [string, number, boolean][] = [
    ["002", 0o002, false],
    ["007", 0o007, false],
    ["022", 0o022, false],
    ["0", 0, false],
    ["777", 0o777, true],
    ["22", 0o022, true],
    ["0x1ff", 0o777, false],
  ];
  for (const [t, want, noted] of cases) {
    const got = parseUmask(t);
    assert.equal(got.value, want, t);
    assert.equal(got.note !== undefined, noted, `${t} note`);
  }
  for (const t of ["8", "0o22", "1000", "abc", "-1"]) {
    assert.throws(() => parseUmask(t), ValueError, t);
  }
  assert.equal(formatUmask(0o22), "0022");
});

Deno.test("parseSyslogFacility() and parseAuthservId() validate their values", () => {
  assert.equal(parseSyslogFacility("mail"), "mail");
  assert.equal(parseSyslogFacility("Local7"), "local7");
  assert.throws(() => parseSyslogFacility("local8"), ValueError);
  assert.deepEqual(parseAuthservId("HOSTNAME"), { kind: "hostname" });
  assert.deepEqual(parseAuthservId("hostname"), { kind: "name", name: "hostname" });
  for (const t of ["a b", "a;b", '"q"', "(x)"]) {
    assert.throws(() => parseAuthservId(t), ValueError, t);
  }
});
