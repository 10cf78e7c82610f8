import assert from "node:assert/strict";
import { toBase64 } from "../../lib/bytes.ts";
import { importPrivateKey } from "../../lib/crypto/private_key.ts";
import { parseKeyRecord } from "../../lib/dkim/key_record.ts";
import { MAX_NOTE_BYTES, parseZoneFileRecord } from "../../lib/dkim/key_text.ts";
import { type GenkeyOptions, parseGenkeyArgs } from "../../lib/cli/genkey.ts";
import { UsageError } from "../../lib/cli/args.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `dkimd ARGS` in `cwd` with the shell's `umask`, as a user would. */
async function dkimd(args: readonly string[], cwd: string, umask = "022"): Promise<Run> {
  const out = await new Deno.Command("/bin/sh", {
    args: ["-c", `umask ${umask} && exec "$@"`, "sh", Deno.execPath(), "run", "-A", "--quiet"]
      .concat(["--config", CONFIG, MAIN, ...args]),
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-genkey-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const mode = async (path: string) => (await Deno.stat(path)).mode! & 0o7777;

Deno.test("parseGenkeyArgs() gives opendkim-genkey 2.11's Debian defaults", () => {
  assert.deepEqual(
    parseGenkeyArgs([]),
    {
      selector: "default",
      domain: "localhost",
      directory: ".",
      type: "rsa",
      bits: 2048,
      record: { hashes: ["sha256"], testing: false, noSubdomains: false, emailOnly: false },
      appendDomain: false,
      force: false,
      verbose: 0,
    } satisfies GenkeyOptions,
  );
});

Deno.test("parseGenkeyArgs() reads short, long, bundled and negated forms", () => {
  const cases: { args: string[]; want: Partial<GenkeyOptions> }[] = [
    {
      args: ["-a", "-b", "1024", "-d", "example.com", "-D", "/k", "-h", "sha1:sha256", "-n", "x"]
        .concat(["-r", "-s", "sel", "-S", "-t", "-v", "-v"]),
      want: {
        appendDomain: true,
        bits: 1024,
        domain: "example.com",
        directory: "/k",
        selector: "sel",
        verbose: 2,
        record: {
          hashes: ["sha1", "sha256"],
          note: "x",
          testing: true,
          noSubdomains: true,
          emailOnly: true,
        },
      },
    },
    {
      args: ["--append-domain", "--bits=3072", "--domain=example.org", "--directory=/k"]
        .concat(["--hash-algorithms=sha256", "--note", "n", "--restrict", "--selector=s2"])
        .concat(["--no-subdomains", "--testmode", "--verbose", "--force"]),
      want: {
        appendDomain: true,
        bits: 3072,
        domain: "example.org",
        directory: "/k",
        selector: "s2",
        verbose: 1,
        force: true,
        record: {
          hashes: ["sha256"],
          note: "n",
          testing: true,
          noSubdomains: true,
          emailOnly: true,
        },
      },
    },
    {
      args: ["-tSr", "-b1024", "-vvv"],
      want: {
        bits: 1024,
        verbose: 3,
        record: { hashes: ["sha256"], testing: true, noSubdomains: true, emailOnly: true },
      },
    },
    { args: ["--nosubdomains"], want: { record: noSub(true) } },
    { args: ["--subdomains"], want: { record: noSub(false) } },
    {
      args: ["--noappend-domain", "--norestrict", "--notestmode"],
      want: { appendDomain: false, record: noSub(false) },
    },
    {
      args: ["--no-append-domain", "--no-restrict", "--no-testmode"],
      want: { appendDomain: false, record: noSub(false) },
    },
    { args: ["-d", "example.com."], want: { domain: "example.com" } },
    { args: ["-d", ""], want: { domain: "" } },
    {
      args: ["--type", "ed25519"],
      want: {
        type: "ed25519",
        bits: 256,
        record: { testing: false, noSubdomains: false, emailOnly: false },
      },
    },
    {
      args: ["--type=Ed25519", "-b", "256", "-h", "sha256"],
      want: {
        type: "ed25519",
        bits: 256,
        record: { hashes: ["sha256"], testing: false, noSubdomains: false, emailOnly: false },
      },
    },
    {
      args: ["-h", ""],
      want: { record: { testing: false, noSubdomains: false, emailOnly: false } },
    },
    { args: ["-b", "4096"], want: { bits: 4096 } },
  ];
  for (const { args, want } of cases) {
    const got = parseGenkeyArgs(args);
    assert.ok(typeof got === "object", args.join(" "));
    for (const [k, v] of Object.entries(want)) {
      assert.deepEqual(got[k as keyof GenkeyOptions], v, `${args.join(" ")}: ${k}`);
    }
  }
  assert.equal(parseGenkeyArgs(["--help"]), "help");
  assert.equal(parseGenkeyArgs(["-V"]), "version");
  assert.equal(parseGenkeyArgs(["--version"]), "version");
});

function noSub(noSubdomains: boolean) {
  return { hashes: ["sha256"], testing: false, noSubdomains, emailOnly: false };
}

Deno.test("parseGenkeyArgs() refuses bad flags with a UsageError naming the problem", () => {
  const cases: { args: string[]; want: RegExp }[] = [
    { args: ["-x"], want: /^genkey: unknown option "-x"$/ },
    { args: ["--bogus"], want: /^genkey: unknown option "--bogus"$/ },
    { args: ["-b"], want: /^genkey: option "--bits" needs a value$/ },
    { args: ["extra"], want: /^genkey: unexpected argument "extra"$/ },
    { args: ["-b", "512"], want: /512 bits is too small: RFC 8301 §3\.2 requires at least 1024/ },
    { args: ["-b", "1023"], want: /1023 bits is too small/ },
    { args: ["-b", "8192"], want: /8192 bits is too large: verifiers need only handle 4096/ },
    { args: ["-b", "2k"], want: /--bits needs a whole number/ },
    { args: ["--type", "dsa"], want: /--type "dsa" is not "rsa" or "ed25519"/ },
    { args: ["--type", "ed25519", "-b", "2048"], want: /Ed25519 key, which always has 256/ },
    { args: ["-s", "../etc"], want: /selector "\.\.\/etc" is not a DNS label list/ },
    { args: ["-s", ""], want: /selector "" is not/ },
    { args: ["-s", "a/b"], want: /selector "a\/b" is not/ },
    { args: ["-d", "exa mple.com"], want: /domain "exa mple.com" is not a domain name/ },
    { args: ["-h", "md5"], want: /names "md5"; DKIM hashes are sha1 and sha256/ },
    { args: ["-h", "sha1"], want: /leaves out sha256: RFC 8301 §3\.1 verifiers refuse sha1/ },
    { args: ["-a", "-d", ""], want: /--append-domain needs a domain/ },
    { args: ["-t", "--notestmode"], want: /give --testmode or --notestmode, not both/ },
    { args: ["-r", "--no-restrict"], want: /give --restrict or --no-restrict, not both/ },
    { args: ["-S", "--subdomains"], want: /give --subdomains or -S/ },
    { args: ["-n", "a\nb"], want: /--note must not hold control characters/ },
    { args: ["-n", "x".repeat(MAX_NOTE_BYTES + 1)], want: /--note is 513 bytes; at most 512/ },
  ];
  for (const { args, want } of cases) {
    assert.throws(
      () => parseGenkeyArgs(args),
      (e) => e instanceof UsageError && want.test(e.message) && !e.message.includes("\n"),
      args.join(" "),
    );
  }
});

Deno.test("dkimd genkey writes SELECTOR.private (0600, PKCS#8) and SELECTOR.txt even with umask 000", async () => {
  await withDir(async (dir) => {
    const run = await dkimd(["genkey", "-s", "dkim", "-d", "example.com"], dir, "000");
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "");
    assert.equal(
      run.stderr,
      "dkimd genkey: private key written to dkim.private\n" +
        "dkimd genkey: DNS TXT record written to dkim.txt\n",
    );
    assert.equal(await mode(`${dir}/dkim.private`), 0o600);
    assert.equal(await mode(`${dir}/dkim.txt`), 0o644);
    const pem = await Deno.readTextFile(`${dir}/dkim.private`);
    assert.match(
      pem,
      /^-----BEGIN PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END PRIVATE KEY-----\n$/,
    );
    const key = await importPrivateKey(pem, "dkim.private");
    assert.equal(key.type, "rsa");
    assert.equal(key.bits, 2048);
    const text = await Deno.readTextFile(`${dir}/dkim.txt`);
    assert.ok(text.startsWith('dkim._domainkey\tIN\tTXT\t( "v=DKIM1; h=sha256; k=rsa; "\n\t  "p='));
    assert.ok(text.endsWith('" )  ; ----- DKIM key dkim for example.com\n'));
    const zone = parseZoneFileRecord(text);
    assert.equal(zone.record, `v=DKIM1; h=sha256; k=rsa; p=${toBase64(key.publicKey)}`);
    assert.deepEqual(zone.strings.map((s) => s.length), [26, 252, 142]);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(), [
      "dkim.private",
      "dkim.txt",
    ]);
  });
});

Deno.test({
  name: "dkimd genkey creates the private key with mode 0600 in the open() call itself",
  // strace shows the system calls; without it this cannot be observed (CI installs no strace).
  ignore: !(await Deno.stat("/usr/bin/strace").then(() => true, () => false)),
  fn: async () => {
    await withDir(async (dir) => {
      const trace = `${dir}/trace`;
      await Deno.mkdir(`${dir}/keys`);
      // -ff: one file per thread (trace.TID), so a call is never split into "<unfinished ...>"
      // and "<... resumed>" lines by another thread's.
      const run = await new Deno.Command("/usr/bin/strace", {
        args: ["-ff", "-qq", "-e", "trace=open,openat,creat,chmod,fchmod,fchmodat", "-o", trace]
          .concat(["/bin/sh", "-c", 'umask 000 && exec "$@"', "sh", Deno.execPath()])
          .concat(["run", "-A", "--quiet", "--config", CONFIG, MAIN, "genkey", "--type"])
          .concat(["ed25519", "-s", "ed", "-D", `${dir}/keys`]),
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
      const lines: string[] = [];
      for await (const entry of Deno.readDir(dir)) {
        if (entry.name.startsWith("trace.")) {
          lines.push(...(await Deno.readTextFile(`${dir}/${entry.name}`)).split("\n"));
        }
      }
      const opens = lines.filter((l) => l.includes(`${dir}/keys/ed.private`));
      assert.equal(opens.length, 1, opens.join("\n"));
      assert.match(opens[0], /O_CREAT\|O_EXCL.*, 0600\) = \d+$/);
      // An fchmod() after an open() with another mode would show in that open() above.
      assert.ok(!lines.some((l) => /chmod/.test(l) && l.includes("ed.private")));
      assert.equal(await mode(`${dir}/keys/ed.private`), 0o600);
    });
  },
});

Deno.test("dkimd genkey --type ed25519 writes k=ed25519 without h= and a PKCS#8 key", async () => {
  await withDir(async (dir) => {
    const run = await dkimd(
      ["genkey", "--type", "ed25519", "-s", "ed", "-d", "example.com", "-v"],
      dir,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      run.stderr,
      "dkimd genkey: generating an Ed25519 private key\n" +
        "dkimd genkey: private key written to ed.private\n" +
        "dkimd genkey: DNS TXT record written to ed.txt\n" +
        "dkimd genkey: publish the record as the TXT record of ed._domainkey.example.com\n",
    );
    const pem = await Deno.readTextFile(`${dir}/ed.private`);
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
    const key = await importPrivateKey(pem);
    assert.equal(key.type, "ed25519");
    const record = parseZoneFileRecord(await Deno.readTextFile(`${dir}/ed.txt`)).record;
    assert.equal(record, `v=DKIM1; k=ed25519; p=${toBase64(key.publicKey)}`);
    assert.equal(parseKeyRecord(record).hashes, undefined);
  });
});

Deno.test("dkimd genkey refuses to overwrite either file and names it", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/dkim.txt`, "old record\n");
    const run = await dkimd(["genkey", "--type", "ed25519", "-s", "dkim"], dir);
    assert.equal(run.code, 1);
    assert.equal(
      run.stderr,
      'dkimd genkey: "dkim.txt" already exists; choose another selector (-s) or directory (-D), or replace it with --force\n',
    );
    assert.equal(await Deno.readTextFile(`${dir}/dkim.txt`), "old record\n");
    await assert.rejects(Deno.stat(`${dir}/dkim.private`), Deno.errors.NotFound);

    await Deno.remove(`${dir}/dkim.txt`);
    await Deno.writeTextFile(`${dir}/dkim.private`, "old key\n");
    const again = await dkimd(["genkey", "--type", "ed25519", "-s", "dkim", "-D", dir], "/");
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`^dkimd genkey: "${dir}/dkim\\.private" already exists`));
    assert.equal(await Deno.readTextFile(`${dir}/dkim.private`), "old key\n");
    await assert.rejects(Deno.stat(`${dir}/dkim.txt`), Deno.errors.NotFound);
  });
});

Deno.test("dkimd genkey never writes through a symlink at the key's name", async () => {
  await withDir(async (dir) => {
    await Deno.symlink(`${dir}/elsewhere`, `${dir}/dkim.private`);
    const run = await dkimd(["genkey", "--type", "ed25519", "-s", "dkim"], dir);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /"dkim\.private" already exists/);
    await assert.rejects(Deno.stat(`${dir}/elsewhere`), Deno.errors.NotFound);
    const forced = await dkimd(["genkey", "--type", "ed25519", "-s", "dkim", "--force"], dir);
    assert.equal(forced.code, 0, forced.stderr);
    await assert.rejects(Deno.stat(`${dir}/elsewhere`), Deno.errors.NotFound);
    assert.ok((await Deno.lstat(`${dir}/dkim.private`)).isFile);
  });
});

Deno.test("dkimd genkey --force replaces both files, the key again with mode 0600", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/dkim.private`, "old key\n", { mode: 0o644 });
    await Deno.chmod(`${dir}/dkim.private`, 0o644);
    await Deno.writeTextFile(`${dir}/dkim.txt`, "old record\n");
    const run = await dkimd(["genkey", "--type", "ed25519", "-s", "dkim", "--force"], dir);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      run.stderr,
      "dkimd genkey: private key written to dkim.private (replacing the old file)\n" +
        "dkimd genkey: DNS TXT record written to dkim.txt (replacing the old file)\n",
    );
    assert.equal(await mode(`${dir}/dkim.private`), 0o600);
    const key = await importPrivateKey(await Deno.readTextFile(`${dir}/dkim.private`));
    const record = parseZoneFileRecord(await Deno.readTextFile(`${dir}/dkim.txt`)).record;
    assert.deepEqual(parseKeyRecord(record).publicKey, key.publicKey);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(), [
      "dkim.private",
      "dkim.txt",
    ]);
  });
});

