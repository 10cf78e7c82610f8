/**
 * The resolver the command-line tools use: a key file (OpenDKIM's TestPublicKeys format), or
 * dkimd's own stub resolver pointed at the given nameservers or at /etc/resolv.conf.
 *
 * @module
 */
import { KeyFileResolver, KeyFileSyntaxError, readKeyFile } from "../dns/key_file.ts";
import { NameserverSyntaxError, parseNameserverList } from "../dns/nameserver.ts";
import { readResolvConf } from "../dns/resolv_conf.ts";
import type { TxtResolver } from "../dns/resolver.ts";
import { StubResolver } from "../dns/stub.ts";
import { UsageError } from "./args.ts";

/** Where keys come from. */
export interface ResolverChoice {
  /** Nameserver specs (`IP`, `IP@PORT`, `[IPv6]:PORT`, comma-separated lists). */
  readonly nameservers?: readonly string[];
  /** A key file instead of DNS. */
  readonly testKeys?: string;
  /** Time for one lookup, in milliseconds. */
  readonly timeoutMs?: number;
}

/** Builds the resolver `choice` describes, with errors naming the flag or file. */
export async function makeResolver(command: string, choice: ResolverChoice): Promise<TxtResolver> {
  if (choice.testKeys !== undefined) {
    try {
      return new KeyFileResolver(await readKeyFile(choice.testKeys));
    } catch (e) {
      if (e instanceof KeyFileSyntaxError) {
        throw new UsageError(`${command}: ${e.message}`, { cause: e });
      }
      const why = e instanceof Deno.errors.NotFound
        ? "no such file"
        : e instanceof Error
        ? e.message
        : String(e);
      throw new UsageError(`${command}: cannot read key file "${choice.testKeys}": ${why}`, {
        cause: e,
      });
    }
  }
  if (choice.nameservers && choice.nameservers.length > 0) {
    try {
      const nameservers = choice.nameservers.flatMap((spec) => parseNameserverList(spec));
      return new StubResolver({ nameservers, timeoutMs: choice.timeoutMs });
    } catch (e) {
      if (e instanceof NameserverSyntaxError) {
        throw new UsageError(`${command}: --nameserver: ${e.message}`, { cause: e });
      }
      throw e;
    }
  }
  const conf = await readResolvConf();
  return new StubResolver({
    nameservers: conf.nameservers,
    timeoutMs: choice.timeoutMs,
    attempts: conf.attempts,
  });
}
