import assert from "node:assert/strict";
import fc from "fast-check";
import { DEFAULT_INTERNAL_HOSTS, HostList } from "../../lib/policy/host_list.ts";
import { SourceError } from "../../lib/policy/origin.ts";
import { assertOnlySourceErrors } from "../helpers/source_errors.ts";
import { fuzzParams } from "../helpers/fuzz.ts";

interface Case {
  name: string;
  list: string[];
  host?: string;
  ip?: string;
  want: boolean;
  rule?: string;
}

const cases: Case[] = [
  { name: "IPv4 address", list: ["192.0.2.1"], ip: "192.0.2.1", want: true, rule: "192.0.2.1" },
  { name: "IPv4 address, other client", list: ["192.0.2.1"], ip: "192.0.2.2", want: false },
  { name: "IPv4 CIDR", list: ["10.0.0.0/8"], ip: "10.200.1.1", want: true, rule: "10.0.0.0/8" },
  { name: "IPv4 /0", list: ["0.0.0.0/0"], ip: "203.0.113.9", want: true },
  { name: "IPv4 /32", list: ["192.0.2.1/32"], ip: "192.0.2.1", want: true },
  { name: "bracketed IPv4", list: ["[192.0.2.1]"], ip: "192.0.2.1", want: true },
  { name: "bracketed IPv4 block", list: ["[192.0.2.0]/24"], ip: "192.0.2.77", want: true },
  { name: "IPv6 address", list: ["2001:db8::1"], ip: "2001:db8:0:0::1", want: true },
  { name: "IPv6 address, upper case entry", list: ["2001:DB8::1"], ip: "2001:db8::1", want: true },
  { name: "IPv6 CIDR", list: ["2001:db8::/32"], ip: "2001:db8:ffff::1", want: true },
  { name: "IPv6 CIDR, outside", list: ["2001:db8::/32"], ip: "2001:db9::1", want: false },
  { name: "bracketed IPv6", list: ["[::1]"], ip: "::1", want: true, rule: "[::1]" },
  { name: "bracketed IPv6 block", list: ["[2001:db8::/32]"], ip: "2001:db8::5", want: true },
  {
    name: "bracketed IPv6, length outside",
    list: ["[2001:db8::]/32"],
    ip: "2001:db8::5",
    want: true,
  },
  { name: "client IP given in brackets", list: ["192.0.2.1"], ip: "[192.0.2.1]", want: true },
  {
    name: "IPv4-mapped client matches IPv4",
    list: ["127.0.0.1"],
    ip: "::ffff:127.0.0.1",
    want: true,
  },
  {
    name: "IPv4-mapped client in IPv4 block",
    list: ["10.0.0.0/8"],
    ip: "::ffff:10.9.9.9",
    want: true,
  },
  {
    name: "IPv4-mapped entry matches IPv4 client",
    list: ["::ffff:10.0.0.0/104"],
    ip: "10.1.1.1",
    want: true,
  },
  { name: "::/0 does not match IPv4", list: ["::/0"], ip: "192.0.2.1", want: false },
  { name: "IPv4 block does not match IPv6", list: ["0.0.0.0/0"], ip: "2001:db8::1", want: false },
  {
    name: "host name, case-insensitive",
    list: ["Mail.Example.com"],
    host: "MAIL.example.COM",
    want: true,
  },
  {
    name: "host name is not a domain",
    list: ["example.com"],
    host: "mail.example.com",
    want: false,
  },
  { name: "domain suffix", list: [".example.com"], host: "a.b.example.com", want: true },
  {
    name: "domain suffix excludes the apex",
    list: [".example.com"],
    host: "example.com",
    want: false,
  },
  {
    name: "domain suffix needs a dot boundary",
    list: [".example.com"],
    host: "badexample.com",
    want: false,
  },
  {
    name: "trailing dot in host",
    list: ["mail.example.com"],
    host: "mail.example.com.",
    want: true,
  },
  { name: "bracketed host name skipped", list: ["[192.0.2.1]"], host: "[192.0.2.1]", want: false },
  // Ordering: the more precise entry wins; at equal precision the negation wins.
  {
    name: "address beats excluded block",
    list: ["!192.168.1.0/24", "192.168.1.1"],
    ip: "192.168.1.1",
    want: true,
    rule: "192.168.1.1",
  },
  {
    name: "excluded block beats wider block",
    list: ["192.168.0.0/16", "!192.168.1.0/24"],
    ip: "192.168.1.9",
    want: false,
    rule: "!192.168.1.0/24",
  },
  {
    name: "wider block outside the exclusion",
    list: ["192.168.0.0/16", "!192.168.1.0/24"],
    ip: "192.168.2.9",
    want: true,
  },
  {
    name: "negation wins at equal length",
    list: ["10.0.0.0/8", "!10.0.0.0/8"],
    ip: "10.1.1.1",
    want: false,
  },
  {
    name: "order in the file does not matter",
    list: ["!10.0.0.0/8", "10.0.0.0/8"],
    ip: "10.1.1.1",
    want: false,
  },
  {
    name: "host: full name beats domain",
    list: ["!.example.com", "ok.example.com"],
    host: "ok.example.com",
    want: true,
  },
  {
    name: "host: excluded name beats domain",
    list: [".example.com", "!bad.example.com"],
    host: "bad.example.com",
    want: false,
    rule: "!bad.example.com",
  },
  {
    name: "host: negation at same level wins",
    list: ["a.example.com", "!a.example.com"],
    host: "a.example.com",
    want: false,
  },
  // OpenDKIM ORs the host and address tests: an excluded name does not undo a matching address.
  {
    name: "excluded name, matching address",
    list: ["!mx.example.com", "10.0.0.0/8"],
    host: "mx.example.com",
    ip: "10.0.0.1",
    want: true,
    rule: "10.0.0.0/8",
  },
  {
    name: "excluded name, no address match",
    list: ["!mx.example.com", "10.0.0.0/8"],
    host: "mx.example.com",
    ip: "192.0.2.1",
    want: false,
    rule: "!mx.example.com",
  },
  // localhost stands for the loopback addresses (OpenDKIM issue #175).
  {
    name: "localhost entry, ::1 client",
    list: ["localhost"],
    host: "ip6-localhost",
    ip: "::1",
    want: true,
  },
  { name: "localhost entry, 127.0.0.2 client", list: ["localhost"], ip: "127.0.0.2", want: true },
  {
    name: "localhost entry, name only",
    list: ["localhost"],
    host: "localhost",
    want: true,
    rule: "localhost",
  },
  { name: "!localhost excludes ::1", list: ["::/0", "!localhost"], ip: "::1", want: false },
  { name: "empty list", list: [], host: "localhost", ip: "127.0.0.1", want: false },
];

