/**
 * A full key rotation while dkimd signs a continuous stream of mail: generate, publish, prove,
 * sign with both keys (RotationOverlap), activate, retire (revoke) and delete, against knot as
 * primary and secondary, with two MTA connections sending messages the whole time (the
 * project's milter client, a few messages per connection as Postfix's smtpd does).
 *
 * Checked: no message is left unsigned or refused; every signature verifies with dkimpy
 * against DNS as it was when it was made. DNS changes only inside a `dkimd rotate` run, so
 * the messages signed since the last check are verified, against both knot servers, before
 * each run; the runs that take a record away (revoke, delete) come after the activation, and
 * messages signed from the activation's reload on must carry the new selector only, so none
 * signed in those runs needs a record they remove. Messages signed with the old key are kept
 * and checked again after the revocation and after the deletion: dkimpy then fails them, as
 * RFC 6376 §3.6.1 says a verifier must (no key, or a revoked one); that is the expected end of
 * old mail, asserted as such, not counted as a failure of the rotation.
 *
 * dkimd runs on the real clock; `dkimd rotate` runs as users run it (a child process with the
 * start task's flags), its clock moved by libfaketime for the overlap, the retirement (the
 * record's 300 s TTL) and the deletion, so no test waits minutes. It signals dkimd (SIGUSR1
 * through the PidFile) as it would in service.
 */
import assert from "node:assert/strict";
import { generateSigningKey } from "../../lib/crypto/private_key.ts";
import { fromLatin1, toBase64 } from "../../lib/bytes.ts";
import { ROTATE_EXIT } from "../../lib/cli/rotate.ts";
import { SERVICE_DENO_FLAGS } from "../../lib/ops/self_command.ts";
import { dkimdEnv } from "../helpers/dkimd_env.ts";
import { readRotationState } from "../../lib/rotate/state_file.ts";
import { MilterClient } from "../../lib/milter/client.ts";
import { startKnotZone } from "../helpers/knot_servers.ts";
import { type DkimdProcess, startDkimd } from "../helpers/dkimd_process.ts";
import { type PeerVerdict, verifyAllWithDkimpy } from "../helpers/peers.ts";
import { writeRotationFiles } from "../helpers/rotation_files.ts";

const ZONE = "example.com";
const SECRET = toBase64(crypto.getRandomValues(new Uint8Array(32)));
/** Concurrent MTA connections, each sending messages back to back. */
const CONNECTIONS = 2;
/** Messages per connection before it quits and another opens, as smtpd's sessions. */
const MESSAGES_PER_CONNECTION = 5;
/** Milliseconds between two messages of a connection: a steady stream, not a CPU hog. */
const PAUSE_MS = 10;
/** RotationOverlap and RotationDeleteAfter, seconds; retirement waits for the 300 s TTL. */
const OVERLAP = 60;
const DELETE_AFTER = 400;
/**
 * `dkimd rotate`'s clock in each phase (libfaketime offsets from the real clock): the overlap
 * starts, it ends (OVERLAP later), the old record is revoked (the TTL after the switch), then
 * deleted (DELETE_AFTER after it); each within TSIG's 300 s fudge of knot's clock.
 */
const CLOCKS = {
  overlap: "-290s",
  activate: "-225s",
  retire: "+80s",
  delete: "+180s",
} as const;
/** Debian's libfaketime, as the faketime program preloads it. */
const FAKETIME_LIBRARY = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const DENO_CONFIG = new URL("../../deno.json", import.meta.url).pathname;

/** Runs `dkimd rotate -x CONF ARGS` as users run it, at the phase's clock. */
async function rotateCommand(conf: string, clock: string, args: readonly string[]) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...SERVICE_DENO_FLAGS,
      `--config=${DENO_CONFIG}`,
      "--quiet",
      MAIN,
      "rotate",
      "-x",
      conf,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: dkimdEnv({ NO_COLOR: "1", LD_PRELOAD: FAKETIME_LIBRARY, FAKETIME: clock }),
  }).output();
  const d = new TextDecoder();
  return { code: r.code, out: d.decode(r.stdout) + d.decode(r.stderr) };
}

