import assert from "node:assert/strict";
import {
  generateSigningKey,
  importPrivateKey,
  type SigningKey,
} from "../../lib/crypto/private_key.ts";
import { toBase64 } from "../../lib/bytes.ts";
import { parseNameserver } from "../../lib/dns/nameserver.ts";
import { StubResolver } from "../../lib/dns/stub.ts";
import { DnsError } from "../../lib/dns/resolver.ts";
import { sendUpdate } from "../../lib/dns/update.ts";
import { ROTATE_EXIT, runRotate } from "../../lib/cli/rotate.ts";
import { readRotationState } from "../../lib/rotate/state_file.ts";
import { type KnotZone, startKnotZone } from "../helpers/knot_servers.ts";
import { type DkimdProcess, freePort, startDkimd } from "../helpers/dkimd_process.ts";
import { runCli } from "../helpers/run_cli.ts";
import { MilterClient } from "../../lib/milter/client.ts";
import { fromLatin1 } from "../../lib/bytes.ts";

const ZONE = "example.com";
const SECRET = toBase64(crypto.getRandomValues(new Uint8Array(32)));
const T0 = Date.parse("2026-12-07T10:00:00Z");

interface Setup {
  readonly dns: KnotZone;
  /** dkimd serving with the configuration, when asked for. */
  readonly dkimd?: DkimdProcess;
  /** Its MetricsListen port. */
  readonly metricsPort: number;
  readonly dir: string;
  readonly oldKey: SigningKey;
  readonly conf: string;
  /** Runs `dkimd rotate ARGS` at `at` (ms); resolves its status and output lines. */
  run(at: number, ...args: string[]): Promise<{ status: number; out: string[]; err: string[] }>;
  /** The TXT records at `selector._domainkey.example.com` on `server` ([] for none). */
  txt(server: string, selector: string): Promise<string[]>;
}

async function withSetup(
  options: {
    updateKey?: "right" | "wrong" | "none";
    serve?: boolean;
    deleteAfter?: number;
    interval?: number;
    overlap?: number;
  },
  fn: (s: Setup) => Promise<void>,
) {
  const oldKey = await generateSigningKey("ed25519");
  const dns = await startKnotZone({
    zone: ZONE,
    records: {
      "old._domainkey.example.com": [`v=DKIM1; k=ed25519; p=${toBase64(oldKey.publicKey)}`],
    },
    key: { name: "dkimd-rotate", secret: SECRET },
    secondary: true,
  });
  const dir = await Deno.makeTempDir({ prefix: "dkimd-rotate-" });
  const metricsPort = freePort();
  let dkimd: DkimdProcess | undefined;
  try {
    await Deno.mkdir(`${dir}/keys`, { mode: 0o700 });
    await Deno.writeTextFile(`${dir}/keys/old.private`, await oldKey.toPem(), { mode: 0o600 });
    await Deno.writeTextFile(
      `${dir}/key.table`,
      `# rotated by dkimd rotate\nmain example.com:old:${dir}/keys/old.private\n`,
    );
    await Deno.writeTextFile(`${dir}/signing.table`, "*@example.com main\n");
    const secret = options.updateKey === "wrong"
      ? toBase64(crypto.getRandomValues(new Uint8Array(32)))
      : SECRET;
    await Deno.writeTextFile(
      `${dir}/update.key`,
      `key "dkimd-rotate" {\n\talgorithm hmac-sha256;\n\tsecret "${secret}";\n};\n`,
      { mode: 0o600 },
    );
    const lines = (socket: string) =>
      [
        "Mode sv",
        `Socket ${socket}`,
        "Syslog no",
        `KeyTable file:${dir}/key.table`,
        `SigningTable refile:${dir}/signing.table`,
        `Nameservers ${dns.primary.nameserver}`,
        "DNSTimeout 2",
        ...(options.updateKey === "none" ? [] : [`DNSUpdateKey ${dir}/update.key`]),
        `DNSUpdateServer ${dns.primary.nameserver}`,
        `DNSProofServers ${dns.primary.nameserver},${dns.secondary!.nameserver}`,
        `RotationStateFile ${dir}/state/rotation.json`,
        "RotationRetireAfter 0",
        `RotationDeleteAfter ${options.deleteAfter ?? 0}`,
        ...(options.interval ? [`RotationInterval ${options.interval}`] : []),
        ...(options.overlap
          ? [`RotationOverlap ${options.overlap}`, "MultipleSignatures yes"]
          : []),
        ...(options.serve
          ? [`PidFile ${dir}/dkimd.pid`, `MetricsListen 127.0.0.1:${metricsPort}`]
          : []),
        "",
      ].join("\n");
    let conf = `${dir}/opendkim.conf`;
    if (options.serve) {
      dkimd = await startDkimd(dir, lines);
      conf = dkimd.config;
    } else await Deno.writeTextFile(conf, lines("inet:8891@127.0.0.1"));
    const txt = async (server: string, selector: string) => {
      const resolver = new StubResolver({
        nameservers: [parseNameserver(server)],
        timeoutMs: 1000,
        attempts: 1,
      });
      try {
        return await resolver.resolveTxt(`${selector}._domainkey.${ZONE}`);
      } catch (e) {
        if (e instanceof DnsError && (e.code === "nxdomain" || e.code === "nodata")) return [];
        throw e;
      }
    };
    await fn({
      dns,
      metricsPort,
      ...(dkimd ? { dkimd } : {}),
      dir,
      oldKey,
      conf,
      txt,
      async run(at, ...args) {
        const out: string[] = [];
        const err: string[] = [];
        const status = await runRotate(["-x", conf, ...args], {
          now: () => at,
          out: (l) => out.push(l),
          err: (l) => err.push(l),
        });
        return { status, out, err };
      },
    });
  } finally {
    await dkimd?.stop();
    await Deno.remove(dir, { recursive: true });
    await dns.close();
  }
}