Deno.test("HostList.match() follows OpenDKIM's rules", async () => {
  for (const c of cases) {
    const { list } = HostList.fromStrings(c.list, "InternalHosts");
    const got = await list.match(c.host, c.ip);
    assert.equal(got.matched, c.want, c.name);
    if (c.rule !== undefined) assert.equal(got.rule?.text, c.rule, `${c.name}: rule`);
  }
});

Deno.test("HostList.match() with the default InternalHosts treats both loopbacks as internal", async () => {
  const { list } = HostList.fromStrings(DEFAULT_INTERNAL_HOSTS, "InternalHosts");
  assert.equal((await list.match("localhost", "127.0.0.1")).matched, true);
  assert.equal((await list.match("localhost", "::1")).matched, true);
  assert.equal((await list.match("localhost", "127.0.0.2")).matched, false);
  assert.equal((await list.match("mx.example.net", "192.0.2.1")).matched, false);
});

Deno.test("HostList.fromEntries() refuses malformed entries with file:line", () => {
  const bad = [
    "192.0.2/24",
    "10.0.0.0/33",
    "2001:db8::/129",
    "*.example.com",
    "host name",
    "!",
    "[example.com]",
    "1.2.3.4.5",
    "[2001:db8::/32]/48",
    "mail..example.com",
  ];
  for (const text of bad) {
    assert.throws(
      () =>
        HostList.fromEntries([{
          key: text,
          origin: { file: "/etc/opendkim/TrustedHosts", line: 4 },
        }], "InternalHosts"),
      (e: unknown) => {
        assert.ok(e instanceof SourceError, text);
        assert.equal(e.line, 4);
        assert.match(e.message, /\/etc\/opendkim\/TrustedHosts:4/);
        return true;
      },
      text,
    );
  }
});

Deno.test("HostList.fromEntries() warns about a block with host bits and uses its network", async () => {
  const { list, warnings } = HostList.fromStrings(["192.168.1.5/24"], "InternalHosts", {
    file: "hosts",
    line: 7,
  });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0].message, /hosts:7/);
  assert.match(warnings[0].message, /192\.168\.1\.0\/24/);
  assert.equal((await list.match(undefined, "192.168.1.200")).matched, true);
});

Deno.test("HostList.match() reports the entry's origin for explain and LogWhy", async () => {
  const { list } = HostList.fromEntries([
    { key: "127.0.0.1", origin: { file: "/etc/opendkim/TrustedHosts", line: 1 } },
    { key: "localhost", origin: { file: "/etc/opendkim/TrustedHosts", line: 2 } },
  ], "InternalHosts");
  const m = await list.match("localhost6", "::1");
  assert.equal(m.by, "address");
  assert.equal(m.rule?.origin.line, 2);
  assert.equal(m.rule?.impliedBy, "localhost");
});

Deno.test("HostList.fromStrings() throws only SourceErrors, whatever the entries", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), fc.string({ maxLength: 80 }), (a, b) => {
      assertOnlySourceErrors(() => HostList.fromStrings([a, b], "InternalHosts"));
    }),
    fuzzParams(500),
  );
});
