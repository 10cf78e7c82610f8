/**
 * On-InternalError and On-Security beside Debian's opendkim (issue 18): each filter is made to
 * meet the condition the setting acts on, on the same opendkim.conf and message, and what each
 * did (reply, header changes, quarantine) is compared for every action.
 *
 * - On-InternalError: OpenDKIM applies it to a status libopendkim reports as internal or as a
 *   resource failure (dkimf_libstatus(): DKIM_STAT_INTERNAL, DKIM_STAT_NORESOURCE), as when the
 *   key data of a KeyTable row cannot be loaded at the end of the message. A KeyTable in SQLite
 *   makes both read the row at signing time (dkimd refuses a bad key in a file KeyTable at load).
 *   A row naming a key FILE that is missing is not that: OpenDKIM's mlfi_eoh() answers "error
 *   loading key" with a fixed SMFIS_TEMPFAIL whatever On-InternalError says, where dkimd applies
 *   On-InternalError to it as to every failed data-set lookup (a departure, asserted).
 * - On-Security: OpenDKIM applies it in mlfi_header() when the header block grows past
 *   MaximumHeaders ("too much header data"); dkimd does the same (lib/filter/outcome.ts).
 *
 * The enhanced codes differ by design as in the other On-* comparisons: dkimd's 4.7.1/5.7.1
 * where OpenDKIM says 4.7.0/5.7.0 for a key it cannot load; for the header limit OpenDKIM sends
 * no reply text (the MTA's own), dkimd 451 4.3.4 / 552 5.3.4.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fromLatin1 } from "../../lib/bytes.ts";
import { edit, MESSAGE } from "../helpers/dkim_fixtures.ts";
import { mtaMessage } from "../helpers/mta_message.ts";
import {
  HAVE_OPENDKIM,
  type MilterPair,
  observeBoth,
  type Observed,
  startPair,
} from "../helpers/opendkim_milter.ts";
import { startTableWorld } from "../helpers/table_world.ts";

/** The On-* values of opendkim.conf(5), and the setting left out (its default, tempfail). */
const ACTIONS = ["default", "accept", "reject", "tempfail", "discard", "quarantine"] as const;
type ActionName = typeof ACTIONS[number];

/** `line` (the setting at `action`), none for the default. */
const unlessDefault = (action: ActionName, line: string) => action === "default" ? [] : [line];

/** `message` from 127.0.0.1 (InternalHosts by default: signed) with queue id `qid`. */
const outbound = (message: Uint8Array, qid: string) =>
  mtaMessage(message, { qid, address: "127.0.0.1" });

/** Runs `body` with both filters on `lines`, in `dir`. */
async function withPair(
  dir: string,
  lines: readonly string[],
  body: (pair: MilterPair) => Promise<void>,
): Promise<void> {
  const pair = await startPair(dir, lines);
  try {
    await body(pair);
  } catch (e) {
    throw new Error(`${e}\nopendkim: ${pair.opendkim.log()}\ndkimd: ${pair.dkimd.log()}`, {
      cause: e,
    });
  } finally {
    await pair.stop();
  }
}

/**
 * What On-* `action` does, with `reply` the final reply of reject (its tempfail the same with
 * 4xx), "" for the MTA's own; `quarantined`: whether quarantine adds one. OpenDKIM never
 * quarantines here: smfi_quarantine() fails unless CaptureUnknownErrors (or RedirectFailuresTo)
 * made it ask the MTA for that, and it accepts. dkimd quarantines for On-Security (the departure
 * of On-BadSignature in opendkim_results_test.ts, written in ON_REPLY_CODES of
 * lib/config/settings.ts); for On-InternalError at the end of the header, where nothing can be
 * quarantined yet, it accepts as OpenDKIM does.
 */
function onAction(action: ActionName, reply: string, quarantined = false): Observed {
  switch (action) {
    case "default":
    case "tempfail": {
      const soft = reply.replace(/^550/, "451").replace(/ 5\./, " 4.").replace(/^552/, "451");
      return { final: reply ? `tempfail ${soft}` : "tempfail", changes: [] };
    }
    case "reject":
      return { final: reply ? `reject ${reply}` : "reject", changes: [] };
    case "accept":
      return { final: "accept", changes: [] };
    case "discard":
      return { final: "discard", changes: [] };
    case "quarantine":
      return { final: "accept", changes: quarantined ? ["quarantine"] : [] };
  }
}

/** dkimd's enhanced codes for its On-* replies read as OpenDKIM's (X.7.1 → X.7.0). */
const asOpenDkim = (o: Observed): Observed => ({
  ...o,
  final: o.final.replace(/ ([45])\.7\.1$/, " $1.7.0"),
});

Deno.test({
  name:
    "On-InternalError: a KeyTable row whose key cannot be loaded gets the action in both; a missing key file is a fixed tempfail in OpenDKIM",
  ignore: !HAVE_OPENDKIM,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "dkimd-od18-internal-" });
    try {
      await using world = await startTableWorld("sqlite3", {
        keys: [
          { id: "garbage", domain: "example.com", selector: "rsa", key: "not a private key" },
          { id: "missing", domain: "example.net", selector: "rsa", key: `${dir}/no-such-key.pem` },
        ],
        signing: [["example.com", "garbage"], ["example.net", "missing"]],
      }, { dir, sqliteRelative: true });
      const garbage = outbound(MESSAGE, "GARBAGE");
      const missing = outbound(edit(MESSAGE, "alice@example.com", "alice@example.net"), "MISSING");
      for (const action of ACTIONS) {
        await withPair(dir, [
          "Mode s",
          "RequireSafeKeys no",
          `BaseDirectory ${dir}`,
          `KeyTable ${world.keyTable}`,
          `SigningTable ${world.signingTable}`,
          ...unlessDefault(action, `On-InternalError ${action}`),
        ], async (pair) => {
          const bad = await observeBoth(pair, garbage);
          assert.deepEqual(bad.opendkim, onAction(action, "550 5.7.0"), action);
          assert.deepEqual(asOpenDkim(bad.dkimd), onAction(action, "550 5.7.0"), action);
          // Departure: OpenDKIM's fixed tempfail (no reply text) for a key file it cannot
          // open; dkimd's On-InternalError, as for any data-set lookup that fails.
          const gone = await observeBoth(pair, missing);
          assert.deepEqual(gone.opendkim, { final: "tempfail", changes: [] }, action);
          assert.deepEqual(asOpenDkim(gone.dkimd), onAction(action, "550 5.7.0"), action);
        });
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "On-Security: a header block over MaximumHeaders gets the action in both",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    const big = fromLatin1(`X-Padding: ${"x".repeat(500)}\r\n` + new TextDecoder().decode(MESSAGE));
    const dir = await Deno.makeTempDir({ prefix: "dkimd-od18-security-" });
    try {
      for (const action of ACTIONS) {
        await withPair(dir, [
          "Mode v",
          "MaximumHeaders 400",
          ...unlessDefault(action, `On-Security ${action}`),
        ], async (pair) => {
          const r = await observeBoth(
            pair,
            mtaMessage(big, { qid: "BIG", address: "192.0.2.7", hostname: "mx.example.net" }),
          );
          // OpenDKIM returns the action with no reply text (the MTA's own words and codes);
          // dkimd names the limit: 552 5.3.4 (RFC 3463: message too big for system).
          assert.deepEqual(r.opendkim, onAction(action, ""), action);
          assert.deepEqual(r.dkimd, onAction(action, "552 5.3.4", true), action);
        });
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
