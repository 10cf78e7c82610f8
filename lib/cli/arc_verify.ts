/**
 * `dkimd arc verify`: verifies the ARC chain (RFC 8617 §5.2) of a message from a file or standard
 * input and prints `arc=none|pass|fail`, or JSON.
 *
 * @module
 */
import { type ArcVerdict, verifyArcMessage } from "../arc/verify.ts";
import { MessageSyntaxError } from "../dkim/header.ts";
import { intFlag, parseCommandArgs } from "./args.ts";
import { notAMessage, readMessage } from "./input.ts";
import { makeResolver } from "./resolver.ts";

/** The help text of `dkimd arc verify`. */
export const ARC_VERIFY_USAGE = `Usage: dkimd arc verify [options] [FILE|-]

Verifies the ARC chain (RFC 8617) of the message in FILE (or standard input) and prints
arc=none, arc=pass or arc=fail, with the reason of a failure.
Exit status: 0 when the chain passes, 1 when it fails or there is none, 2 on a usage or
input error.

Options:
      --nameserver SPEC     DNS server(s) to ask: IP, IP@PORT, [IPv6]:PORT, or a comma
                            list (default: /etc/resolv.conf); may be repeated
      --test-keys FILE      take key records from FILE (OpenDKIM's TestPublicKeys
                            format: "name record" per line) instead of DNS
      --timeout SECONDS     time for each key lookup (default 5)
      --minimum-key-bits N  RSA keys below N bits fail the chain (default 1024)
      --json                print a JSON object: result, instances, reason, oldestPass
  -h, --help                show this help
`;

/** Runs `dkimd arc verify`; resolves to the exit status. */
export async function runArcVerify(args: readonly string[]): Promise<number> {
  const command = "arc verify";
  const { values, positionals } = parseCommandArgs(command, args, {
    nameserver: { type: "string", multiple: true },
    "test-keys": { type: "string" },
    timeout: { type: "string" },
    "minimum-key-bits": { type: "string" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(ARC_VERIFY_USAGE);
    return 0;
  }
  const timeout = intFlag(command, "timeout", values.timeout, 1);
  const minimumKeyBits = intFlag(command, "minimum-key-bits", values["minimum-key-bits"], 0);
  const resolver = await makeResolver(command, {
    nameservers: values.nameserver,
    testKeys: values["test-keys"],
    timeoutMs: timeout === undefined ? undefined : timeout * 1000,
  });
  const input = await readMessage(command, positionals[0]);
  let verdict: ArcVerdict;
  try {
    verdict = await verifyArcMessage(input.bytes, { resolver, minimumKeyBits });
  } catch (e) {
    if (e instanceof MessageSyntaxError) throw notAMessage(command, positionals[0], e);
    throw e;
  }
  if (values.json) {
    console.log(JSON.stringify(arcVerdictJson(verdict), null, 2));
  } else {
    console.log(arcResultText(verdict));
  }
  return verdict.result === "pass" ? 0 : 1;
}

/** The one-line form: `arc=pass header.oldest-pass=0`, or `arc=fail (reason)`. */
export function arcResultText(v: ArcVerdict): string {
  if (v.result === "pass") return `arc=pass header.oldest-pass=${v.oldestPass ?? 0}`;
  return v.reason === undefined ? `arc=${v.result}` : `arc=${v.result} (${v.reason})`;
}

/** The JSON form of a verdict: plain fields only, no bytes. */
export function arcVerdictJson(v: ArcVerdict): Record<string, unknown> {
  return {
    result: v.result,
    instances: v.instances,
    reason: v.reason ?? null,
    oldestPass: v.oldestPass ?? null,
    temporary: v.temporary ?? false,
    sets: v.sets.map((s) => ({
      instance: s.instance,
      cv: s.seal.cv,
      amsDomain: s.ams.domain,
      amsSelector: s.ams.selector,
      sealDomain: s.seal.domain,
      sealSelector: s.seal.selector,
      algorithm: s.seal.algorithm.name,
    })),
  };
}
