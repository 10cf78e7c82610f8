/**
 * The dkimd executable: `dkimd <command> [options]`. Everything lives in `lib/cli`.
 *
 * @module
 */
import { main } from "./lib/cli/main.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