Deno.test("dkimd genkey keys survive the seed's chown root:opendkim and chmod 640", async () => {
  await withDir(async (dir) => {
    const run = await dkimd(["genkey", "-s", "dkim", "-d", "example.com"], dir);
    assert.equal(run.code, 0, run.stderr);
    const path = `${dir}/dkim.private`;
    const group = (await Deno.readTextFile("/etc/group").catch(() => ""))
      .split("\n").find((l) => l.startsWith("opendkim:"));
    if (Deno.uid() === 0 && group) await Deno.chown(path, 0, Number(group.split(":")[2]));
    await Deno.chmod(path, 0o640);
    assert.equal(await mode(path), 0o640);
    // The key still loads, and the record still matches it: what `dkimd testkey` checks.
    const key = await importPrivateKey(await Deno.readFile(path), path);
    const record = parseZoneFileRecord(await Deno.readTextFile(`${dir}/dkim.txt`)).record;
    await Deno.writeTextFile(`${dir}/keys`, `dkim._domainkey.example.com ${record}\n`);
    const test = await dkimd(
      ["testkey", "-d", "example.com", "-s", "dkim", "-k", "dkim.private", "--test-keys", "keys"],
      dir,
    );
    assert.equal(test.code, 0, test.stderr);
    assert.equal(test.stderr, "");
    assert.deepEqual(parseKeyRecord(record).publicKey, key.publicKey);
  });
});

