// Process faults behind a real Postfix, under load: dkimd killed with SIGKILL in the middle of a
// stream of messages (alone, and as the worker of its AutoRestart supervisor) loses none of them
// with Postfix's milter_default_action = accept; and reloads (SIGUSR1) during a stream fail no
// transaction even with milter_default_action = tempfail, which would show any failure as a 4xx.
import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { importPrivateKey } from "../../lib/crypto/private_key.ts";
import { splitMessage } from "../../lib/dkim/header.ts";
import { verifyMessage } from "../../lib/dkim/verify.ts";
import { KEYS_DIR, recordFor } from "../helpers/dkim_fixtures.ts";
import { type DkimdProcess, startDkimd } from "../helpers/dkimd_process.ts";
import { type PostfixInstance, startPostfix } from "../helpers/postfix.ts";
import type { ReceivedMessage } from "../helpers/smtp.ts";

const DOMAIN = "example.com";
/** Messages per run, sent by SENDERS concurrent SMTP clients. */
const MESSAGES = 60;
const SENDERS = 4;
/** Bounds each wait for delivery, a log line or a restart; a healthy run needs a few seconds. */
const WAIT_MS = 30_000;

const PEM = await Deno.readTextFile(new URL("rsa2048_pkcs8.pem", KEYS_DIR));
const RECORD = recordFor(await importPrivateKey(PEM, "rsa2048_pkcs8.pem"));

interface Run {
  readonly dir: string;
  readonly dkimd: DkimdProcess;
  readonly postfix: PostfixInstance;
  close(): Promise<void>;
}

