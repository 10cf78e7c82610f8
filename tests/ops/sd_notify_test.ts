/**
 * The sd_notify client over real unix datagram sockets: a path and an abstract (`@`) name, as
 * systemd and containers give them, and a socket that is gone (reported once, never thrown).
 * Deno's datagram API needs --unstable-net; when this file runs without it (as `deno task test`
 * runs it), one test runs the file again with the flag and checks that every test passed.
 */
import assert from "node:assert/strict";
import { SdNotifier } from "../../lib/ops/sd_notify.ts";
import { listenNotify } from "../helpers/notify_listener.ts";
import { HAS_DATAGRAMS, rerunUnderUnstableNet } from "../helpers/unstable_net.ts";

rerunUnderUnstableNet(
  "SdNotifier tests pass under --unstable-net",
  import.meta.url,
  /ok \| 2 passed \| 0 failed/,
);

for (const abstract of [false, true]) {
  Deno.test({
    name: `SdNotifier sends to NOTIFY_SOCKET as ${abstract ? "an @abstract name" : "a path"}`,
    ignore: !HAS_DATAGRAMS,
    async fn() {
      const dir = await Deno.makeTempDir();
      const systemd = listenNotify(dir, { abstract });
      const errors: string[] = [];
      const notifier = SdNotifier.fromEnv({
        env: (n) => n === "NOTIFY_SOCKET" ? systemd.notifySocket : undefined,
        onError: (m) => errors.push(m),
      })!;
      try {
        assert.equal(await notifier.notify({ READY: "1", STATUS: "mode sv" }), true);
        assert.equal(await notifier.notify({ WATCHDOG: "1" }), true);
        await systemd.next((m) => m.fields.WATCHDOG === "1");
        assert.deepEqual(systemd.messages.map((m) => m.fields), [
          { READY: "1", STATUS: "mode sv" },
          { WATCHDOG: "1" },
        ]);
        // The sender is named for its process, in the abstract namespace: no file is left.
        assert.ok(systemd.messages.every((m) => m.pid === Deno.pid));
        assert.equal(errors.length, 0, errors.join("\n"));
        const gone = `${dir}/gone`;
        const failing = new SdNotifier({ transport: "unixpacket", path: gone }, {
          onError: (m) => errors.push(m),
        });
        assert.equal(await failing.notify({ READY: "1" }), false);
        assert.equal(await failing.notify({ READY: "1" }), false);
        assert.equal(errors.length, 1, "reported once");
        assert.match(errors[0], new RegExp(`cannot notify systemd at ${gone}: `));
        failing.close();
      } finally {
        notifier.close();
        systemd.close();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
