/**
 * The ARC cell's messages (issue 17): the 2 KB messages, DKIM-signed as the verify corpus is,
 * each carrying a 2-instance ARC chain, as mail reaches a third hop after two forwarders that
 * verified and sealed it. Built once at bench start with dkimd's own sealer (lib/arc/seal.ts);
 * each hop adds its Authentication-Results, then seals with what it found (hop 1: `cv=none`,
 * hop 2: `cv=pass`), so a correct verifier finds the chain passing and seals `i=3; cv=pass`.
 *
 * @module
 */
import { concat, fromLatin1 } from "../lib/bytes.ts";
import type { SigningKey } from "../lib/crypto/private_key.ts";
import { sealMessage } from "../lib/arc/seal.ts";

/** One forwarder of the chain: its sealing key, published at `SELECTOR._domainkey.DOMAIN`. */
export interface ArcHop {
  /** `d=` of its ARC set. */
  readonly domain: string;
  /** `s=` of its ARC set. */
  readonly selector: string;
  /** Its sealing key. */
  readonly key: SigningKey;
}

/** Fixed sealing time for the corpus, so every run hashes the same bytes (2023-11-14). */
const SEAL_TIME = 1_700_000_000;

/**
 * Adds one ARC set per hop to `message` (already DKIM-signed with `d=dkimDomain`), in order:
 * hop n writes `Authentication-Results: hopN.DOMAIN; dkim=pass ...` (and `arc=pass` after the
 * first hop) and seals with `cv=none` for the first set, `cv=pass` after.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { addArcChain } from "./arc_corpus.ts";
 * import { generateSigningKey } from "../lib/crypto/private_key.ts";
 * import { latin1, utf8 } from "../lib/bytes.ts";
 * const key = await generateSigningKey("ed25519");
 * const hops = [1, 2].map((n) => ({ domain: "example.com", selector: `arc${n}`, key }));
 * const sealed = latin1(await addArcChain(utf8("From: a@example.com\r\n\r\nHi\r\n"), hops, "example.com"));
 * assert.match(sealed, /^ARC-Seal: i=2; a=ed25519-sha256; t=\d+; cv=pass;/);
 * assert.match(sealed, /\r\nARC-Seal: i=1; a=ed25519-sha256; t=\d+; cv=none;/);
 * ```
 */
export async function addArcChain(
  message: Uint8Array,
  hops: readonly ArcHop[],
  dkimDomain: string,
): Promise<Uint8Array> {
  let out = message;
  for (const [i, hop] of hops.entries()) {
    const authservId = `hop${i + 1}.${hop.domain}`;
    const results = `dkim=pass header.d=${dkimDomain}${i > 0 ? "; arc=pass" : ""}`;
    out = concat([fromLatin1(`Authentication-Results: ${authservId}; ${results}\r\n`), out]);
    const set = await sealMessage(out, {
      domain: hop.domain,
      selector: hop.selector,
      key: hop.key,
      authservId,
      results,
      cv: i === 0 ? "none" : "pass",
    }, { now: () => SEAL_TIME + i });
    out = concat([...set.flatMap((f) => [f.raw, fromLatin1("\r\n")]), out]);
  }
  return out;
}

/**
 * Writes `DIR/NN.eml`: each `*.eml` of `signedDir` (the DKIM-signed verify corpus) with the
 * chain of {@link addArcChain}. Returns `dir`.
 */
export async function writeArcCorpus(
  dir: string,
  signedDir: string,
  hops: readonly ArcHop[],
  dkimDomain: string,
): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const names: string[] = [];
  for await (const e of Deno.readDir(signedDir)) {
    if (e.isFile && e.name.endsWith(".eml")) names.push(e.name);
  }
  for (const name of names.sort()) {
    const message = await Deno.readFile(`${signedDir}/${name}`);
    await Deno.writeFile(`${dir}/${name}`, await addArcChain(message, hops, dkimDomain));
  }
  return dir;
}