/**
 * The pause before running a rotate that is waiting for DNS again (a timer's next run): short,
 * as each run itself asks every server anew.
 */
const RERUN_PAUSE_MS = 100;

/**
 * Runs rotate at `at` until it stops answering 75 (waiting for DNS), at most 15 s; the last
 * status, with the output of every run.
 */
async function runUntilSettled(s: Setup, at: number) {
  const deadline = Date.now() + 15_000;
  const out: string[] = [];
  const err: string[] = [];
  for (;;) {
    const result = await s.run(at);
    out.push(...result.out);
    err.push(...result.err);
    if (result.status !== ROTATE_EXIT.waiting || Date.now() > deadline) {
      return { status: result.status, out, err };
    }
    await new Promise((r) => setTimeout(r, RERUN_PAUSE_MS));
  }
}

Deno.test("dkimd rotate: a full rotation through a lagging secondary, activation only once all serve the key", async () => {
  await withSetup({}, async (s) => {
    await s.dns.secondary!.control("zone-freeze", ZONE);
    const first = await s.run(T0, "--now");
    assert.equal(first.status, ROTATE_EXIT.waiting, [...first.out, ...first.err].join("\n"));
    assert.deepEqual(first.err, []);
    const selector = "202612-ed25519";
    assert.match(first.out.join("\n"), /rotation from "old" to "202612-ed25519" started/);
    assert.match(
      first.out.join("\n"),
      /published the record 202612-ed25519\._domainkey\.example\.com by DNS UPDATE/,
    );
    const newKeyFile = `${s.dir}/keys/${selector}.private`;
    assert.equal((await Deno.stat(newKeyFile)).mode! & 0o777, 0o600);
    const newKey = await importPrivateKey(await Deno.readFile(newKeyFile));
    assert.deepEqual(await s.txt(s.dns.primary.nameserver, selector), [
      `v=DKIM1; k=ed25519; p=${toBase64(newKey.publicKey)}`,
    ]);
    // The secondary lags: no activation, and a second run still waits.
    await new Promise((r) => setTimeout(r, 2000));
    const waiting = await s.run(T0 + 60_000);
    assert.equal(waiting.status, ROTATE_EXIT.waiting);
    assert.match(
      waiting.out.join("\n"),
      new RegExp(
        `waiting for 1 of 3 servers: ${
          s.dns.secondary!.nameserver
        } \\(authoritative\\) serves no such name`,
      ),
    );
    assert.match(await Deno.readTextFile(`${s.dir}/key.table`), /main example\.com:old:/);

    // The secondary catches up: the key is proven and activated; retirement waits for time.
    await s.dns.secondary!.control("zone-thaw", ZONE);
    const activated = await runUntilSettled(s, T0 + 120_000);
    assert.equal(activated.status, ROTATE_EXIT.ok, [...activated.out, ...activated.err].join("\n"));
    assert.match(activated.out.join("\n"), /all 3 servers agree/);
    assert.match(activated.out.join("\n"), /no PidFile: reload dkimd yourself/);
    assert.match(
      activated.out.join("\n"),
      /waiting until .* for the old key's signatures to expire/,
    );
    assert.equal(
      await Deno.readTextFile(`${s.dir}/key.table`),
      `# rotated by dkimd rotate\nmain example.com:${selector}:${newKeyFile}\n`,
    );
    const status = await s.run(T0 + 180_000, "--status");
    assert.match(
      status.out[0],
      /^main \(example\.com\): selector "202612-ed25519" \(ed25519, 0 days old\); rotating to "202612-ed25519", next step: retire; waits for the old key's signatures to expire/,
    );

    // After the record's TTL (300 s, SignatureTTL unset): revoke, prove, delete.
    const retired = await runUntilSettled(s, T0 + 120_000 + 301_000);
    assert.equal(retired.status, ROTATE_EXIT.ok, [...retired.out, ...retired.err].join("\n"));
    assert.match(
      retired.out.join("\n"),
      /published the revoked record old\._domainkey\.example\.com/,
    );
    assert.match(retired.out.join("\n"), /deleted the old key file/);
    assert.match(retired.out.join("\n"), /rotation to "202612-ed25519" done/);
    await assert.rejects(Deno.stat(`${s.dir}/keys/old.private`), Deno.errors.NotFound);
    assert.deepEqual(await s.txt(s.dns.primary.nameserver, "old"), []);
    const state = await readRotationState(`${s.dir}/state/rotation.json`);
    assert.deepEqual(state.rotations.map((r) => r.step), ["done"]);
    // Nothing more to do, and no new rotation without --now (RotationInterval 0).
    const idle = await s.run(T0 + 500_000);
    assert.equal(idle.status, ROTATE_EXIT.ok);
    assert.deepEqual(idle.out, []);
  });
});

