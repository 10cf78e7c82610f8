import assert from "node:assert/strict";
import {
  DNS_PORT,
  formatNameserver,
  MAX_NAMESERVERS,
  type Nameserver,
  NameserverSyntaxError,
  parseIpAddress,
  parseNameserver,
  parseNameserverList,
} from "../../lib/dns/nameserver.ts";

const good: { input: string; want: Nameserver }[] = [
  { input: "127.0.0.1", want: { address: "127.0.0.1", port: 53, family: 4 } },
  { input: "192.0.2.1@5353", want: { address: "192.0.2.1", port: 5353, family: 4 } },
  { input: "192.0.2.1:5353", want: { address: "192.0.2.1", port: 5353, family: 4 } },
  { input: "0.0.0.0@1", want: { address: "0.0.0.0", port: 1, family: 4 } },
  { input: "255.255.255.255@65535", want: { address: "255.255.255.255", port: 65535, family: 4 } },
  { input: "::1", want: { address: "::1", port: 53, family: 6 } },
  { input: "::1@5353", want: { address: "::1", port: 5353, family: 6 } },
  { input: "[::1]", want: { address: "::1", port: 53, family: 6 } },
  { input: "[::1]:5353", want: { address: "::1", port: 5353, family: 6 } },
  { input: "2001:DB8::53", want: { address: "2001:db8::53", port: 53, family: 6 } },
  { input: "2001:db8:0:0:1:0:0:1", want: { address: "2001:db8::1:0:0:1", port: 53, family: 6 } },
  {
    input: "2001:0db8:0000:0000:0000:0000:0000:0001",
    want: { address: "2001:db8::1", port: 53, family: 6 },
  },
  { input: "2001:db8:1:1:1:1:0:1", want: { address: "2001:db8:1:1:1:1:0:1", port: 53, family: 6 } },
  { input: "fe80:0:0:1:0:0:0:0", want: { address: "fe80:0:0:1::", port: 53, family: 6 } },
  { input: "1:2:3:4:5:6:7::", want: { address: "1:2:3:4:5:6:7:0", port: 53, family: 6 } },
  { input: "::", want: { address: "::", port: 53, family: 6 } },
  { input: "::ffff:192.0.2.1", want: { address: "::ffff:192.0.2.1", port: 53, family: 6 } },
  { input: "::ffff:c000:201@53", want: { address: "::ffff:192.0.2.1", port: 53, family: 6 } },
  { input: "64:ff9b::192.0.2.1", want: { address: "64:ff9b::c000:201", port: 53, family: 6 } },
  { input: "::1:53", want: { address: "::1:53", port: 53, family: 6 } },
  { input: "[2001:db8::1]:0053", want: { address: "2001:db8::1", port: 53, family: 6 } },
];

for (const { input, want } of good) {
  Deno.test(`parseNameserver() accepts "${input}"`, () => {
    assert.deepEqual(parseNameserver(input), want);
  });
}

