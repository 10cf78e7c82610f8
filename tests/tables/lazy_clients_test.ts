/**
 * The npm database clients (`postgres`, `mysql2`, `ldapts`) load only when the configuration
 * has a data set in that kind of database (lib/tables/open_backend.ts): loading the three costs
 * every dkimd about 12 MiB of resident memory and part of its start. The observable is the one
 * that cannot be fooled by how the modules are written: the files the process opens, traced by
 * strace(1) while dkimd is started as the `start` task starts it, until it listens. Deno reads
 * a module's source when it loads it (checking its code cache against it), so a client imported
 * statically again, from anywhere, shows as its files opened.
 */
import assert from "node:assert/strict";
import { SERVICE_DENO_FLAGS } from "../../lib/ops/self_command.ts";
import { dkimdEnv } from "../helpers/dkimd_env.ts";
import { freePort } from "../helpers/dkimd_process.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

/** The three clients, as their files' paths name them (node_modules/.deno or Deno's cache). */
const CLIENTS = ["postgres", "mysql2", "ldapts"] as const;

/**
 * Starts dkimd on `config` (its Socket line added) under strace, waits until it listens, stops
 * it, and returns which of {@link CLIENTS} had a JavaScript file opened.
 */
async function clientsLoaded(dir: string, config: string): Promise<string[]> {
  const path = `${dir}/dkimd.conf`;
  await Deno.writeTextFile(path, `${config}Socket inet:${freePort()}@127.0.0.1\n`);
  const trace = `${dir}/trace.txt`;
  const child = new Deno.Command("strace", {
    args: [
      "-f",
      "-qq",
      "-e",
      "trace=open,openat,openat2",
      "-o",
      trace,
      Deno.execPath(),
      "run",
      ...SERVICE_DENO_FLAGS,
      `--config=${CONFIG}`,
      "--quiet",
      MAIN,
      "-x",
      path,
      "-f",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    clearEnv: true,
    env: dkimdEnv({ NO_COLOR: "1" }),
  }).spawn();
  let text = "";
  let listening!: () => void;
  const ready = new Promise<void>((resolve) => listening = resolve);
  const pump = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) {
      text += decoder.decode(chunk, { stream: true });
      if (/listening on/.test(text)) listening();
    }
  })();
  const ended = child.status.then(() => {
    throw new Error(`dkimd exited before listening:\n${text}`);
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`dkimd did not listen:\n${text}`)), 120_000);
  });
  try {
    await Promise.race([ready, ended, late]);
  } finally {
    clearTimeout(timer);
    ended.catch(() => {});
    // dkimd itself is stopped: strace, signalled, would detach and leave it running.
    const traced = tracedChild(child.pid);
    if (traced !== undefined) Deno.kill(traced, "SIGTERM");
    else {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }
    await child.status;
    await pump;
  }
  const opened = (await Deno.readTextFile(trace)).split("\n")
    .filter((line) => /\.(?:m?js|cjs)"/.test(line) && !/= -1 /.test(line));
  return CLIENTS.filter((name) =>
    opened.some((line) =>
      line.includes(`/node_modules/.deno/${name}@`) || line.includes(`/registry.npmjs.org/${name}/`)
    )
  );
}

/** The process strace started (its only child), if it still runs. */
function tracedChild(pid: number): number | undefined {
  try {
    const children = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim();
    return children === "" ? undefined : Number(children.split(" ")[0]);
  } catch {
    return undefined;
  }
}

async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-lazy-clients-" });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("dkimd started with a file configuration loads none of the database clients", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/internal`, "127.0.0.1\n");
    const loaded = await clientsLoaded(dir, `Mode v\nInternalHosts ${dir}/internal\n`);
    assert.deepEqual(loaded, []);
  });
});

Deno.test("dkimd loads each database client its data sets need, and only those (the trace sees them)", async () => {
  await withDir(async (dir) => {
    // Opening a back end does not connect, so no server is needed to start.
    const mysql = "dsn:mysql://dkim@1+127.0.0.1/mail/table=hosts?keycol=host?datacol=host";
    const ldap = `ldap://127.0.0.1:1/dc=example?cn?sub?(cn=$d)`;
    assert.deepEqual(
      await clientsLoaded(dir, `Mode v\nInternalHosts ${mysql}\nExemptDomains ${ldap}\n`),
      ["mysql2", "ldapts"],
    );
    const pgsql = "dsn:pgsql://dkim@1+127.0.0.1/mail/table=hosts?keycol=host?datacol=host";
    assert.deepEqual(await clientsLoaded(dir, `Mode v\nInternalHosts ${pgsql}\n`), ["postgres"]);
  });
});