Deno.test("dkimd rotate: a refused update (BADSIG) is a clear error, and nothing is activated", async () => {
  await withSetup({ updateKey: "wrong" }, async (s) => {
    const result = await s.run(T0, "--now");
    assert.equal(result.status, ROTATE_EXIT.error);
    assert.equal(result.err.length, 1);
    assert.match(
      result.err[0],
      /^dkimd rotate: main \(example\.com\): the DNS server 127\.0\.0\.1@\d+ \(zone "example\.com"\) answered NOTAUTH\/BADSIG: /,
    );
    assert.match(await Deno.readTextFile(`${s.dir}/key.table`), /main example\.com:old:/);
    const [rotation] = (await readRotationState(`${s.dir}/state/rotation.json`)).rotations;
    assert.equal(rotation.step, "publish");
    assert.match(rotation.lastError!, /BADSIG/);
    const status = await s.run(T0, "--status", "--json");
    const [row] = JSON.parse(status.out.join("\n"));
    assert.equal(row.step, "publish");
    assert.match(row.lastError, /BADSIG/);
  });
});

Deno.test("dkimd rotate: without DNSUpdateKey it prints the record and an nsupdate script, then waits for it", async () => {
  await withSetup({ updateKey: "none" }, async (s) => {
    const first = await s.run(T0, "--now");
    assert.equal(first.status, ROTATE_EXIT.waiting);
    const text = first.out.join("\n");
    assert.match(
      text,
      /no DNSUpdateKey: publish the record 202612-ed25519\._domainkey\.example\.com yourself/,
    );
    assert.match(text, /^ {2}zone example\.com$/m);
    assert.match(
      text,
      /^ {2}update add 202612-ed25519\._domainkey\.example\.com\. 300 TXT "v=DKIM1; k=ed25519; p=/m,
    );
    assert.match(text, /serves no such name at 202612-ed25519\._domainkey\.example\.com yet/);
    // The admin publishes it; the next runs prove and activate.
    const newKey = await importPrivateKey(
      await Deno.readFile(`${s.dir}/keys/202612-ed25519.private`),
    );
    await sendUpdate({
      server: parseNameserver(s.dns.primary.nameserver),
      zone: ZONE,
      key: {
        name: "dkimd-rotate",
        algorithm: "hmac-sha256",
        secret: Uint8Array.from(atob(SECRET), (c) => c.charCodeAt(0)),
      },
      changes: [{
        op: "replace-txt",
        name: "202612-ed25519._domainkey.example.com",
        ttl: 300,
        records: [`v=DKIM1; k=ed25519; p=${toBase64(newKey.publicKey)}`],
      }],
    });
    const done = await runUntilSettled(s, T0 + 60_000);
    assert.equal(done.status, ROTATE_EXIT.ok, [...done.out, ...done.err].join("\n"));
    assert.match(
      await Deno.readTextFile(`${s.dir}/key.table`),
      /main example\.com:202612-ed25519:/,
    );
  });
});