/** One message as signed, with when and what signed it. */
interface Signed {
  readonly n: number;
  readonly bytes: Uint8Array;
  readonly selectors: readonly string[];
  /** The rotate phase the test was in when the message was sent. */
  readonly phase: string;
  /**
   * The phase its connection was opened in: what a phase asserts of its selectors counts only
   * the messages of its own connections, none that was under way at the reload.
   */
  readonly connectionPhase: string;
}

/** Sends messages over `CONNECTIONS` connections until `stop` is set; collects each result. */
function startLoad(dkimd: DkimdProcess, sink: (m: Signed | Error) => void, phase: () => string) {
  let stopped = false;
  let n = 0;
  const open: (string | undefined)[] = [];
  const worker = async (w: number) => {
    while (!stopped) {
      const connectionPhase = phase();
      open[w] = connectionPhase;
      const client = await MilterClient.connect({
        kind: "inet",
        host: "127.0.0.1",
        port: dkimd.port,
      });
      try {
        for (let i = 0; i < MESSAGES_PER_CONNECTION && !stopped; i++) {
          const id = ++n;
          const at = phase();
          const headers: [string, string][] = [
            ["From", ` Sender ${w} <s${w}@example.com>`],
            ["To", " r@example.org"],
            ["Subject", ` load ${id}`],
            ["Message-ID", ` <load-${id}@example.com>`],
            ["Date", ` ${new Date().toUTCString()}`],
          ];
          const body = `message ${id}\r\nduring ${at}\r\n`;
          const r = await client.sendMessage({
            ...(i === 0 ? { connect: { hostname: "localhost", address: "127.0.0.1" } } : {}),
            macros: { mail: { i: `Q${id}` } },
            from: `<s${w}@example.com>`,
            rcpts: ["<r@example.org>"],
            headers,
            body: fromLatin1(body),
          });
          if (r.final.type !== "accept" && r.final.type !== "continue") {
            sink(new Error(`message ${id} (${at}): dkimd answered ${r.final.type}`));
            continue;
          }
          const added = r.modifications
            .filter((m) => m.type === "insheader" && m.name === "DKIM-Signature")
            .map((m) =>
              new TextDecoder().decode((m as { value: Uint8Array }).value).replace(
                /\r?\n/g,
                "\r\n",
              )
            );
          sink({
            n: id,
            phase: at,
            connectionPhase,
            selectors: added.map((v) => /(?:^|[\s;])s=([^;\s]+)/.exec(v)?.[1] ?? "?"),
            bytes: new TextEncoder().encode(
              added.map((v) => `DKIM-Signature:${v}\r\n`).join("") +
                headers.map(([k, v]) => `${k}:${v}\r\n`).join("") + "\r\n" + body,
            ),
          });
          await client.abort();
          await new Promise((r) => setTimeout(r, PAUSE_MS));
        }
      } finally {
        client.close();
        open[w] = undefined;
      }
    }
  };
  const done = Promise.all(Array.from({ length: CONNECTIONS }, (_, w) => worker(w)));
  return {
    /** The phases the connections open now were opened in. */
    openPhases: () => open.filter((p) => p !== undefined),
    async stop() {
      stopped = true;
      await done;
    },
  };
}

