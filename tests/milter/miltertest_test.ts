import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { serve } from "../../lib/milter/server.ts";
import { formatSocketSpec, type SocketSpec } from "../../lib/milter/socket_spec.ts";
import { MemoryLogger } from "../helpers/milter_logger.ts";
import { tagFilter, type TagFilterStats } from "../helpers/milter_tag_filter.ts";

// miltertest (Debian package `miltertest`, OpenDKIM's milter test driver) plays the MTA with the
// Lua scripts next to this file, against our server running the tag filter.
const MILTERTEST = "/usr/bin/miltertest";
const dir = (name: string) => fileURLToPath(new URL(name, import.meta.url));

async function runScript(script: string, socket: SocketSpec): Promise<TagFilterStats> {
  const stats: TagFilterStats = { connections: 0, closed: 0, aborted: 0, messages: 0 };
  const log = new MemoryLogger();
  const server = await serve({ socket, filter: tagFilter(stats), logger: log });
  try {
    const out = await new Deno.Command(MILTERTEST, {
      args: [
        "-s",
        dir(script),
        "-D",
        `socket=${formatSocketSpec(server.address)}`,
        "-D",
        `helpers=${dir("mt_helpers.lua")}`,
      ],
      stdout: "piped",
      stderr: "piped",
      // Bounds a hang; miltertest's own reads time out after 10 s.
      signal: AbortSignal.timeout(60_000),
    }).output();
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    assert.equal(
      out.code,
      0,
      `miltertest ${script} failed:\n${decode(out.stdout)}${decode(out.stderr)}\n` +
        log.lines.filter((l) => l.level !== "debug").map((l) => `${l.level}: ${l.message}`)
          .join("\n"),
    );
  } finally {
    await server.close();
  }
  return stats;
}

const available = await Deno.stat(MILTERTEST).then(() => true, () => false);
const LOOPBACK: SocketSpec = { kind: "inet", host: "127.0.0.1", port: 0 };

Deno.test({
  name: "serve() passes miltertest negotiate.lua: versions 6 and 2 negotiated, version 1 refused",
  ignore: !available,
  fn: async () => {
    const stats = await runScript("negotiate.lua", LOOPBACK);
    // Only the version 2 connection went on to CONNECT and a message.
    assert.deepEqual(stats, { connections: 1, closed: 1, aborted: 0, messages: 1 });
  },
});

Deno.test({
  name: "serve() passes miltertest transactions.lua: five transactions on one connection over TCP",
  ignore: !available,
  fn: async () => {
    const stats = await runScript("transactions.lua", LOOPBACK);
    assert.deepEqual(stats, { connections: 1, closed: 1, aborted: 1, messages: 4 });
  },
});

Deno.test({
  name: "serve() passes miltertest transactions.lua: the same over a unix socket",
  ignore: !available,
  fn: async () => {
    const tmp = await Deno.makeTempDir();
    try {
      const stats = await runScript("transactions.lua", { kind: "unix", path: `${tmp}/m.sock` });
      assert.equal(stats.messages, 4);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "serve() passes miltertest abort.lua: ABORT mid-body resets only the transaction",
  ignore: !available,
  fn: async () => {
    const stats = await runScript("abort.lua", LOOPBACK);
    assert.deepEqual(stats, { connections: 1, closed: 1, aborted: 1, messages: 2 });
  },
});
