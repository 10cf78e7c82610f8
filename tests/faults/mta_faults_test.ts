// MTA faults against a running dkimd: the MTA disconnects at every protocol step (and in the
// middle of a frame), aborts in the middle of a body, sends slowly or not at all, and opens
// thousands of connections at once. dkimd must stay up, free every connection, log no internal
// error, and serve the next client normally.
import assert from "node:assert/strict";
import net from "node:net";
import { concat, CRLF, fromLatin1, latin1 } from "../../lib/bytes.ts";
import { importPrivateKey, type SigningKey } from "../../lib/crypto/private_key.ts";
import { splitMessage } from "../../lib/dkim/header.ts";
import { signMessage } from "../../lib/dkim/sign.ts";
import { verifyMessage } from "../../lib/dkim/verify.ts";
import { type Command, encodeCommand } from "../../lib/milter/command.ts";
import { FrameDecoder } from "../../lib/milter/frame.ts";
import { decodeReply, type Reply } from "../../lib/milter/reply.ts";
import {
  SMFI_CURR_ACTS,
  SMFI_CURR_PROT,
  SMFI_PROT_VERSION,
  SMFIC_EOH,
  SMFIC_MAIL,
} from "../../lib/milter/constants.ts";
import { parseSocketSpec } from "../../lib/milter/socket_spec.ts";
import { KEYS_DIR, recordFor } from "../helpers/dkim_fixtures.ts";
import {
  type DkimdProcess,
  freePort,
  openConnections,
  startDkimd,
  until,
} from "../helpers/dkimd_process.ts";
import { type FakeDnsServer, startFakeDnsServer } from "../helpers/fake_dns_server.ts";

const SENDER = "sender.example";
const OURS = "example.com";
/** Bounds every wait on dkimd; a healthy run needs a fraction of it. */
const WAIT_MS = 20_000;

const PEM = await Deno.readTextFile(new URL("rsa2048_pkcs8.pem", KEYS_DIR));
const KEY: SigningKey = await importPrivateKey(PEM, "rsa2048_pkcs8.pem");

interface World {
  readonly dir: string;
  readonly dns: FakeDnsServer;
  readonly metricsPort: number;
  readonly dkimd: DkimdProcess;
  close(): Promise<void>;
}

