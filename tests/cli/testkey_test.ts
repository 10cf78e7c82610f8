import assert from "node:assert/strict";
import { toBase64 } from "../../lib/bytes.ts";
import type { SigningKey } from "../../lib/crypto/private_key.ts";
import { parseZoneFileRecord } from "../../lib/dkim/key_text.ts";
import { DnsError, type DnsErrorCode } from "../../lib/dns/resolver.ts";
import { describeDnsError } from "../../lib/cli/testkey.ts";
import { loadKey, rsaKey } from "../helpers/dkim_fixtures.ts";
import { startDnsServer } from "../helpers/dns_server.ts";
import { startFakeDnsServer } from "../helpers/fake_dns_server.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;
const KEYS = new URL("../testdata/keys/", import.meta.url);

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `dkimd ARGS` in `cwd`, as a user would. */
async function dkimd(args: readonly string[], cwd: string): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "--config", CONFIG, MAIN, ...args],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** The record `key` publishes, as opendkim-genkey writes it for RSA (with h=sha256). */
function record(key: SigningKey, extra = ""): string {
  return `v=DKIM1; ${key.type === "rsa" ? "h=sha256; " : ""}k=${key.type}; ${extra}p=${
    toBase64(key.publicKey)
  }`;
}

Deno.test("describeDnsError() gives one line per kind of failure", () => {
  const want: Record<DnsErrorCode, RegExp> = {
    nxdomain: /^record not found \(no such name\)$/,
    nodata: /^record not found \(the name has no TXT record\)$/,
    servfail: /^DNS error: SERVFAIL from the server/,
    refused: /^DNS error: REFUSED by the server/,
    timeout: /^DNS error: the query timed out$/,
    malformed: /^DNS error: DNS lookup of "s._domainkey.example.com" failed: malformed \(bad\)$/,
    network: /^DNS error: DNS lookup of "s._domainkey.example.com" failed: network \(bad\)$/,
    toolarge: /^DNS error: DNS lookup of "s._domainkey.example.com" failed: toolarge \(bad\)$/,
  };
  for (const [code, re] of Object.entries(want)) {
    const e = new DnsError(code as DnsErrorCode, "s._domainkey.example.com", "bad");
    assert.match(describeDnsError(e), re);
  }
});

