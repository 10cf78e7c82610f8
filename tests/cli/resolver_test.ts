import assert from "node:assert/strict";
import { UsageError } from "../../lib/cli/args.ts";
import { makeResolver } from "../../lib/cli/resolver.ts";
import { KeyFileResolver } from "../../lib/dns/key_file.ts";
import { DnsError } from "../../lib/dns/resolver.ts";
import { StubResolver } from "../../lib/dns/stub.ts";

Deno.test("makeResolver() answers from --test-keys, a key file, instead of DNS", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const keys = `${dir}/keys.txt`;
    await Deno.writeTextFile(keys, "# test keys\ns._domainkey.example.com v=DKIM1; p=AB\n");
    const resolver = await makeResolver("verify", {
      testKeys: keys,
      nameservers: ["192.0.2.1"],
    });
    assert.ok(resolver instanceof KeyFileResolver);
    assert.deepEqual(await resolver.resolveTxt("S._domainkey.Example.com"), ["v=DKIM1; p=AB"]);
    await assert.rejects(
      resolver.resolveTxt("t._domainkey.example.com"),
      (e: unknown) => e instanceof DnsError && e.code === "nxdomain",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("makeResolver() refuses a key file it cannot read or parse, naming the command and file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/bad.txt`, "s._domainkey.example.com\n");
    const cases: [string, RegExp][] = [
      [
        `${dir}/none.txt`,
        new RegExp(`^testkey: cannot read key file "${dir}/none.txt": no such file$`),
      ],
      [`${dir}/bad.txt`, new RegExp(`^testkey: .*${dir}/bad.txt.*expected a key record`)],
    ];
    for (const [testKeys, message] of cases) {
      await assert.rejects(
        makeResolver("testkey", { testKeys }),
        (e: unknown) => e instanceof UsageError && message.test(e.message),
        testKeys,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("makeResolver() asks the --nameserver servers, refusing a spec that is not one", async () => {
  const stub = await makeResolver("verify", {
    nameservers: ["192.0.2.1", "[2001:db8::53]:5353,192.0.2.2@53"],
    timeoutMs: 100,
  });
  assert.ok(stub instanceof StubResolver);
  for (const spec of ["dns.example", "192.0.2.1@port", ""]) {
    await assert.rejects(
      makeResolver("verify", { nameservers: [spec] }),
      (e: unknown) => e instanceof UsageError && e.message.startsWith("verify: --nameserver: "),
      JSON.stringify(spec),
    );
  }
});

Deno.test("makeResolver() without keys or nameservers asks the servers of /etc/resolv.conf", async () => {
  assert.ok(await makeResolver("verify", {}) instanceof StubResolver);
  assert.ok(await makeResolver("verify", { nameservers: [] }) instanceof StubResolver);
});
