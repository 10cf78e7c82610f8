/**
 * Drives the real ARC peers from Deno tests: dkimpy (`dkim.arc_sign`, `dkim.arc_verify`;
 * python3-dkim, python3-authres) through peers/arc_dkimpy.py and Mail::DKIM::ARC::Signer and
 * ::Verifier (libmail-dkim-perl) through peers/arc_mail_dkim.pl: one script per peer, each
 * able to seal and verify, taking keys from a DNS server or from a table. One process per
 * batch of jobs, arguments not a shell string, bounded by {@link PEER_TIMEOUT_MS}.
 *
 * @module
 */
import { fromBase64, fromUtf8, toBase64, utf8 } from "../../lib/bytes.ts";
import { PEER_PROGRAMS, PEER_TIMEOUT_MS } from "./peers.ts";

/** The ARC peers. */
export type ArcPeer = "dkimpy" | "Mail::DKIM";

/** Both peers, for tests that loop over them. */
export const ARC_PEERS: readonly ArcPeer[] = ["dkimpy", "Mail::DKIM"];

const SCRIPTS: Readonly<Record<ArcPeer, readonly [string, string]>> = {
  dkimpy: [PEER_PROGRAMS.python, new URL("./peers/arc_dkimpy.py", import.meta.url).pathname],
  "Mail::DKIM": [PEER_PROGRAMS.perl, new URL("./peers/arc_mail_dkim.pl", import.meta.url).pathname],
};

/**
 * Where a peer reads the keys: a DNS server (`IP@PORT`, such as the knot of dns_server.ts or
 * the loopback fake_dns_server.ts), or a table of TXT records by name with no network.
 */
export type ArcPeerKeys = { readonly nameserver: string } | {
  readonly records: Readonly<Record<string, string>>;
};

/** A peer's verdict on one message's ARC chain. */
export interface ArcPeerVerdict {
  /** `pass`, `fail`, `none`, or `error` when the peer threw. */
  readonly result: string;
  /** The peer's own words. */
  readonly detail: string;
}

/** One hop a peer seals as. */
export interface ArcPeerHop {
  readonly domain: string;
  readonly selector: string;
  /** The private key, PEM; RSA (dkimpy's ARC refuses Ed25519, Mail::DKIM lacks it). */
  readonly key: string;
  /** The authserv-id of the hop's own Authentication-Results, carried into its AAR. */
  readonly authservId: string;
  /** `cv=` as given; by default the peer verifies the chain that is there and uses its result. */
  readonly chain?: "none" | "pass" | "fail";
  /** `t=` of the new set (default now). */
  readonly timestamp?: number;
  /** A tag the hop puts in front of the Subject after verifying, as a list does. */
  readonly subjectTag?: string;
}

async function run(peer: ArcPeer, keys: ArcPeerKeys, jobs: unknown[]): Promise<unknown[]> {
  const [program, script] = SCRIPTS[peer];
  const child = new Deno.Command(program, {
    args: [script],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { PYTHONNOUSERSITE: "1", PYTHONDONTWRITEBYTECODE: "1", LC_ALL: "C" },
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), PEER_TIMEOUT_MS);
  try {
    const writer = child.stdin.getWriter();
    await writer.write(utf8(JSON.stringify({ ...keys, jobs })));
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

/** Verifies each message's ARC chain with `peer`, in one process. */
export async function arcVerifyWithPeer(
  peer: ArcPeer,
  messages: readonly Uint8Array[],
  keys: ArcPeerKeys,
): Promise<ArcPeerVerdict[]> {
  const jobs = messages.map((m) => ({ op: "verify", message: toBase64(m) }));
  const results = await run(peer, keys, jobs) as {
    result?: string;
    detail?: string;
    error?: string;
  }[];
  return results.map((r) => ({
    result: r.result ?? "error",
    detail: r.detail ?? r.error ?? "",
  }));
}

/** Seals `message` with `peer`, one ARC set per hop in order; resolves to the sealed message. */
export async function arcSealWithPeer(
  peer: ArcPeer,
  message: Uint8Array,
  hops: readonly ArcPeerHop[],
  keys: ArcPeerKeys,
): Promise<Uint8Array> {
  const [r] = await run(peer, keys, [{ op: "seal", message: toBase64(message), hops }]) as {
    sealed?: string;
    error?: string;
  }[];
  if (r.sealed === undefined) throw new Error(`${peer} could not seal: ${r.error}`);
  return fromBase64(r.sealed);
}
