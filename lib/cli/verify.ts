/**
 * `dkimd verify`: verifies every DKIM signature of a message from a file or standard input and
 * prints the Authentication-Results value, or JSON.
 *
 * @module
 */
import { PARTIAL_BODY_RESULTS } from "../dkim/acceptance.ts";
import { formatAuthResults } from "../dkim/auth_results.ts";
import { MessageSyntaxError } from "../dkim/header.ts";
import type { Verdict } from "../dkim/result.ts";
import { verifyMessage } from "../dkim/verify.ts";
import { intFlag, parseCommandArgs, UsageError } from "./args.ts";
import { notAMessage, readMessage } from "./input.ts";
import { makeResolver } from "./resolver.ts";

/** The help text of `dkimd verify`. */
export const VERIFY_USAGE = `Usage: dkimd verify [options] [FILE|-]

Verifies every DKIM-Signature of the message in FILE (or standard input) and prints the
Authentication-Results value (RFC 8601), one dkim= result per signature.
Exit status: 0 when at least one signature passes, 1 when none does or there is none,
2 on a usage or input error.

Options:
      --nameserver SPEC     DNS server(s) to ask: IP, IP@PORT, [IPv6]:PORT, or a comma
                            list (default: /etc/resolv.conf); may be repeated
      --test-keys FILE      take key records from FILE (OpenDKIM's TestPublicKeys
                            format: "name record" per line) instead of DNS
      --timeout SECONDS     time for each key lookup (default 5)
      --json                print a JSON array, one object per signature
      --authserv-id ID      the authserv-id to print (default: this host's name)
      --allow-sha1          accept rsa-sha1 signatures (refused by RFC 8301)
      --minimum-key-bits N  RSA keys below N bits give "policy" (default 1024)
      --max-signatures N    verify at most N signatures (default 3)
      --partial-body-result policy|pass
                            the result of a valid signature whose l= leaves body
                            bytes unsigned (default policy; pass is OpenDKIM's)
      --strict-headers      give "policy", not "pass", to a message breaking RFC 5322
                            section 3.6's field counts (StrictHeaders); a second From
                            field always does
  -h, --help                show this help
`;

/** Runs `dkimd verify`; resolves to the exit status. */
export async function runVerify(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs("verify", args, {
    nameserver: { type: "string", multiple: true },
    "test-keys": { type: "string" },
    timeout: { type: "string" },
    json: { type: "boolean" },
    "authserv-id": { type: "string" },
    "allow-sha1": { type: "boolean" },
    "minimum-key-bits": { type: "string" },
    "max-signatures": { type: "string" },
    "partial-body-result": { type: "string" },
    "strict-headers": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(VERIFY_USAGE);
    return 0;
  }
  const timeout = intFlag("verify", "timeout", values.timeout, 1);
  const partial = values["partial-body-result"];
  const partialBodyResult = PARTIAL_BODY_RESULTS.find((r) => r === partial);
  if (partial !== undefined && partialBodyResult === undefined) {
    throw new UsageError(
      `verify: --partial-body-result needs "policy" or "pass", not "${partial}"`,
    );
  }
  const resolver = await makeResolver("verify", {
    nameservers: values.nameserver,
    testKeys: values["test-keys"],
    timeoutMs: timeout === undefined ? undefined : timeout * 1000,
  });
  const input = await readMessage("verify", positionals[0]);
  let verdicts: Verdict[];
  try {
    verdicts = await verifyMessage(input.bytes, {
      resolver,
      allowSha1: values["allow-sha1"],
      minimumKeyBits: intFlag("verify", "minimum-key-bits", values["minimum-key-bits"], 0),
      maxSignatures: intFlag("verify", "max-signatures", values["max-signatures"], 1),
      partialBodyResult,
      strictHeaders: values["strict-headers"],
    });
  } catch (e) {
    if (e instanceof MessageSyntaxError) throw notAMessage("verify", positionals[0], e);
    throw e;
  }
  if (values.json) {
    console.log(JSON.stringify(verdicts.map(toJson), null, 2));
  } else {
    const id = values["authserv-id"] ?? Deno.hostname();
    console.log(formatAuthResults(id, verdicts).replaceAll("\r\n", "\n"));
  }
  return verdicts.some((v) => v.result === "pass") ? 0 : 1;
}

/** The JSON form of a verdict: plain fields only, no bytes. */
export function toJson(v: Verdict): Record<string, unknown> {
  return {
    result: v.result,
    reason: v.reason ?? null,
    domain: v.domain ?? null,
    selector: v.selector ?? null,
    identity: v.identity ?? null,
    algorithm: v.algorithm ?? null,
    keyBits: v.key?.bits || null,
    testing: v.key?.testing ?? false,
    headers: v.signature?.headers ?? null,
    canonicalization: v.signature
      ? `${v.signature.headerCanonicalization}/${v.signature.bodyCanonicalization}`
      : null,
    bodyLength: v.signature?.length ?? null,
    unsignedBodyBytes: v.unsignedBodyBytes ?? null,
    timestamp: v.signature?.timestamp ?? null,
    expiration: v.signature?.expiration ?? null,
  };
}
