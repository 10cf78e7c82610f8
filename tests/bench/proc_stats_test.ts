import assert from "node:assert/strict";
import { BLOCKING_POOL_THREAD, threadCpuDelta, threadCpuMs } from "../../bench/proc_stats.ts";

// A `deno run` process (as dkimd runs) that burns 300 ms of its event loop's CPU when told to:
// 300 ms of CPU time, not of wall time, which on a busy machine may hold far less of it.
const BURNER = `
import process from "node:process";
const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
const out = (s) => Deno.stdout.write(new TextEncoder().encode(s + "\\n"));
await out("ready");
await lines.read();
const start = process.cpuUsage();
for (let spent = 0, x = 0; spent < 300_000; x++) {
  if (x % 100_000 === 0) {
    const used = process.cpuUsage(start);
    spent = used.user + used.system;
  }
}
await out("done");
await lines.read();
`;

Deno.test("threadCpuMs() sees the CPU an event loop burns, and leaves out the named threads", async () => {
  const dir = await Deno.makeTempDir();
  const script = `${dir}/burn.js`;
  await Deno.writeTextFile(script, BURNER);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", script],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const writer = child.stdin.getWriter();
  try {
    assert.match((await reader.read()).value ?? "", /ready/);
    const before = await threadCpuMs(child.pid, BLOCKING_POOL_THREAD);
    assert.ok(before.has(child.pid), "the event loop's thread id is the process id");
    await writer.write(new TextEncoder().encode("go\n"));
    assert.match((await reader.read()).value ?? "", /done/);
    const after = await threadCpuMs(child.pid, BLOCKING_POOL_THREAD);
    const main = after.get(child.pid)! - before.get(child.pid)!;
    // USER_HZ ticks of 10 ms; a busy thread on a busy machine may be descheduled, not much more.
    assert.ok(main >= 100 && main <= 2000, `the event loop used ${main} ms`);
    assert.ok(threadCpuDelta(before, after) >= main);
    // Threads with the event loop's name are left out when asked.
    const comm = (await Deno.readTextFile(`/proc/${child.pid}/task/${child.pid}/comm`)).trim();
    assert.equal((await threadCpuMs(child.pid, comm)).has(child.pid), false);
    await writer.write(new TextEncoder().encode("bye\n"));
  } finally {
    await writer.close().catch(() => {});
    await reader.cancel().catch(() => {});
    try {
      child.kill();
    } catch {
      // Already gone.
    }
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});
