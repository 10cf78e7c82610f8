// Private keys and a running dkimd: RequireSafeKeys refuses key files others can read or replace,
// at start (EX_CONFIG) and on reload (the old keys stay in force); and nothing dkimd writes, at
// start, while serving with every log option on, or when a key cannot be read, carries private
// key material: every line of every run is searched for PEM armour and for any 24-character
// piece of the keys' base64.
import { mtaMessage } from "../helpers/mta_message.ts";
import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import type { ClientMessage, MessageResult } from "../../lib/milter/client.ts";
import type { Reply } from "../../lib/milter/reply.ts";
import { SERVICE_DENO_FLAGS } from "../../lib/ops/self_command.ts";
import { KEYS_DIR } from "../helpers/dkim_fixtures.ts";
import { dkimdEnv } from "../helpers/dkimd_env.ts";
import { freePort, sendMessage, startDkimd } from "../helpers/dkimd_process.ts";
import { makeSharedTempDir } from "../helpers/shared_temp_dir.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const DENO_CONFIG = new URL("../../deno.json", import.meta.url).pathname;
/** sysexits(3) EX_CONFIG, as OpenDKIM exits on a bad configuration. */
const EX_CONFIG = 78;
/** Bounds a dkimd run that should stop by itself (a configuration error stops it at once). */
const RUN_TIMEOUT_MS = 30_000;
/** Length of the key pieces searched for: 18 bytes, never in a log line by chance. */
const PIECE = 24;

const RSA_PEM = await Deno.readTextFile(new URL("rsa2048_pkcs8.pem", KEYS_DIR));
const ED_PEM = await Deno.readTextFile(new URL("ed25519.pem", KEYS_DIR));

function base64Body(pem: string): string {
  return pem.split("\n").filter((l) => l !== "" && !l.startsWith("-----")).join("");
}

/** Every line of `text` that shows key material, with what it shows. */
function keyMaterial(text: string): string[] {
  const found: string[] = [];
  for (const line of text.split("\n")) {
    if (/-----BEGIN|PRIVATE KEY-----/.test(line)) found.push(`PEM armour: ${line}`);
    for (const pem of [RSA_PEM, ED_PEM]) {
      const body = base64Body(pem);
      for (let i = 0; i + PIECE <= body.length; i += 4) {
        if (line.includes(body.slice(i, i + PIECE))) {
          found.push(`key bytes at offset ${i}: ${line.slice(0, 200)}`);
          break;
        }
      }
    }
  }
  return found;
}

interface Keys {
  readonly dir: string;
  readonly rsa: string;
  readonly ed: string;
}

async function keyDir(): Promise<Keys> {
  // Under /tmp: a world-writable key directory is unsafe only if everyone can reach it, and a
  // private $TMPDIR above it would make the key safe.
  const dir = await makeSharedTempDir(0o700);
  const rsa = `${dir}/rsa.private`;
  const ed = `${dir}/ed.private`;
  await Deno.writeTextFile(rsa, RSA_PEM, { mode: 0o600 });
  await Deno.writeTextFile(ed, ED_PEM, { mode: 0o600 });
  await Deno.writeTextFile(
    `${dir}/key.table`,
    `rsa example.com:rsa:${rsa}\ned example.com:ed:${ed}\n`,
  );
  await Deno.writeTextFile(`${dir}/signing.table`, "*@example.com rsa\n*@example.com ed\n");
  return { dir, rsa, ed };
}

function config(k: Keys, extra = ""): (socket: string) => string {
  return (socket) =>
    `Mode sv\nSocket ${socket}\nSyslog no\nBackground no\nKeyTable ${k.dir}/key.table\n` +
    `SigningTable refile:${k.dir}/signing.table\nMultipleSignatures yes\n` +
    `TestDNSData csl:nothing._domainkey.example.org=v=DKIM1\n${extra}`;
}

