/**
 * In-process micro-benchmark of dkimd's per-message cost on the benchmark's 2 KB message, with
 * no sockets, so it is far less noisy than `deno task bench` on a shared machine (issue 20):
 * - `sign js`: `Signer` with a key whose `sign()` returns fixed bytes: only dkimd's JavaScript;
 * - `sign rsa`: `Signer` with the RSA-2048 benchmark key (WebCrypto);
 * - `verify rsa`: `Verifier` on a message signed with it, keys cached as in the daemon;
 * - `filter sign` / `filter verify` (and `filter sign ed25519`, whose key costs little): the whole DKIM filter (milter session, MTA header fields,
 *   policy, Authentication-Results) driven in memory by tests/helpers/memory_mta.ts.
 *
 * Each line gives wall ms/msg and CPU ms/msg (the process's user+system time, WebCrypto's
 * threads included). Run: `deno run --allow-all bench/per_message.ts [--n 10000] [--only REGEX]`.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { concat, CRLF, latin1, toBase64 } from "../lib/bytes.ts";
import { generateSigningKey, type SigningKey } from "../lib/crypto/private_key.ts";
import { splitMessage } from "../lib/dkim/header.ts";
import { KeyCache } from "../lib/dkim/key_cache.ts";
import { Signer, signMessage } from "../lib/dkim/sign.ts";
import { Verifier } from "../lib/dkim/verify.ts";
import { DkimFilter } from "../lib/filter/dkim_filter.ts";
import { type MemoryMessage, MemoryMta } from "../tests/helpers/memory_mta.ts";
import { memoryRuntime } from "../tests/helpers/memory_runtime.ts";
import { MemoryLogger } from "../tests/helpers/milter_logger.ts";
import { BENCH_DOMAIN, generateMessage } from "./corpus.ts";

const NOW = 1_780_000_000;

interface Case {
  readonly name: string;
  readonly run: () => Promise<unknown>;
}

async function measure(c: Case, n: number): Promise<string> {
  for (let i = 0; i < Math.min(500, n); i++) await c.run(); // warm-up: JIT, caches
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await c.run();
  const wall = (performance.now() - t0) / n;
  const cpu1 = process.cpuUsage(cpu0);
  const cpu = (cpu1.user + cpu1.system) / 1000 / n;
  return `| ${c.name} | ${n} | ${wall.toFixed(4)} | ${cpu.toFixed(4)} |`;
}

function headerPairs(message: Uint8Array): [string, string][] {
  return splitMessage(message).fields.map((f) => {
    const value = latin1(f.raw.subarray(f.raw.indexOf(0x3a) + 1));
    return [f.name, value];
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { n: { type: "string", default: "10000" }, only: { type: "string" } },
  });
  const n = Number(values.n);
  const only = values.only === undefined ? undefined : new RegExp(values.only);
  const key = await generateSigningKey("rsa");
  const fixed = new Uint8Array(256).fill(7);
  const jsKey: SigningKey = { ...key, sign: () => Promise.resolve(fixed), toPem: key.toPem };
  const message = generateMessage(2048, 1);
  const { fields, bodyOffset } = splitMessage(message);
  const body = message.subarray(bodyOffset);
  const [sig] = await signMessage(message, [{ domain: BENCH_DOMAIN, selector: "rsa2048", key }], {
    now: () => NOW,
  });
  const signed = concat([sig.raw, CRLF, message]);
  const signedSplit = splitMessage(signed);
  const signedBody = signed.subarray(signedSplit.bodyOffset);
  const record = `v=DKIM1; k=rsa; p=${toBase64(key.publicKey)}`;
  const resolver = { resolveTxt: () => Promise.resolve([record]) };
  const keyCache = new KeyCache();

  const pem = await key.toPem();
  const runtime = await memoryRuntime(
    [
      "Mode sv",
      "KeyTable /etc/dkimd/key.table",
      "SigningTable refile:/etc/dkimd/signing.table",
      "InternalHosts /etc/dkimd/internal.hosts",
      "Canonicalization relaxed/relaxed",
      "AuthservID mx.example.com",
      "SyslogSuccess no",
      "LogWhy no",
      "",
    ].join("\n"),
    {
      files: {
        "/etc/dkimd/key.table": `bench ${BENCH_DOMAIN}:rsa2048:/etc/dkimd/bench.private\n`,
        "/etc/dkimd/signing.table": `*@${BENCH_DOMAIN} bench\n`,
        "/etc/dkimd/internal.hosts": "127.0.0.1\n::1\nlocalhost\n",
        "/etc/dkimd/bench.private": pem,
      },
      zone: { [`rsa2048._domainkey.${BENCH_DOMAIN}`]: [record] },
    },
  );
  const ed = await generateSigningKey("ed25519");
  const edRuntime = await memoryRuntime(
    [
      "Mode s",
      "KeyTable /etc/dkimd/key.table",
      "SigningTable refile:/etc/dkimd/signing.table",
      "InternalHosts /etc/dkimd/internal.hosts",
      "Canonicalization relaxed/relaxed",
      "SyslogSuccess no",
      "",
    ].join("\n"),
    {
      files: {
        "/etc/dkimd/key.table": `bench ${BENCH_DOMAIN}:ed25519:/etc/dkimd/bench.private\n`,
        "/etc/dkimd/signing.table": `*@${BENCH_DOMAIN} bench\n`,
        "/etc/dkimd/internal.hosts": "127.0.0.1\n",
        "/etc/dkimd/bench.private": await ed.toPem(),
      },
    },
  );
  const edFilter = new DkimFilter({
    runtime: () => edRuntime,
    logger: new MemoryLogger(),
    hostname: "mx.example.com",
    now: () => NOW,
  });
  const filter = new DkimFilter({
    runtime: () => runtime,
    logger: new MemoryLogger(),
    hostname: "mx.example.com",
    now: () => NOW,
  });
  const from = latin1(fields.find((f) => f.name === "From")!.raw);
  const sender = `<${/<([^>]+)>/.exec(from)![1]}>`;
  const milterMessage = (m: Uint8Array, address: string): MemoryMessage => {
    const split = splitMessage(m);
    return {
      connect: { hostname: address === "127.0.0.1" ? "localhost" : "mx.example.org", address },
      macros: { connect: { j: "mx.example.com" }, mail: { i: "4AB12C" } },
      from: sender,
      rcpts: ["<bob@example.org>"],
      headers: headerPairs(m),
      body: latin1(m.subarray(split.bodyOffset)),
    };
  };
  const signIn = milterMessage(message, "127.0.0.1");
  const verifyIn = milterMessage(signed, "192.0.2.25");
  const signMta = new MemoryMta(filter);
  const verifyMta = new MemoryMta(filter);
  const edMta = new MemoryMta(edFilter);
  const expect = async (mta: MemoryMta, m: MemoryMessage, field: string) => {
    const r = await mta.sendMessage(m);
    const added = r.modifications.find((x) => "name" in x && x.name === field);
    if (
      !added || !("value" in added) || (field !== "DKIM-Signature" &&
        !/dkim=pass/.test(
          typeof added.value === "string" ? added.value : latin1(added.value),
        ))
    ) {
      throw new Error(`The filter did not add ${field}: ${JSON.stringify(r.final)}`);
    }
  };
  await expect(signMta, signIn, "DKIM-Signature");
  await expect(verifyMta, verifyIn, "Authentication-Results");
  await expect(edMta, signIn, "DKIM-Signature");

  const signer = (k: SigningKey) => async () => {
    const s = new Signer([{ domain: BENCH_DOMAIN, selector: "rsa2048", key: k }], {
      now: () => NOW,
    });
    s.headers(fields);
    s.body(body);
    return await s.finish();
  };
  const cases: Case[] = [
    { name: "sign js (fixed-bytes key)", run: signer(jsKey) },
    { name: "sign rsa", run: signer(key) },
    {
      name: "verify rsa",
      run: async () => {
        const v = new Verifier({ resolver, keyCache, now: () => NOW });
        v.headers(signedSplit.fields);
        v.body(signedBody);
        const [verdict] = await v.finish();
        if (verdict.result !== "pass") throw new Error(`verify: ${verdict.result}`);
      },
    },
    { name: "filter sign rsa", run: () => signMta.sendMessage(signIn) },
    { name: "filter verify rsa", run: () => verifyMta.sendMessage(verifyIn) },
    { name: "filter sign ed25519", run: () => edMta.sendMessage(signIn) },
  ];
  console.log(`| case (2 KB, ${message.length} bytes) | n | wall ms/msg | CPU ms/msg |`);
  console.log("| --- | ---: | ---: | ---: |");
  for (const c of cases) {
    if (only && !only.test(c.name)) continue;
    console.log(
      await measure(c, c.name === "sign rsa" || c.name === "filter sign rsa" ? n / 5 : n),
    );
  }
  await signMta.close();
  await verifyMta.close();
  await edMta.close();
}

if (import.meta.main) await main();
