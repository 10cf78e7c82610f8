/**
 * dkimd started the way a new user starts it from source (issue 16): as root, a fresh clone of
 * this repository (`git clone`, so it is the committed tree, with the modes git gives it), a home
 * of its own (mode 0700) and so a Deno cache nobody else can read, the README's setup command
 * (`deno install`) and then `deno task start -f -x opendkim.conf` with the seed's configuration
 * (`UserID opendkim:opendkim`, `AutoRestart Yes`).
 *
 * The commands get a clean environment: PATH, HOME and only the variables this machine needs to
 * reach the npm registry through its network (a proxy and its certificate authority), which a
 * user's machine has in its own way.
 *
 * @module
 */
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { readUserDb } from "../../lib/ops/run_as.ts";
import { freePort } from "./dkimd_process.ts";
import { makeSharedTempDir } from "./shared_temp_dir.ts";

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

/** The seed's UserID, when the tests run as root and the machine has that user. */
export const OPENDKIM_USER = Deno.uid() === 0 ? (await readUserDb()).user("opendkim") : undefined;
const isGitCheckout = await Deno.stat(`${REPO}/.git`).then(() => true, () => false);
/** Whether these tests cannot run here: not root, no opendkim user, or not a git checkout. */
export const FRESH_CLONE_IGNORE = Deno.uid() !== 0 || OPENDKIM_USER === undefined ||
  !isGitCheckout;

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
export async function runReadmeSetup(checkout: string, env: Record<string, string>): Promise<void> {
  const commands = await readmeSetup(checkout);
  assert.deepEqual(commands, ["deno install"]);
  for (const command of commands) await run(["sh", "-c", command], checkout, env);
}

/**
 * A new user's environment: PATH (with this Deno's directory first, so `deno` is the one running
 * the tests), HOME, and the network's variables.
 */
export function userEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
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
export interface Machine {
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
export async function freshMachine(
  cloneInto?: (root: string, home: string) => string,
): Promise<Machine> {
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
  await Deno.chown(key, 0, OPENDKIM_USER!.gid);
  await Deno.chmod(key, 0o640);
  return { root, home, checkout, conf: `${etc}/opendkim.conf`, port };
}

/** `deno task start -f -x CONF` in the checkout, its output collected. */
export function startTask(m: Machine, env: Record<string, string>) {
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

/** The real uid of process `pid`. */
export async function uidOf(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/^Uid:\s+(\d+)/m.exec(status)![1]);
}

/** Files under `dir` owned by `uid`: what a process running as that user wrote there. */
export async function ownedBy(dir: string, uid: number): Promise<string[]> {
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
