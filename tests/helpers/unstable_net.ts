/**
 * Deno's unix datagram API (`Deno.listenDatagram`, what the syslog and sd_notify tests stand in
 * for /dev/log and systemd with) needs `--unstable-net`, which `deno task test` does not pass. A
 * test file that needs it marks its tests ignored without the flag and, through
 * {@link rerunUnderUnstableNet}, adds one test that runs the file again with it and checks the
 * summary, so the tests still count in the suite.
 *
 * @module
 */
import assert from "node:assert/strict";

/** Whether this run has Deno's datagram API (`--unstable-net`). */
export const HAS_DATAGRAMS = typeof (Deno as { listenDatagram?: unknown }).listenDatagram ===
  "function";

/**
 * Without the datagram API, registers the test `name` that runs `fileUrl` under `deno test
 * --unstable-net --allow-all` and wants it to exit 0 with a summary matching `summary`.
 */
export function rerunUnderUnstableNet(name: string, fileUrl: string, summary: RegExp): void {
  if (HAS_DATAGRAMS) return;
  Deno.test(name, async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["test", "--unstable-net", "--allow-all", new URL(fileUrl).pathname],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.match(text, summary, text);
  });
}
