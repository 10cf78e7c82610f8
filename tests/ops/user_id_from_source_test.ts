/**
 * UserID from source, the way a new user meets it (issue 16): as root, a fresh clone of this
 * repository (`git clone`, so it is the committed tree, with the modes git gives it), a home of
 * its own (mode 0700) and so a Deno cache nobody else can read, the README's setup command
 * (`deno install`) and then `deno task start -f -x opendkim.conf` with the seed's configuration
 * (`UserID opendkim:opendkim`, `AutoRestart Yes`). The worker, running as opendkim, must sign a
 * message with nothing set up by hand; and when it cannot read what it needs, the supervisor
 * says why and how to fix it in one line.
 *
 * The commands get a clean environment: PATH, HOME and only the variables this machine needs to
 * reach the npm registry through its network (a proxy and its certificate authority), which a
 * user's machine has in its own way.
 */
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { fromLatin1 } from "../../lib/bytes.ts";
import { MilterClient } from "../../lib/milter/client.ts";
import { readUserDb } from "../../lib/ops/run_as.ts";
import { freePort } from "../helpers/dkimd_process.ts";
import { makeSharedTempDir } from "../helpers/shared_temp_dir.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const SEED = new URL("../testdata/config/seed/", import.meta.url);
const KEY = new URL("../testdata/keys/opendkim_genkey.private", import.meta.url);

/** The variables through which this machine reaches the npm registry, passed on when set. */
const NETWORK_ENV = [
  "HTTPS_PROXY",
  "https_proxy",
  "HTTP_PROXY",
  "http_proxy",
  "NO_PROXY",
  "no_proxy",
  "NODE_EXTRA_CA_CERTS",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
];

const opendkim = Deno.uid() === 0 ? (await readUserDb()).user("opendkim") : undefined;
const isGitCheckout = await Deno.stat(`${REPO}/.git`).then(() => true, () => false);
const IGNORE = Deno.uid() !== 0 || opendkim === undefined || !isGitCheckout;

/**
 * The clone's README's setup: the commands of its Install block after `git clone` and before the first
 * `deno task start` (today `deno install`), so this test follows the README as it changes.
 */