/** Runs `dkimd -x CONF -f` as the service runs, to its end; for configurations it refuses. */
async function runToExit(conf: string): Promise<{ code: number; output: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...SERVICE_DENO_FLAGS,
      `--config=${DENO_CONFIG}`,
      "--quiet",
      MAIN,
      "-x",
      conf,
      "-f",
    ],
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: dkimdEnv({ NO_COLOR: "1" }),
    signal: AbortSignal.timeout(RUN_TIMEOUT_MS),
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, output: decoder.decode(out.stdout) + decoder.decode(out.stderr) };
}

async function writeConfig(k: Keys, extra = ""): Promise<string> {
  const path = `${k.dir}/dkimd.conf`;
  await Deno.writeTextFile(path, config(k, extra)(`inet:${freePort()}@127.0.0.1`));
  return path;
}

function outbound(n: number): ClientMessage {
  const bytes = fromLatin1(
    `From: Alice <alice@example.com>\r\nTo: <bob@example.org>\r\nSubject: key test ${n}\r\n` +
      `Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n\r\nHello ${n}\r\n`,
  );
  return mtaMessage(bytes, {
    qid: `KEY${n}`,
    address: "127.0.0.1",
    hostname: "localhost",
    helo: null,
    from: "<alice@example.com>",
  });
}

function signatures(r: MessageResult): string[] {
  return r.modifications
    .filter((m): m is Extract<Reply, { type: "insheader" }> =>
      m.type === "insheader" && m.name === "DKIM-Signature"
    )
    .map((m) => typeof m.value === "string" ? m.value : latin1(m.value));
}

Deno.test("RequireSafeKeys: dkimd refuses to start with a key others can read or replace", async () => {
  const cases: { name: string; make: (k: Keys) => Promise<void>; want: RegExp }[] = [
    {
      name: "a key file every user can read",
      make: (k) => Deno.chmod(k.rsa, 0o644),
      want:
        /Unsafe key for KeyTable .*file ".*rsa\.private" can be read by every user.*fix: chmod 640/,
    },
    {
      name: "a key file every user can write",
      make: (k) => Deno.chmod(k.ed, 0o602),
      want: /Unsafe key for KeyTable .*file ".*ed\.private" can be .*written by every user/,
    },
    {
      name: "a key in a directory every user can write",
      make: (k) => Deno.chmod(k.dir, 0o777),
      want: /Unsafe key for KeyTable .*directory ".*" can be written by every user.*fix: chmod o-w/,
    },
  ];
  for (const c of cases) {
    const k = await keyDir();
    try {
      await c.make(k);
      const { code, output } = await runToExit(await writeConfig(k));
      assert.equal(code, EX_CONFIG, `${c.name}: ${output}`);
      assert.match(output, c.want, c.name);
      assert.doesNotMatch(output, /listening on/, c.name);
      assert.deepEqual(keyMaterial(output), [], c.name);
      // With RequireSafeKeys off the same files are used, with a warning.
      const lax = await startDkimd(k.dir, config(k, "RequireSafeKeys no\n"));
      try {
        assert.match(lax.log(), /RequireSafeKeys is off/, c.name);
        assert.equal(signatures(await sendMessage(lax, outbound(1))).length, 2, c.name);
      } finally {
        await lax.stop();
      }
    } finally {
      await Deno.chmod(k.dir, 0o700);
      await Deno.remove(k.dir, { recursive: true });
    }
  }
});

Deno.test("RequireSafeKeys: a reload with an unsafe key is refused and the old keys keep signing", async () => {
  const k = await keyDir();
  const d = await startDkimd(k.dir, config(k));
  try {
    assert.equal(signatures(await sendMessage(d, outbound(1))).length, 2);
    await Deno.chmod(k.rsa, 0o644);
    d.signal("SIGUSR1");
    await d.waitForLog(
      /reload failed: Unsafe key for KeyTable .*rsa\.private" can be read by every user/,
    );
    await d.waitForLog(/reload failed: keeping the configuration in force/);
    assert.equal(signatures(await sendMessage(d, outbound(2))).length, 2);
    assert.deepEqual(keyMaterial(d.log()), []);
  } finally {
    await d.stop();
    await Deno.remove(k.dir, { recursive: true });
  }
});