Deno.test("dkimd genkey -D writes in the directory and says so; a missing one fails", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/keys`);
    const run = await dkimd(["genkey", "--type", "ed25519", "-D", "keys"], dir);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      run.stderr,
      "dkimd genkey: private key written to keys/default.private\n" +
        "dkimd genkey: DNS TXT record written to keys/default.txt\n",
    );
    assert.match(
      await Deno.readTextFile(`${dir}/keys/default.txt`),
      /DKIM key default for localhost\n$/,
    );
    const missing = await dkimd(["genkey", "-D", "nope"], dir);
    assert.equal(missing.code, 1);
    assert.equal(
      missing.stderr,
      'dkimd genkey: cannot use directory "nope": no such file or directory\n',
    );
    const file = await dkimd(["genkey", "-D", "keys/default.txt"], dir);
    assert.equal(file.code, 1);
    assert.equal(file.stderr, 'dkimd genkey: "keys/default.txt" is not a directory\n');
  });
});

Deno.test("dkimd genkey warns under 2048 bits and refuses bad flags in one line", async () => {
  await withDir(async (dir) => {
    const weak = await dkimd(["genkey", "-b", "1024", "-s", "weak"], dir);
    assert.equal(weak.code, 0, weak.stderr);
    assert.match(
      weak.stderr,
      /^dkimd genkey: WARNING: a 1024-bit RSA key is weak; RFC 8301 §3\.2 recommends 2048 bits or more\n/,
    );
    assert.equal((await importPrivateKey(await Deno.readFile(`${dir}/weak.private`))).bits, 1024);
    const cases: { args: string[]; stderr: string }[] = [
      { args: ["-x"], stderr: 'dkimd genkey: unknown option "-x"\n' },
      {
        args: ["-b", "512"],
        stderr:
          "dkimd genkey: an RSA key of 512 bits is too small: RFC 8301 §3.2 requires at least 1024 (use 2048)\n",
      },
      { args: ["--type", "dsa"], stderr: 'dkimd genkey: --type "dsa" is not "rsa" or "ed25519"\n' },
    ];
    for (const c of cases) {
      const run = await dkimd(["genkey", ...c.args], dir);
      assert.equal(run.code, 2, c.args.join(" "));
      assert.equal(run.stderr, c.stderr);
    }
    const help = await dkimd(["genkey", "--help"], dir);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: dkimd genkey \[options\]/);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(), [
      "weak.private",
      "weak.txt",
    ]);
  });
});
