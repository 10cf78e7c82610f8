import assert from "node:assert/strict";
import { MAX_HELD_BYTES, WorkerStderr } from "../../lib/ops/worker_stderr.ts";
import { dkimdEnv } from "../helpers/dkimd_env.ts";
import { nobody } from "../helpers/nobody.ts";

/** A stream of `chunks`, as a worker's standard error delivers them. */
function stream(chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(encoder.encode(c));
      controller.close();
    },
  });
}

Deno.test("WorkerStderr passes dkimd's log lines, holds Deno's, at any chunk split", async () => {
  const text = "dkimd[9]: dkimd 0.1.0 starting\nDownload https://x/y.tgz\n" +
    "error: Failed caching npm package 'y@1.0.0'\n    0: Permission denied\n";
  for (let split = 0; split <= text.length; split++) {
    const out: string[] = [];
    const relay = new WorkerStderr(
      stream([text.slice(0, split), text.slice(split)]),
      (b) => out.push(new TextDecoder().decode(b)),
    );
    await relay.done;
    assert.equal(out.join(""), "dkimd[9]: dkimd 0.1.0 starting\n", `split ${split}`);
    assert.equal(relay.held, text.slice("dkimd[9]: dkimd 0.1.0 starting\n".length));
  }
});

Deno.test("WorkerStderr writes what it held once the worker is ready, then passes everything", async () => {
  const out: string[] = [];
  let push: (s: string) => void = () => {};
  let end: () => void = () => {};
  const encoder = new TextEncoder();
  const source = new ReadableStream<Uint8Array>({
    start(controller) {
      push = (s) => controller.enqueue(encoder.encode(s));
      end = () => controller.close();
    },
  });
  const relay = new WorkerStderr(source, (b) => out.push(new TextDecoder().decode(b)));
  push("Warning: something Deno says\ndkimd[9]: listening\n");
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(out, ["dkimd[9]: listening\n"]);
  relay.ready();
  assert.deepEqual(out, ["dkimd[9]: listening\n", "Warning: something Deno says\n"]);
  push("any text, even partial");
  end();
  await relay.done;
  assert.equal(out.at(-1), "any text, even partial");
  assert.equal(relay.held, "");
});

Deno.test("WorkerStderr stops holding past MAX_HELD_BYTES", async () => {
  const out: string[] = [];
  const line = "x".repeat(1023) + "\n";
  const relay = new WorkerStderr(
    stream(Array(MAX_HELD_BYTES / 1024 + 2).fill(line)),
    (b) => out.push(new TextDecoder().decode(b)),
  );
  await relay.done;
  assert.equal(relay.held, "");
  assert.equal(out.join("").length, line.length * (MAX_HELD_BYTES / 1024 + 2));
});

const FIXTURE = new URL("../helpers/supervise_fixture.ts", import.meta.url).pathname;

/** Runs supervise() with UserID nobody in a process of its own; its exit status and stderr. */
async function superviseAsNobody(script: string): Promise<{ code: number; stderr: string }> {
  const who = await nobody();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      FIXTURE,
      JSON.stringify({
        command: { command: "sh", args: ["-c", script] },
        autoRestart: false,
        runAs: who,
        restartDelayMs: 0,
      }),
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    clearEnv: true,
    env: dkimdEnv({ NO_COLOR: "1" }),
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test({
  name: "supervise() with UserID passes on everything a ready worker writes to standard error",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    const r = await superviseAsNobody(
      "echo 'dkimd[1]: starting' >&2; echo 'Warning: from Deno' >&2; echo READY=1; " +
        "echo 'dkimd[1]: stopping' >&2",
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stderr.split("\n");
    for (const want of ["dkimd[1]: starting", "Warning: from Deno", "dkimd[1]: stopping"]) {
      assert.ok(lines.includes(want), `${want} in:\n${r.stderr}`);
    }
  },
});

Deno.test({
  name:
    "supervise() with UserID replaces Deno's trace by one line when it can explain it, and shows it otherwise",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    const explained = await superviseAsNobody(
      "echo \"error: Import 'file:///opt/dkimd/lib/bytes.ts' failed.\" >&2; " +
        "echo '    0: Permission denied (os error 13)' >&2; exit 1",
    );
    assert.equal(explained.code, 1);
    assert.match(
      explained.stderr,
      /^dkimd\[\d+\]: error: worker \d+ exited with status 1 before it was ready, so dkimd stops: user "nobody" \(uid \d+\) cannot read "\/opt\/dkimd\/lib\/bytes\.ts" \(Permission denied\); fix: /m,
    );
    assert.doesNotMatch(explained.stderr, /^error: |^\s+0: /m);

    const unexplained = await superviseAsNobody(
      "echo 'error: Uncaught TypeError: x is undefined' >&2; exit 1",
    );
    assert.equal(unexplained.code, 1);
    assert.match(
      unexplained.stderr,
      /^error: Uncaught TypeError: x is undefined\ndkimd\[\d+\]: error: worker \d+ exited with status 1 before it was ready; not restarting, since it would fail again: see its error above$/m,
    );
  },
});