async function setup(defaultAction: "accept" | "tempfail", extra = ""): Promise<Run> {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/rsa.private`, PEM, { mode: 0o600 });
  await Deno.writeTextFile(`${dir}/key.table`, `rsa ${DOMAIN}:rsa:${dir}/rsa.private\n`);
  await Deno.writeTextFile(`${dir}/signing.table`, `*@${DOMAIN} rsa\n`);
  const dkimd = await startDkimd(
    dir,
    (socket) =>
      `Mode sv\nSocket ${socket}\nSyslog no\nBackground no\nSyslogSuccess yes\n` +
      `Canonicalization relaxed/relaxed\nKeyTable ${dir}/key.table\n` +
      `SigningTable refile:${dir}/signing.table\n${extra}`,
  );
  let postfix: PostfixInstance;
  try {
    postfix = await startPostfix({
      smtpdMilters: `inet:127.0.0.1:${dkimd.port}`,
      milterDefaultAction: defaultAction,
    });
  } catch (e) {
    await dkimd.stop();
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
  return {
    dir,
    dkimd,
    postfix,
    async close() {
      await postfix.stop();
      await dkimd.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function message(n: number): Uint8Array {
  return fromLatin1(
    `From: Alice <alice@${DOMAIN}>\r\nTo: Bob <bob@example.org>\r\nSubject: load ${n}\r\n` +
      `Date: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-ID: <load${n}@example.com>\r\n\r\n` +
      `${`Message ${n}, a line of load.\r\n`.repeat(200)}`,
  );
}

/**
 * Sends MESSAGES messages over SMTP from SENDERS concurrent clients; `during` runs once, after
 * `after` messages were accepted. Resolves to the SMTP reply codes by message number.
 */
async function load(
  postfix: PostfixInstance,
  after: number,
  during: () => Promise<void>,
): Promise<number[]> {
  const codes: number[] = new Array(MESSAGES);
  let next = 0;
  let accepted = 0;
  let fault: Promise<void> | undefined;
  const sender = async () => {
    while (next < MESSAGES) {
      const n = next++;
      const r = await postfix.sendSmtp({
        from: `alice@${DOMAIN}`,
        to: "bob@example.org",
        data: message(n),
      });
      codes[n] = r.reply.code;
      if (r.reply.code === 250 && ++accepted === after) fault = during();
    }
  };
  await Promise.all(Array.from({ length: SENDERS }, sender));
  await fault;
  return codes;
}

function subject(m: ReceivedMessage): string {
  return /^Subject: (.*)$/m.exec(latin1(m.data))?.[1] ?? "";
}

function isSigned(m: ReceivedMessage): boolean {
  return splitMessage(m.data).fields.some((f) => f.name.toLowerCase() === "dkim-signature");
}

async function verifies(m: ReceivedMessage): Promise<boolean> {
  const verdicts = await verifyMessage(m.data, {
    resolver: { resolveTxt: () => Promise.resolve([RECORD]) },
  });
  return verdicts.length > 0 && verdicts.every((v) => v.result === "pass");
}

/** The pids of `parent`'s children, from /proc. */
async function childrenOf(parent: number): Promise<number[]> {
  const out: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
      // Field 4, after the parenthesised command name, is the parent pid.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === parent) out.push(Number(entry.name));
    } catch {
      // The process ended while the directory was read.
    }
  }
  return out;
}

async function until<T>(what: string, get: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await get();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

Deno.test("SIGKILL under load behind Postfix (milter_default_action = accept): no message lost", async () => {
  const run = await setup("accept");
  try {
    const codes = await load(run.postfix, 15, async () => {
      run.dkimd.signal("SIGKILL");
      await run.dkimd.status;
    });
    assert.deepEqual(codes.filter((c) => c !== 250), [], `SMTP codes: ${codes.join(",")}`);
    const delivered = await run.postfix.waitForMessages(MESSAGES, WAIT_MS);
    assert.equal(delivered.length, MESSAGES);
    assert.deepEqual(
      new Set(delivered.map(subject)),
      new Set(Array.from({ length: MESSAGES }, (_, n) => `load ${n}`)),
    );
    const signed = delivered.filter(isSigned);
    // Signed before the kill, unsigned (not lost) after it.
    assert.ok(signed.length >= 15 && signed.length < MESSAGES, `${signed.length} signed`);
    for (const m of signed) assert.ok(await verifies(m), subject(m));
  } finally {
    await run.close();
  }
});

Deno.test("SIGKILL of the worker under load: none lost, the supervisor restarts it and signing resumes", async () => {
  const run = await setup("accept", "AutoRestart yes\nAutoRestartRate 10/1m\n");
  try {
    const [worker] = await until("the worker", async () => {
      const kids = await childrenOf(run.dkimd.pid);
      return kids.length === 1 ? kids : undefined;
    });
    let restarted = 0;
    const codes = await load(run.postfix, 15, async () => {
      Deno.kill(worker, "SIGKILL");
      restarted = await until("a new worker", async () => {
        const kids = await childrenOf(run.dkimd.pid);
        return kids.length === 1 && kids[0] !== worker ? kids[0] : undefined;
      });
      await run.dkimd.waitForLog(/listening on[\s\S]*listening on/, WAIT_MS);
    });
    assert.ok(restarted > 0);
    assert.deepEqual(codes.filter((c) => c !== 250), [], `SMTP codes: ${codes.join(",")}`);
    const delivered = await run.postfix.waitForMessages(MESSAGES, WAIT_MS);
    assert.equal(new Set(delivered.map(subject)).size, MESSAGES);
    const signed = delivered.filter(isSigned);
    for (const m of signed) assert.ok(await verifies(m), subject(m));
    // Signing resumes once the new worker listens: a message sent now is signed.
    const r = await run.postfix.sendSmtp({
      from: `alice@${DOMAIN}`,
      to: "bob@example.org",
      data: message(MESSAGES),
    });
    assert.equal(r.reply.code, 250);
    const all = await run.postfix.waitForMessages(MESSAGES + 1, WAIT_MS);
    const last = all.find((m) => subject(m) === `load ${MESSAGES}`)!;
    assert.ok(isSigned(last) && await verifies(last));
    assert.match(run.dkimd.log(), /restart/i);
  } finally {
    await run.close();
  }
});

Deno.test("reload (SIGUSR1) under load behind Postfix (milter_default_action = tempfail): no transaction fails", async () => {
  const run = await setup("tempfail");
  let reloads = 0;
  let reloading = true;
  try {
    const signals = (async () => {
      while (reloading) {
        run.dkimd.signal("SIGUSR1");
        reloads++;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    let codes: number[];
    try {
      codes = await load(run.postfix, 1, () => Promise.resolve());
    } finally {
      reloading = false;
      await signals;
    }
    assert.deepEqual(codes.filter((c) => c !== 250), [], `SMTP codes: ${codes.join(",")}`);
    const delivered = await run.postfix.waitForMessages(MESSAGES, WAIT_MS);
    assert.equal(new Set(delivered.map(subject)).size, MESSAGES);
    for (const m of delivered) {
      assert.ok(isSigned(m), `${subject(m)} unsigned`);
      assert.ok(await verifies(m), `${subject(m)} does not verify`);
    }
    const done = (run.dkimd.log().match(/configuration reloaded/g) ?? []).length;
    assert.ok(reloads >= 5 && done >= 5, `${reloads} signals, ${done} reloads`);
    assert.doesNotMatch(run.dkimd.log(), /reload failed|internal error/i);
  } finally {
    await run.close();
  }
});