const bad: { input: string; mentions: string }[] = [
  { input: "", mentions: '""' },
  { input: "localhost", mentions: '"localhost" is not an IPv4 or IPv6 address' },
  { input: "ns.example.com@53", mentions: '"ns.example.com"' },
  { input: "ns.example.com:53", mentions: '"ns.example.com"' },
  { input: "256.0.0.1", mentions: '"256.0.0.1"' },
  { input: "1.2.3", mentions: '"1.2.3"' },
  { input: "1.2.3.4.5", mentions: '"1.2.3.4.5"' },
  { input: "01.2.3.4", mentions: '"01.2.3.4"' },
  { input: "0x7f.0.0.1", mentions: '"0x7f.0.0.1"' },
  { input: " 127.0.0.1", mentions: '" 127.0.0.1"' },
  { input: "127.0.0.1@0", mentions: 'port "0"' },
  { input: "127.0.0.1@65536", mentions: 'port "65536"' },
  { input: "127.0.0.1@", mentions: 'port ""' },
  { input: "127.0.0.1@+53", mentions: 'port "+53"' },
  { input: "127.0.0.1:53:53", mentions: '"127.0.0.1:53:53"' },
  { input: "127.0.0.1:", mentions: 'port ""' },
  { input: "[127.0.0.1]:53", mentions: '"127.0.0.1" is not an IPv6 address' },
  { input: "[::1]53", mentions: '"[IPv6]:PORT"' },
  { input: "[::1", mentions: '"[IPv6]:PORT"' },
  { input: "[::1]:", mentions: 'port ""' },
  { input: "[::1]:99999", mentions: 'port "99999"' },
  { input: "[fe80::1%eth0]", mentions: '"fe80::1%eth0" is not an IPv6 address' },
  { input: "1::2::3", mentions: '"1::2::3"' },
  { input: ":1::2", mentions: '":1::2"' },
  { input: "1:2:3:4:5:6:7:8:9", mentions: '"1:2:3:4:5:6:7:8:9"' },
  { input: "1:2:3:4:5:6:7", mentions: '"1:2:3:4:5:6:7"' },
  { input: "12345::1", mentions: '"12345::1"' },
  { input: "g::1", mentions: '"g::1"' },
  { input: "1.2.3.4::", mentions: '"1.2.3.4::"' },
  { input: "::1.2.3.4:5", mentions: '"::1.2.3.4:5"' },
  { input: "1:2:3:4:5:6:7:1.2.3.4", mentions: '"1:2:3:4:5:6:7:1.2.3.4"' },
];

for (const { input, mentions } of bad) {
  Deno.test(`parseNameserver() rejects "${input}"`, () => {
    assert.throws(
      () => parseNameserver(input),
      (e: unknown) => {
        assert.ok(e instanceof NameserverSyntaxError);
        assert.ok(e instanceof SyntaxError);
        assert.equal(e.name, "NameserverSyntaxError");
        assert.equal(e.value, input);
        assert.ok(e.message.startsWith(`Cannot parse nameserver "${input}"`), e.message);
        assert.ok(e.message.includes(mentions), e.message);
        return true;
      },
    );
  });
}

Deno.test("parseNameserverList() reads a comma-separated list with spaces", () => {
  assert.deepEqual(parseNameserverList("192.0.2.1, [2001:db8::1]:5353 ,::1@54"), [
    { address: "192.0.2.1", port: DNS_PORT, family: 4 },
    { address: "2001:db8::1", port: 5353, family: 6 },
    { address: "::1", port: 54, family: 6 },
  ]);
  assert.deepEqual(parseNameserverList("127.0.0.1"), [
    { address: "127.0.0.1", port: 53, family: 4 },
  ]);
});

Deno.test("parseNameserverList() rejects empty entries, bad entries and long lists", () => {
  for (const input of ["", " ", "127.0.0.1,", ",127.0.0.1", "127.0.0.1,,::1"]) {
    assert.throws(() => parseNameserverList(input), /empty entry/, input);
  }
  assert.throws(() => parseNameserverList("127.0.0.1, example.com"), /"example.com"/);
  const many = new Array(MAX_NAMESERVERS + 1).fill("127.0.0.1").join(",");
  assert.throws(() => parseNameserverList(many), NameserverSyntaxError);
  assert.equal(parseNameserverList(many.slice(10)).length, MAX_NAMESERVERS);
});

Deno.test("formatNameserver() output parses back to the same nameserver", () => {
  for (const { want } of good) {
    assert.deepEqual(parseNameserver(formatNameserver(want)), want);
  }
});

Deno.test("parseIpAddress() gives one canonical form per address", () => {
  const same = ["2001:db8::1", "2001:DB8:0:0:0:0:0:1", "2001:db8:0000::0001", "2001:db8::0:1"];
  for (const text of same) assert.equal(parseIpAddress(text)?.address, "2001:db8::1", text);
  // RFC 5952 §4.2.3: the first of two equally long zero runs is the one shortened.
  assert.equal(parseIpAddress("1:0:0:2:0:0:3:4")?.address, "1::2:0:0:3:4");
  assert.equal(parseIpAddress("1:0:0:2:0:0:0:4")?.address, "1:0:0:2::4");
  assert.equal(parseIpAddress("example.com"), undefined);
  assert.equal(parseIpAddress("1.2.3.04"), undefined);
});