Deno.test("dkimd rotate --dry-run says what it would do and changes nothing", async () => {
  await withSetup({}, async (s) => {
    const result = await s.run(T0, "--now", "--dry-run");
    assert.equal(result.status, ROTATE_EXIT.ok);
    assert.deepEqual(result.out, [
      'main (example.com): would start a rotation from "old" to "202612-ed25519"',
    ]);
    await assert.rejects(Deno.stat(`${s.dir}/state/rotation.json`), Deno.errors.NotFound);
    const other = await s.run(T0, "--now", "--domain", "example.org");
    assert.equal(other.status, ROTATE_EXIT.ok);
    assert.deepEqual(other.out, []);
  });
});

Deno.test("dkimd rotate removes the temporary files a killed run left (the exact names it makes), never others, and not with --status or --dry-run", async () => {
  await withSetup({}, async (s) => {
    // A run killed just before its renames: the state file holds the rotation, and beside
    // each file it was replacing lies its temporary file (the new key's a real private key).
    const selector = "202612-ed25519";
    await Deno.mkdir(`${s.dir}/state`);
    await Deno.writeTextFile(
      `${s.dir}/state/rotation.json`,
      JSON.stringify({
        version: 1,
        rotations: [{
          keyName: "main",
          domain: "example.com",
          keyType: "ed25519",
          oldSelector: "old",
          oldKeyFile: `${s.dir}/keys/old.private`,
          newSelector: selector,
          newKeyFile: `${s.dir}/keys/${selector}.private`,
          step: "generate",
          startedAt: T0 / 1000,
          updatedAt: T0 / 1000,
        }],
      }),
      { mode: 0o600 },
    );
    const pem = await (await generateSigningKey("ed25519")).toPem();
    const left = [
      `${s.dir}/keys/.${selector}.private.0a1b2c3d.tmp`,
      `${s.dir}/.key.table.9f8e7d6c.tmp`,
      `${s.dir}/.signing.table.00000000.tmp`,
      `${s.dir}/state/.rotation.json.deadbeef.tmp`,
    ];
    // Look-alikes that are not rotate's: another file's, another shape, a directory.
    const kept = [
      `${s.dir}/keys/.old.private.tmp`,
      `${s.dir}/keys/.${selector}.private.0A1B2C3D.tmp`,
      `${s.dir}/.key.table.9f8e7d6c1.tmp`,
      `${s.dir}/.update.key.12345678.tmp`,
      `${s.dir}/state/.rotation.json.deadbeef.tmp.bak`,
    ];
    await Deno.writeTextFile(left[0], pem, { mode: 0o600 });
    for (const f of [...left.slice(1), ...kept]) await Deno.writeTextFile(f, "partial");
    await Deno.mkdir(`${s.dir}/.key.table.abcdef01.tmp`);
    const exist = async (files: string[]) =>
      await Promise.all(files.map((f) => Deno.stat(f).then(() => true, () => false)));

    for (const args of [["--status"], ["--dry-run"]]) {
      const r = await s.run(T0, ...args);
      assert.equal(r.status, ROTATE_EXIT.ok, args[0]);
      assert.deepEqual(await exist(left), [true, true, true, true], args[0]);
    }
    const run = await runUntilSettled(s, T0);
    assert.equal(run.status, ROTATE_EXIT.ok, [...run.out, ...run.err].join("\n"));
    assert.deepEqual(await exist(left), [false, false, false, false]);
    assert.deepEqual(await exist(kept), kept.map(() => true));
    assert.ok((await Deno.stat(`${s.dir}/.key.table.abcdef01.tmp`)).isDirectory);
    for (const f of left) {
      assert.ok(run.out.includes(`removed ${f}, left by a run killed while writing`), f);
    }
    // The rotation itself went on from its state: the new key was generated, not the tmp's.
    const newKey = await importPrivateKey(
      await Deno.readFile(`${s.dir}/keys/${selector}.private`),
    );
    assert.notEqual(await newKey.toPem(), pem);
    assert.match(
      await Deno.readTextFile(`${s.dir}/key.table`),
      /main example\.com:202612-ed25519:/,
    );
  });
});

