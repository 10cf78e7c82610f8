/**
 * `dkimd arc seal`: adds the next ARC set (RFC 8617 §5.1) to a message from a file or standard
 * input and writes it to standard output with the new set on top.
 *
 * @module
 */
import { concat, CRLF } from "../bytes.ts";
import { ArcSealError, type ChainValidation, sealMessage } from "../arc/seal.ts";
import { ownAuthResults } from "../arc/seal_input.ts";
import { MessageSyntaxError, splitMessage } from "../dkim/header.ts";
import { verifyArcMessage } from "../arc/verify.ts";
import { arcResultText } from "./arc_verify.ts";
import { parseCommandArgs, UsageError } from "./args.ts";
import { makeResolver } from "./resolver.ts";
import { crlfToLf, notAMessage, readMessage, writeStdout } from "./input.ts";
import { loadSigningKeyFile } from "./signing_key_file.ts";

/** The help text of `dkimd arc`. */
export const ARC_USAGE = `Usage: dkimd arc seal -d DOMAIN -s SELECTOR -k KEYFILE [options] [FILE|-]
       dkimd arc verify [--json] [--nameserver IP[:PORT]] [--test-keys FILE] [FILE]

ARC (RFC 8617) for forwarded mail.

  verify check the message's ARC chain and print arc=... (see dkimd arc verify --help)
  seal   add the next ARC set (ARC-Seal, ARC-Message-Signature,
         ARC-Authentication-Results) to the message in FILE (or standard input)
         and write it to standard output with the new set on top

Options of seal:
  -d, --domain D         sealing domain (d=)
  -s, --selector S       selector (s=)
  -k, --key FILE         private key, RSA or Ed25519 (as for dkimd sign)
      --authserv-id ID   the authserv-id of the Authentication-Results fields to
                         carry into the ARC-Authentication-Results (default: this
                         host's name); none found gives "none"
      --cv STATUS        the chain as received: none (no ARC sets), pass or fail
                         (default: none without ARC sets, else dkimd verifies the
                         chain and carries its arc= result into the new set)
      --nameserver SPEC  DNS server(s) for that verification (default: resolv.conf)
      --test-keys FILE   key records from FILE instead of DNS, as for verify
  -h, --help             show this help
`;

const CV_VALUES: readonly ChainValidation[] = ["none", "pass", "fail"];

/** Runs `dkimd arc SUBCOMMAND`; resolves to the exit status. */
export async function runArc(args: readonly string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    console.log(ARC_USAGE);
    return sub === undefined ? 2 : 0;
  }
  if (sub === "seal") return await runArcSeal(rest);
  if (sub === "verify") return await (await import("./arc_verify.ts")).runArcVerify(rest);
  throw new UsageError(`arc: unknown subcommand "${sub}" (see dkimd arc --help)`);
}

async function runArcSeal(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs("arc seal", args, {
    domain: { type: "string", short: "d" },
    selector: { type: "string", short: "s" },
    key: { type: "string", short: "k" },
    "authserv-id": { type: "string" },
    cv: { type: "string" },
    nameserver: { type: "string", multiple: true },
    "test-keys": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(ARC_USAGE);
    return 0;
  }
  for (const flag of ["domain", "selector", "key"] as const) {
    if (values[flag] === undefined) {
      throw new UsageError(`arc seal: --${flag} is required (see dkimd arc --help)`);
    }
  }
  const cv = CV_VALUES.find((c) => c === values.cv);
  if (values.cv !== undefined && cv === undefined) {
    throw new UsageError(`arc seal: --cv needs none, pass or fail, not "${values.cv}"`);
  }
  const key = await loadSigningKeyFile("arc seal", values.key!);
  const input = await readMessage("arc seal", positionals[0]);
  const authservId = values["authserv-id"] ?? Deno.hostname();
  let fields;
  try {
    const message = splitMessage(input.bytes);
    const hasArc = message.fields.some((f) => /^arc-/i.test(f.name));
    let results = ownAuthResults(message.fields, authservId);
    let chain: ChainValidation = cv ?? "none";
    if (cv === undefined && hasArc) {
      // RFC 8617 §5.1: the sealer validates the chain as received; its arc= result goes into
      // the new ARC-Authentication-Results beside the others.
      const resolver = await makeResolver("arc seal", {
        nameservers: values.nameserver,
        testKeys: values["test-keys"],
      });
      const verdict = await verifyArcMessage(input.bytes, { resolver });
      if (verdict.temporary) {
        console.error(
          `dkimd arc seal: cannot validate the chain now (${verdict.reason}); not sealing`,
        );
        return 1;
      }
      chain = verdict.result === "pass" ? "pass" : "fail";
      const arc = arcResultText(verdict);
      results = results === "none" ? arc : `${results}; ${arc}`;
    }
    fields = await sealMessage(input.bytes, {
      domain: values.domain!,
      selector: values.selector!,
      key,
      authservId,
      results,
      cv: chain,
    });
  } catch (e) {
    if (e instanceof ArcSealError) throw new UsageError(`arc seal: ${e.message}`, { cause: e });
    if (e instanceof MessageSyntaxError) throw notAMessage("arc seal", positionals[0], e);
    throw e;
  }
  const header = concat(fields.flatMap((f) => [f.raw, CRLF]));
  await writeStdout(concat([input.unixLineEnds ? crlfToLf(header) : header, input.original]));
  return 0;
}
