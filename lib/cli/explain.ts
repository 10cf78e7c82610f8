/**
 * `dkimd explain`: the sign-or-verify decision the server would take for a sender and client,
 * and why, step by step: the answer to "why is my mail not signed?".
 *
 * @module
 */
import { asciiLower } from "../bytes.ts";
import { clientLabel, decide } from "../filter/decide.ts";
import { parseAddress } from "../filter/sender.ts";
import { formatOrigin } from "../policy/origin.ts";
import { parseCommandArgs, UsageError } from "./args.ts";
import { errorMessage } from "../error_message.ts";
import { BUILTIN_CONFIG, loadRuntime, RuntimeConfigError } from "./runtime.ts";
import { EXIT_CONFIG } from "./serve.ts";
import { describeKeyRotation, rotationInUse } from "./rotation_summary.ts";
import { readKeyAges } from "../ops/key_ages.ts";

/** The help text of `dkimd explain`. */
export const EXPLAIN_USAGE = `Usage: dkimd explain [--config FILE] --from ADDRESS [options]

Prints what the server would do with a message from ADDRESS (the From field) and why: the
host-list rule and SigningTable line that matched (or why none did), the AuthorizedSigners
entry that allowed or refused an --auth-user, the key, selector and algorithm, and the header
fields that would be signed.

Options:
  -x, --config FILE     the configuration (default: the built-in one)
      --from ADDRESS    the From address (required)
      --client-ip IP    the SMTP client's address (default 127.0.0.1)
      --client-name N   the SMTP client's host name (default: none)
      --auth-user NAME  the client authenticated as NAME (sets {auth_type} and
                        {auth_authen}, which AuthorizedSigners checks)
      --daemon NAME     the MTA daemon name ({daemon_name}), for MTA
      --macro NAME=VAL  another macro, for MacroList (repeatable)
      --rcpt ADDRESS    a recipient, for DontSignMailTo (repeatable)
`;

/**
 * Runs `dkimd explain`; resolves to 0 when the message would be signed or verified, 1 when left
 * alone or refused a signature (AuthorizedSigners).
 */
export async function runExplain(args: readonly string[]): Promise<number> {
  const { values } = parseCommandArgs("explain", args, {
    config: { type: "string", short: "x" },
    from: { type: "string" },
    "client-ip": { type: "string" },
    "client-name": { type: "string" },
    "auth-user": { type: "string" },
    daemon: { type: "string" },
    macro: { type: "string", multiple: true },
    rcpt: { type: "string", multiple: true },
    help: { type: "boolean", short: "h" },
  }, 0);
  if (values.help) {
    console.log(EXPLAIN_USAGE);
    return 0;
  }
  if (values.from === undefined) {
    throw new UsageError("explain: --from is required (see dkimd explain --help)");
  }
  const sender = parseAddress(values.from);
  if (!sender) throw new UsageError(`explain: --from "${values.from}" has no address user@domain`);
  const macros = new Map<string, string>();
  if (values["auth-user"]) {
    macros.set("auth_type", "PLAIN");
    macros.set("auth_authen", values["auth-user"]);
  }
  if (values.daemon) macros.set("daemon_name", values.daemon);
  for (const m of values.macro ?? []) {
    const eq = m.indexOf("=");
    if (eq <= 0) throw new UsageError(`explain: --macro "${m}" is not NAME=VALUE`);
    macros.set(m.slice(0, eq).replace(/^\{|\}$/g, ""), m.slice(eq + 1));
  }
  let runtime;
  try {
    runtime = await loadRuntime(values.config);
  } catch (e) {
    if (e instanceof RuntimeConfigError) {
      for (const p of e.problems) console.error(`dkimd: ${p}`);
      return EXIT_CONFIG;
    }
    throw e;
  }
  const { loaded } = runtime;
  const client = {
    hostname: values["client-name"] ?? "",
    address: values["client-ip"] ?? "127.0.0.1",
  };
  let decision;
  try {
    decision = await decide({
      policy: loaded,
      client,
      macros: (name) => macros.get(name.replace(/^\{|\}$/g, "")),
      sender: { ...sender, field: "From" },
      recipients: (values.rcpt ?? []).map((r) => asciiLower(r.replace(/^<|>$/g, ""))),
    });
  } catch (e) {
    // A data set in a database that cannot answer, or a bad row in it: what the server does.
    console.log(`Configuration: ${values.config ?? BUILTIN_CONFIG}`);
    console.log(`Message from ${sender.user}@${sender.domain} through ${clientLabel(client)}:`);
    console.log(`  - ${errorMessage(e)}`);
    console.log(`Decision: On-InternalError ${loaded.config.actions.internalError}`);
    return 1;
  } finally {
    // Database data sets were asked once each; their connections end here.
    await Promise.all(loaded.tables.map((t) => t.close().catch(() => {})));
  }
  console.log(`Configuration: ${values.config ?? BUILTIN_CONFIG}`);
  console.log(`Message from ${sender.user}@${sender.domain} through ${clientLabel(client)}:`);
  for (const line of decision.why) console.log(`  - ${line}`);
  switch (decision.kind) {
    case "sign": {
      // The signing key's age and the rotation it is in, when rotation is in use.
      const ages = loaded.keyTable && !loaded.keyTable.keyed
        ? await readKeyAges(loaded.config, loaded.keyTable)
        : undefined;
      const omit = new Set(loaded.headers.omit.map(asciiLower));
      const fields = loaded.headers.sign.filter((h) => !omit.has(asciiLower(h)));
      console.log("Decision: SIGN");
      for (const s of decision.signers) {
        console.log(
          `  d=${s.domain} s=${s.selector} a=${s.algorithm}${
            s.identity ? ` i=${s.identity}` : ""
          } ` +
            `(${s.key.type} ${s.key.bits}-bit key, ${formatOrigin(s.keyOrigin)})`,
        );
        console.log(`  DNS record: ${s.selector}._domainkey.${s.domain}`);
        const key = ages && rotationInUse(loaded.config, ages)
          ? ages.keys.find((k) => k.domain === s.domain && k.selector === s.selector)
          : undefined;
        if (key && ages) {
          console.log(
            `  key "${key.keyName}": ${
              describeKeyRotation(key, ages, loaded.config, Math.floor(Date.now() / 1000))
            }`,
          );
        }
      }
      const c = loaded.config.canonicalization;
      console.log(`  c=${c.header}/${c.body}; fields signed when present: ${fields.join(":")}`);
      if (loaded.headers.oversign.length > 0) {
        console.log(`  oversigned: ${loaded.headers.oversign.join(":")}`);
      }
      return 0;
    }
    case "verify":
      console.log("Decision: VERIFY (not signed)");
      return 0;
    case "skip":
      console.log("Decision: LEAVE ALONE (neither signed nor verified)");
      return 1;
    case "unauthorized":
      console.log(`  - ${decision.refusal}`);
      console.log(
        `Decision: NOT SIGNED (On-UnauthorizedSigner ${decision.action}${
          decision.action === "accept" ? ": passed on unsigned" : ""
        })`,
      );
      return 1;
  }
}
