/**
 * `odkim.rbl_check(ctx, query, root[, timeout])` (opendkim-lua(3)): the A record of
 * `query.root`, as OpenDKIM's librbl asks it, through the configured Nameservers (or the
 * system's resolver, as the rest of dkimd's DNS), waiting at most `timeout` seconds (DNSTimeout
 * when the script gives none; OpenDKIM then waits without limit, dkimd's script budget applies
 * either way). Deno's resolver asks for the A record: dkimd's own stub resolver asks for TXT only.
 *
 * @module
 */
import type { Nameserver } from "../dns/nameserver.ts";

/** What the lookup found: the four octets of the first A record, none, or why it failed. */
export type RblAnswer =
  | { readonly kind: "found"; readonly octets: readonly number[] }
  | { readonly kind: "none" }
  | { readonly kind: "error"; readonly message: string };

/**
 * Looks `name` up as an A record: "none" for NXDOMAIN, no A record or no answer in time (librbl's
 * NOTFOUND and NOREPLY), "error" for anything else.
 *
 * @example
 * ```ts ignore
 * const answer = await rblQuery("2.0.0.127.zen.example", [], 5);
 * ```
 */
export async function rblQuery(
  name: string,
  nameservers: readonly Nameserver[] | undefined,
  timeoutSeconds: number,
): Promise<RblAnswer> {
  const server = nameservers?.[0];
  try {
    const records = await Deno.resolveDns(name, "A", {
      ...(server ? { nameServer: { ipAddr: server.address, port: server.port } } : {}),
      signal: AbortSignal.timeout(Math.max(1, timeoutSeconds * 1000)),
    });
    if (records.length === 0) return { kind: "none" };
    return { kind: "found", octets: records[0].split(".").map(Number) };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { kind: "none" };
    if (e instanceof DOMException && (e.name === "TimeoutError" || e.name === "AbortError")) {
      return { kind: "none" };
    }
    if (e instanceof Deno.errors.TimedOut) return { kind: "none" };
    return { kind: "error", message: e instanceof Error ? e.message : String(e) };
  }
}
