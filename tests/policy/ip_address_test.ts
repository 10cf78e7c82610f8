import assert from "node:assert/strict";
import {
  formatIp,
  formatIpPrefix,
  hasHostBits,
  networkOf,
  parseIp,
  parseIpPrefix,
  prefixContains,
  prefixRank,
} from "../../lib/policy/ip_address.ts";

Deno.test("parseIp() reads dotted-quad IPv4 and RFC 4291 IPv6, IPv4-mapped as IPv4", () => {
  const cases: { text: string; family: 4 | 6; formatted: string }[] = [
    { text: "192.0.2.1", family: 4, formatted: "192.0.2.1" },
    { text: "0.0.0.0", family: 4, formatted: "0.0.0.0" },
    { text: "255.255.255.255", family: 4, formatted: "255.255.255.255" },
    { text: "::ffff:127.0.0.1", family: 4, formatted: "127.0.0.1" },
    { text: "0:0:0:0:0:FFFF:7F00:1", family: 4, formatted: "127.0.0.1" },
    { text: "::", family: 6, formatted: "::" },
    { text: "::1", family: 6, formatted: "::1" },
    { text: "2001:DB8::1", family: 6, formatted: "2001:db8::1" },
    { text: "1:2:3:4:5:6:7:8", family: 6, formatted: "1:2:3:4:5:6:7:8" },
    { text: "1::", family: 6, formatted: "1::" },
    { text: "64:ff9b::192.0.2.33", family: 6, formatted: "64:ff9b::c000:221" },
    { text: "::192.0.2.1", family: 6, formatted: "::c000:201" },
  ];
  for (const c of cases) {
    const ip = parseIp(c.text);
    assert.ok(ip, c.text);
    assert.equal(ip.family, c.family, c.text);
    assert.equal(ip.bytes.length, 16, c.text);
    assert.equal(formatIp(ip), c.formatted, c.text);
  }
});

Deno.test("parseIp() refuses inet_aton's short and octal forms and malformed IPv6", () => {
  const bad = [
    "",
    "10.1",
    "10.0.0",
    "010.0.0.1",
    "256.0.0.1",
    "1.2.3.4.5",
    " 1.2.3.4",
    "1.2.3.4/32",
    "[192.0.2.1]",
    "localhost",
    "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:8:9",
    "1::2::3",
    "12345::",
    ":::",
    "1:2:3:4:5:6:7::8",
    "1.2.3.4::",
    "::1.2.3",
    "g::1",
    "0:".repeat(20) + "0",
  ];
  for (const text of bad) assert.equal(parseIp(text), undefined, JSON.stringify(text));
});

Deno.test("formatIp() writes RFC 5952's form: the longest zero run as ::, the first of equals", () => {
  const cases: [string, string][] = [
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["0:0:0:0:0:0:0:0", "::"],
    ["fe80:0000:0000:0000:0204:61ff:fe9d:f156", "fe80::204:61ff:fe9d:f156"],
  ];
  for (const [text, want] of cases) assert.equal(formatIp(parseIp(text)!), want, text);
});