Deno.test("dkimd testkey against a real DNS server: genkey's records pass, every problem has its line and status", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-testkey-test-" });
  const fake = await startFakeDnsServer({
    "servfail._domainkey.example.com": { rcode: "SERVFAIL" },
    "refused._domainkey.example.com": { rcode: "REFUSED" },
    "silent._domainkey.example.com": { drop: true },
  });
  let server: Awaited<ReturnType<typeof startDnsServer>> | undefined;
  try {
    for (
      const args of [
        ["-s", "rsa", "-d", "example.com"],
        ["--type", "ed25519", "-s", "ed", "-d", "example.com"],
        ["--type", "ed25519", "-s", "testing", "-d", "example.com", "-t"],
      ]
    ) {
      const run = await dkimd(["genkey", ...args], dir);
      assert.equal(run.code, 0, run.stderr);
    }
    const txt = async (s: string) =>
      parseZoneFileRecord(await Deno.readTextFile(`${dir}/${s}.txt`)).record;
    const other = await rsaKey();
    const weak = await loadKey("rsa1024.pem");
    const tiny = await loadKey("rsa1023.pem");
    await Deno.copyFile(new URL("rsa1024.pem", KEYS), `${dir}/weak.private`);
    await Deno.chmod(`${dir}/weak.private`, 0o600);
    const rsaRecord = await txt("rsa");
    server = await startDnsServer({
      zone: "example.com",
      records: {
        "rsa._domainkey.example.com": [rsaRecord],
        "ed._domainkey.example.com": [await txt("ed")],
        "testing._domainkey.example.com": [await txt("testing")],
        "wrong._domainkey.example.com": [record(other)],
        "revoked._domainkey.example.com": ["v=DKIM1; k=rsa; p="],
        "weak._domainkey.example.com": [record(weak)],
        "tiny._domainkey.example.com": [record(tiny)],
        "nodata._domainkey.example.com": [],
        "two._domainkey.example.com": [rsaRecord, "v=DKIM1; k=rsa; p="],
        "sha1._domainkey.example.com": [rsaRecord.replace("h=sha256", "h=sha1")],
      },
    });
    await Deno.copyFile(`${dir}/rsa.private`, `${dir}/loose.private`);
    await Deno.chmod(`${dir}/loose.private`, 0o644);
    await Deno.copyFile(`${dir}/rsa.private`, `${dir}/group.private`);
    await Deno.chmod(`${dir}/group.private`, 0o640);
    await Deno.writeTextFile(`${dir}/garbage.private`, "not a key\n", { mode: 0o600 });
    await Deno.mkdir(`${dir}/keys`);
    await Deno.writeTextFile(`${dir}/test.keys`, `rsa._domainkey.example.com ${rsaRecord}\n`);

    const ns = ["--nameserver", server.nameserver];
    const loose = `${await Deno.realPath(dir)}/loose.private`;
    // The fake server answers servfail and refused at once, but on a machine busy with the
    // whole suite "at once" can take over a second; only the silent name is meant to time out.
    const fakeNs = ["--nameserver", `127.0.0.1@${fake.port}`, "--timeout", "20"];
    const silentNs = ["--nameserver", `127.0.0.1@${fake.port}`, "--timeout", "1"];
    const line = (name: string, text: string) =>
      `dkimd testkey: "${name}._domainkey.example.com": ${text}\n`;
    const lineLike = (name: string, start: string) =>
      new RegExp(`^${esc(line(name, start).slice(0, -1))}[^\\n]+\\)\\n$`);
    const cases: {
      args: string[];
      code: number;
      stderr?: string | RegExp;
      stdout?: string;
    }[] = [
      { args: [...ns, "-d", "example.com", "-s", "rsa", "-k", "rsa.private"], code: 0, stderr: "" },
      { args: [...ns, "-d", "example.com.", "-s", "ed", "-k", "ed.private"], code: 0, stderr: "" },
      { args: [...ns, "-d", "example.com", "-s", "rsa"], code: 0, stderr: "" },
      {
        args: [...ns, "-d", "example.com", "-s", "rsa", "-k", "rsa.private", "-v"],
        code: 0,
        stderr: "dkimd testkey: key not secure\n",
      },
      {
        args: [...ns, "-d", "example.com", "-s", "rsa", "-k", "rsa.private", "-vvv"],
        code: 0,
        stderr: "dkimd testkey: key loaded from rsa.private (RSA, 2048 bits)\n" +
          'dkimd testkey: checking key "rsa._domainkey.example.com"\n' +
          "dkimd testkey: key not secure\n" +
          line("rsa", "v=DKIM1") + line("rsa", "k=rsa") + line("rsa", "h=sha256") +
          line("rsa", "p= holds a 2048-bit RSA key") +
          line("rsa", "p= is the public half of the private key"),
        stdout: "dkimd testkey: key OK\n",
      },
      {
        args: [...ns, "-d", "example.com", "-s", "testing", "-k", "testing.private"],
        code: 0,
        stderr: line(
          "testing",
          "testing mode (t=y): verifiers may treat failed signatures as unsigned; remove t=y once signing works",
        ),
      },
      {
        args: [...ns, "-d", "example.com", "-s", "weak", "-k", "weak.private"],
        code: 0,
        stderr: line("weak", "the RSA key has 1024 bits; RFC 8301 §3.2 recommends 2048 or more"),
      },
      {
        args: [...ns, "-d", "example.com", "-s", "wrong", "-k", "rsa.private"],
        code: 65,
        stderr: line("wrong", "public key does not match private key"),
      },
      {
        args: [...ns, "-d", "example.com", "-s", "ed", "-k", "rsa.private"],
        code: 65,
        stderr: line(
          "ed",
          "public key does not match private key: the record holds an Ed25519 key, the private key is RSA",
        ),
      },
      {
        args: [...ns, "-d", "example.com", "-s", "revoked", "-k", "rsa.private"],
        code: 69,
        stderr: line("revoked", "key is revoked (p= empty)"),
      },
      {
        args: [...ns, "-d", "example.com", "-s", "missing", "-k", "rsa.private"],
        code: 69,
        stderr: line("missing", "record not found (no such name)"),
      },
      {
        args: [...ns, "-d", "example.com", "-s", "nodata"],
        code: 69,
        stderr: line("nodata", "record not found (the name has no TXT record)"),
      },
      {
        args: [...ns, "-d", "example.com", "-s", "tiny"],
        code: 69,
        stderr: line(
          "tiny",
          "the RSA key has 1023 bits: RFC 8301 §3.2 verifiers refuse keys under 1024",
        ),
      },
      {
        args: [...ns, "-d", "example.com", "-s", "two", "-k", "rsa.private"],
        code: 69,
        stderr: line(
          "two",
          "2 TXT records found; publish exactly one key record (RFC 6376 §3.6.2.2)",
        ),
      },
      {
        args: [...ns, "-d", "example.com", "-s", "sha1", "-k", "rsa.private"],
        code: 69,
        stderr: line(
          "sha1",
          "h=sha1 leaves out sha256, and RFC 8301 §3.1 verifiers refuse sha1: no signature can verify",
        ),
      },
      {
        args: [...fakeNs, "-d", "example.com", "-s", "servfail", "-k", "rsa.private"],
        code: 69,
        stderr: lineLike("servfail", "DNS error: SERVFAIL from the server ("),
      },
      {
        args: [...fakeNs, "-d", "example.com", "-s", "refused"],
        code: 69,
        stderr: lineLike("refused", "DNS error: REFUSED by the server ("),
      },
      {
        args: [...silentNs, "-d", "example.com", "-s", "silent"],
        code: 69,
        stderr: line("silent", "DNS error: the query timed out"),
      },
      {
        args: [...ns, "-d", "example.com", "-s", "rsa", "-k", "loose.private"],
        code: 0,
        // The loader's RequireSafeKeys rule and words, naming the resolved path.
        stderr: new RegExp(
          `^dkimd testkey: WARNING: file "${esc(loose)}" can be read by every user ` +
            `\\(owner [^,]+, group [^,]+, mode 0644\\); fix: chmod 640 ${esc(loose)}\\n$`,
        ),
      },
      {
        args: [...ns, "-d", "example.com", "-s", "rsa", "-k", "group.private"],
        code: 0,
        stderr: "",
      },
      {
        args: [...ns, "-d", "example.com", "-s", "rsa", "-k", "nofile.private"],
        code: 71,
        stderr: 'dkimd testkey: "nofile.private": no such file\n',
      },
      {
        args: [...ns, "-d", "example.com", "-s", "rsa", "-k", "keys"],
        code: 71,
        stderr: 'dkimd testkey: "keys": not a regular file\n',
      },
      {
        args: [...ns, "-d", "example.com", "-s", "rsa", "-k", "garbage.private"],
        code: 69,
        stderr: new RegExp(
          `^${
            esc('dkimd testkey: "rsa._domainkey.example.com": Cannot use key "garbage.private": ')
          }.+\\n$`,
        ),
      },
      {
        args: ["--test-keys", "test.keys", "-d", "example.com", "-s", "rsa", "-k", "rsa.private"],
        code: 0,
        stderr: "",
      },
      {
        args: ["-s", "rsa"],
        code: 78,
        stderr: "dkimd testkey: -d DOMAIN is required (see dkimd testkey --help)\n",
      },
      {
        args: ["-d", "example.com"],
        code: 78,
        stderr: "dkimd testkey: -s SELECTOR is required (see dkimd testkey --help)\n",
      },
      { args: ["-q"], code: 78, stderr: 'dkimd testkey: unknown option "-q"\n' },
      {
        args: ["-d", "exa mple.com", "-s", "rsa"],
        code: 78,
        stderr: 'dkimd testkey: "exa mple.com" is not a domain name\n',
      },
      {
        args: ["--nameserver", "nonsense", "-d", "example.com", "-s", "rsa"],
        code: 78,
        stderr: /^dkimd testkey: --nameserver: .+\n$/,
      },
    ];
    const runs = await Promise.all(cases.map((c) => dkimd(["testkey", ...c.args], dir)));
    cases.forEach((c, i) => {
      const run = runs[i];
      const what = `testkey ${c.args.join(" ")}\n${run.stderr}`;
      assert.equal(run.code, c.code, what);
      if (typeof c.stderr === "string") assert.equal(run.stderr, c.stderr, what);
      else if (c.stderr) assert.match(run.stderr, c.stderr, what);
      assert.equal(run.stdout, c.stdout ?? "", what);
    });
    const help = await dkimd(["testkey", "--help"], dir);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: dkimd testkey -d DOMAIN -s SELECTOR/);
  } finally {
    await server?.close();
    await fake.close();
    await Deno.remove(dir, { recursive: true });
  }
});

