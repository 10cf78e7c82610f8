/**
 * `dkimd serve` as a process: configuration errors, the built-in default, reload on SIGUSR1 and
 * SIGHUP (a bad configuration keeps the old one), and a clean stop on SIGTERM.
 */
import assert from "node:assert/strict";
import { fromLatin1 } from "../../lib/bytes.ts";
import { MilterClient } from "../../lib/milter/client.ts";
import { KEYS_DIR } from "../helpers/dkim_fixtures.ts";
import { dkimdEnv } from "../helpers/dkimd_env.ts";
import { freePort, startDkimd } from "../helpers/dkimd_process.ts";
import { runCli } from "../helpers/run_cli.ts";

async function signedBy(port: number, from: string): Promise<string[]> {
  const client = await MilterClient.connect({ kind: "inet", host: "127.0.0.1", port });
  try {
    const r = await client.sendMessage({
      connect: { hostname: "localhost", address: "127.0.0.1" },
      macros: { mail: { i: "Q1" } },
      from: `<${from}>`,
      headers: [["From", ` ${from}`], ["Subject", " hi"]],
      body: fromLatin1("hello\r\n"),
    });
    return r.modifications
      .filter((m) => m.type === "insheader" && m.name === "DKIM-Signature")
      .map((m) =>
        new TextDecoder().decode((m as { value: Uint8Array }).value).match(/ d=([^;]+);/)?.[1] ??
          "?"
      );
  } finally {
    client.close();
  }
}

async function keyDir(): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.copyFile(new URL("ed25519.pem", KEYS_DIR), `${dir}/ed.private`);
  await Deno.chmod(`${dir}/ed.private`, 0o600);
  return dir;
}

Deno.test("dkimd serve reloads on SIGUSR1 and SIGHUP, keeps the old configuration when the new one is bad, stops on SIGTERM", async () => {
  const dir = await keyDir();
  const conf = (domain: string) => (socket: string) =>
    `Mode sv\nSocket ${socket}\nDomain ${domain}\nSelector ed\nKeyFile ${dir}/ed.private\n`;
  const dkimd = await startDkimd(dir, conf("example.com"));
  try {
    assert.deepEqual(await signedBy(dkimd.port, "a@example.com"), ["example.com"]);
    assert.deepEqual(await signedBy(dkimd.port, "a@example.org"), []);

    await Deno.writeTextFile(dkimd.config, conf("example.org")(dkimd.socket));
    dkimd.signal("SIGUSR1");
    await dkimd.waitForLog(/configuration reloaded/);
    assert.deepEqual(await signedBy(dkimd.port, "a@example.org"), ["example.org"]);
    assert.deepEqual(await signedBy(dkimd.port, "a@example.com"), []);

    // A broken configuration: logged with its file and line, the old one stays in force.
    await Deno.writeTextFile(
      dkimd.config,
      `Mode sv\nSocket ${dkimd.socket}\nCanonicalization loose\n`,
    );
    dkimd.signal("SIGHUP");
    await dkimd.waitForLog(/reload failed: keeping the configuration in force/);
    assert.match(
      dkimd.log(),
      new RegExp(`reload failed: .*Canonicalization.*${dkimd.config.replaceAll("/", "\\/")}:3`),
    );
    assert.deepEqual(await signedBy(dkimd.port, "a@example.org"), ["example.org"]);

    // A setting that needs a restart is named.
    await Deno.writeTextFile(dkimd.config, conf("example.org")(`inet:${freePort()}@127.0.0.1`));
    dkimd.signal("SIGUSR1");
    await dkimd.waitForLog(
      /"Socket" changed at .*dkimd\.conf:2; it takes effect at the next restart/,
    );

    assert.equal(await dkimd.stop(), 0);
    assert.match(dkimd.log(), /SIGTERM received: stopping/);
    assert.match(dkimd.log(), /terminating with status 0/);
  } finally {
    await dkimd.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd -n checks a configuration and names every problem with file and line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/bad.conf`,
      "Mode sv\nSocket inet:8891@localhost\nSigningTabel x\nOn-BadSignature maybe\n",
    );
    const bad = await runCli(["-n", "-x", `${dir}/bad.conf`]);
    assert.equal(bad.code, 78);
    assert.match(bad.stderr, new RegExp(`${dir}/bad.conf:3.*did you mean "SigningTable"`));
    assert.match(bad.stderr, new RegExp(`${dir}/bad.conf:4`));
    await Deno.writeTextFile(`${dir}/good.conf`, "Mode v\nSocket inet:8891@localhost\n");
    const good = await runCli(["serve", "--check", "--config", `${dir}/good.conf`]);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.text, /configuration .*good\.conf OK/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd serve without a configuration says it serves the built-in default; a taken port is an error", async () => {
  const port = freePort();
  {
    // The built-in default listens on 8891; -p moves it to a free port.
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--quiet",
        new URL("../../main.ts", import.meta.url).pathname,
        "serve",
        "-p",
        `inet:${port}@127.0.0.1`,
      ],
      stderr: "piped",
      stdout: "null",
      clearEnv: true,
      env: dkimdEnv(),
    }).spawn();
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!/listening on/.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    assert.match(
      text,
      /starting with no configuration file: serving the built-in default \(Mode v, Socket inet:8891@127\.0\.0\.1/,
    );
    // A second server on the same port fails with a clear line and status 71.
    const taken = await runCli(["serve", "-p", `inet:${port}@127.0.0.1`]);
    assert.equal(taken.code, 71);
    assert.match(taken.stderr, new RegExp(`cannot listen on inet:${port}@127\\.0\\.0\\.1`));
    child.kill("SIGTERM");
    reader.releaseLock();
    await child.stderr.cancel().catch(() => {});
    assert.equal((await child.status).code, 0);
  }
});