/** The selectors (s=) of the DKIM-Signature fields dkimd adds to a message from `from`. */
async function signedWith(port: number, from: string): Promise<string[]> {
  const client = await MilterClient.connect({ kind: "inet", host: "127.0.0.1", port });
  try {
    const r = await client.sendMessage({
      connect: { hostname: "localhost", address: "127.0.0.1" },
      macros: { mail: { i: "Q1" } },
      from: `<${from}>`,
      headers: [["From", ` ${from}`], ["Subject", " hi"]],
      body: fromLatin1("hello\r\n"),
    });
    return r.modifications
      .filter((m) => m.type === "insheader" && m.name === "DKIM-Signature")
      .map((m) =>
        new TextDecoder().decode((m as { value: Uint8Array }).value).match(/(?:^|[\s;])s=([^;\s]+)/)
          ?.[1] ??
          "?"
      );
  } finally {
    client.close();
  }
}

Deno.test("dkimd rotate (the command, as users run it) signals the running dkimd, which then signs with the new key", async () => {
  await withSetup({ serve: true }, async (s) => {
    const dkimd = s.dkimd!;
    assert.deepEqual(await signedWith(dkimd.port, "a@example.com"), ["old"]);
    const selector = newSelectorNow();
    const deadline = Date.now() + 20_000;
    let r = await runCli(["rotate", "-x", s.conf, "--now"]);
    while (r.code === ROTATE_EXIT.waiting && Date.now() < deadline) {
      // Not yet activated: dkimd still signs with the old key.
      assert.deepEqual(await signedWith(dkimd.port, "a@example.com"), ["old"]);
      await new Promise((resolve) => setTimeout(resolve, RERUN_PAUSE_MS));
      r = await runCli(["rotate", "-x", s.conf]);
    }
    assert.equal(r.code, ROTATE_EXIT.ok, r.text + r.stderr);
    assert.match(r.text, new RegExp(`sent SIGUSR1 to dkimd \\(pid ${dkimd.pid}\\)`));
    await dkimd.waitForLog(/configuration reloaded/);
    assert.deepEqual(await signedWith(dkimd.port, "a@example.com"), [selector]);
  });
});

/** The selector RotationSelectorFormat's default gives an Ed25519 key now. */
function newSelectorNow(): string {
  const d = new Date();
  return `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, "0")}-ed25519`;
}

/** `dkimd verify --json` of `message` asking only `server`: each signature's result and reason. */
async function verifyWith(server: string, message: Uint8Array) {
  const r = await runCli(["verify", "--json", "--nameserver", server], { stdin: message });
  return (JSON.parse(r.text) as { result: string; reason: string | null; selector: string }[])
    .map(({ result, reason, selector }) => ({ result, reason, selector }));
}

