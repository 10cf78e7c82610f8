/**
 * dkimd genkey and testkey against OpenDKIM's own tools and the verifiers people run: the
 * records opendkim-genkey writes are the records dkimd genkey writes, each tool accepts the
 * other's keys, both give the same exit status for the same problem, and keys from dkimd
 * genkey sign mail that Mail::DKIM, dkimpy and OpenDKIM verify over real DNS.
 */
import assert from "node:assert/strict";
import { importPrivateKey } from "../../lib/crypto/private_key.ts";
import { parseKeyRecord } from "../../lib/dkim/key_record.ts";
import { formatZoneFileRecord, parseZoneFileRecord } from "../../lib/dkim/key_text.ts";
import { MESSAGE } from "../helpers/dkim_fixtures.ts";
import { startDnsServer } from "../helpers/dns_server.ts";
import { startFakeDnsServer } from "../helpers/fake_dns_server.ts";
import { verifyWithDkimpy, verifyWithMailDkim, verifyWithOpenDkim } from "../helpers/peers.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;
const OPENDKIM_GENKEY = "/usr/sbin/opendkim-genkey";
const OPENDKIM_TESTKEY = "/usr/sbin/opendkim-testkey";

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function run(
  program: string,
  args: readonly string[],
  cwd: string,
  stdin?: Uint8Array,
): Promise<Run & { bytes: Uint8Array }> {
  const child = new Deno.Command(program, {
    args: [...args],
    cwd,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  if (stdin) {
    const writer = child.stdin.getWriter();
    await writer.write(stdin);
    await writer.close();
  }
  const out = await child.output();
  const text = new TextDecoder();
  return {
    code: out.code,
    stdout: text.decode(out.stdout),
    stderr: text.decode(out.stderr),
    bytes: out.stdout,
  };
}

function dkimd(args: readonly string[], cwd: string, stdin?: Uint8Array) {
  return run(
    Deno.execPath(),
    ["run", "-A", "--quiet", "--config", CONFIG, MAIN, ...args],
    cwd,
    stdin,
  );
}

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-keytools-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The text with every long base64 run (the key) replaced, to compare layouts of two keys. */
function withoutKey(text: string): string {
  return text.replace(/[A-Za-z0-9+/=]{40,}/g, "KEY");
}

Deno.test("opendkim-genkey writes the SELECTOR.txt that formatZoneFileRecord() writes for its key", async () => {
  await withDir(async (dir) => {
    const cases: {
      args: string[];
      selector: string;
      domain: string;
      tags: object;
      append?: boolean;
    }[] = [
      { args: [], selector: "default", domain: "localhost", tags: { hashes: ["sha256"] } },
      {
        args: ["-s", "dkim", "-d", "example.com"],
        selector: "dkim",
        domain: "example.com",
        tags: { hashes: ["sha256"] },
      },
      {
        args: ["-s", "all", "-d", "example.com", "-t", "-S", "-r", "-a", "-n", "hello world"]
          .concat(["-h", "sha1:sha256", "-b", "1024"]),
        selector: "all",
        domain: "example.com",
        append: true,
        tags: {
          hashes: ["sha1", "sha256"],
          note: "hello world",
          testing: true,
          noSubdomains: true,
          emailOnly: true,
        },
      },
      {
        args: ["--selector=big", "--domain=example.org", "--bits=3072", "--testmode"],
        selector: "big",
        domain: "example.org",
        tags: { hashes: ["sha256"], testing: true },
      },
    ];
    for (const c of cases) {
      const sub = `${dir}/${c.selector}`;
      await Deno.mkdir(sub);
      const theirs = await run(OPENDKIM_GENKEY, c.args, sub);
      assert.equal(theirs.code, 0, theirs.stderr);
      const pem = await Deno.readTextFile(`${sub}/${c.selector}.private`);
      assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
      const key = await importPrivateKey(pem, `${c.selector}.private`);
      const text = await Deno.readTextFile(`${sub}/${c.selector}.txt`);
      assert.equal(
        formatZoneFileRecord(
          { keyType: "rsa", publicKey: key.publicKey, ...c.tags },
          { selector: c.selector, domain: c.domain, appendDomain: c.append },
        ),
        text,
        c.args.join(" "),
      );
      // Its record parses in dkimd and publishes its key.
      const record = parseKeyRecord(parseZoneFileRecord(text).record);
      assert.deepEqual(record.publicKey, key.publicKey);

      // dkimd genkey with the same options writes the same text around its own key.
      await Deno.mkdir(`${dir}/mine-${c.selector}`);
      const again = await dkimd(["genkey", "-D", `${dir}/mine-${c.selector}`, ...c.args], dir);
      assert.equal(again.code, 0, again.stderr);
      const ours = await Deno.readTextFile(`${dir}/mine-${c.selector}/${c.selector}.txt`);
      assert.equal(withoutKey(ours), withoutKey(text), c.args.join(" "));
      assert.notEqual(ours, text);
    }
  });
});

Deno.test("opendkim-genkey's committed test key and record load in dkimd", async () => {
  const keys = new URL("../testdata/keys/", import.meta.url);
  const key = await importPrivateKey(await Deno.readFile(new URL("opendkim_genkey.private", keys)));
  const zone = parseZoneFileRecord(await Deno.readTextFile(new URL("opendkim_genkey.txt", keys)));
  assert.equal(zone.owner, "opendkim._domainkey");
  assert.deepEqual(parseKeyRecord(zone.record).publicKey, key.publicKey);
});

Deno.test("dkimd testkey and opendkim-testkey accept each other's keys and agree on exit statuses", async () => {
  await withDir(async (dir) => {
    assert.equal((await run(OPENDKIM_GENKEY, ["-s", "od", "-d", "example.com"], dir)).code, 0);
    for (const args of [["-s", "dk", "-d", "example.com"], ["--type", "ed25519", "-s", "ed"]]) {
      const made = await dkimd(["genkey", ...args], dir);
      assert.equal(made.code, 0, made.stderr);
    }
    const txt = async (s: string) =>
      parseZoneFileRecord(await Deno.readTextFile(`${dir}/${s}.txt`)).record;
    const server = await startDnsServer({
      zone: "example.com",
      records: {
        "od._domainkey.example.com": [await txt("od")],
        "dk._domainkey.example.com": [await txt("dk")],
        "ed._domainkey.example.com": [await txt("ed")],
        "revoked._domainkey.example.com": ["v=DKIM1; k=rsa; p="],
        "nodata._domainkey.example.com": [],
      },
    });
    const fake = await startFakeDnsServer({
      "servfail._domainkey.example.com": { rcode: "SERVFAIL" },
    });
    try {
      // OpenDKIM's resolver (libunbound) forwards to the Nameservers of its configuration.
      await Deno.writeTextFile(`${dir}/knot.conf`, `Nameservers ${server.nameserver}\n`);
      await Deno.writeTextFile(`${dir}/fake.conf`, `Nameservers 127.0.0.1@${fake.port}\n`);
      const cases: { conf: string; args: string[]; code: number; theirs?: number }[] = [
        { conf: "knot", args: ["-s", "dk", "-k", "dk.private"], code: 0 },
        { conf: "knot", args: ["-s", "od", "-k", "od.private"], code: 0 },
        { conf: "knot", args: ["-s", "dk"], code: 0 },
        { conf: "knot", args: ["-s", "ed"], code: 0 },
        // opendkim-testkey compares RSA keys only: it cannot load an Ed25519 private key.
        { conf: "knot", args: ["-s", "ed", "-k", "ed.private"], code: 0, theirs: 69 },
        { conf: "knot", args: ["-s", "od", "-k", "dk.private"], code: 65 },
        { conf: "knot", args: ["-s", "ed", "-k", "dk.private"], code: 65 },
        { conf: "knot", args: ["-s", "revoked", "-k", "dk.private"], code: 69 },
        { conf: "knot", args: ["-s", "missing", "-k", "dk.private"], code: 69 },
        { conf: "knot", args: ["-s", "nodata"], code: 69 },
        { conf: "fake", args: ["-s", "servfail", "-k", "dk.private"], code: 69 },
        { conf: "knot", args: ["-s", "dk", "-k", "nofile.private"], code: 71 },
        { conf: "knot", args: ["-s", "dk", "-q"], code: 78 },
        { conf: "knot", args: ["-k", "dk.private"], code: 78 },
      ];
      for (const c of cases) {
        const args = ["-d", "example.com", ...c.args];
        const theirs = await run(OPENDKIM_TESTKEY, ["-x", `${c.conf}.conf`, ...args], dir);
        assert.equal(
          theirs.code,
          c.theirs ?? c.code,
          `opendkim-testkey ${args.join(" ")}\n${theirs.stderr}`,
        );
        const ns = c.conf === "knot" ? server.nameserver : `127.0.0.1@${fake.port}`;
        const ours = await dkimd(["testkey", "--nameserver", ns, "--timeout", "2", ...args], dir);
        assert.equal(ours.code, c.code, `dkimd testkey ${args.join(" ")}\n${ours.stderr}`);
      }
      // The seed's success check: opendkim-testkey -d DOMAIN -s dkim -k dkim.private; echo $?
      const seed = await run(
        OPENDKIM_TESTKEY,
        ["-x", "knot.conf", "-d", "example.com", "-s", "dk", "-k", "dk.private", "-vvv"],
        dir,
      );
      assert.equal(seed.code, 0);
      assert.equal(seed.stdout, "opendkim-testkey: key OK\n");
    } finally {
      await fake.close();
      await server.close();
    }
  });
});

Deno.test("keys from dkimd genkey sign mail that Mail::DKIM, dkimpy and OpenDKIM verify over DNS", async () => {
  await withDir(async (dir) => {
    for (const args of [["-s", "dkim", "-d", "example.com"], ["--type", "ed25519", "-s", "ed"]]) {
      const made = await dkimd(["genkey", ...args], dir);
      assert.equal(made.code, 0, made.stderr);
    }
    const txt = async (s: string) =>
      parseZoneFileRecord(await Deno.readTextFile(`${dir}/${s}.txt`)).record;
    const server = await startDnsServer({
      zone: "example.com",
      records: {
        "dkim._domainkey.example.com": [await txt("dkim")],
        "ed._domainkey.example.com": [await txt("ed")],
      },
    });
    try {
      const keys = { nameserver: server.nameserver };
      const sign = async (selector: string) => {
        const out = await dkimd(
          ["sign", "-d", "example.com", "-s", selector, "-k", `${selector}.private`],
          dir,
          MESSAGE,
        );
        assert.equal(out.code, 0, out.stderr);
        return out.bytes;
      };
      const rsaSigned = await sign("dkim");
      assert.match(new TextDecoder().decode(rsaSigned), /^DKIM-Signature: v=1; a=rsa-sha256;/);
      for (const verify of [verifyWithMailDkim, verifyWithDkimpy, verifyWithOpenDkim]) {
        const verdicts = await verify(rsaSigned, keys);
        assert.equal(verdicts.length, 1, verify.name);
        assert.equal(verdicts[0].result, "pass", `${verify.name}: ${verdicts[0].detail}`);
      }
      // Mail::DKIM 1.20230212 (Debian 12) verifies RSA only; dkimpy and OpenDKIM do RFC 8463.
      const edSigned = await sign("ed");
      assert.match(new TextDecoder().decode(edSigned), /^DKIM-Signature: v=1; a=ed25519-sha256;/);
      for (const verify of [verifyWithDkimpy, verifyWithOpenDkim]) {
        const verdicts = await verify(edSigned, keys);
        assert.equal(verdicts.length, 1, verify.name);
        assert.equal(verdicts[0].result, "pass", `${verify.name}: ${verdicts[0].detail}`);
      }
      // A changed header fails: the passes above mean something.
      const tampered = new TextDecoder().decode(rsaSigned).replace("Lunch", "Dinner");
      const failed = await verifyWithDkimpy(new TextEncoder().encode(tampered), keys);
      assert.equal(failed[0].result, "fail");
    } finally {
      await server.close();
    }
  });
});
