/**
 * Command dispatch for the `dkimd` executable.
 *
 * @module
 */
import { VERSION } from "../version.ts";

const USAGE = `dkimd ${VERSION}: DKIM signing and verifying (RFC 6376, 8463, 8301)

Usage: dkimd <command> [options]

Commands:
  version          print the version and exit

Run "dkimd <command> --help" for a command's options.
`;

/**
 * Runs the command named by `args[0]` and resolves to the process exit status: 0 on success,
 * 2 on a usage error.
 */
export async function main(args: readonly string[]): Promise<number> {
  const [command] = args;
  switch (command) {
    case "version":
    case "--version":
    case "-V":
      console.log(`dkimd ${VERSION}`);
      return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return 0;
    default:
      console.error(`dkimd: unknown command "${command}"; run "dkimd --help" for the list`);
      return await Promise.resolve(2);
  }
}