async function readmeSetup(checkout: string): Promise<string[]> {
  const readme = await Deno.readTextFile(`${checkout}/README.md`);
  const install = readme.slice(readme.indexOf("\n## Install\n"));
  const block = /```sh\n([\s\S]*?)```/.exec(install)![1];
  const lines = block.split("\n").map((l) => l.replace(/\s+#.*$/, "").trim());
  const from = lines.findIndex((l) => l.startsWith("git clone "));
  const to = lines.findIndex((l) => l.startsWith("deno task start"));
  assert.ok(from >= 0 && to > from, `git clone, then deno task start, in:\n${block}`);
  return lines.slice(from + 1, to).filter((l) => l !== "");
}

/** Runs the README's setup in `checkout`, as root with the new user's environment. */
async function setup(checkout: string, env: Record<string, string>): Promise<void> {
  const commands = await readmeSetup(checkout);
  assert.deepEqual(commands, ["deno install"]);
  for (const command of commands) await run(["sh", "-c", command], checkout, env);
}

/**
 * A new user's environment: PATH (with this Deno's directory first, so `deno` is the one running
 * the tests), HOME, and the network's variables.
 */
function userEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  const path = `${dirname(Deno.execPath())}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`;
  const env: Record<string, string> = { PATH: path, HOME: home };
  for (const name of NETWORK_ENV) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return { ...env, NO_COLOR: "1", ...extra };
}

/** Runs a setup command as the user would type it; throws with its output when it fails. */
async function run(cmd: string[], cwd: string, env: Record<string, string>): Promise<string> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd,
    env,
    clearEnv: true,
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd.join(" ")} failed (${out.code}):\n${text}`);
  return text;
}

/** A root-owned place for the clone and the seed's files, searchable by other users like /opt. */
interface Machine {
  readonly root: string;
  /** The new user's home, mode 0700. */
  readonly home: string;
  /** The fresh clone. */
  readonly checkout: string;
  /** The seed's /etc/opendkim.conf, its paths moved under `root/etc`. */
  readonly conf: string;
  readonly port: number;
}

/**
 * Clones the repository and writes the seed's configuration with its key (`chown root.opendkim
 * dkim.private; chmod 640 dkim.private`, as the seed says); `cloneInto` puts the clone elsewhere.
 */
async function machine(cloneInto?: (root: string, home: string) => string): Promise<Machine> {
  const root = await makeSharedTempDir(0o755);
  const home = `${root}/home`;
  await Deno.mkdir(home, { mode: 0o700 });
  await Deno.chmod(home, 0o700);
  const checkout = cloneInto ? cloneInto(root, home) : `${root}/dkimd`;
  await run(["git", "clone", "--quiet", REPO, checkout], root, userEnv(home));
  const etc = `${root}/etc`;
  await Deno.mkdir(`${etc}/keys/datahunter.org`, { recursive: true });
  const port = freePort();
  for (const name of ["opendkim.conf", "key.table", "signing.table", "TrustedHosts"]) {
    let text = (await Deno.readTextFile(new URL(name, SEED))).replaceAll("@DIR@", etc);
    if (name === "opendkim.conf") {
      // The seed's socket on a port of this test's own, and its PID file where the test looks.
      text = text.replace(/^Socket\s+inet:8891@localhost$/m, `Socket  inet:${port}@localhost`)
        .replace(/^PidFile\s+.*$/m, `PidFile                 ${root}/opendkim.pid`);
      assert.match(text, /^UserID\s+opendkim:opendkim$/m);
      assert.match(text, /^AutoRestart\s+Yes$/m);
    }
    await Deno.writeTextFile(`${etc}/${name}`, text);
  }
  const key = `${etc}/keys/datahunter.org/dkim.private`;
  await Deno.copyFile(KEY, key);
  await Deno.chown(key, 0, opendkim!.gid);
  await Deno.chmod(key, 0o640);
  return { root, home, checkout, conf: `${etc}/opendkim.conf`, port };
}

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

/** `deno task start -f -x CONF` in the checkout, its output collected. */
function start(m: Machine, env: Record<string, string>) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "start", "-f", "-x", m.conf],
    cwd: m.checkout,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  };
  const done = Promise.all([pump(child.stdout), pump(child.stderr)]).then(() => child.status);
  let exited = false;
  done.then(() => exited = true);
  return {
    log: () => text,
    done,
    /** Waits for `pattern` in the output; throws with the output when it exits first. */
    async waitFor(pattern: RegExp, timeoutMs = 120_000): Promise<RegExpExecArray> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = pattern.exec(text);
        if (m) return m;
        if (exited) throw new Error(`deno task start exited before ${pattern}:\n${text}`);
        if (Date.now() > deadline) throw new Error(`No ${pattern} in ${timeoutMs} ms:\n${text}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    /** Its exit status; kills it and throws with the output when it runs past `timeoutMs`. */
    async finished(timeoutMs = 120_000): Promise<Deno.CommandStatus> {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          this.kill();
          reject(new Error(`deno task start still running after ${timeoutMs} ms:\n${text}`));
        }, timeoutMs);
      });
      try {
        return await Promise.race([done, late]);
      } finally {
        clearTimeout(timer);
      }
    },
    /** Stops whatever is left of it. */
    kill() {
      for (const m of text.matchAll(/dkimd\[(\d+)\]/g)) {
        try {
          Deno.kill(Number(m[1]), "SIGKILL");
        } catch {
          // Gone already.
        }
      }
      try {
        child.kill("SIGKILL");
      } catch {
        // Gone already.
      }
    },
  };
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

/** The real uid of process `pid`. */
async function uidOf(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/^Uid:\s+(\d+)/m.exec(status)![1]);
}

/** Files under `dir` owned by `uid`: what a process running as that user wrote there. */
async function ownedBy(dir: string, uid: number): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      const info = await Deno.lstat(p);
      if (info.uid === uid) found.push(p);
      if (info.isDirectory) await walk(p);
    }
  };
  await walk(dir);
  return found;
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
      const m = await machine();
      const env = userEnv(
        m.home,
        variant.denoDir ? { DENO_DIR: `${m.home}/${variant.denoDir}` } : {},
      );
      // The README's setup, then the start, both as root in the fresh clone.
      await setup(m.checkout, env);
      const task = start(m, env);
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
    const m = await machine();
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
    await setup(m.checkout, env);
    const task = start(m, env);
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
    const m = await machine();
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
    await setup(m.checkout, env);
    const task = start(m, env);
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
    const m = await machine((_root, home) => `${home}/dkimd`);
    const env = userEnv(m.home);
    try {
      await setup(m.checkout, env);
      const task = start(m, env);
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
      const m = await machine();
      const env = userEnv(m.home);
      try {
        await setup(m.checkout, env);
        const conf = "yaml" in broken ? await asYaml(m, env) : m.conf;
        await broken.spoil(m.checkout);
        const task = start({ ...m, conf }, env);
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