Deno.test("dkimd never logs private key material: serving, reloading and failing to read keys", async () => {
  const k = await keyDir();
  const logs: string[] = [];
  const rsaBody = base64Body(RSA_PEM);
  // Key data written into the KeyTable itself (OpenDKIM allows it), with one character wrong,
  // so it is neither a path nor base64: the error must not quote it.
  const typo = `${rsaBody.slice(0, 200)}!${rsaBody.slice(201)}`;
  // A PEM file whose base64 is damaged in the middle.
  const damaged = RSA_PEM.replace(rsaBody.slice(300, 310), "!!!!!!!!!!");
  try {
    // Start-up refusals, printed before the logger exists.
    await Deno.writeTextFile(`${k.dir}/inline.table`, `rsa example.com:rsa:${typo}\n`);
    const inline = await runToExit(
      await writeConfig(k, `KeyTable ${k.dir}/inline.table\n`),
    );
    assert.equal(inline.code, EX_CONFIG, inline.output);
    assert.match(inline.output, /KeyTable entry "rsa"/);
    logs.push(inline.output);
    // The key with no selector before it: the value lacks a field.
    await Deno.writeTextFile(`${k.dir}/short.table`, `rsa example.com:${rsaBody}\n`);
    const short = await runToExit(await writeConfig(k, `KeyTable ${k.dir}/short.table\n`));
    assert.equal(short.code, EX_CONFIG, short.output);
    assert.match(short.output, /not of the form "domain:selector:keyfile"/);
    logs.push(short.output);
    await Deno.writeTextFile(`${k.dir}/damaged.private`, damaged, { mode: 0o600 });
    await Deno.writeTextFile(
      `${k.dir}/damaged.table`,
      `rsa example.com:rsa:${k.dir}/damaged.private\n`,
    );
    const bad = await runToExit(await writeConfig(k, `KeyTable ${k.dir}/damaged.table\n`));
    assert.equal(bad.code, EX_CONFIG, bad.output);
    assert.match(bad.output, /damaged\.private/);
    logs.push(bad.output);

    // Serving with every log option on, then the same mistakes on reload.
    const d = await startDkimd(
      k.dir,
      config(k, "LogWhy yes\nLogResults yes\nSyslogSuccess yes\nSoftwareHeader yes\n"),
      { args: ["-v"] },
    );
    try {
      for (let n = 1; n <= 3; n++) {
        assert.equal(signatures(await sendMessage(d, outbound(n))).length, 2);
      }
      const conf = d.config;
      const good = await Deno.readTextFile(conf);
      for (const table of ["inline.table", "short.table", "damaged.table"]) {
        await Deno.writeTextFile(conf, `${good}KeyTable ${k.dir}/${table}\n`);
        const before = d.log().split("keeping the configuration in force").length;
        d.signal("SIGUSR1");
        await d.waitForLog(
          new RegExp(`(keeping the configuration in force[\\s\\S]*){${before}}`),
        );
      }
      assert.equal(signatures(await sendMessage(d, outbound(4))).length, 2);
      assert.match(d.log(), /DKIM-Signature field added/);
    } finally {
      await d.stop();
      logs.push(d.log());
    }
    assert.deepEqual(keyMaterial(logs.join("\n")), []);
    // The search does find key material where there is some.
    assert.notDeepEqual(keyMaterial(`x ${rsaBody.slice(100, 130)} y`), []);
    assert.notDeepEqual(keyMaterial(typo), []);
  } finally {
    await Deno.remove(k.dir, { recursive: true });
  }
});
