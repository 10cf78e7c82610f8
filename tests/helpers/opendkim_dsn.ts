/**
 * Debian's `opendkim` (built with OpenDBX) signing from a KeyTable and SigningTable held in a
 * database (`dsn:pgsql://`, `dsn:mysql://`, `dsn:sqlite3://`), through its test mode
 * (`opendkim -x CONF -t FILE`): which d= and s= it signed a message with, so dkimd's answer
 * for the same configuration and rows can be compared with OpenDKIM's, row by row.
 *
 * @module
 */
import { fromUtf8 } from "../../lib/bytes.ts";
import { PEER_PROGRAMS, PEER_TIMEOUT_MS } from "./peers.ts";

/** What OpenDKIM did with one message. */
export interface OpenDkimSigning {
  /** The d= of the signature it added, or undefined when it added none. */
  readonly domain?: string;
  /** The s= of that signature. */
  readonly selector?: string;
  /** Its output (stdout and stderr), for messages. */
  readonly output: string;
}

/**
 * Runs `opendkim -t` on `message` in `dir` (its working directory, where a
 * `dsn:sqlite3://%/FILE` path is found) with `lines` (KeyTable and SigningTable as dsn: data
 * sets, plus anything else) added to a signing configuration.
 */
export async function signWithOpenDkimDsn(
  dir: string,
  lines: readonly string[],
  message: Uint8Array,
): Promise<OpenDkimSigning> {
  const conf = `${dir}/opendkim-dsn.conf`;
  const file = `${dir}/message.eml`;
  await Deno.writeTextFile(
    conf,
    [
      "# Written by tests/helpers/opendkim_dsn.ts for one opendkim -t run.",
      "Mode s",
      "Syslog no",
      // Keys live in temporary directories, which OpenDKIM calls unsafe.
      "RequireSafeKeys no",
      ...lines,
      "",
    ].join("\n"),
  );
  await Deno.writeFile(file, message);
  const out = await new Deno.Command(PEER_PROGRAMS.opendkim, {
    args: ["-x", conf, "-t", file],
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(PEER_TIMEOUT_MS),
  }).output();
  const output = fromUtf8(out.stdout) + fromUtf8(out.stderr);
  const field = /DKIM-Signature:[\s\S]*/.exec(fromUtf8(out.stdout))?.[0];
  if (!field) return { output };
  const tag = (name: string) =>
    new RegExp(`(?:^|;)\\s*${name}=([^;]*)`).exec(field.replace(/^DKIM-Signature:/, ""))?.[1]
      .replace(/\s+/g, "");
  return { domain: tag("d"), selector: tag("s"), output };
}
