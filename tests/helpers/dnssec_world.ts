/**
 * A small DNSSEC world on this host: Knot DNS serving three zones, each with one TXT record at
 * `SELECTOR._domainkey.ZONE`: `secure.test` (signed by knot, its DS a trust anchor), `bogus.test`
 * (signed, but anchored to another zone's key, so every answer fails validation) and
 * `plain.test` (unsigned, no anchor: insecure); and unbound validating them on 127.0.0.1 (the
 * tests use loopback only; a resolver dkimd does not trust is the same one with `trustsAd`).
 *
 * @module
 */

import { findProgram, freePort } from "./dns_server.ts";
import { type MilterPair, startPair } from "./opendkim_milter.ts";

/** The zones, by what DNSSEC makes of them. */
export const DNSSEC_ZONES = { secure: "secure.test", bogus: "bogus.test", plain: "plain.test" };

/** The running servers. */
export interface DnssecWorld {
  /** unbound on 127.0.0.1: "127.0.0.1@PORT". */
  readonly local: string;
  /** The trust anchor file unbound uses (DS records). */
  readonly anchors: string;
  /** Logs of both servers, for failure messages. */
  log(): string;
  /** Stops both and removes their directory. */
  close(): Promise<void>;
}

function quoted(record: string): string {
  const parts: string[] = [];
  for (let i = 0; i < record.length; i += 255) parts.push(`"${record.slice(i, i + 255)}"`);
  return parts.join(" ");
}

