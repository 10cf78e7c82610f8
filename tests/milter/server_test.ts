import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { concat, latin1, utf8 } from "../../lib/bytes.ts";
import { type Command, encodeCommand } from "../../lib/milter/command.ts";
import { FrameDecoder } from "../../lib/milter/frame.ts";
import { decodeReply, type Reply } from "../../lib/milter/reply.ts";
import { MilterClient } from "../../lib/milter/client.ts";
import {
  SMFI_CURR_ACTS,
  SMFIF_ADDHDRS,
  SMFIP_NR_HDR,
  SMFIP_SKIP,
} from "../../lib/milter/constants.ts";
import type { Filter } from "../../lib/milter/filter.ts";
import { type MilterServer, serve, type ServeOptions } from "../../lib/milter/server.ts";
import { formatSocketSpec, type SocketSpec } from "../../lib/milter/socket_spec.ts";
import { SocketInUseError } from "../../lib/milter/unix_socket.ts";
import { MemoryLogger } from "../helpers/milter_logger.ts";
import {
  assertTagged,
  replyText,
  tagFilter,
  type TagFilterStats,
  tagTestMessage,
} from "../helpers/milter_tag_filter.ts";

const LOOPBACK: SocketSpec = { kind: "inet", host: "127.0.0.1", port: 0 };

function newStats(): TagFilterStats {
  return { connections: 0, closed: 0, aborted: 0, messages: 0 };
}

async function start(
  options: Partial<ServeOptions> = {},
  stats = newStats(),
): Promise<{ server: MilterServer; log: MemoryLogger; stats: TagFilterStats }> {
  const log = new MemoryLogger();
  const server = await serve({
    socket: LOOPBACK,
    filter: tagFilter(stats),
    logger: log,
    ...options,
  });
  return { server, log, stats };
}

// Bounds a wait that would otherwise hang the test run; not a timing assertion.
async function within<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
}

async function until(condition: () => boolean, what: string): Promise<void> {
  await within(
    (async () => {
      while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
    })(),
    what,
  );
}

Deno.test("serve() runs many transactions per connection over TCP", async () => {
  const { server, stats } = await start();
  const client = await MilterClient.connect(server.address);
  assert.ok(client.negotiated.protocol & SMFIP_NR_HDR);
  for (let n = 1; n <= 25; n++) {
    const m = tagTestMessage(n);
    const result = await client.sendMessage(m);
    assertTagged(result, n, n, utf8(m.body).length);
    // With no reply to headers and body, only the envelope and end of message were answered.
    assert.deepEqual(result.replies.map((r) => r.command), [
      ...(n === 1 ? ["connect"] : []),
      "mail",
      "rcpt",
      "rcpt",
      "eoh",
      "bodyeob",
      "bodyeob",
      "bodyeob",
    ]);
    await client.abort();
  }
  await client.quit();
  await until(() => stats.closed === 1, "the filter connection to close");
  assert.equal(stats.messages, 25);
  await server.close();
});

Deno.test("serve() answers commands sent together, in order, and each alone at once", async () => {
  const needs = {
    actions: SMFIF_ADDHDRS,
    events: ["helo", "envFrom", "envRcpt", "header", "endOfHeaders"] as const,
  };
  const server = await serve({
    socket: LOOPBACK,
    logger: new MemoryLogger(),
    filter: {
      needs: { ...needs, events: [...needs.events] },
      connect: () => ({ endOfMessage: () => ({ modifications: [], action: "accept" }) }),
    },
  });
  const address = server.address;
  assert.equal(address.kind, "inet");
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: address.port });
  const decoder = new FrameDecoder();
  const buffer = new Uint8Array(4096);
  const readReplies = async (count: number): Promise<Reply[]> => {
    const out: Reply[] = [];
    while (out.length < count) {
      for (let f = decoder.next(); f; f = decoder.next()) out.push(decodeReply(f));
      if (out.length >= count) break;
      const n = await within(conn.read(buffer), "replies");
      assert.ok(n !== null, "the server closed the connection");
      decoder.push(buffer.subarray(0, n));
    }
    return out;
  };
  const commands: Command[] = [
    { type: "optneg", version: 6, actions: SMFI_CURR_ACTS, protocol: 0 },
    { type: "connect", hostname: "mx", family: "inet", port: 25, address: "192.0.2.1" },
    { type: "helo", name: "mx.example" },
    { type: "mail", args: ["<a@example.org>"] },
    { type: "rcpt", args: ["<b@example.org>"] },
    { type: "header", name: "Subject", value: utf8(" Hi") },
    { type: "eoh" },
  ];
  await conn.write(concat(commands.map(encodeCommand)));
  const replies = await readReplies(commands.length);
  assert.deepEqual(replies.map((r) => r.type), [
    "optneg",
    ...commands.slice(1).map(() => "continue"),
  ]);
  // A lone command is answered without waiting for another.
  await conn.write(encodeCommand({ type: "bodyeob" }));
  assert.deepEqual(await readReplies(1), [{ type: "accept" }]);
  conn.close();
  await server.close();
});