function esc(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

Deno.test("dkimd testkey -x tests every KeyTable entry with the configuration's Nameservers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-testkey-x-" });
  let server: Awaited<ReturnType<typeof startDnsServer>> | undefined;
  try {
    for (const args of [["-s", "rsa", "-d", "example.com"], ["--type", "ed25519", "-s", "ed"]]) {
      const made = await dkimd(["genkey", ...args], dir);
      assert.equal(made.code, 0, made.stderr);
    }
    const txt = async (s: string) =>
      parseZoneFileRecord(await Deno.readTextFile(`${dir}/${s}.txt`)).record;
    server = await startDnsServer({
      zone: "example.com",
      records: {
        "rsa._domainkey.example.com": [await txt("rsa")],
        "ed._domainkey.example.com": [await txt("ed")],
        "wrong._domainkey.example.com": [await txt("ed")],
      },
    });
    const conf = (lines: string[]) =>
      [...lines, `Nameservers ${server!.nameserver}`, ""].join("\n");
    await Deno.writeTextFile(`${dir}/signing.table`, "*@example.com rsa\n");
    const signing = `SigningTable refile:${dir}/signing.table`;
    await Deno.writeTextFile(
      `${dir}/all.table`,
      [
        `rsa example.com:rsa:${dir}/rsa.private`,
        `ed example.com:ed:${dir}/ed.private`,
        `wrong example.com:wrong:${dir}/rsa.private`,
        `gone example.com:gone:${dir}/rsa.private`,
        `any %:sel:${dir}/%.private`,
        "",
      ].join("\n"),
    );
    await Deno.writeTextFile(
      `${dir}/good.table`,
      `rsa example.com:rsa:${dir}/rsa.private\ned example.com:ed:${dir}/ed.private\n`,
    );
    await Deno.writeTextFile(
      `${dir}/all.conf`,
      conf(["Mode sv", `KeyTable ${dir}/all.table`, signing]),
    );
    await Deno.writeTextFile(`${dir}/good.conf`, conf([`KeyTable ${dir}/good.table`, signing]));
    await Deno.writeTextFile(
      `${dir}/single.conf`,
      conf(["Domain example.com", "Selector rsa", `KeyFile ${dir}/rsa.private`]),
    );
    await Deno.writeTextFile(
      `${dir}/mismatch.conf`,
      conf(["Domain example.com", "Selector ed", `KeyFile ${dir}/rsa.private`]),
    );
    await Deno.writeTextFile(`${dir}/bad.conf`, "Mode zz\n");
    // Mode v: the loader leaves the keys alone, testkey still loads and compares them.
    await Deno.writeTextFile(
      `${dir}/verify.table`,
      `rsa example.com:wrong:./rsa.private\nnokey example.com:rsa:${dir}/nofile.private\n`,
    );
    await Deno.writeTextFile(
      `${dir}/verify.conf`,
      conf(["Mode v", `BaseDirectory ${dir}`, `KeyTable ${dir}/verify.table`, signing]),
    );
    // TestPublicKeys instead of DNS, and a key the loader warns about: that warning is shown
    // without -v, while the one about SoftStart (not implemented) waits for -v.
    await Deno.copyFile(new URL("rsa1024.pem", KEYS), `${dir}/weak.private`);
    await Deno.chmod(`${dir}/weak.private`, 0o600);
    const weakKey = await loadKey("rsa1024.pem");
    await Deno.writeTextFile(
      `${dir}/weak.keys`,
      `weak._domainkey.example.com ${record(weakKey)}\n`,
    );
    await Deno.writeTextFile(`${dir}/weak.table`, `rsa example.com:weak:${dir}/weak.private\n`);
    await Deno.writeTextFile(
      `${dir}/weak.conf`,
      ["SoftStart yes", `KeyTable ${dir}/weak.table`, signing, `TestPublicKeys ${dir}/weak.keys`]
        .join("\n"),
    );
    await Deno.writeTextFile(`${dir}/nokey.conf`, conf([`KeyTable ${dir}/nokey.table`, signing]));
    await Deno.writeTextFile(`${dir}/nokey.table`, `rsa example.com:rsa:${dir}/nofile.private\n`);

    const all = await dkimd(["testkey", "-x", "all.conf", "-v"], dir);
    assert.equal(all.code, 69, all.stderr);
    assert.equal(
      all.stderr,
      [
        "key rsa not secure",
        "key ed not secure",
        "key wrong not secure",
        'key "wrong" ("wrong._domainkey.example.com"): public key does not match private key: the record holds an Ed25519 key, the private key is RSA',
        'key "gone" ("gone._domainkey.example.com"): record not found (no such name)',
        'key "any": not tested: its domain is "%", the sender\'s domain at signing time; test one with -d DOMAIN -s sel -k FILE',
      ].map((l) => `dkimd testkey: ${l}\n`).join(""),
    );
    assert.equal(all.stdout, "dkimd testkey: 4 keys checked; 2 pass, 2 fail, 1 not tested\n");

    const good = await dkimd(["testkey", "-x", "good.conf", "-vvv"], dir);
    assert.equal(good.code, 0, good.stderr);
    assert.equal(
      good.stdout,
      "dkimd testkey: key rsa: OK\ndkimd testkey: key ed: OK\n" +
        "dkimd testkey: 2 keys checked; 2 pass, 0 fail\n",
    );
    assert.match(good.stderr, /^dkimd testkey: record 0 for "rsa" retrieved\n/m);
    assert.match(good.stderr, /^dkimd testkey: key "ed" loaded from .*\/ed\.private \(Ed25519\)$/m);
    assert.equal((await dkimd(["testkey", "-x", "good.conf"], dir)).stderr, "");

    const weak = await dkimd(["testkey", "-x", "weak.conf"], dir);
    assert.equal(weak.code, 0, weak.stderr);
    assert.equal(
      weak.stderr,
      `dkimd testkey: KeyTable entry "rsa" at ${dir}/weak.table:1 is a 1024-bit RSA key; RFC 8301 §3.2 says signers SHOULD use at least 2048 bits\n` +
        'dkimd testkey: key "rsa" ("weak._domainkey.example.com"): the RSA key has 1024 bits; RFC 8301 §3.2 recommends 2048 or more\n',
    );
    const weakV = await dkimd(["testkey", "-x", "weak.conf", "-v"], dir);
    assert.equal(weakV.stderr.split("\n").length, weak.stderr.split("\n").length + 2);
    assert.match(weakV.stderr, /SoftStart/);

    const cases: { args: string[]; code: number; stderr: string | RegExp }[] = [
      // -d, -s or -k turn KeyTable mode off; the Nameservers still apply.
      { args: ["-x", "all.conf", "-d", "example.com", "-s", "rsa"], code: 0, stderr: "" },
      { args: ["-x", "single.conf"], code: 0, stderr: "" },
      {
        args: ["-x", "mismatch.conf"],
        code: 65,
        stderr:
          'dkimd testkey: "ed._domainkey.example.com": public key does not match private key: the record holds an Ed25519 key, the private key is RSA\n',
      },
      { args: ["-x", "single.conf", "-s", "ed", "-k", "ed.private"], code: 0, stderr: "" },
      {
        args: ["-x", "verify.conf"],
        code: 71,
        stderr:
          'dkimd testkey: key "rsa" ("wrong._domainkey.example.com"): public key does not match private key: the record holds an Ed25519 key, the private key is RSA\n' +
          `dkimd testkey: key "nokey": "${dir}/nofile.private": no such file\n`,
      },
      {
        args: ["-x", "bad.conf"],
        code: 78,
        stderr: /^dkimd testkey: Cannot parse "Mode" at bad\.conf:1: [^\n]+\n$/,
      },
      {
        args: ["-x", "nokey.conf"],
        code: 78,
        stderr:
          /^dkimd testkey: .*nokey\.table:1: .*nofile\.private": no such file or directory\n$/,
      },
      {
        args: ["-x", "missing.conf"],
        code: 78,
        stderr: /^dkimd testkey: Cannot read configuration at .*missing\.conf.*\n$/,
      },
    ];
    for (const c of cases) {
      const run = await dkimd(["testkey", ...c.args], dir);
      const what = `testkey ${c.args.join(" ")}\n${run.stderr}`;
      assert.equal(run.code, c.code, what);
      if (typeof c.stderr === "string") assert.equal(run.stderr, c.stderr, what);
      else assert.match(run.stderr, c.stderr, what);
    }
  } finally {
    await server?.close();
    await Deno.remove(dir, { recursive: true });
  }
});