async function run(program: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(await findProgram(program), { args }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${program} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

async function waitFor(check: () => Promise<boolean>, what: string, log: () => string) {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not come up; ${log()}`);
}

/** Starts knot and unbound with `record` published at `selector._domainkey` of each zone. */
export async function startDnssecWorld(selector: string, record: string): Promise<DnssecWorld> {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-dnssec-" });
  const knotPort = await freePort();
  const unboundPort = await freePort();
  const children: Deno.ChildProcess[] = [];
  const logs: string[] = [];
  const drain = (child: Deno.ChildProcess, name: string) => {
    const i = logs.push("") - 1;
    (async () => {
      for await (const chunk of child.stderr) {
        logs[i] = (logs[i] + new TextDecoder().decode(chunk)).slice(-32_000);
      }
    })().catch(() => {});
    logs[i] = `${name}: `;
  };
  const log = () => logs.join("\n");
  const close = async () => {
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch { /* already gone */ }
      await c.status;
    }
    await Deno.remove(dir, { recursive: true });
  };
  try {
    for (const zone of Object.values(DNSSEC_ZONES)) {
      await Deno.writeTextFile(
        `${dir}/${zone}.zone`,
        [
          "$TTL 300",
          `@ IN SOA ns.${zone}. hostmaster.${zone}. 1 3600 600 86400 300`,
          `@ IN NS ns.${zone}.`,
          "ns IN A 127.0.0.1",
          `${selector}._domainkey IN TXT ${quoted(record)}`,
          "",
        ].join("\n"),
      );
    }
    const knotConf = `${dir}/knot.conf`;
    await Deno.writeTextFile(
      knotConf,
      [
        "server:",
        `    rundir: "${dir}"`,
        `    listen: 127.0.0.1@${knotPort}`,
        "database:",
        `    storage: "${dir}"`,
        "control:",
        `    listen: "${dir}/knot.sock"`,
        "log:",
        "  - target: stderr",
        "    any: info",
        "policy:",
        "  - id: test",
        "    algorithm: ecdsap256sha256",
        "    single-type-signing: on",
        "template:",
        "  - id: default",
        `    storage: "${dir}"`,
        `    file: "${dir}/%s.zone"`,
        "    zonefile-sync: -1",
        "    journal-content: none",
        "zone:",
        `  - domain: ${DNSSEC_ZONES.secure}`,
        "    dnssec-signing: on",
        "    dnssec-policy: test",
        `  - domain: ${DNSSEC_ZONES.bogus}`,
        "    dnssec-signing: on",
        "    dnssec-policy: test",
        `  - domain: ${DNSSEC_ZONES.plain}`,
        "",
      ].join("\n"),
    );
    const knot = new Deno.Command(await findProgram("knotd"), {
      args: ["-c", knotConf],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    children.push(knot);
    drain(knot, "knotd");
    // Signed when knotd has made the keys of both signed zones.
    let ds = "";
    await waitFor(
      async () => {
        try {
          ds = await run("keymgr", ["-c", knotConf, DNSSEC_ZONES.secure, "ds"]);
          await run("keymgr", ["-c", knotConf, DNSSEC_ZONES.bogus, "ds"]);
          await run("knotc", ["-s", `${dir}/knot.sock`, "zone-status", DNSSEC_ZONES.bogus]);
          return ds.includes(" DS ") && /serial: [1-9]/.test(
            await run("knotc", ["-s", `${dir}/knot.sock`, "zone-status", DNSSEC_ZONES.secure]),
          );
        } catch {
          return false;
        }
      },
      "knotd",
      log,
    );
    const secureDs = ds.split("\n").find((l) => / DS \d+ \d+ 2 /.test(l))!;
    // bogus.test's anchor is secure.test's DS: no key of bogus.test matches it.
    const anchors = `${dir}/anchors`;
    await Deno.writeTextFile(
      anchors,
      `${secureDs}\n${secureDs.replace(`${DNSSEC_ZONES.secure}.`, `${DNSSEC_ZONES.bogus}.`)}\n`,
    );
    const unboundConf = `${dir}/unbound.conf`;
    await Deno.writeTextFile(
      unboundConf,
      [
        "server:",
        "    interface: 127.0.0.1",
        `    port: ${unboundPort}`,
        '    username: ""',
        '    chroot: ""',
        `    directory: "${dir}"`,
        `    pidfile: "${dir}/unbound.pid"`,
        "    use-syslog: no",
        "    verbosity: 1",
        "    do-not-query-localhost: no",
        `    trust-anchor-file: "${anchors}"`,
        // RFC 8914 Extended DNS Errors: how dkimd tells a bogus SERVFAIL from any other.
        "    ede: yes",
        "    val-log-level: 2",
        '    module-config: "validator iterator"',
        "    access-control: 127.0.0.0/8 allow",
        // RFC 6761 makes test. a local zone in unbound; these tests use it.
        '    local-zone: "test." nodefault',
        ...Object.values(DNSSEC_ZONES).flatMap((z) => [
          "stub-zone:",
          `    name: "${z}"`,
          `    stub-addr: 127.0.0.1@${knotPort}`,
        ]),
        "remote-control:",
        "    control-enable: no",
        "",
      ].join("\n"),
    );
    const unbound = new Deno.Command(await findProgram("unbound"), {
      args: ["-d", "-c", unboundConf],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    children.push(unbound);
    drain(unbound, "unbound");
    await waitFor(
      async () => {
        try {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: unboundPort });
          conn.close();
          return true;
        } catch {
          return false;
        }
      },
      "unbound",
      log,
    );
    return {
      local: `127.0.0.1@${unboundPort}`,
      anchors,
      log,
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * Runs `body` with Debian's opendkim and dkimd verifying side by side through `world`'s local
 * validating resolver (dkimd by Nameservers, opendkim's libunbound by ResolverConfiguration,
 * both with its TrustAnchorFile), Mode v, AuthservID mx.test, plus `extra` opendkim.conf lines;
 * stops both and removes their directory after.
 */
export async function withDnssecPair(
  world: DnssecWorld,
  prefix: string,
  extra: readonly string[],
  body: (pair: MilterPair) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    // libunbound, inside opendkim, also answers test. itself (RFC 6761) unless told not to.
    await Deno.writeTextFile(
      `${dir}/libunbound.conf`,
      'server:\n    local-zone: "test." nodefault\n',
    );
    const pair = await startPair(dir, [
      "Mode v",
      `Nameservers ${world.local}`,
      `ResolverConfiguration ${dir}/libunbound.conf`,
      `TrustAnchorFile ${world.anchors}`,
      ...extra,
      "AuthservID mx.test",
    ]);
    try {
      await body(pair);
    } finally {
      await pair.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
