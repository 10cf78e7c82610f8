/**
 * The syslog path of the logger over a real unix datagram socket standing in for /dev/log.
 * Deno's datagram API needs --unstable-net; when this file runs without it (as `deno task test`
 * runs it), one test runs the file again with the flag and checks that every test passed.
 */
import assert from "node:assert/strict";
import { createLogger } from "../../lib/ops/log.ts";
import { SERVICE_DENO_FLAGS } from "../../lib/ops/self_command.ts";
import { dkimdEnv } from "../helpers/dkimd_env.ts";
import { rerunUnderUnstableNet } from "../helpers/unstable_net.ts";

type Datagram = Deno.DatagramConn;
const listenDatagram = (Deno as { listenDatagram?: typeof Deno.listenDatagram }).listenDatagram;

const SETTINGS = { syslog: true, syslogFacility: "mail", syslogName: "dkimd" } as const;

function closeQuietly(server: Datagram): void {
  try {
    server.close();
  } catch {
    // Closed already (by a test, or by receive() on timeout).
  }
}

async function receive(server: Datagram, count: number): Promise<string[]> {
  const out: string[] = [];
  const timer = setTimeout(() => closeQuietly(server), 10_000);
  try {
    for (let i = 0; i < count; i++) {
      const [data] = await server.receive();
      out.push(new TextDecoder().decode(data));
    }
  } finally {
    clearTimeout(timer);
  }
  return out;
}

rerunUnderUnstableNet(
  "createLogger() syslog tests pass under --unstable-net",
  import.meta.url,
  /ok \| [3-9] passed \| 0 failed/,
);
if (listenDatagram) {
  Deno.test("createLogger() sends RFC 3164 datagrams with facility, tag and PID", async () => {
    const dir = await Deno.makeTempDir();
    const server = listenDatagram({ transport: "unixpacket", path: `${dir}/log` });
    try {
      const log = await createLogger({ ...SETTINGS, syslogFacility: "local3" }, {
        env: () => undefined,
        devLog: `${dir}/log`,
        pid: 25507,
        now: () => new Date(2018, 11, 18, 10, 39, 7),
        stderr: () => assert.fail("nothing goes to standard error"),
      });
      assert.equal(log.destination, "syslog");
      log.info("741FA53F63: DKIM-Signature field added (s=dkim, d=datahunter.org)");
      log.warn("342661533: mail-ot1-f43.google.com [209.85.210.43] not internal");
      log.error("key -----BEGIN PRIVATE KEY-----\nMC4CAQAw\n-----END PRIVATE KEY-----");
      log.debug("dropped: debug is off");
      log.notice("OpenDKIM Filter: mi_stop=1");
      await log.close();
      assert.deepEqual(await receive(server, 4), [
        "<158>Dec 18 10:39:07 dkimd[25507]: 741FA53F63: DKIM-Signature field added (s=dkim, d=datahunter.org)",
        "<156>Dec 18 10:39:07 dkimd[25507]: 342661533: mail-ot1-f43.google.com [209.85.210.43] not internal",
        "<155>Dec 18 10:39:07 dkimd[25507]: key [PEM block redacted]",
        "<157>Dec 18 10:39:07 dkimd[25507]: OpenDKIM Filter: mi_stop=1",
      ]);
    } finally {
      closeQuietly(server);
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test("createLogger() keeps the order of many lines", async () => {
    const dir = await Deno.makeTempDir();
    const server = listenDatagram({ transport: "unixpacket", path: `${dir}/log` });
    try {
      const log = await createLogger(SETTINGS, { env: () => undefined, devLog: `${dir}/log` });
      const got = receive(server, 200);
      for (let i = 0; i < 200; i++) log.info(`line ${i}`);
      const lines = await got;
      await log.close();
      assert.deepEqual(
        lines.map((l) => l.replace(/^.*\]: /, "")),
        [...Array(200).keys()].map((i) => `line ${i}`),
      );
      assert.ok(lines.every((l) => l.startsWith("<22>")));
    } finally {
      closeQuietly(server);
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test("createLogger() writes to standard error while syslog is gone", async () => {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/log`;
    const server = listenDatagram({ transport: "unixpacket", path });
    const err: string[] = [];
    try {
      const log = await createLogger(SETTINGS, {
        env: () => undefined,
        devLog: path,
        pid: 8,
        stderr: (b) => err.push(new TextDecoder().decode(b)),
      });
      log.info("before");
      assert.deepEqual((await receive(server, 1)).map((l) => l.replace(/^.*\]: /, "")), ["before"]);
      server.close();
      await Deno.remove(path);
      log.info("while gone 1");
      log.info("while gone 2");
      await log.close();
      assert.equal(err.length, 3, err.join(""));
      assert.match(err[0], /^dkimd\[8\]: warning: Cannot send to syslog at ".*"/);
      assert.deepEqual(err.slice(1), ["dkimd[8]: while gone 1\n", "dkimd[8]: while gone 2\n"]);
    } finally {
      closeQuietly(server);
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test("createLogger() says once that syslog works again", async () => {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/log`;
    const err: string[] = [];
    let server = listenDatagram({ transport: "unixpacket", path });
    try {
      const log = await createLogger(SETTINGS, {
        env: () => undefined,
        devLog: path,
        pid: 8,
        stderr: (b) => err.push(new TextDecoder().decode(b)),
      });
      server.close();
      await Deno.remove(path);
      log.info("lost");
      // Wait for the failed send to be written to standard error: a listener made before that
      // would take "lost". Bounded only against a hang; a busy machine may need seconds.
      for (let i = 0; i < 2000 && err.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(err.length, 2, err.join(""));
      server = listenDatagram({ transport: "unixpacket", path });
      log.info("back");
      const [line] = await receive(server, 1);
      await log.close();
      assert.match(line, /dkimd\[8\]: back$/);
      assert.equal(err.length, 3, err.join(""));
      assert.equal(err[1], "dkimd[8]: lost\n");
      assert.match(err[2], /works again/);
    } finally {
      closeQuietly(server);
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test("createLogger() sends to syslog under the service's Deno flags, not only under -A", async () => {
    // `deno task start` runs dkimd with SERVICE_DENO_FLAGS; the tests above run with -A, which
    // let an empty bind path (autobind) through that the service's flags refuse.
    const dir = await Deno.makeTempDir();
    const server = listenDatagram({ transport: "unixpacket", path: `${dir}/log` });
    try {
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          ...SERVICE_DENO_FLAGS,
          `--config=${new URL("../../deno.json", import.meta.url).pathname}`,
          "--quiet",
          new URL("../helpers/syslog_sender.ts", import.meta.url).pathname,
          `${dir}/log`,
          "signed under the service's flags",
        ],
        env: dkimdEnv({ NO_COLOR: "1" }),
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      });
      // The child sends before it exits (close() flushes); the datagram waits in the socket.
      const out = await child.output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      assert.equal(stderr, "");
      assert.equal(new TextDecoder().decode(out.stdout), "syslog\n");
      const [line] = await receive(server, 1);
      // mail.notice: <2 * 8 + 5>.
      assert.match(
        line,
        /^<21>\w{3} [ \d]\d \d\d:\d\d:\d\d dkimd\[\d+\]: signed under the service's flags$/,
      );
      // The sender's name is abstract: nothing but the stand-in for /dev/log is left.
      const names = [];
      for await (const e of Deno.readDir(dir)) names.push(e.name);
      assert.deepEqual(names, ["log"]);
    } finally {
      closeQuietly(server);
      await Deno.remove(dir, { recursive: true });
    }
  });
}
