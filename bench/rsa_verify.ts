/**
 * Per-verify cost of RSASSA-PKCS1-v1_5 (SHA-256) in one process, for each RSA size DKIM meets:
 * the BigInt verifier (lib/crypto/rsa_public_verify.ts), the default backend's key
 * (`importPublicKey`, which uses it after its self-test), WebCrypto's `crypto.subtle.verify`
 * (what the default backend used before), and node:crypto's `verify` (OpenSSL in Deno's own
 * build) for reference. Reports CPU µs per verify from `process.cpuUsage()` (user + system) and
 * wall µs. Run: `deno run --allow-all bench/rsa_verify.ts [--n 2000]`. It prints a Markdown
 * table.
 *
 * @module
 */
import { createPublicKey, verify as nodeVerify } from "node:crypto";
import process from "node:process";
import { parseArgs } from "node:util";
import { RSA_ALGORITHM } from "../lib/crypto/public_key.ts";
import { importPublicKey } from "../lib/crypto/public_key.ts";
import { RsaPublicVerifier } from "../lib/crypto/rsa_public_verify.ts";

const { values } = parseArgs({ args: Deno.args, options: { n: { type: "string" } } });
const N = Number(values.n ?? 2000);

function base64url(s: string): Uint8Array {
  return Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
}

/** CPU and wall microseconds per call of `run`, over N calls after N/10 to warm up. */
async function measure(run: () => boolean | Promise<boolean>): Promise<[number, number]> {
  for (let i = 0; i < N / 10; i++) if (!await run()) throw new Error("verify failed");
  const cpu = process.cpuUsage();
  const wall = performance.now();
  for (let i = 0; i < N; i++) await run();
  const used = process.cpuUsage(cpu);
  return [(used.user + used.system) / N, (performance.now() - wall) * 1000 / N];
}

const data = new TextEncoder().encode(
  "from:Joe SixPack <joe@football.example.com>\r\nsubject:Is dinner ready?\r\n".repeat(8),
);
const rows: string[][] = [];
for (const bits of [1024, 2048, 3072, 4096]) {
  const pair = await crypto.subtle.generateKey(
    {
      name: RSA_ALGORITHM,
      modulusLength: bits,
      publicExponent: Uint8Array.of(1, 0, 1),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  );
  const signature = new Uint8Array(await crypto.subtle.sign(RSA_ALGORITHM, pair.privateKey, data));
  const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
  const bigint = new RsaPublicVerifier(base64url(jwk.n!), base64url(jwk.e!));
  const key = await importPublicKey("rsa", spki);
  const nodeKey = createPublicKey({ key: spki as unknown as Buffer, format: "der", type: "spki" });
  const candidates: [string, () => boolean | Promise<boolean>][] = [
    ["BigInt verifier", () => bigint.verify("sha256", data, signature)],
    ["default backend key", () => key.verify("sha256", data, signature)],
    [
      "WebCrypto subtle.verify",
      () => crypto.subtle.verify(RSA_ALGORITHM, pair.publicKey, signature, data),
    ],
    ["node:crypto verify", () => nodeVerify("sha256", data, nodeKey, signature)],
  ];
  for (const [name, run] of candidates) {
    const [cpu, wall] = await measure(run);
    rows.push([`RSA-${bits}`, name, cpu.toFixed(1), wall.toFixed(1)]);
  }
}

console.log(
  `RSA verify, SHA-256, ${data.length} bytes, ${N} runs each, Deno ${Deno.version.deno}\n`,
);
console.log("| key | verifier | CPU µs/verify | wall µs/verify |\n| --- | --- | --- | --- |");
for (const row of rows) console.log(`| ${row.join(" | ")} |`);