Deno.test({
  name:
    "a full rotation (overlap, activate, revoke, delete) while dkimd signs a continuous stream: no message unsigned, each signature verifies with dkimpy against DNS as it was",
  fn: async () => {
    const oldKey = await generateSigningKey("rsa");
    const oldRecord = `v=DKIM1; k=rsa; p=${toBase64(oldKey.publicKey)}`;
    const dns = await startKnotZone({
      zone: ZONE,
      records: { "old._domainkey.example.com": [oldRecord] },
      key: { name: "dkimd-rotate", secret: SECRET },
      secondary: true,
    });
    const dir = await Deno.makeTempDir({ prefix: "dkimd-rotate-load-" });
    let dkimd: DkimdProcess | undefined;
    let load: ReturnType<typeof startLoad> | undefined;
    try {
      await writeRotationFiles(dir, ZONE, oldKey, SECRET);
      dkimd = await startDkimd(dir, (socket) =>
        [
          "Mode s",
          `Socket ${socket}`,
          "Syslog no",
          "Canonicalization relaxed/simple",
          `KeyTable file:${dir}/key.table`,
          `SigningTable refile:${dir}/signing.table`,
          "MultipleSignatures yes",
          `PidFile ${dir}/dkimd.pid`,
          `Nameservers ${dns.primary.nameserver}`,
          "DNSTimeout 2",
          `DNSUpdateKey ${dir}/update.key`,
          `DNSUpdateServer ${dns.primary.nameserver}`,
          `DNSProofServers ${dns.primary.nameserver},${dns.secondary!.nameserver}`,
          `RotationStateFile ${dir}/state/rotation.json`,
          "RotationKeyTypes rsa",
          `RotationOverlap ${OVERLAP}`,
          "RotationRetireAfter 0",
          `RotationDeleteAfter ${DELETE_AFTER}`,
          "",
        ].join("\n"));
      const conf = dkimd.config;

      let phase = "before";
      const pending: Signed[] = [];
      const all: Signed[] = [];
      const errors: Error[] = [];
      load = startLoad(dkimd, (m) => {
        if (m instanceof Error) errors.push(m);
        else {
          pending.push(m);
          all.push(m);
        }
      }, () => phase);
      const servers = [dns.primary.nameserver, dns.secondary!.nameserver];
      /** Verifies every message signed since the last check. */
      const checkPending = async (): Promise<void> => {
        assert.deepEqual(errors.map((e) => e.message), []);
        const batch = pending.splice(0);
        for (const m of batch) {
          assert.ok(m.selectors.length > 0, `message ${m.n} (${m.phase}) is not signed`);
        }
        for (const nameserver of servers) {
          const verdicts = await verifyAllWithDkimpy(batch.map((m) => m.bytes), { nameserver });
          verdicts.forEach((v: PeerVerdict[], i) => {
            const m = batch[i];
            assert.deepEqual(
              v.map((x) => `${x.selector} ${x.result}`).sort(),
              m.selectors.map((s) => `${s} pass`).sort(),
              `message ${m.n} (${m.phase}) at ${nameserver}: ${JSON.stringify(v)}`,
            );
          });
        }
      };
      /**
       * The selector sets of the messages sent during phase `name` (on connections opened
       * in it too, with `own`), verified first.
       */
      const signedIn = async (name: string, own = false): Promise<string[]> => {
        await checkPending();
        const of = all.filter((m) => m.phase === name && (!own || m.connectionPhase === name));
        assert.ok(of.length > 0, `no message sent in ${name}`);
        return [...new Set(of.map((m) => [...m.selectors].sort().join("+")))];
      };
      /**
       * Enters phase `name` once the last run is checked: waits until every connection opened
       * before it has ended (so none spans the reload), then for messages of its own.
       */
      const enter = async (name: string) => {
        await checkPending();
        phase = name;
        const deadline = Date.now() + 30_000;
        while (load!.openPhases().some((p) => p !== name)) {
          assert.ok(Date.now() < deadline, "a connection stayed open");
          await new Promise((r) => setTimeout(r, 20));
        }
        await more(6);
      };
      /** Waits until at least `count` more messages were signed. */
      const more = async (count: number) => {
        const target = all.length + count;
        const deadline = Date.now() + 30_000;
        while (all.length < target) {
          assert.ok(Date.now() < deadline, "the load stalled");
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      let reloads = 0;
      /**
       * Runs `dkimd rotate` at the moved clock, checking the messages signed before each run,
       * until it stops waiting for DNS; waits for dkimd's reload when it signalled one.
       */
      const rotate = async (name: keyof typeof CLOCKS, ...args: string[]) => {
        let out = "";
        const deadline = Date.now() + 30_000;
        for (let first = true;; first = false) {
          await more(4);
          await checkPending();
          phase = name;
          const r = await rotateCommand(conf, CLOCKS[name], first ? args : []);
          out += r.out;
          assert.ok(r.code === ROTATE_EXIT.ok || r.code === ROTATE_EXIT.waiting, out);
          if (r.code === ROTATE_EXIT.ok) break;
          assert.ok(Date.now() < deadline, `${name}: still waiting for DNS\n${out}`);
          await new Promise((r) => setTimeout(r, 200));
        }
        if (/sent SIGUSR1 to dkimd/.test(out)) {
          reloads++;
          await dkimd!.waitForLog(
            new RegExp(`(configuration reloaded[\\s\\S]*){${reloads}}`),
            20_000,
          );
        }
        return out;
      };

      // Before: the old key alone.
      await more(6);
      assert.deepEqual(await signedIn("before"), ["old"]);

      // Generate, publish, prove (the secondary follows by NOTIFY), then both keys sign.
      const started = await rotate("overlap", "--now");
      const [rotation] = (await readRotationState(`${dir}/state/rotation.json`)).rotations;
      const selector = rotation.newSelector;
      assert.match(started, /all 3 servers agree/);
      assert.match(started, new RegExp(`both "old" and "${selector}" sign now`));
      await enter("overlap (reloaded)");
      assert.deepEqual(await signedIn("overlap (reloaded)", true), [
        ["old", selector].sort().join("+"),
      ]);

      // The overlap over: the new key alone.
      const switched = await rotate("activate");
      assert.match(switched, new RegExp(`activated: .* now signs with "${selector}"`));
      await enter("activated (reloaded)");
      assert.deepEqual(await signedIn("activated (reloaded)", true), [selector]);
      // Old mail: the last signed with the old key alone, and the last of the overlap.
      const oldMail = [
        ...all.filter((m) => m.selectors.join("+") === "old").slice(-2),
        ...all.filter((m) => m.selectors.length === 2).slice(-2),
      ];
      assert.equal(oldMail.length, 4);

      // The record's TTL past the switch: revoked, proven revoked on both servers.
      const retired = await rotate("retire");
      assert.match(retired, /published the revoked record old\._domainkey\.example\.com/);
      assert.match(retired, /waiting until .* for the time to delete the old key/);
      await enter("retired");
      assert.deepEqual(await signedIn("retired"), [selector]);
      // The runs that revoked the old record signed nothing with the old key.
      assert.deepEqual(await signedIn("retire"), [selector]);
      // Mail signed with the old key now fails at the verifier: the key is revoked.
      for (const nameserver of servers) {
        const verdicts = await verifyAllWithDkimpy(oldMail.map((m) => m.bytes), { nameserver });
        for (const [i, v] of verdicts.entries()) {
          const old = v.find((x) => x.selector === "old");
          assert.equal(old?.result, "fail", JSON.stringify(v));
          // dkimpy's KeyFormatError on the empty p= (its permerror): "could not parse ... (b'')".
          assert.match(old!.detail, /could not parse RSA public key \(b''\)/, JSON.stringify(v));
          // During the overlap the same message carries the new key's signature too: it passes.
          const withNew = v.find((x) => x.selector === selector);
          if (oldMail[i].selectors.includes(selector)) assert.equal(withNew?.result, "pass");
        }
      }

      // RotationDeleteAfter past the switch: the old record and key file go.
      const deleted = await rotate("delete");
      assert.match(deleted, /deleted the old key file/);
      assert.match(deleted, new RegExp(`rotation to "${selector}" done`));
      await enter("done");
      await load.stop();
      load = undefined;
      assert.deepEqual(await signedIn("done"), [selector]);
      assert.deepEqual(await signedIn("delete"), [selector]);
      await assert.rejects(Deno.stat(`${dir}/keys/old.private`), Deno.errors.NotFound);
      const verdicts = await verifyAllWithDkimpy(oldMail.map((m) => m.bytes), {
        nameserver: dns.primary.nameserver,
      });
      for (const v of verdicts) {
        const old = v.find((x) => x.selector === "old");
        assert.equal(old?.result, "fail", JSON.stringify(v));
        assert.match(old!.detail, /missing public key/, JSON.stringify(v));
      }
      assert.ok(all.length >= 40, `only ${all.length} messages`);
    } finally {
      await load?.stop().catch(() => {});
      await dkimd?.stop();
      await Deno.remove(dir, { recursive: true });
      await dns.close();
    }
  },
});