Deno.test("dkimd rotate: after the revoke step, dkimd verify reports old mail as permerror (key revoked), RFC 6376 §3.6.1", async () => {
  await withSetup({ deleteAfter: 3600 }, async (s) => {
    const message = new TextEncoder().encode(
      "From: a@example.com\r\nTo: b@example.org\r\nSubject: before the rotation\r\n\r\nhello\r\n",
    );
    const signOld = await runCli(
      ["sign", "-d", ZONE, "-s", "old", "-k", `${s.dir}/keys/old.private`],
      { stdin: message },
    );
    assert.equal(signOld.code, 0, signOld.stderr);
    const oldMail = signOld.stdout;
    for (const server of [s.dns.primary.nameserver, s.dns.secondary!.nameserver]) {
      assert.deepEqual(await verifyWith(server, oldMail), [
        { result: "pass", reason: null, selector: "old" },
      ]);
    }

    const started = await s.run(T0, "--now");
    assert.notEqual(started.status, ROTATE_EXIT.error, started.err.join("\n"));
    const activated = await runUntilSettled(s, T0 + 60_000);
    assert.equal(activated.status, ROTATE_EXIT.ok, [...activated.out, ...activated.err].join("\n"));
    const selector = "202612-ed25519";
    assert.match(
      await Deno.readTextFile(`${s.dir}/key.table`),
      /main example\.com:202612-ed25519:/,
    );
    // Before the revocation, old mail still verifies.
    assert.deepEqual(await verifyWith(s.dns.primary.nameserver, oldMail), [
      { result: "pass", reason: null, selector: "old" },
    ]);

    // Past the record's TTL: the old record is revoked and proven so; deletion waits an hour.
    const revoked = await runUntilSettled(s, T0 + 60_000 + 301_000);
    assert.equal(revoked.status, ROTATE_EXIT.ok, [...revoked.out, ...revoked.err].join("\n"));
    assert.match(revoked.out.join("\n"), /waiting until .* for the time to delete the old key/);
    for (const server of [s.dns.primary.nameserver, s.dns.secondary!.nameserver]) {
      assert.deepEqual(await s.txt(server, "old"), ["v=DKIM1; k=ed25519; p="]);
      assert.deepEqual(await verifyWith(server, oldMail), [
        { result: "permerror", reason: "key revoked", selector: "old" },
      ]);
    }
    // Mail signed with the new key verifies against the same servers.
    const signNew = await runCli(
      ["sign", "-d", ZONE, "-s", selector, "-k", `${s.dir}/keys/${selector}.private`],
      { stdin: message },
    );
    assert.equal(signNew.code, 0, signNew.stderr);
    assert.deepEqual(await verifyWith(s.dns.secondary!.nameserver, signNew.stdout), [
      { result: "pass", reason: null, selector },
    ]);

    // After RotationDeleteAfter the record and the old key file are gone: old mail has no key.
    const deleted = await runUntilSettled(s, T0 + 60_000 + 3601_000);
    assert.equal(deleted.status, ROTATE_EXIT.ok, [...deleted.out, ...deleted.err].join("\n"));
    await assert.rejects(Deno.stat(`${s.dir}/keys/old.private`), Deno.errors.NotFound);
    const [gone] = await verifyWith(s.dns.primary.nameserver, oldMail);
    assert.equal(gone.result, "permerror");
    assert.notEqual(gone.reason, "key revoked");
  });
});

Deno.test("dkimd rotate: RotationInterval starts a rotation for a key older than it (the file's mtime for the first key, the recorded activation after)", async () => {
  const day = 86400;
  await withSetup({ interval: 30 * day }, async (s) => {
    const keyFile = `${s.dir}/keys/old.private`;
    // A key made 20 days ago: not due.
    const touch = async (when: number) => {
      const r = await new Deno.Command("touch", {
        args: ["-d", new Date(when).toISOString(), keyFile],
      }).output();
      assert.ok(r.success);
    };
    await touch(T0 - 20 * day * 1000);
    const young = await s.run(T0);
    assert.equal(young.status, ROTATE_EXIT.ok);
    assert.deepEqual(young.out, []);
    const status = await s.run(T0, "--status");
    assert.match(status.out[0], /selector "old" \(ed25519, 20 days old\); no rotation/);
    // Made 31 days ago: due; the rotation starts without --now.
    await touch(T0 - 31 * day * 1000);
    const first = await s.run(T0);
    assert.notEqual(first.status, ROTATE_EXIT.error, first.err.join("\n"));
    assert.match(first.out.join("\n"), /rotation from "old" to "202612-ed25519" started/);
    const activated = await runUntilSettled(s, T0 + 60_000);
    assert.equal(activated.status, ROTATE_EXIT.ok, [...activated.out, ...activated.err].join("\n"));
    const done = await runUntilSettled(s, T0 + 60_000 + 301_000);
    assert.equal(done.status, ROTATE_EXIT.ok, [...done.out, ...done.err].join("\n"));
    const [rotation] = (await readRotationState(`${s.dir}/state/rotation.json`)).rotations;
    assert.equal(rotation.step, "done");
    const activatedAt = rotation.activatedAt! * 1000;
    // The new key's file was written now (the real clock), long after the test's T0: its age
    // comes from the activation recorded in the state file, not from that mtime.
    const newFile = `${s.dir}/keys/202612-ed25519.private`;
    assert.ok((await Deno.stat(newFile)).mtime!.getTime() > activatedAt);
    const notYet = await s.run(activatedAt + 29 * day * 1000);
    assert.deepEqual(notYet.out, []);
    const notYetStatus = await s.run(activatedAt + 29 * day * 1000, "--status");
    assert.match(notYetStatus.out[0], /selector "202612-ed25519" \(ed25519, 29 days old\)/);
    const due = await s.run(activatedAt + 30 * day * 1000);
    assert.match(
      due.out.join("\n"),
      /rotation from "202612-ed25519" to "202701-ed25519" started/,
    );
  });
});

