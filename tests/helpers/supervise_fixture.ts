/**
 * A supervisor in a process of its own, for tests that signal it: `deno run -A
 * supervise_fixture.ts JSON`, where JSON holds the {@link supervise} options that are data.
 * Log lines go to standard error as plain lines; the exit status is supervise()'s.
 *
 * @module
 */
import { errorMessage } from "../../lib/error_message.ts";
import { createLogger } from "../../lib/ops/log.ts";
import { supervise } from "../../lib/ops/supervisor.ts";

const options = JSON.parse(Deno.args[0]);
const logger = await createLogger(
  { syslog: false, syslogFacility: "mail", syslogName: "dkimd" },
  { env: () => undefined },
);
let status: number;
try {
  status = await supervise({ ...options, logger });
} catch (e) {
  logger.error(errorMessage(e));
  status = 1;
}
await logger.close();
Deno.exit(status);