Deno.test("serve() serves concurrent connections without crosstalk", async () => {
  const { server, stats } = await start();
  await Promise.all(
    Array.from({ length: 8 }, async (_, c) => {
      const client = await MilterClient.connect(server.address);
      for (let i = 1; i <= 5; i++) {
        const n = c * 100 + i;
        const m = tagTestMessage(n);
        const result = await client.sendMessage({ ...m, body: "x".repeat(n) + "\r\n" });
        assertTagged(result, n, i, n + 2);
        await client.abort();
      }
      await client.quit();
    }),
  );
  await until(() => stats.closed === 8, "eight filter connections to close");
  assert.equal(stats.connections, 8);
  assert.equal(stats.messages, 40);
  await server.close();
});

Deno.test("serve() carries a message over a unix socket with the requested mode", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/dkimd.sock`;
  const { server, stats } = await start({ socket: { kind: "unix", path }, umask: 0o027 });
  const info = await Deno.lstat(path);
  assert.ok(info.isSocket);
  assert.equal(info.mode! & 0o777, 0o750);
  const client = await MilterClient.connect({ kind: "unix", path });
  for (let n = 1; n <= 3; n++) {
    const m = tagTestMessage(n, [["X-Remove-Me", " please"]]);
    const result = await client.sendMessage(m);
    assert.deepEqual(result.modifications.map(replyText).slice(2), ["chgheader X-Remove-Me:"]);
    await client.abort();
  }
  await client.quit();
  await server.close();
  assert.equal(stats.messages, 3);
  await assert.rejects(() => Deno.lstat(path), Deno.errors.NotFound);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("serve() negotiates version 2 and sends header values without the leading space", async () => {
  const seen: string[] = [];
  const filter: Filter = {
    needs: { actions: SMFIF_ADDHDRS, events: ["header"] },
    connect: (info) => {
      seen.push(`leadingSpace=${info.session.leadingSpace}`);
      return {
        header: (name, value) => void seen.push(`${name}:${latin1(value)}`),
        endOfMessage: () => ({ modifications: [], action: "continue" }),
      };
    },
  };
  const log = new MemoryLogger();
  const server = await serve({ socket: LOOPBACK, filter, logger: log });
  for (const [version, protocol] of [[2, 0x7f], [6, 0x1fffff]]) {
    const client = await MilterClient.connect(server.address, { version, protocol, actions: 0x3f });
    assert.equal(client.negotiated.version, version);
    const result = await client.sendMessage({
      headers: [["Subject", "  two spaces"], ["X-Tab", "\tvalue"]],
    });
    assert.equal(result.final.type, "continue");
    await client.quit();
  }
  await server.close();
  assert.deepEqual(seen, [
    "leadingSpace=false",
    "Subject: two spaces",
    "X-Tab:\tvalue",
    "leadingSpace=true",
    "Subject:  two spaces",
    "X-Tab:\tvalue",
  ]);
});

Deno.test("serve() answers an early rejection at the next reply point", async () => {
  const { server } = await start();
  const client = await MilterClient.connect(server.address);
  const result = await client.sendMessage(tagTestMessage(1, [["X-Reject", " yes"]]));
  assert.deepEqual(result.final, {
    type: "replycode",
    code: 550,
    text: "5.7.1 Rejected by test filter",
  });
  assert.equal(result.replies.at(-1)?.command, "eoh");
  await client.abort();
  assertTagged(await client.sendMessage(tagTestMessage(2)), 2, 1, 25);
  await client.quit();
  await server.close();
});

Deno.test("serve() closes a connection over the limit and keeps serving", async () => {
  const { server, log } = await start({ maxConnections: 2 });
  const first = await MilterClient.connect(server.address);
  const second = await MilterClient.connect(server.address);
  await assert.rejects(() => MilterClient.connect(server.address));
  assert.ok(
    log.find("warn", /MilterMaxConnections \(2\) reached: refusing connection 3 from 127\.0\.0\.1/),
  );
  await first.quit();
  await until(() => server.connections < 2, "a connection slot");
  const third = await MilterClient.connect(server.address);
  assertTagged(await third.sendMessage(tagTestMessage(7)), 7, 1, 25);
  await third.quit();
  await second.quit();
  await server.close();
});

Deno.test("serve() closes a silent connection after the read timeout", async () => {
  const { server, log, stats } = await start({ readTimeoutMs: 150 });
  const client = await MilterClient.connect(server.address);
  await client.send({
    type: "connect",
    hostname: "h",
    family: "inet",
    port: 1,
    address: "192.0.2.1",
  });
  assert.deepEqual(await client.readReply(), { type: "continue" });
  assert.equal(await within(client.closedByPeer(), "the server to close the connection"), true);
  await until(() => stats.closed === 1, "the filter connection to close");
  assert.ok(log.find("info", /No data from the MTA for MilterIdleTimeout \(150 ms\); closing/));
  client.close();
  await server.close();
});

Deno.test("serve() closes a connection whose frame trickles in past the read timeout", async () => {
  const { server, log } = await start({ readTimeoutMs: 150 });
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: (server.address as { port: number }).port,
  });
  // A 64-byte frame, one byte every 30 ms: every read comes in time, the frame does not.
  const frame = new Uint8Array(4 + 64);
  frame.set([0, 0, 0, 64, 0x4f]);
  let closed = false;
  for (let i = 0; i < frame.length && !closed; i++) {
    try {
      await conn.write(frame.subarray(i, i + 1));
    } catch {
      closed = true;
    }
    await new Promise((resolve) => setTimeout(resolve, 30));
    closed ||= log.find("info", /Frame incomplete/) !== undefined;
  }
  assert.ok(closed, "the server let the frame trickle in whole");
  assert.equal(await within(conn.read(new Uint8Array(8)).catch(() => null), "the close"), null);
  assert.ok(log.find("info", /Frame incomplete after MilterIdleTimeout \(150 ms\); closing/));
  conn.close();
  await server.close();
});

Deno.test("MilterServer.close() lets a transaction in flight finish and closes idle connections", async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let atEom = false;
  const filter: Filter = {
    needs: { actions: SMFIF_ADDHDRS, events: [] },
    connect: () => ({
      endOfMessage: async () => {
        atEom = true;
        await gate;
        return {
          modifications: [{ type: "addheader", name: "X-Done", value: "yes" }],
          action: "accept",
        };
      },
    }),
  };
  const log = new MemoryLogger();
  const server = await serve({ socket: LOOPBACK, filter, logger: log, shutdownGraceMs: 10_000 });
  const busy = await MilterClient.connect(server.address);
  const idle = await MilterClient.connect(server.address);
  const sending = busy.sendMessage({ headers: [["Subject", "x"]], body: "x\r\n" });
  await until(() => atEom, "the filter to reach end of message");
  const closing = server.close();
  assert.equal(await within(idle.closedByPeer(), "the idle connection to close"), true);
  release();
  const result = await within(sending, "the transaction in flight");
  assert.equal(result.final.type, "accept");
  assert.deepEqual(result.modifications.map(replyText), ["addheader X-Done:yes"]);
  await within(closing, "close() to resolve");
  assert.equal(await busy.closedByPeer(), true);
  assert.equal(server.connections, 0);
  await assert.rejects(() => MilterClient.connect(server.address));
  busy.close();
  idle.close();
});

Deno.test("MilterServer.close() gives up on a stuck transaction after the grace period", async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let closed = 0;
  let atEom = false;
  const filter: Filter = {
    needs: { actions: 0, events: [] },
    connect: () => ({
      endOfMessage: async () => {
        atEom = true;
        await gate;
        return { modifications: [], action: "accept" };
      },
      close: () => void closed++,
    }),
  };
  const log = new MemoryLogger();
  const server = await serve({ socket: LOOPBACK, filter, logger: log, shutdownGraceMs: 100 });
  const client = await MilterClient.connect(server.address);
  const sending = client.sendMessage({ headers: [] });
  sending.catch(() => {});
  await until(() => atEom, "the filter to reach end of message");
  await within(server.close(), "close() to resolve after the grace period");
  assert.ok(log.find("warn", /Shutdown grace of 100 ms over: closing 1 connection/));
  await assert.rejects(within(sending, "the client to see the close"));
  release();
  await until(() => closed === 1, "the filter connection to close once its callback returns");
  client.close();
});

Deno.test("serve() closes only the connection that sends a malformed or oversized frame", async () => {
  const { server, log } = await start({ maxFrameBytes: 4096 });
  const good = await MilterClient.connect(server.address);
  for (const bad of [Uint8Array.of(0, 0, 0, 0), Uint8Array.of(0, 0, 0x10, 0x01, 0x42)]) {
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: (server.address as { port: number }).port,
    });
    await conn.write(bad);
    const buf = new Uint8Array(16);
    assert.equal(await within(conn.read(buf), "the server to close"), null);
    conn.close();
  }
  const garbled = await MilterClient.connect(server.address);
  await garbled.send({ type: "unrecognized", code: 0x48, data: utf8("no terminating NUL") });
  assert.equal(await within(garbled.closedByPeer(), "the server to close"), true);
  garbled.close();
  assert.ok(log.find("warn", /length 0; closing/));
  assert.ok(
    log.find("warn", /a frame of 4097 bytes exceeds MilterMaxFrameBytes \(4096\); closing/),
  );
  assert.ok(log.find("warn", /Malformed milter HELO command: HELO name is not NUL-terminated/));
  assertTagged(await good.sendMessage(tagTestMessage(3)), 3, 1, 25);
  await good.quit();
  await server.close();
});

Deno.test("serve() closes the connection when negotiation is refused", async () => {
  const { server, log } = await start();
  await assert.rejects(() => MilterClient.connect(server.address, { version: 1 }));
  await assert.rejects(() => MilterClient.connect(server.address, { actions: 0x01 }), /closed/);
  assert.ok(log.find("error", /SMFIF_CHGHDRS/));
  await server.close();
});

Deno.test("serve() replaces a stale unix socket but never a live one or a file", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/milter.sock`;
  // A socket file left behind by a process that died: bound, never unlinked.
  const bind = await new Deno.Command("/usr/bin/python3", {
    args: ["-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", path],
  }).output();
  assert.equal(bind.code, 0, new TextDecoder().decode(bind.stderr));
  assert.ok((await Deno.lstat(path)).isSocket);

  const { server, log } = await start({ socket: { kind: "unix", path } });
  assert.ok(log.find("info", /Removed stale socket/));
  await assert.rejects(
    () => start({ socket: { kind: "unix", path } }),
    (error: unknown) =>
      error instanceof SocketInUseError && /another process is listening on it/.test(error.message),
  );
  const client = await MilterClient.connect({ kind: "unix", path });
  assertTagged(await client.sendMessage(tagTestMessage(1)), 1, 1, 25);
  await client.quit();
  await server.close();

  const file = `${dir}/regular`;
  await Deno.writeTextFile(file, "keep me");
  await assert.rejects(
    () => start({ socket: { kind: "unix", path: file } }),
    /Cannot listen on ".*regular": the path exists and is not a socket/,
  );
  assert.equal(await Deno.readTextFile(file), "keep me");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("serve() answers SKIP and the client stops sending body chunks", async () => {
  let chunks = 0;
  const filter: Filter = {
    needs: { actions: 0, events: ["body"] },
    connect: () => ({
      body: () => {
        chunks++;
        return "skip";
      },
      endOfMessage: () => ({ modifications: [], action: "accept" }),
    }),
  };
  const server = await serve({ socket: LOOPBACK, filter, logger: new MemoryLogger() });
  const client = await MilterClient.connect(server.address);
  assert.ok(client.negotiated.protocol & SMFIP_SKIP);
  const result = await client.sendMessage({
    headers: [],
    body: "x".repeat(10_000),
    bodyChunkBytes: 1000,
  });
  assert.equal(result.final.type, "accept");
  assert.equal(chunks, 1);
  assert.deepEqual(result.replies.map((r) => r.reply.type), ["continue", "skip", "accept"]);
  await client.quit();
  await server.close();
});

Deno.test("serve() rejects invalid limits before listening", async () => {
  const log = new MemoryLogger();
  for (
    const bad of [{ maxConnections: 0 }, { readTimeoutMs: 2 ** 31 }, { maxFrameBytes: 0 }, {
      shutdownGraceMs: -1,
    }]
  ) {
    await assert.rejects(
      () => serve({ socket: LOOPBACK, filter: tagFilter(), logger: log, ...bad }),
      RangeError,
    );
  }
});

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