/** The message dkimd signs for `from`, with the DKIM-Signature fields it added on top. */
async function signedMessage(port: number, from: string): Promise<Uint8Array> {
  const client = await MilterClient.connect({ kind: "inet", host: "127.0.0.1", port });
  const headers: [string, string][] = [["From", ` ${from}`], ["To", " b@example.org"], [
    "Subject",
    " both keys",
  ]];
  const body = "hello\r\n";
  try {
    const r = await client.sendMessage({
      connect: { hostname: "localhost", address: "127.0.0.1" },
      macros: { mail: { i: "Q2" } },
      from: `<${from}>`,
      headers,
      body: fromLatin1(body),
    });
    const added = r.modifications
      .filter((m) => m.type === "insheader" && m.name === "DKIM-Signature")
      .map((m) =>
        // The milter folds with bare LF, as the MTA's own lines; on the wire it is CRLF.
        `DKIM-Signature:${
          new TextDecoder().decode((m as { value: Uint8Array }).value).replace(/\r?\n/g, "\r\n")
        }\r\n`
      );
    return new TextEncoder().encode(
      added.join("") + headers.map(([n, v]) => `${n}:${v}\r\n`).join("") + "\r\n" + body,
    );
  } finally {
    client.close();
  }
}

/** Runs `dkimd rotate` as users run it (a child process) until it stops waiting for DNS. */
async function runCliUntilSettled(conf: string, ...args: string[]) {
  const deadline = Date.now() + 20_000;
  let out = "";
  for (let first = true;; first = false) {
    const r = await runCli(["rotate", "-x", conf, ...(first ? args : [])]);
    out += r.text + r.stderr;
    if (r.code !== ROTATE_EXIT.waiting || Date.now() > deadline) return { code: r.code, out };
    await new Promise((resolve) => setTimeout(resolve, RERUN_PAUSE_MS));
  }
}

