import assert from "node:assert/strict";
import { MAX_READY_BYTES, READY_LINE, waitForReady } from "../../lib/ops/readiness.ts";

function chunks(...parts: string[]): ReadableStream<Uint8Array> {
  const bytes = parts.map((p) => new TextEncoder().encode(p));
  return new ReadableStream({
    pull(controller) {
      const next = bytes.shift();
      if (next) controller.enqueue(next);
      else controller.close();
    },
  });
}

Deno.test("waitForReady() finds the line across chunk splits and ignores other output", async () => {
  const cases = [
    { parts: ["READY=1\n"], want: true },
    { parts: ["REA", "DY=", "1", "\n"], want: true },
    { parts: ["warming up\n", "READY=1\n", "more\n"], want: true },
    { parts: ["READY=1"], want: false },
    { parts: ["NOT READY=1\n"], want: false },
    { parts: [], want: false },
    { parts: ["x".repeat(MAX_READY_BYTES + 10), "\nREADY=1\n"], want: false },
  ];
  for (const { parts, want } of cases) {
    assert.equal(await waitForReady(chunks(...parts)), want, JSON.stringify(parts).slice(0, 60));
  }
});

Deno.test("notifyReady() writes the line once to a real pipe and closes it", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { notifyReady } from "${new URL("../../lib/ops/readiness.ts", import.meta.url)}";` +
      `console.error(notifyReady(), notifyReady()); await new Promise((r) => setTimeout(r, 200));`,
    ],
    env: { DKIMD_READY: "stdout", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // The line arrives and the pipe ends while the child still runs.
  assert.equal(await new Response(child.stdout).text(), READY_LINE);
  const status = await child.status;
  assert.equal(status.code, 0);
  assert.equal(new TextDecoder().decode(await new Response(child.stderr).bytes()), "true false\n");
});
