import assert from "node:assert/strict";
import {
  parseResolvConf,
  readResolvConf,
  RESOLV_CONF_MAX_BYTES,
  RESOLV_CONF_MAX_NAMESERVERS,
  type ResolvConf,
} from "../../lib/dns/resolv_conf.ts";

const LOCAL = { address: "127.0.0.1", port: 53, family: 4 } as const;

const cases: { name: string; text: string; want: ResolvConf }[] = [
  { name: "an empty file falls back to 127.0.0.1", text: "", want: { nameservers: [LOCAL] } },
  {
    name: "nameservers in file order",
    text: "nameserver 192.0.2.1\nnameserver 2001:db8::53\n",
    want: {
      nameservers: [
        { address: "192.0.2.1", port: 53, family: 4 },
        { address: "2001:db8::53", port: 53, family: 6 },
      ],
    },
  },
  {
    name: "comments, blank lines, CRLF, tabs and trailing words",
    text: "# generated\r\n; old style\r\n\r\nnameserver\t192.0.2.1  # primary\r\n" +
      "search example.com\r\ndomain example.com\r\n",
    want: { nameservers: [{ address: "192.0.2.1", port: 53, family: 4 }] },
  },
  {
    name: "an IPv6 zone is dropped",
    text: "nameserver fe80::1%eth0\n",
    want: { nameservers: [{ address: "fe80::1", port: 53, family: 6 }] },
  },
  {
    name: "invalid addresses and host names are skipped",
    text: "nameserver ns.example.com\nnameserver 300.1.1.1\nnameserver 192.0.2.1%eth0\n" +
      "nameserver\nnameserver 192.0.2.9\n",
    want: { nameservers: [{ address: "192.0.2.9", port: 53, family: 4 }] },
  },
  {
    name: "a commented-out nameserver is not used",
    text: "#nameserver 192.0.2.1\n;nameserver 192.0.2.2\n",
    want: { nameservers: [LOCAL] },
  },
  {
    name: "only the first three nameservers count, as in glibc",
    text: "nameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\n" +
      "nameserver 192.0.2.4\n",
    want: {
      nameservers: [1, 2, 3].map((i) => ({ address: `192.0.2.${i}`, port: 53, family: 4 })),
    },
  },
  {
    name: "timeout and attempts options",
    text: "options rotate timeout:3 attempts:4 edns0\nnameserver 192.0.2.1\n",
    want: {
      nameservers: [{ address: "192.0.2.1", port: 53, family: 4 }],
      timeoutMs: 3000,
      attempts: 4,
    },
  },
  {
    name: "options are capped at glibc's limits and raised to at least 1",
    text: "options timeout:99 attempts:99\noptions timeout:0\n",
    want: { nameservers: [LOCAL], timeoutMs: 1000, attempts: 5 },
  },
  {
    name: "later options override earlier ones; bad numbers are ignored",
    text: "options timeout:7 attempts:2\noptions timeout:x attempts:-1 timeout:\n" +
      "options attempts:3 # timeout:9\n",
    want: { nameservers: [LOCAL], timeoutMs: 7000, attempts: 3 },
  },
  {
    name: "keywords are case-sensitive, as in glibc",
    text: "NAMESERVER 192.0.2.1\nOptions timeout:2\n",
    want: { nameservers: [LOCAL] },
  },
];

for (const { name, text, want } of cases) {
  Deno.test(`parseResolvConf() ${name}`, () => {
    assert.deepEqual(parseResolvConf(text), want);
  });
}

Deno.test("parseResolvConf() keeps RESOLV_CONF_MAX_NAMESERVERS even past skipped lines", () => {
  const lines = ["nameserver bogus"];
  for (let i = 1; i <= RESOLV_CONF_MAX_NAMESERVERS + 2; i++) lines.push(`nameserver ::${i}`);
  const conf = parseResolvConf(lines.join("\n"));
  assert.deepEqual(conf.nameservers.map((ns) => ns.address), ["::1", "::2", "::3"]);
});

Deno.test("readResolvConf() reads a file, defaults when missing, refuses a huge one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/resolv.conf`;
    await Deno.writeTextFile(path, "nameserver ::1\noptions attempts:1\n");
    assert.deepEqual(await readResolvConf(path), {
      nameservers: [{ address: "::1", port: 53, family: 6 }],
      attempts: 1,
    });
    assert.deepEqual(await readResolvConf(`${dir}/missing`), { nameservers: [LOCAL] });
    await Deno.writeTextFile(path, "#".repeat(RESOLV_CONF_MAX_BYTES + 1));
    await assert.rejects(() => readResolvConf(path), RangeError);
    await assert.rejects(() => readResolvConf(dir)); // a directory is an error, not "missing"
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
