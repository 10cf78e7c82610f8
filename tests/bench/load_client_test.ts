/**
 * The benchmark's load client against a real milter server in this process: it counts messages
 * and checks every reply, with and without TCP_QUICKACK, and measures a process from /proc.
 */
import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { SMFIF_ADDHDRS } from "../../lib/milter/constants.ts";
import { serve } from "../../lib/milter/server.ts";
import type { Filter } from "../../lib/milter/filter.ts";
import { generateMessage, toMilterMessage } from "../../bench/corpus.ts";
import { runLoad } from "../../bench/load_client.ts";
import { MemoryLogger } from "../helpers/milter_logger.ts";

// A filter that adds `field` with `value` to every message and counts the body bytes it saw.
function addingFilter(
  field: string,
  value: string,
  seen: { bodyBytes: number },
): Filter {
  return {
    needs: { actions: SMFIF_ADDHDRS, events: ["header", "body"], noReply: ["header", "body"] },
    connect: () => ({
      body(chunk: Uint8Array) {
        seen.bodyBytes += chunk.length;
      },
      endOfMessage: () => ({
        modifications: [{ type: "insheader", index: 0, name: field, value: fromLatin1(value) }],
        action: "accept",
      }),
    }),
  };
}

const messages = [
  toMilterMessage(generateMessage(200 * 1024, 1)),
  toMilterMessage(generateMessage(2048, 2)),
];

Deno.test("runLoad() counts checked messages and measures the filter process", async () => {
  for (const quickAck of [false, true]) {
    const seen = { bodyBytes: 0 };
    const server = await serve({
      socket: { kind: "inet", host: "127.0.0.1", port: 0 },
      logger: new MemoryLogger(),
      filter: addingFilter("DKIM-Signature", " v=1; a=ed25519-sha256; d=example.com; b=AAAA", seen),
    });
    try {
      const address = server.address;
      assert.equal(address.kind, "inet");
      const result = await runLoad({
        host: "127.0.0.1",
        port: address.kind === "inet" ? address.port : 0,
        messages,
        mode: "sign",
        concurrency: 2,
        durationMs: 400,
        warmupMs: 100,
        quickAck,
        pid: Deno.pid,
        algorithm: "ed25519-sha256",
      });
      assert.ok(result.messages > 0, JSON.stringify(result));
      assert.equal(result.errors, 0, JSON.stringify(result.errorSamples));
      assert.equal(result.quickAck, quickAck);
      assert.ok(result.p50Ms > 0 && result.p99Ms >= result.p50Ms);
      assert.ok(result.cpuMsPerMessage !== undefined && result.cpuMsPerMessage >= 0);
      assert.ok(
        result.cpuMsOutsidePoolPerMessage !== undefined && result.cpuMsOutsidePoolPerMessage >= 0,
      );
      assert.ok(result.peakRssBytes !== undefined && result.peakRssBytes > 1024 * 1024);
      // Whole bodies arrived (the warm-up's and the drain's messages too).
      assert.ok(seen.bodyBytes >= result.messages * 2000);
    } finally {
      await server.close();
    }
  }
});

Deno.test("runLoad() counts every reply without the expected field as an error", async () => {
  const seen = { bodyBytes: 0 };
  const server = await serve({
    socket: { kind: "inet", host: "127.0.0.1", port: 0 },
    logger: new MemoryLogger(),
    filter: addingFilter("Authentication-Results", " mx; dkim=fail", seen),
  });
  try {
    const address = server.address;
    const port = address.kind === "inet" ? address.port : 0;
    const common = {
      host: "127.0.0.1",
      port,
      messages,
      concurrency: 1,
      durationMs: 300,
      warmupMs: 50,
      quickAck: false,
    };
    const verify = await runLoad({ ...common, mode: "verify" });
    assert.ok(verify.messages > 0);
    assert.equal(verify.errors, verify.messages);
    assert.match(verify.errorSamples[0], /not dkim=pass: mx; dkim=fail/);
    const sign = await runLoad({ ...common, mode: "sign" });
    assert.equal(sign.errors, sign.messages);
    assert.equal(sign.errorSamples[0], "no DKIM-Signature field added");
  } finally {
    await server.close();
  }
});

Deno.test("toMilterMessage() gives the header fields and body of generated messages unchanged", () => {
  for (const size of [2048, 200 * 1024]) {
    const message = generateMessage(size, 5);
    const m = toMilterMessage(message);
    const rebuilt = m.headers.map(([name, value]) =>
      `${name}:${latin1(value).replaceAll("\n", "\r\n")}\r\n`
    )
      .join("") + "\r\n" + latin1(m.body);
    assert.equal(rebuilt, latin1(message));
  }
});
