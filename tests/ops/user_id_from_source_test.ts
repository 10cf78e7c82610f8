/**
 * UserID from source, the way a new user meets it (issue 16): as root, a fresh clone of this
 * repository (`git clone`, so it is the committed tree, with the modes git gives it), a home of
 * its own (mode 0700) and so a Deno cache nobody else can read, the README's setup command
 * (`deno install`) and then `deno task start -f -x opendkim.conf` with the seed's configuration
 * (`UserID opendkim:opendkim`, `AutoRestart Yes`). The worker, running as opendkim, must sign a
 * message with nothing set up by hand; and when it cannot read what it needs, the supervisor
 * says why and how to fix it in one line. The machine and the start are tests/helpers/fresh_clone.ts.
 */
import assert from "node:assert/strict";
import { fromLatin1 } from "../../lib/bytes.ts";
import { MilterClient } from "../../lib/milter/client.ts";
import {
  FRESH_CLONE_IGNORE as IGNORE,
  freshMachine,
  type Machine,
  OPENDKIM_USER as opendkim,
  ownedBy,
  runReadmeSetup,
  startTask,
  uidOf,
  userEnv,
} from "../helpers/fresh_clone.ts";

/** The machine's configuration as YAML (`dkimd config convert`, run in the checkout as root). */
async function asYaml(m: Machine, env: Record<string, string>): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "config", "convert", m.conf],
    cwd: m.checkout,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const path = `${m.root}/etc/dkimd.yaml`;
  await Deno.writeFile(path, out.stdout);
  return path;
}

/** Sends the seed's outbound message (a datahunter.org sender, from 127.0.0.1) to `port`. */
async function sign(port: number): Promise<string[]> {
  const client = await MilterClient.connect({ kind: "inet", host: "127.0.0.1", port });
  try {
    const r = await client.sendMessage({
      connect: { hostname: "localhost", address: "127.0.0.1" },
      macros: { mail: { i: "741FA53F63" } },
      from: "<alice@datahunter.org>",
      headers: [["From", " alice@datahunter.org"], ["To", " bob@example.org"], [
        "Subject",
        " hello",
      ]],
      body: fromLatin1("Hello Bob.\r\n"),
    });
    return r.modifications.flatMap((m) =>
      m.type === "insheader" && m.name === "DKIM-Signature"
        ? [typeof m.value === "string" ? m.value : new TextDecoder().decode(m.value)]
        : []
    );
  } finally {
    client.close();
  }
}

for (
  const variant of [
    { name: "no DENO_DIR (Deno's default, under HOME)", denoDir: undefined },
    { name: "DENO_DIR set under HOME", denoDir: ".deno" },
  ]
) {
  Deno.test({
    name:
      `deno task start with the seed's UserID and AutoRestart, from a fresh clone after the README's setup, signs through the worker: ${variant.name}`,
    ignore: IGNORE,
    fn: async () => {
      const m = await freshMachine();
      const env = userEnv(
        m.home,
        variant.denoDir ? { DENO_DIR: `${m.home}/${variant.denoDir}` } : {},
      );
      // The README's setup, then the start, both as root in the fresh clone.
      await runReadmeSetup(m.checkout, env);
      const task = startTask(m, env);
      try {
        const ready = await task.waitFor(/worker (\d+) is ready/);
        const worker = Number(ready[1]);
        const supervisor = Number(
          (await task.waitFor(/dkimd\[(\d+)\]: dkimd \S+ starting \(worker as opendkim\)/))[1],
        );
        assert.equal(await uidOf(worker), opendkim!.uid);
        assert.equal(await uidOf(supervisor), 0);
        const signatures = await sign(m.port);
        assert.equal(signatures.length, 1, task.log());
        assert.match(signatures[0], /\bd=datahunter\.org;/);
        assert.match(signatures[0], /\bs=dkim;/);
        assert.match(signatures[0], /\ba=rsa-sha256;/);
        // Nothing was written as the worker's user: it needed no cache of its own.
        assert.deepEqual(await ownedBy(m.root, opendkim!.uid), []);
        assert.doesNotMatch(task.log(), /Permission denied|error:/);
        Deno.kill(supervisor, "SIGTERM");
        assert.equal((await task.finished()).code, 0, task.log());
        assert.match(task.log(), /worker \d+ exited with status 0 after SIGTERM/);
      } finally {
        task.kill();
        await task.done;
        await Deno.remove(m.root, { recursive: true });
      }
    },
  });
}

