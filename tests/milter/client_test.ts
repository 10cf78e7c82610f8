import assert from "node:assert/strict";
import { MilterClient } from "../../lib/milter/client.ts";
import type { Filter } from "../../lib/milter/filter.ts";
import { serve } from "../../lib/milter/server.ts";
import type { SocketSpec } from "../../lib/milter/socket_spec.ts";
import { until } from "../helpers/dkimd_process.ts";
import { MemoryLogger } from "../helpers/milter_logger.ts";
import {
  assertTagged,
  tagFilter,
  type TagFilterStats,
  tagTestMessage,
} from "../helpers/milter_tag_filter.ts";

const LOOPBACK: SocketSpec = { kind: "inet", host: "127.0.0.1", port: 0 };

/** A server running the tag filter on a free loopback port, and the filter's counts. */
async function start() {
  const stats: TagFilterStats = { connections: 0, closed: 0, aborted: 0, messages: 0 };
  const server = await serve({
    socket: LOOPBACK,
    filter: tagFilter(stats),
    logger: new MemoryLogger(),
  });
  return { server, stats };
}

Deno.test("MilterClient.quitNewConnection() starts a new SMTP connection on the same socket", async () => {
  const { server, stats } = await start();
  const client = await MilterClient.connect(server.address);
  assertTagged(await client.sendMessage(tagTestMessage(1)), 1, 1, 25);
  await client.abort();
  await client.quitNewConnection();
  // The new connection counts its messages from one again.
  assertTagged(await client.sendMessage(tagTestMessage(2)), 2, 1, 25);
  await client.quit();
  await until("both filter connections to close", () => Promise.resolve(stats.closed === 2));
  assert.equal(stats.connections, 2);
  await server.close();
});

Deno.test("MilterClient.readReply() gives up after its timeout", async () => {
  const filter: Filter = {
    needs: { actions: 0, events: [] },
    connect: () => ({
      endOfMessage: () => new Promise(() => {}), // never answers
    }),
  };
  const server = await serve({
    socket: LOOPBACK,
    filter,
    logger: new MemoryLogger(),
    shutdownGraceMs: 0,
  });
  const client = await MilterClient.connect(server.address, { timeoutMs: 100 });
  await assert.rejects(
    () => client.sendMessage({ headers: [] }),
    /No reply to end of message from the milter within 100 ms/,
  );
  await server.close();
});
