/**
 * Drives the real ARC peers from Deno tests: dkimpy's `arc_verify` (python3-dkim) and
 * Mail::DKIM::ARC::Verifier and ::Signer (libmail-dkim-perl), with every key from a DNS server
 * the test runs on loopback. One process per batch, arguments not a shell string, bounded by
 * {@link PEER_TIMEOUT_MS}. Kept apart from peers.ts (DKIM jobs) until ARC verify lands and
 * the two are merged.
 *
 * @module
 */
import { fromBase64, fromUtf8, toBase64, utf8 } from "../../lib/bytes.ts";
import { PEER_PROGRAMS, PEER_TIMEOUT_MS } from "./peers.ts";

const DKIMPY_SCRIPT = new URL("./peers/arc_dkimpy.py", import.meta.url).pathname;
const MAIL_DKIM_SCRIPT = new URL("./peers/arc_mail_dkim.pl", import.meta.url).pathname;

/** A peer's verdict on one message's ARC chain. */
export interface ArcPeerVerdict {
  /** `pass`, `fail`, `none`, or `error` when the peer threw. */
  readonly result: string;
  /** The peer's own words. */
  readonly detail: string;
}

async function run(program: string, script: string, job: unknown): Promise<unknown[]> {
  const child = new Deno.Command(program, {
    args: [script],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), PEER_TIMEOUT_MS);
  try {
    const writer = child.stdin.getWriter();
    await writer.write(utf8(JSON.stringify(job)));
    await writer.close();
    const out = await child.output();
    if (out.code !== 0) {
      throw new Error(`${script} exited with ${out.code}: ${fromUtf8(out.stderr).trim()}`);
    }
    return (JSON.parse(fromUtf8(out.stdout)) as { results: unknown[] }).results;
  } finally {
    clearTimeout(timer);
  }
}

/** Verifies each message's ARC chain with dkimpy, keys from `nameserver` (`IP@PORT`). */
export async function arcVerifyWithDkimpy(
  messages: readonly Uint8Array[],
  nameserver: string,
): Promise<ArcPeerVerdict[]> {
  const results = await run(PEER_PROGRAMS.python, DKIMPY_SCRIPT, {
    nameserver,
    messages: messages.map(toBase64),
  });
  return (results as { result: string; reason: string }[]).map((r) => ({
    result: r.result,
    detail: r.reason,
  }));
}

/** Verifies each message's ARC chain with Mail::DKIM::ARC::Verifier. */
export async function arcVerifyWithMailDkim(
  messages: readonly Uint8Array[],
  nameserver: string,
): Promise<ArcPeerVerdict[]> {
  const results = await run(PEER_PROGRAMS.perl, MAIL_DKIM_SCRIPT, {
    nameserver,
    jobs: messages.map((m) => ({ op: "verify", message: toBase64(m) })),
  });
  return (results as { result?: string; detail?: string; error?: string }[]).map((r) => ({
    result: r.result ?? "error",
    detail: r.detail ?? r.error ?? "",
  }));
}

/** What Mail::DKIM::ARC::Signer needs to seal (RSA only: it has no Ed25519). */
export interface MailDkimSealOptions {
  readonly domain: string;
  readonly selector: string;
  /** A PEM private key file. */
  readonly keyFile: string;
  /** The authserv-id whose Authentication-Results it carries; the message must have one on top. */
  readonly srvId: string;
  /** The chain as received. */
  readonly chain: "none" | "pass" | "fail";
  readonly timestamp: number;
}

/** Seals `message` with Mail::DKIM::ARC::Signer; resolves to the message with the new set. */
export async function arcSealWithMailDkim(
  message: Uint8Array,
  options: MailDkimSealOptions,
): Promise<Uint8Array> {
  const [r] = await run(PEER_PROGRAMS.perl, MAIL_DKIM_SCRIPT, {
    nameserver: "127.0.0.1@53",
    jobs: [{ op: "seal", message: toBase64(message), ...options }],
  }) as { sealed?: string; error?: string }[];
  if (r.sealed === undefined) throw new Error(`Mail::DKIM could not seal: ${r.error}`);
  return fromBase64(r.sealed);
}
