/**
 * Micro-benchmark of the DKIM core, for the numbers the DKIM core issue asks for: body
 * canonicalization + SHA-256 throughput (simple and relaxed) on a 10 MB message next to raw
 * node:crypto SHA-256 on the same bytes, and RSA-2048 / Ed25519 sign and verify operations per
 * second through WebCrypto. Run: `deno task bench:core`. It prints a Markdown table.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { BodyHashes } from "../lib/dkim/body_hasher.ts";
import { generateSigningKey, type SigningKey } from "../lib/crypto/private_key.ts";
import { importPublicKey } from "../lib/crypto/public_key.ts";

const SIZE = 10 * 1024 * 1024;
const CHUNK = 65535; // a milter BODY frame at most

function mailText(size: number): Uint8Array {
  // Plain and quoted-printable-like lines with double spaces, tabs and trailing blanks, as
  // real bodies have, so relaxed canonicalization has work to do.
  const lines = [
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod  tempor",
    "incididunt ut labore et dolore magna aliqua.\tUt enim ad minim veniam, quis ",
    "> nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat.",
    "",
    "PGh0bWw+PGJvZHk+PHA+SGVsbG8gV29ybGQ8L3A+PC9ib2R5PjwvaHRtbD4KPGh0bWw+PGJvZHk+PHA+",
    "Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore   ",
  ];
  const out = new Uint8Array(size);
  const enc = new TextEncoder();
  let o = 0;
  for (let i = 0; o < size; i++) {
    const line = enc.encode(lines[i % lines.length] + "\r\n");
    const n = Math.min(line.length, size - o);
    out.set(line.subarray(0, n), o);
    o += n;
  }
  return out;
}

function mimeBody(size: number): Uint8Array {
  // A text part, then a base64 attachment filling the rest: how large mail really looks.
  const enc = new TextEncoder();
  const head = enc.encode(
    "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
      "Hello,\r\n\r\nPlease find the report attached.  Regards,\r\nBob \r\n\r\n" +
      "--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n",
  );
  const out = new Uint8Array(size);
  out.set(head);
  const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  let o = head.length;
  let seed = 1;
  while (o < size) {
    for (let k = 0; k < 76 && o < size; k++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      out[o++] = b64.charCodeAt(seed >>> 26);
    }
    if (o < size) out[o++] = 13;
    if (o < size) out[o++] = 10;
  }
  return out;
}

function time(fn: () => void, minMs = 1500): { ms: number; runs: number } {
  fn(); // warm-up
  let runs = 0;
  const start = performance.now();
  let now = start;
  while (now - start < minMs) {
    fn();
    runs++;
    now = performance.now();
  }
  return { ms: (now - start) / runs, runs };
}

async function timeAsync(fn: () => Promise<unknown>, minMs = 1500): Promise<number> {
  for (let i = 0; i < 20; i++) await fn(); // warm-up
  let runs = 0;
  const start = performance.now();
  while (performance.now() - start < minMs) {
    await fn();
    runs++;
  }
  return runs / ((performance.now() - start) / 1000);
}

const bodies = {
  "MIME text + base64 attachment": mimeBody(SIZE),
  "plain text, whitespace runs on every other line": mailText(SIZE),
};
const body = bodies["MIME text + base64 attachment"];
const mb = SIZE / 1e6;
const rows: [string, string][] = [];

const raw = time(() => {
  const h = createHash("sha256");
  for (let i = 0; i < SIZE; i += CHUNK) h.update(body.subarray(i, i + CHUNK));
  h.digest();
});
rows.push([
  "raw SHA-256 (node:crypto), 64 KiB chunks",
  `${(mb / (raw.ms / 1000)).toFixed(0)} MB/s`,
]);

for (const [name, data] of Object.entries(bodies)) {
  for (const canonicalization of ["simple", "relaxed"] as const) {
    const t = time(() => {
      const hashes = new BodyHashes();
      hashes.add({ canonicalization, algorithm: "sha256" });
      for (let i = 0; i < SIZE; i += CHUNK) hashes.push(data.subarray(i, i + CHUNK));
      hashes.finish();
    });
    rows.push([
      `${canonicalization} canonicalize + SHA-256, 10 MB ${name}`,
      `${(mb / (t.ms / 1000)).toFixed(0)} MB/s`,
    ]);
  }
}

const headerData = mailText(600); // about what the signed header fields hash
for (const type of ["rsa", "ed25519"] as const) {
  const key: SigningKey = await generateSigningKey(type, type === "rsa" ? 2048 : undefined);
  const pub = await importPublicKey(type, key.publicKey);
  const sig = await key.sign(headerData);
  const signRate = await timeAsync(() => key.sign(headerData));
  const verifyRate = await timeAsync(() => pub.verify("sha256", headerData, sig));
  const label = type === "rsa" ? "RSA-2048" : "Ed25519";
  rows.push([`${label} sign (WebCrypto)`, `${signRate.toFixed(0)} ops/s`]);
  const verifier = type === "rsa" ? "BigInt, the default backend" : "WebCrypto";
  rows.push([`${label} verify (${verifier})`, `${verifyRate.toFixed(0)} ops/s`]);
}

console.log(
  `dkimd core benchmark, ${Deno.build.os}/${Deno.build.arch}, Deno ${Deno.version.deno}\n`,
);
console.log("| measurement | result |\n| --- | --- |");
for (const [what, value] of rows) console.log(`| ${what} | ${value} |`);