/** Starts dkimd (on `host`, 127.0.0.1 unless given) with a fake DNS server and `extra` settings. */
async function world(extra = "", host: "127.0.0.1" | "::1" = "127.0.0.1"): Promise<World> {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/ours.private`, PEM, { mode: 0o600 });
  await Deno.writeTextFile(`${dir}/key.table`, `ours ${OURS}:ours:${dir}/ours.private\n`);
  await Deno.writeTextFile(`${dir}/signing.table`, `*@${OURS} ours\n`);
  // The key answers after 300 ms, so disconnects land while lookups are in flight.
  const dns = await startFakeDnsServer({
    [`slow._domainkey.${SENDER}`]: { txt: [recordFor(KEY)], delayMs: 300 },
    [`good._domainkey.${SENDER}`]: { txt: [recordFor(KEY)] },
  });
  const metricsPort = freePort();
  const dkimd = await startDkimd(
    dir,
    (socket) =>
      `Mode sv\nSocket ${socket}\nSyslog no\nBackground no\nAuthservID mx.test\n` +
      `KeyTable ${dir}/key.table\nSigningTable refile:${dir}/signing.table\n` +
      `Nameservers 127.0.0.1@${dns.port}\nMetricsListen 127.0.0.1:${metricsPort}\n${extra}`,
    { host },
  );
  return {
    dir,
    dns,
    metricsPort,
    dkimd,
    async close() {
      await dkimd.stop();
      await dns.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** A milter connection driven byte by byte, as an MTA that may stop anywhere. */
class RawMta {
  readonly #conn: Deno.TcpConn;
  readonly #decoder = new FrameDecoder();
  readonly #buffer = new Uint8Array(65536);

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  static async open(d: DkimdProcess): Promise<RawMta> {
    // The address dkimd listens on: 127.0.0.1, or ::1 for the flood's dkimd.
    const spec = parseSocketSpec(d.socket);
    assert.equal(spec.kind, "inet", d.socket);
    const mta = new RawMta(await Deno.connect({ hostname: spec.host, port: spec.port }));
    await mta.send({
      type: "optneg",
      version: SMFI_PROT_VERSION,
      actions: SMFI_CURR_ACTS,
      protocol: SMFI_CURR_PROT,
    });
    assert.equal((await mta.reply()).type, "optneg");
    return mta;
  }

  async send(command: Command): Promise<void> {
    await this.writeBytes(encodeCommand(command));
  }

  async writeBytes(bytes: Uint8Array): Promise<void> {
    for (let n = 0; n < bytes.length;) n += await this.#conn.write(bytes.subarray(n));
  }

  /** The next reply; throws when dkimd closed the connection. */
  async reply(): Promise<Reply> {
    for (;;) {
      const frame = this.#decoder.next();
      if (frame) return decodeReply(frame);
      const n = await this.#conn.read(this.#buffer);
      if (n === null) throw new Error("dkimd closed the connection");
      this.#decoder.push(this.#buffer.subarray(0, n));
    }
  }

  /** Resolves to true once dkimd closes the connection. */
  async closedByPeer(): Promise<boolean> {
    try {
      while ((await this.#conn.read(this.#buffer)) !== null) {
        // Replies still in flight are read past.
      }
      return true;
    } catch {
      return true;
    }
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }
}

/** One step of a transaction: the command and whether dkimd answers it. */
interface Step {
  readonly name: string;
  readonly command: Command;
  readonly answered: boolean;
}

function message(from: string, subject: string, body: string): Uint8Array {
  return fromLatin1(
    `From: <${from}>\r\nTo: <bob@example.org>\r\nSubject: ${subject}\r\n` +
      `Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n\r\n${body}`,
  );
}

async function signed(bytes: Uint8Array, selector: string): Promise<Uint8Array> {
  const fields = await signMessage(bytes, [{ domain: SENDER, selector, key: KEY }], {
    now: () => Date.now() / 1000,
  });
  return concat([...fields.flatMap((f) => [f.raw, CRLF]), bytes]);
}

/** The commands Postfix sends for `bytes` from `address`, body in two chunks. */
function steps(bytes: Uint8Array, address: string, qid: string): Step[] {
  const { fields, bodyOffset } = splitMessage(bytes);
  const from = /^From: <([^>]*)>/m.exec(latin1(bytes))![1];
  const body = bytes.subarray(bodyOffset);
  const half = Math.ceil(body.length / 2);
  return [
    {
      name: "CONNECT",
      command: { type: "connect", hostname: "client.test", family: "inet", port: 4000, address },
      answered: true,
    },
    {
      name: "MAIL",
      command: { type: "macro", forCommand: SMFIC_MAIL, macros: [["i", qid]] },
      answered: false,
    },
    { name: "MAIL", command: { type: "mail", args: [`<${from}>`] }, answered: false },
    { name: "RCPT", command: { type: "rcpt", args: ["<bob@example.org>"] }, answered: false },
    ...fields.map((f) => ({
      name: "HEADER",
      command: {
        type: "header" as const,
        name: f.name,
        value: f.raw.subarray(f.raw.indexOf(0x3a) + 1),
      },
      answered: false,
    })),
    {
      name: "EOH",
      command: { type: "macro", forCommand: SMFIC_EOH, macros: [["i", qid]] },
      answered: false,
    },
    { name: "EOH", command: { type: "eoh" }, answered: true },
    { name: "BODY", command: { type: "body", chunk: body.subarray(0, half) }, answered: false },
    { name: "BODY", command: { type: "body", chunk: body.subarray(half) }, answered: false },
    { name: "EOM", command: { type: "bodyeob" }, answered: true },
  ];
}

/** Runs steps and returns the end-of-message replies (modifications, then the final one). */
async function run(mta: RawMta, list: readonly Step[]): Promise<Reply[]> {
  const out: Reply[] = [];
  for (const s of list) {
    await mta.send(s.command);
    if (!s.answered) continue;
    if (s.name !== "EOM") {
      const reply = await mta.reply();
      if (reply.type !== "continue") return [reply];
      continue;
    }
    for (;;) {
      const reply = await mta.reply();
      out.push(reply);
      if (
        ["accept", "continue", "reject", "tempfail", "discard", "replycode"].includes(reply.type)
      ) {
        return out;
      }
    }
  }
  return out;
}

function insertedText(replies: readonly Reply[], name: string): string[] {
  return replies
    .filter((r): r is Extract<Reply, { type: "insheader" }> =>
      r.type === "insheader" && r.name === name
    )
    .map((r) => (typeof r.value === "string" ? r.value : latin1(r.value)).replace(/\n\t/g, " "));
}

/** A whole normal transaction each way: an outbound message signed, an inbound one verified. */
async function servesNormally(w: World, tag: string): Promise<void> {
  const mta = await RawMta.open(w.dkimd);
  try {
    const out = await run(
      mta,
      steps(message(`alice@${OURS}`, `out ${tag}`, "Hi.\r\n"), "127.0.0.1", `O${tag}`),
    );
    assert.equal(out.at(-1)?.type, "accept", tag);
    assert.equal(insertedText(out, "DKIM-Signature").length, 1, tag);
    await mta.send({ type: "quit_nc" });
    const inbound = await signed(message(`carol@${SENDER}`, `in ${tag}`, "Hello.\r\n"), "good");
    const got = await run(mta, steps(inbound, "192.0.2.1", `I${tag}`));
    assert.match(insertedText(got, "Authentication-Results")[0], /dkim=pass/, tag);
  } finally {
    mta.close();
  }
}

function assertNoInternalError(d: DkimdProcess): void {
  assert.doesNotMatch(d.log(), /Internal error|internal error|Uncaught|panicked/i);
}

Deno.test("MTA faults: a disconnect at every protocol step leaves dkimd serving", async () => {
  const w = await world();
  try {
    const body = `${"line of body text\r\n".repeat(3000)}`;
    const cases = [
      { path: "signing", list: steps(message(`alice@${OURS}`, "cut", body), "127.0.0.1", "S") },
      {
        path: "verifying",
        list: steps(
          await signed(message(`carol@${SENDER}`, "cut", body), "slow"),
          "192.0.2.1",
          "V",
        ),
      },
    ];
    const cuts: string[] = [];
    for (const { path, list } of cases) {
      // Right after OPTNEG, and right after sending each step, before any answer to it (after
      // EOM: before its reply); the filter's work is in flight for many of these.
      for (let k = 0; k <= list.length; k++) {
        const mta = await RawMta.open(w.dkimd);
        try {
          if (k > 0) {
            await run(mta, list.slice(0, k - 1));
            await mta.send(list[k - 1].command);
          }
        } finally {
          mta.close();
        }
        cuts.push(`${path}: after ${k === 0 ? "OPTNEG" : list[k - 1].name}`);
      }
      // In the middle of the first BODY frame.
      const mta = await RawMta.open(w.dkimd);
      const firstBody = list.findIndex((s) => s.name === "BODY");
      await run(mta, list.slice(0, firstBody));
      const frame = encodeCommand(list[firstBody].command);
      await mta.writeBytes(frame.subarray(0, frame.length >> 1));
      mta.close();
      cuts.push(`${path}: inside a BODY frame`);
    }
    assert.ok(cuts.length >= 2 * 14, cuts.join("\n"));
    await until(
      "every connection to be freed",
      async () => (await openConnections(w.metricsPort)) === 0,
    );
    await servesNormally(w, "after-cuts");
    assertNoInternalError(w.dkimd);
  } finally {
    await w.close();
  }
});

Deno.test("MTA faults: ABORT in the middle of a body, then the next message on the connection", async () => {
  const w = await world();
  try {
    const mta = await RawMta.open(w.dkimd);
    try {
      const body = "to be aborted\r\n".repeat(5000);
      // Signing: abort after the first body chunk; the next message is signed on its own bytes.
      const out = steps(message(`alice@${OURS}`, "aborted", body), "127.0.0.1", "A1");
      await run(mta, out.slice(0, out.findIndex((s) => s.name === "BODY") + 1));
      await mta.send({ type: "abort" });
      const next = message(`alice@${OURS}`, "after abort", "The real one.\r\n");
      const replies = await run(mta, steps(next, "127.0.0.1", "A2").slice(1));
      const sig = replies.find((r) => r.type === "insheader" && r.name === "DKIM-Signature");
      assert.ok(sig?.type === "insheader", JSON.stringify(replies));
      // The value as the MTA writes it: its bare LF folds become CRLF on the wire.
      const value = latin1(sig.value as Uint8Array).replaceAll("\n", "\r\n");
      const delivered = concat([fromLatin1(`DKIM-Signature:${value}`), CRLF, next]);
      const [v] = await verifyMessage(delivered, {
        resolver: { resolveTxt: () => Promise.resolve([recordFor(KEY)]) },
      });
      assert.equal(v.result, "pass", v.reason ?? "");

      // Verifying: abort with the key lookup still in flight; the next message passes alone.
      await mta.send({ type: "quit_nc" });
      const inbound = steps(
        await signed(message(`carol@${SENDER}`, "aborted in", body), "slow"),
        "192.0.2.1",
        "A3",
      );
      await run(mta, inbound.slice(0, inbound.findIndex((s) => s.name === "BODY") + 1));
      await mta.send({ type: "abort" });
      const good = await signed(message(`carol@${SENDER}`, "after abort in", "Hi.\r\n"), "good");
      const got = await run(mta, steps(good, "192.0.2.1", "A4").slice(1));
      const [ar] = insertedText(got, "Authentication-Results");
      assert.match(ar, /^ ?mx\.test; dkim=pass \(2048-bit key\) header\.d=sender\.example/);
      assert.equal(ar.match(/dkim=/g)?.length, 1, ar);
    } finally {
      mta.close();
    }
    assertNoInternalError(w.dkimd);
  } finally {
    await w.close();
  }
});

Deno.test("MTA faults: MilterIdleTimeout frees connections held by silent and trickling senders", async () => {
  const w = await world("MilterIdleTimeout 1\n");
  try {
    // Silent after CONNECT.
    const silent = await RawMta.open(w.dkimd);
    await run(silent, steps(message(`a@${SENDER}`, "s", "x\r\n"), "192.0.2.1", "T1").slice(0, 1));
    // Stalled in the middle of a frame.
    const stalled = await RawMta.open(w.dkimd);
    const frame = encodeCommand({
      type: "connect",
      hostname: "h",
      family: "inet",
      port: 1,
      address: "192.0.2.2",
    });
    await stalled.writeBytes(frame.subarray(0, 7));
    // Trickling a 200-byte header frame one byte per 100 ms: each read comes within the idle
    // limit, but the frame does not.
    const trickle = await RawMta.open(w.dkimd);
    await run(trickle, steps(message(`a@${SENDER}`, "t", "x\r\n"), "192.0.2.1", "T3").slice(0, 4));
    const slow = encodeCommand({
      type: "header",
      name: "X-Slow",
      value: fromLatin1("z".repeat(200)),
    });
    let trickling = true;
    const writer = (async () => {
      for (let i = 0; i < slow.length && trickling; i++) {
        try {
          await trickle.writeBytes(slow.subarray(i, i + 1));
        } catch {
          return; // dkimd closed it
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    // The silent and the trickling sender's sessions are open (the stalled one never got one).
    await until("two sessions", async () => (await openConnections(w.metricsPort)) >= 2);
    try {
      for (
        const [mta, what] of [[silent, "silent"], [stalled, "stalled"], [
          trickle,
          "trickling",
        ]] as const
      ) {
        assert.equal(await mta.closedByPeer(), true, what);
      }
    } finally {
      trickling = false;
      await writer;
      for (const m of [silent, stalled, trickle]) m.close();
    }
    await w.dkimd.waitForLog(/No data from the MTA for MilterIdleTimeout \(1 s\); closing/);
    await w.dkimd.waitForLog(/Frame incomplete after MilterIdleTimeout \(1 s\); closing/);
    assert.ok(
      (w.dkimd.log().match(/Frame incomplete after MilterIdleTimeout/g) ?? []).length >= 2,
      "both the stalled and the trickling frame were cut",
    );
    await until(
      "every connection to be freed",
      async () => (await openConnections(w.metricsPort)) === 0,
    );
    await servesNormally(w, "after-idle");
    assertNoInternalError(w.dkimd);
  } finally {
    await w.close();
  }
});

/**
 * Connections opened at once: 3000, or fewer where this process may not open that many
 * descriptors (Deno raises its soft limit to the hard one; half is left for everything else).
 */
const FLOOD = Math.min(3000, Math.floor(openFileLimit() / 2));

function openFileLimit(): number {
  const limits = Deno.readTextFileSync("/proc/self/limits");
  const soft = /^Max open files\s+(\d+|unlimited)/m.exec(limits)?.[1];
  return soft === undefined || soft === "unlimited" ? Infinity : Number(soft);
}

/**
 * The flood's dkimd listens on ::1 and the flood connects to it from ::1 (the source the system
 * picks for ::1): its thousands of ephemeral ports are taken on ::1, not on 127.0.0.1, where tests
 * running beside this one bind the "free" ports they picked. (Tests use only 127.0.0.1 and ::1.)
 */
const FLOOD_HOST = "::1";

const OPTNEG = encodeCommand({
  type: "optneg",
  version: SMFI_PROT_VERSION,
  actions: SMFI_CURR_ACTS,
  protocol: SMFI_CURR_PROT,
});

/**
 * Opens a TCP connection to [::1]:`port` and sends OPTNEG at once, as an MTA does; `onClosed`
 * runs when the peer ends it. Speaking matters: when a burst overflows the listen queue the
 * kernel drops some handshakes' last ACK, and such a connection learns it is gone (a reset) only
 * once it sends.
 */
function floodConnection(port: number, onClosed: () => void): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ host: FLOOD_HOST, port });
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.removeListener("error", reject);
      socket.on("error", () => {}); // a reset is a close like any other
      socket.write(OPTNEG);
      resolve(socket);
    });
    socket.once("close", onClosed);
  });
}

Deno.test("MTA faults: thousands of connections at once meet MilterMaxConnections; dkimd stays up and serves", async () => {
  const w = await world("MilterMaxConnections 100\n", FLOOD_HOST);
  assert.equal(w.dkimd.socket, `inet6:${w.dkimd.port}@[::1]`);
  const opened: net.Socket[] = [];
  let closed = 0;
  let counting = true;
  try {
    const attempts = await Promise.allSettled(
      Array.from({ length: FLOOD }, () =>
        floodConnection(w.dkimd.port, () => {
          if (counting) closed++;
        })),
    );
    for (const a of attempts) if (a.status === "fulfilled") opened.push(a.value);
    // Every connection was made (the kernel accepts before dkimd decides); dkimd closes those
    // over the limit at once.
    assert.equal(opened.length, FLOOD);
    // Those over the limit are closed by dkimd; the 100 it took answer OPTNEG and wait.
    const deadline = Date.now() + WAIT_MS;
    while (closed < FLOOD - 100) {
      if (Date.now() > deadline) throw new Error(`only ${closed} of ${FLOOD - 100} refused`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(
      closed,
      FLOOD - 100,
      "exactly the connections over MilterMaxConnections are closed",
    );
    await w.dkimd.waitForLog(/MilterMaxConnections \(100\) reached: refusing connection/);
    // One line for the first refusal of a burst, then one count per second: not one per refusal.
    const lines = w.dkimd.log().match(/MilterMaxConnections \(100\) reached/g) ?? [];
    assert.ok(lines.length < 30, `${lines.length} log lines for one burst`);
    counting = false;
    await Promise.all(
      opened.splice(0).map((socket) =>
        new Promise<void>((resolve) => {
          if (socket.destroyed) return resolve();
          socket.once("close", () => resolve());
          socket.destroy();
        })
      ),
    );
    let served = false;
    while (!served) {
      // The server counts a closed connection out once it has read its end; retry until then.
      try {
        await servesNormally(w, "after-flood");
        served = true;
      } catch (e) {
        if (Date.now() > deadline + WAIT_MS) throw e;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    assert.equal(
      await Promise.race([w.dkimd.status.then(() => "exited"), Promise.resolve("running")]),
      "running",
    );
    assertNoInternalError(w.dkimd);
  } finally {
    for (const socket of opened) socket.destroy();
    await w.close();
  }
});

Deno.test("MTA faults: SIGTERM gives a stalled transaction MilterShutdownTimeout, then exits 0", async () => {
  const w = await world("MilterShutdownTimeout 1\n");
  try {
    // A transaction stopped in the middle of its body: shutdown must wait for it, but not for
    // ever (the default is 15 s).
    const stalled = await RawMta.open(w.dkimd);
    const list = steps(message(`a@${OURS}`, "stalled", "x\r\ny\r\n"), "127.0.0.1", "S1");
    await run(stalled, list.slice(0, list.length - 2));
    await until("the session", async () => (await openConnections(w.metricsPort)) >= 1);
    const started = performance.now();
    const code = await w.dkimd.stop();
    const seconds = (performance.now() - started) / 1000;
    stalled.close();
    assert.equal(code, 0, w.dkimd.log());
    assert.match(w.dkimd.log(), /Shutdown grace of 1000 ms over: closing 1 connection/);
    // Well under the default of 15 s (which the 20 s SIGKILL of the helper would also allow).
    assert.ok(seconds < 10, `stopped after ${seconds.toFixed(1)} s`);
  } finally {
    await w.close();
  }
});
