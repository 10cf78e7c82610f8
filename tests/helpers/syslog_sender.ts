/**
 * A process that logs through dkimd's logger with `Syslog yes` to the socket named by its first
 * argument (a stand-in for /dev/log), then exits: run under the service's Deno flags, it shows
 * whether the syslog path works with the permissions `deno task start` has, not a test's -A.
 * It writes where the lines went (`syslog` or `stderr`) to standard output.
 *
 * @module
 */
import { createLogger } from "../../lib/ops/log.ts";

const devLog = Deno.args[0];
if (devLog === undefined) throw new Error("usage: syslog_sender.ts SOCKET [MESSAGE]");
const log = await createLogger(
  { syslog: true, syslogFacility: "mail", syslogName: "dkimd" },
  { devLog, env: () => undefined },
);
log.notice(Deno.args[1] ?? "syslog under the service's flags");
await log.close();
console.log(log.destination);
