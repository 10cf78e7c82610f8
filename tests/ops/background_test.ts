import assert from "node:assert/strict";
import { detach, DETACHED_ENV } from "../../lib/ops/background.ts";

function stat(pid: number): string[] {
  const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  return text.slice(text.lastIndexOf(")") + 2).split(" ");
}

function alive(pid: number): boolean {
  try {
    return stat(pid)[0] !== "Z";
  } catch {
    return false;
  }
}

Deno.test("detach() starts the copy in its own session and passes on its errors until ready", async () => {
  const err: string[] = [];
  const result = await detach(
    {
      command: "sh",
      args: ["-c", `echo "starting as $${DETACHED_ENV}" >&2; echo READY=1; exec sleep 30`],
    },
    { stderr: (b) => err.push(new TextDecoder().decode(b)) },
  );
  try {
    assert.equal(result.ready, true);
    assert.equal(result.status, 0);
    const [, , pgrp, session] = stat(result.pid);
    assert.equal(Number(session), result.pid, "setsid: the copy leads a new session");
    assert.equal(Number(pgrp), result.pid);
    assert.equal(err.join(""), "starting as 1\n");
  } finally {
    Deno.kill(result.pid, "SIGKILL");
  }
});

Deno.test("detach() reports a copy that fails before it is ready, with its status", async () => {
  const err: string[] = [];
  const result = await detach(
    { command: "sh", args: ["-c", 'echo "Cannot read key" >&2; exit 78'] },
    { stderr: (b) => err.push(new TextDecoder().decode(b)) },
  );
  assert.deepEqual([result.ready, result.status], [false, 78]);
  assert.equal(err.join(""), "Cannot read key\n");
  const quiet = await detach({ command: "sh", args: ["-c", "exit 0"] }, { stderr: () => {} });
  assert.deepEqual([quiet.ready, quiet.status], [false, 1]);
});

Deno.test("detach() lets the starting process exit while the copy runs on", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // The copy is Deno, as dkimd's is: Deno ignores SIGPIPE, so once its starter has gone,
    // writing to standard error fails quietly instead of killing it.
    const readiness = new URL("../../lib/ops/readiness.ts", import.meta.url);
    await Deno.writeTextFile(
      `${dir}/copy.ts`,
      `import { notifyReady } from "${readiness}";\n` +
        `await Deno.writeTextFile("${dir}/pid", String(Deno.pid));\n` +
        `notifyReady();\n` +
        `await new Promise((r) => setTimeout(r, 300));\n` +
        `console.error("late");\n` +
        `await Deno.writeTextFile("${dir}/alive", "still here\\n");\n` +
        `await new Promise((r) => setTimeout(r, 30_000));\n`,
    );
    const copy = JSON.stringify({
      command: Deno.execPath(),
      args: ["run", "-A", `${dir}/copy.ts`],
    });
    const starter = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { detach } from "${new URL("../../lib/ops/background.ts", import.meta.url)}";` +
        `const r = await detach(${copy});` +
        `console.log(JSON.stringify(r)); Deno.exit(r.status);`,
      ],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    assert.equal(starter.code, 0, new TextDecoder().decode(starter.stderr));
    const { pid, ready } = JSON.parse(new TextDecoder().decode(starter.stdout));
    assert.equal(ready, true);
    try {
      // The copy outlives its starter, and writing to its old standard error does not stop it.
      for (let i = 0; i < 500 && !(await Deno.stat(`${dir}/alive`).catch(() => undefined)); i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(await Deno.readTextFile(`${dir}/alive`), "still here\n");
      assert.equal(alive(pid), true);
      assert.equal(new TextDecoder().decode(starter.stderr), "");
    } finally {
      Deno.kill(pid, "SIGKILL");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