Deno.test("parseIpPrefix() reads ADDRESS[/LENGTH] within the family's bits", () => {
  const cases: { text: string; length?: number; formatted?: string }[] = [
    { text: "10.0.0.0/8", length: 8, formatted: "10.0.0.0/8" },
    { text: "192.0.2.1", length: 32, formatted: "192.0.2.1" },
    { text: "0.0.0.0/0", length: 0, formatted: "0.0.0.0/0" },
    { text: "2001:db8::/32", length: 32, formatted: "2001:db8::/32" },
    { text: "::1", length: 128, formatted: "::1" },
    { text: "::/0", length: 0, formatted: "::/0" },
    // An IPv4-mapped block written as IPv6 takes an IPv6 length and becomes an IPv4 block.
    { text: "::ffff:10.0.0.0/104", length: 8, formatted: "10.0.0.0/8" },
    { text: "::ffff:10.0.0.0/96", length: 0, formatted: "10.0.0.0/0" },
    { text: "::ffff:10.0.0.0/95" },
    { text: "::ffff:10.0.0.0/129" },
    { text: "10.0.0.0/33" },
    { text: "2001:db8::/129" },
    { text: "10.0.0.0/" },
    { text: "10.0.0.0/-1" },
    { text: "10.0.0.0/08x" },
    { text: "10.0.0.0/0008" },
    { text: "10.0.0.0/8/8" },
    { text: "example.com/8" },
  ];
  for (const c of cases) {
    const prefix = parseIpPrefix(c.text);
    if (c.length === undefined) {
      assert.equal(prefix, undefined, c.text);
      continue;
    }
    assert.ok(prefix, c.text);
    assert.equal(prefix.length, c.length, c.text);
    assert.equal(formatIpPrefix(prefix), c.formatted, c.text);
  }
});

Deno.test("prefixContains() compares the prefix's bits, at any length, within one family", () => {
  const cases: [string, string, boolean][] = [
    ["10.0.0.0/8", "10.255.255.255", true],
    ["10.0.0.0/8", "11.0.0.0", false],
    ["192.168.0.0/23", "192.168.1.200", true],
    ["192.168.0.0/23", "192.168.2.1", false],
    ["192.0.2.128/25", "192.0.2.127", false],
    ["192.0.2.128/25", "192.0.2.129", true],
    ["192.0.2.1", "192.0.2.1", true],
    ["192.0.2.1", "::ffff:192.0.2.1", true],
    ["0.0.0.0/0", "203.0.113.9", true],
    ["0.0.0.0/0", "::1", false],
    ["::/0", "::1", true],
    ["::/0", "192.0.2.1", false],
    ["::ffff:0.0.0.0/96", "192.0.2.1", true],
    ["2001:db8::/33", "2001:db8:7fff::1", true],
    ["2001:db8::/33", "2001:db8:8000::1", false],
    ["::1", "::1", true],
    ["::1", "::2", false],
  ];
  for (const [prefix, ip, want] of cases) {
    assert.equal(prefixContains(parseIpPrefix(prefix)!, parseIp(ip)!), want, `${prefix} ∋ ${ip}`);
  }
});

Deno.test("networkOf() clears the host bits; hasHostBits() says whether there were any", () => {
  const cases: [string, string, boolean][] = [
    ["192.168.1.5/24", "192.168.1.0/24", true],
    ["192.168.1.0/24", "192.168.1.0/24", false],
    ["192.168.1.255/23", "192.168.0.0/23", true],
    ["10.1.2.3/0", "0.0.0.0/0", true],
    ["192.0.2.1", "192.0.2.1", false],
    ["2001:db8::1/64", "2001:db8::/64", true],
    ["2001:db8:ffff::/31", "2001:db8::/31", true],
    ["::ffff:10.1.0.0/104", "10.0.0.0/8", true],
  ];
  for (const [text, network, host] of cases) {
    const prefix = parseIpPrefix(text)!;
    assert.equal(formatIpPrefix(networkOf(prefix)), network, text);
    assert.equal(hasHostBits(prefix), host, text);
    assert.equal(hasHostBits(networkOf(prefix)), false, text);
    assert.equal(networkOf(prefix).address.family, prefix.address.family, text);
  }
});

Deno.test("prefixRank() orders IPv4 and IPv6 prefixes by the bits they fix in one space", () => {
  const rank = (text: string) => prefixRank(parseIpPrefix(text)!);
  assert.equal(rank("10.0.0.0/8"), 104);
  assert.equal(rank("192.0.2.1"), 128);
  assert.equal(rank("0.0.0.0/0"), 96);
  assert.equal(rank("::/0"), 0);
  assert.equal(rank("2001:db8::/32"), 32);
  assert.equal(rank("::1"), 128);
  assert.equal(rank("::ffff:10.0.0.0/104"), rank("10.0.0.0/8"));
});