Deno.test("dkimd rotate with RotationOverlap: the running dkimd signs with both selectors for that long, then with the new one alone", async () => {
  // Seconds, on the real clock: the rotate runs are child processes that signal dkimd.
  const OVERLAP = 4;
  await withSetup({ serve: true, overlap: OVERLAP }, async (s) => {
    const dkimd = s.dkimd!;
    const selector = newSelectorNow();
    const signingTable = await Deno.readTextFile(`${s.dir}/signing.table`);
    assert.deepEqual(await signedWith(dkimd.port, "a@example.com"), ["old"]);
    const overlap = await runCliUntilSettled(s.conf, "--now");
    assert.equal(overlap.code, ROTATE_EXIT.ok, overlap.out);
    assert.match(
      overlap.out,
      new RegExp(`both "old" and "${selector}" sign now .* for RotationOverlap ${OVERLAP} s`),
    );
    assert.match(overlap.out, new RegExp(`sent SIGUSR1 to dkimd \\(pid ${dkimd.pid}\\)`));
    assert.match(overlap.out, /waiting until .* for the overlap of both keys to end/);
    assert.equal(
      await Deno.readTextFile(`${s.dir}/key.table`),
      `# rotated by dkimd rotate\nmain example.com:old:${s.dir}/keys/old.private\n` +
        `main.rotate-${selector} example.com:${selector}:${s.dir}/keys/${selector}.private\n`,
    );
    assert.equal(
      await Deno.readTextFile(`${s.dir}/signing.table`),
      `*@example.com main\n*@example.com main.rotate-${selector}\n`,
    );
    // The overlap entry is the rotation's, not a key of its own to rotate or list.
    const status = await runCli(["rotate", "-x", s.conf, "--status"]);
    assert.equal(status.text.trim().split("\n").length, 1, status.text);
    assert.match(
      status.text,
      /^main \(example\.com\): selector "old".*next step: activate; waits for the overlap of both keys to end/,
    );

    await dkimd.waitForLog(/configuration reloaded/);
    assert.deepEqual(
      (await signedWith(dkimd.port, "a@example.com")).sort(),
      ["old", selector].sort(),
    );
    // Both signatures verify against the knot servers as they are during the overlap.
    const both = await signedMessage(dkimd.port, "a@example.com");
    for (const server of [s.dns.primary.nameserver, s.dns.secondary!.nameserver]) {
      assert.deepEqual(
        (await verifyWith(server, both)).map((v) => `${v.selector} ${v.result}`).sort(),
        [`${selector} pass`, "old pass"].sort(),
      );
    }
    // The serving dkimd's metrics show the rotation as the state file has it, and both keys.
    const scraped = await (await fetch(`http://127.0.0.1:${s.metricsPort}/metrics`)).text();
    assert.match(
      scraped,
      new RegExp(
        `^dkimd_rotation_step\\{domain="example\\.com",key="main",new_selector="${selector}",step="activate"\\} 1$`,
        "m",
      ),
    );
    assert.match(scraped, /^dkimd_rotation_error\{domain="example\.com",key="main"\} 0$/m);
    assert.match(
      scraped,
      /^dkimd_key_age_seconds\{domain="example\.com",selector="old",key="main"\} \d+$/m,
    );
    assert.match(
      scraped,
      new RegExp(
        `^dkimd_key_age_seconds\\{domain="example\\.com",selector="${selector}",key="main\\.rotate-${selector}"\\} \\d+$`,
        "m",
      ),
    );
    assert.match(scraped, /^dkimd_rotation_state_readable 1$/m);
    // Before the overlap is over, a run changes nothing.
    const early = await runCli(["rotate", "-x", s.conf]);
    assert.equal(early.code, ROTATE_EXIT.ok, early.stderr);
    assert.match(early.text, /waiting until .* for the overlap of both keys to end/);

    // The overlap over: the SigningTable is as it was, the KeyTable names the new key alone.
    await new Promise((resolve) => setTimeout(resolve, OVERLAP * 1000));
    const switched = await runCliUntilSettled(s.conf);
    assert.equal(switched.code, ROTATE_EXIT.ok, switched.out);
    assert.match(switched.out, new RegExp(`activated: .* now signs with "${selector}"`));
    assert.match(switched.out, /waiting until .* for the old key's signatures to expire/);
    assert.equal(await Deno.readTextFile(`${s.dir}/signing.table`), signingTable);
    assert.equal(
      await Deno.readTextFile(`${s.dir}/key.table`),
      `# rotated by dkimd rotate\nmain example.com:${selector}:${s.dir}/keys/${selector}.private\n`,
    );
    await dkimd.waitForLog(/configuration reloaded[\s\S]*configuration reloaded/);
    assert.deepEqual(await signedWith(dkimd.port, "a@example.com"), [selector]);
    // Retirement counts from the switch, when the old key signed last.
    const [rotation] = (await readRotationState(`${s.dir}/state/rotation.json`)).rotations;
    assert.equal(rotation.step, "retire");
    assert.ok(rotation.activatedAt! >= rotation.overlapStartedAt! + OVERLAP);
  });
});

Deno.test("dkimd rotate refuses a KeyTable in LDAP in one line (exit 1), --status too, and changes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-rotate-ldap-" });
  try {
    const conf = `${dir}/opendkim.conf`;
    await Deno.writeTextFile(
      conf,
      `Mode s\nSocket inet:8891@127.0.0.1\nSyslog no\nBaseDirectory ${dir}\n` +
        "KeyTable ldap://127.0.0.1:1/ou=keys,dc=example?domain,selector,key?sub?(name=$d)\n" +
        "SigningTable ldap://127.0.0.1:1/ou=signing,dc=example?keyname?sub?(sender=$d)\n" +
        `RotationStateFile ${dir}/rotation.json\n`,
    );
    for (const args of [["--now"], ["--status"]]) {
      const r = await runCli(["rotate", "-x", conf, ...args]);
      assert.equal(r.code, ROTATE_EXIT.error, r.text + r.stderr);
      assert.equal(r.text, "");
      assert.equal(
        r.stderr,
        "dkimd rotate: rotation supports a KeyTable in a file or an SQL database (dsn:), not in LDAP (ldap:): switch its entry yourself\n",
      );
    }
    await assert.rejects(Deno.stat(`${dir}/rotation.json`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
