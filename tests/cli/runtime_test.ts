import assert from "node:assert/strict";
import {
  BUILTIN_CONFIG,
  BUILTIN_CONFIG_TEXT,
  loadRuntime,
  RuntimeConfigError,
  runtimeIo,
} from "../../lib/cli/runtime.ts";
import { CachingResolver } from "../../lib/dns/cache.ts";
import { KeyFileResolver } from "../../lib/dns/key_file.ts";
import { DnsError } from "../../lib/dns/resolver.ts";
import { StubResolver } from "../../lib/dns/stub.ts";
import { startFakeDnsServer } from "../helpers/fake_dns_server.ts";
import { memoryIo } from "../helpers/memory_io.ts";

const CONF = "/etc/opendkim.conf";

/** The runtime of `text` as /etc/opendkim.conf, with `files` beside it. */
const runtimeOf = (text: string, files: Record<string, string> = {}) =>
  loadRuntime(CONF, memoryIo({ [CONF]: text, ...files }));

Deno.test("loadRuntime() without a file serves the built-in default: verify only, in the foreground", async () => {
  const { loaded, resolver } = await loadRuntime(undefined);
  assert.deepEqual(loaded.config.mode, { sign: false, verify: true });
  assert.deepEqual(loaded.config.socket, { kind: "inet", host: "127.0.0.1", port: 8891 });
  assert.equal(loaded.config.background, false);
  assert.equal(loaded.config.syslog, false);
  assert.deepEqual(loaded.files, [BUILTIN_CONFIG]);
  assert.deepEqual(loaded.origins.mode, { file: BUILTIN_CONFIG, line: 1 });
  assert.ok(resolver instanceof StubResolver);
});

Deno.test("runtimeIo() holds the built-in configuration and passes every other path on", async () => {
  const io = runtimeIo();
  assert.equal(new TextDecoder().decode(await io.readFile(BUILTIN_CONFIG)), BUILTIN_CONFIG_TEXT);
  const info = await io.stat(BUILTIN_CONFIG);
  assert.deepEqual([info.isFile, info.size], [true, BUILTIN_CONFIG_TEXT.length]);
  await assert.rejects(io.readFile("/nonexistent/dkimd.conf"), Deno.errors.NotFound);
});

Deno.test("loadRuntime() refuses a configuration with every problem, each naming file and line", async () => {
  const cases: { text?: string; path?: string; problems: RegExp[] }[] = [
    {
      text: "Mode x\nSyslog maybe\n",
      problems: [/^Cannot parse "Mode" at \/etc\/opendkim\.conf:1: /, /\/etc\/opendkim\.conf:2: /],
    },
    {
      text: "Mode v\nBogus 1\n",
      problems: [/^Unknown setting "Bogus" at \/etc\/opendkim\.conf:2: /],
    },
    {
      path: "/etc/none.conf",
      problems: [/^Cannot read configuration at \/etc\/none\.conf: no such file/],
    },
  ];
  for (const c of cases) {
    const files: Record<string, string> = c.text === undefined ? {} : { [CONF]: c.text };
    await assert.rejects(
      loadRuntime(c.path ?? CONF, memoryIo(files)),
      (e: unknown) => {
        assert.ok(e instanceof RuntimeConfigError, String(e));
        assert.equal(e.problems.length, c.problems.length, e.message);
        c.problems.forEach((re, i) => assert.match(e.problems[i], re));
        assert.equal(e.message, e.problems.join("\n"));
        return true;
      },
    );
  }
});

Deno.test("loadRuntime() answers key queries from TestDNSData, by lower-case name", async () => {
  const { resolver } = await runtimeOf(
    "Mode v\nTestDNSData csl:S._domainkey.Example.COM.=v=DKIM1; p=AB\n",
  );
  assert.ok(resolver instanceof KeyFileResolver);
  assert.deepEqual(await resolver.resolveTxt("s._domainkey.example.com"), ["v=DKIM1; p=AB"]);
  await assert.rejects(resolver.resolveTxt("t._domainkey.example.com"), DnsError);
});

Deno.test("loadRuntime() reads TestPublicKeys, and says so when it cannot", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/keys`, "s._domainkey.example.com v=DKIM1; p=CD\n");
    const { resolver } = await runtimeOf(`Mode v\nTestPublicKeys ${dir}/keys\n`);
    assert.deepEqual(await resolver.resolveTxt("s._domainkey.example.com"), ["v=DKIM1; p=CD"]);
    await assert.rejects(
      runtimeOf(`Mode v\nTestPublicKeys ${dir}/none\n`),
      (e: unknown) =>
        e instanceof RuntimeConfigError && e.problems.length === 1 &&
        e.problems[0].startsWith(`Cannot read "TestPublicKeys" file "${dir}/none": `),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadRuntime() asks DNS through the stub resolver, cached with QueryCache", async () => {
  const plain = await runtimeOf("Mode v\nNameservers 192.0.2.1\n");
  assert.ok(plain.resolver instanceof StubResolver);
  const cached = await runtimeOf("Mode v\nNameservers 192.0.2.1\nQueryCache yes\n");
  assert.ok(cached.resolver instanceof CachingResolver);
});

Deno.test("loadRuntime() with DNSConnect yes asks the Nameservers over TCP from the first query", async () => {
  const server = await startFakeDnsServer({ "s._domainkey.example.com": { txt: ["v=DKIM1; p="] } });
  try {
    for (const [setting, transport] of [["yes", "tcp"], ["no", "udp"]] as const) {
      const { loaded, resolver } = await runtimeOf(
        `Mode v\nNameservers 127.0.0.1@${server.port}\nDNSConnect ${setting}\n`,
      );
      assert.equal(loaded.config.dnsConnect, setting === "yes");
      assert.deepEqual(loaded.warnings, []);
      const before = server.queries.length;
      assert.deepEqual(await resolver.resolveTxt("s._domainkey.example.com"), ["v=DKIM1; p="]);
      assert.deepEqual(server.queries.slice(before).map((q) => q.transport), [transport]);
    }
  } finally {
    await server.close();
  }
});

Deno.test("loadRuntime warns, naming CryptoBackend, when the BigInt RSA verifier fails its self-test", async () => {
  // A fresh process whose WebCrypto verify is broken (accepts everything): the self-test fails,
  // keys keep WebCrypto, and the load says so instead of falling back silently.
  const runtime = new URL("../../lib/cli/runtime.ts", import.meta.url).href;
  const script = `
    crypto.subtle.verify = () => Promise.resolve(true);
    const { loadRuntime } = await import(${JSON.stringify(runtime)});
    const { loaded } = await loadRuntime(undefined);
    console.log(JSON.stringify(loaded.warnings.map((w) => [w.setting, w.message])));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--quiet",
      "--config",
      new URL("../../deno.json", import.meta.url).pathname,
      script,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(out.code, 0);
  const warnings: [string, string][] = JSON.parse(new TextDecoder().decode(out.stdout));
  const rsa = warnings.filter(([, m]) => m.startsWith("RSA verification"));
  assert.equal(rsa.length, 1);
  assert.equal(rsa[0][0], "CryptoBackend");
  assert.match(rsa[0][1], /disagreed with WebCrypto.*verifying RSA signatures with WebCrypto/);
});