Deno.test({
  name:
    "deno task start with the seed's UserID and a SetupPolicyScript, from a fresh clone after the README's setup: the worker loads the WebAssembly Lua VM as opendkim and the script signs",
  ignore: IGNORE,
  fn: async () => {
    const m = await freshMachine();
    const env = userEnv(m.home);
    // A script an administrator adds to the seed: sign datahunter.org's mail with the KeyTable's
    // key once more (OpenDKIM adds a script's requests to the SigningTable's), mode 0640 root:opendkim.
    const script = `${m.root}/etc/setup.lua`;
    await Deno.writeTextFile(
      script,
      'if odkim.get_fromdomain(ctx) == "datahunter.org" then odkim.sign(ctx, "datahunter") end\n',
    );
    await Deno.chown(script, 0, opendkim!.gid);
    await Deno.chmod(script, 0o640);
    await Deno.writeTextFile(m.conf, `SetupPolicyScript ${script}\n`, { append: true });
    await runReadmeSetup(m.checkout, env);
    const task = startTask(m, env);
    try {
      const ready = await task.waitFor(/worker (\d+) is ready/);
      assert.equal(await uidOf(Number(ready[1])), opendkim!.uid);
      const signatures = await sign(m.port);
      // The SigningTable's signature and the script's.
      assert.equal(signatures.length, 2, task.log());
      for (const s of signatures) assert.match(s, /\bd=datahunter\.org;/);
      assert.deepEqual(await ownedBy(m.root, opendkim!.uid), []);
      assert.doesNotMatch(task.log(), /Permission denied|error:|Lua/);
    } finally {
      task.kill();
      await task.done;
      await Deno.remove(m.root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "deno task start with the seed's UserID and its KeyTable and SigningTable moved into SQLite (dsn:), from a fresh clone after the README's setup: the worker, as opendkim, signs from the database",
  ignore: IGNORE,
  fn: async () => {
    const m = await freshMachine();
    const env = userEnv(m.home);
    // What a hosting panel does with the seed: the two tables in a database file the worker may
    // read (0640 root:opendkim), the opendkim.conf lines pointing at it (OpenDKIM's dsn: syntax).
    const db = `${m.root}/etc/dkim.db`;
    const { DatabaseSync } = await import("node:sqlite");
    const sqlite = new DatabaseSync(db);
    sqlite.exec(
      "CREATE TABLE keys (id TEXT, domain TEXT, selector TEXT, key TEXT);" +
        "CREATE TABLE signing (sender TEXT, keyname TEXT);",
    );
    sqlite.prepare("INSERT INTO keys VALUES (?, ?, ?, ?)").run(
      "datahunter",
      "datahunter.org",
      "dkim",
      `${m.root}/etc/keys/datahunter.org/dkim.private`,
    );
    sqlite.prepare("INSERT INTO signing VALUES (?, ?)").run("datahunter.org", "datahunter");
    sqlite.close();
    await Deno.chown(db, 0, opendkim!.gid);
    await Deno.chmod(db, 0o640);
    const conf = (await Deno.readTextFile(m.conf))
      .replace(
        /^KeyTable\s+.*$/m,
        `KeyTable dsn:sqlite3://${db}/table=keys?keycol=id?datacol=domain,selector,key`,
      )
      .replace(
        /^SigningTable\s+.*$/m,
        `SigningTable dsn:sqlite3://${db}/table=signing?keycol=sender?datacol=keyname`,
      );
    assert.match(conf, /^KeyTable dsn:/m);
    assert.match(conf, /^SigningTable dsn:/m);
    await Deno.writeTextFile(m.conf, conf);
    await runReadmeSetup(m.checkout, env);
    const task = startTask(m, env);
    try {
      const ready = await task.waitFor(/worker (\d+) is ready/);
      assert.equal(await uidOf(Number(ready[1])), opendkim!.uid);
      const signatures = await sign(m.port);
      assert.equal(signatures.length, 1, task.log());
      assert.match(signatures[0], /\bd=datahunter\.org;/);
      assert.match(signatures[0], /\bs=dkim;/);
      assert.deepEqual(await ownedBy(m.root, opendkim!.uid), []);
      assert.doesNotMatch(task.log(), /Permission denied|error:|unavailable/);
    } finally {
      task.kill();
      await task.done;
      await Deno.remove(m.root, { recursive: true });
    }
  },
});

/** Deno's own report of a failed start: its `error:` line, or the numbered causes below it. */
const DENO_TRACE = /^error: |^Caused by:|^\s+\d+: /m;

Deno.test({
  name:
    "deno task start with UserID, from a clone under root's 0700 home, says in one line that the user cannot read dkimd and how to fix it",
  ignore: IGNORE,
  fn: async () => {
    const m = await freshMachine((_root, home) => `${home}/dkimd`);
    const env = userEnv(m.home);
    try {
      await runReadmeSetup(m.checkout, env);
      const task = startTask(m, env);
      const status = await task.finished();
      assert.equal(status.code, 78, task.log());
      const lines = task.log().split("\n").filter((l) => /cannot read dkimd/.test(l));
      assert.equal(lines.length, 1, task.log());
      assert.match(
        lines[0],
        new RegExp(
          `User "opendkim" \\(uid ${opendkim!.uid}, gid \\d+\\) cannot read dkimd's own files: ` +
            `directory "${m.home}" \\(owner root:root, mode 0700\\) is in the way of ` +
            `"${m.checkout}/main.ts"; fix: clone dkimd where that user can read it`,
        ),
      );
      assert.doesNotMatch(task.log(), DENO_TRACE);
      assert.doesNotMatch(task.log(), /worker \d+/);
    } finally {
      await Deno.remove(m.root, { recursive: true });
    }
  },
});

for (
  const broken of [
    {
      name: "a source file it cannot read",
      spoil: (checkout: string) => Deno.chmod(`${checkout}/lib/bytes.ts`, 0o600),
      want: (checkout: string) =>
        new RegExp(
          `before it was ready, so dkimd stops: user "opendkim" \\(uid \\d+\\) cannot read ` +
            `"${checkout}/lib/bytes.ts" \\(Permission denied\\); fix: chmod -R a\\+rX "${checkout}"`,
        ),
    },
    {
      // The service loads an npm package only for a YAML configuration (the yaml reader), so
      // this case runs the seed's configuration converted to YAML.
      name: "an npm package it cannot read",
      yaml: true,
      spoil: (checkout: string) => Deno.chmod(`${checkout}/node_modules/.deno/yaml@2.9.1`, 0o700),
      want: (checkout: string) =>
        new RegExp(
          `before it was ready, so dkimd stops: user "opendkim" \\(uid \\d+\\) cannot .*; ` +
            `fix: as root, run "deno install" in ${checkout} `,
        ),
    },
  ]
) {
  Deno.test({
    name:
      `deno task start with UserID explains a worker that cannot load dkimd in one line, not a Deno trace: ${broken.name}`,
    ignore: IGNORE,
    fn: async () => {
      const m = await freshMachine();
      const env = userEnv(m.home);
      try {
        await runReadmeSetup(m.checkout, env);
        const conf = "yaml" in broken ? await asYaml(m, env) : m.conf;
        await broken.spoil(m.checkout);
        const task = startTask({ ...m, conf }, env);
        const status = await task.finished();
        assert.notEqual(status.code, 0, task.log());
        const lines = task.log().split("\n").filter((l) => /before it was ready/.test(l));
        assert.equal(lines.length, 1, task.log());
        assert.match(lines[0], broken.want(m.checkout));
        assert.doesNotMatch(task.log(), DENO_TRACE);
      } finally {
        await Deno.remove(m.root, { recursive: true });
      }
    },
  });
}
