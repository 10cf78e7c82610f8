/**
 * Command dispatch for the `dkimd` executable.
 *
 * @module
 */
import { HeldReload } from "../ops/held_reload.ts";
import { VERSION } from "../version.ts";
import { UsageError } from "./args.ts";

const USAGE = `dkimd ${VERSION}: DKIM signing and verifying (RFC 6376, 8463, 8301)

Usage: dkimd <command> [options]
       dkimd [-x FILE] [-f] [-p SOCKET] [-P PIDFILE] [-u USER] [-n]   (as opendkim)

Commands:
  serve           run the milter (the default; OpenDKIM's flags work too)
  sign            sign a message (file or stdin) and print it with its DKIM-Signature
  verify          verify a message's signatures and print Authentication-Results
  arc seal        add the next ARC set (RFC 8617) to a forwarded message
  genkey          make a key pair: SELECTOR.private and the DNS record SELECTOR.txt
  testkey         check a published key record against its private key
  rotate          rotate keys: publish by DNS UPDATE, prove, switch the KeyTable, revoke
  install         write the systemd unit, sysusers/tmpfiles entries and an example config
  check-config    load a configuration as the server would; print settings, warnings
  explain         say whether mail from an address would be signed, and why
  config convert  print a configuration as YAML
  arc verify      verify a message's ARC chain (RFC 8617) and print arc=...
  version         print the version

Run "dkimd <command> --help" for a command's options.
`;

type Command = (args: readonly string[]) => Promise<number>;

// Flags that mean the same at the top level as for opendkim: version and help.
const TOP_LEVEL_FLAGS = new Set(["--version", "-V", "--help", "-h"]);

// Each command's module loads when it runs, so the service holds none of the others' code (nor
// the npm `yaml` package that `config convert` needs): every module loaded stays in memory.
const COMMANDS: Record<string, Command> = {
  serve: async (a) => {
    // Before serve.ts and its module graph load, and the configuration after them: a reload
    // signal meanwhile must not end the service (`held_reload.ts`); runServe acts on it.
    const held = new HeldReload();
    try {
      return await (await import("./serve.ts")).runServe(a, held);
    } finally {
      held.release();
    }
  },
  sign: async (a) => (await import("./sign.ts")).runSign(a),
  verify: async (a) => (await import("./verify.ts")).runVerify(a),
  "check-config": async (a) => (await import("./check_config.ts")).runCheckConfig(a),
  config: async (a) => (await import("./check_config.ts")).runConfig(a),
  explain: async (a) => (await import("./explain.ts")).runExplain(a),
  genkey: async (a) => (await import("./genkey.ts")).runGenkey(a),
  testkey: async (a) => (await import("./testkey.ts")).runTestkey(a),
  rotate: async (a) => (await import("./rotate.ts")).runRotate(a),
  install: async (a) => (await import("./install.ts")).runInstall(a),
  arc: async (a) => (await import("./arc.ts")).runArc(a),
};

/**
 * Runs the command named by `args[0]` and resolves to the process exit status: 0 on success,
 * 1 for a negative answer (such as no passing signature), 2 for a usage or input error. Errors
 * are printed as one line on standard error, never as a stack trace.
 */
export async function main(args: readonly string[]): Promise<number> {
  // No command, or OpenDKIM's flags (`dkimd -x /etc/opendkim.conf -f`): serve, as opendkim does.
  const serving = args.length === 0 || (args[0].startsWith("-") && !TOP_LEVEL_FLAGS.has(args[0]));
  const [command, ...rest] = serving ? ["serve", ...args] : args;
  switch (command) {
    case "version":
    case "--version":
    case "-V":
      console.log(`dkimd ${VERSION}`);
      return 0;
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return 0;
  }
  const run = COMMANDS[command];
  if (!run) {
    console.error(`dkimd: unknown command "${command}"; run "dkimd --help" for the list`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`dkimd ${e.message}`);
      return 2;
    }
    const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    console.error(`dkimd ${command}: internal error: ${text}`);
    return 2;
  }
}
