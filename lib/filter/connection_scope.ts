/**
 * What the steps of a message (signing, verifying, sealing, the Lua glue) take from the milter
 * connection it came on: the filter's capabilities, the client, the observer, the key cache and
 * the transaction's envelope sender and Lua state. The connection itself is the scope, so the
 * steps live in files of their own without an object more per message (the per-message path
 * was tuned in issue 20).
 *
 * @module
 */
import type { KeyCache } from "../dkim/key_cache.ts";
import type { ConnectInfo } from "../milter/filter.ts";
import type { MilterLogger } from "../milter/logger.ts";
import type { FailureReports } from "./failure_reports.ts";
import type { Runtime } from "./filter_policy.ts";
import type { LuaState } from "./lua_hooks.ts";
import type { FilterObserver } from "./observer.ts";
import { type Transaction, type TransactionEnd, transactionReport } from "./transaction.ts";

/** The filter's capabilities, passed in (DESIGN.md, "Pure core, I/O at the edge"). */
export interface DkimFilterDeps {
  /** The runtime in force; asked once per transaction. */
  readonly runtime: () => Runtime;
  /** Where log lines go. */
  readonly logger: MilterLogger;
  /** This host's name: the authserv-id with `AuthservID HOSTNAME`, and in DKIM-Filter. */
  readonly hostname: string;
  /** The current time in seconds since the epoch (default: the system clock). */
  readonly now?: () => number;
  /** Receives reports for metrics. */
  readonly observer?: FilterObserver;
  /** Imported public keys shared between messages. */
  readonly keyCache?: KeyCache;
  /** Takes the failure reports SendReports sends (RFC 6651); none: no reports. */
  readonly reports?: FailureReports;
}

/** One milter connection, as the steps of its messages see it. */
export interface ConnectionScope {
  /** The filter's capabilities. */
  readonly deps: DkimFilterDeps;
  /** Imported public keys, shared with the other connections. */
  readonly keyCache: KeyCache;
  /** The client and the milter session's agreed options. */
  readonly info: ConnectInfo;
  /** Receives reports for metrics (a no-op when none was given). */
  readonly observer: FilterObserver;
  /** The envelope sender of the transaction in progress. */
  readonly envelopeFrom: string;
  /** The Lua scripts' shared state of the transaction in progress. */
  readonly lua: LuaState;
}

/** Reports the end of a transaction to the observer, which must never break mail flow. */
export function reportEnd(scope: ConnectionScope, tx: Transaction, end: TransactionEnd): void {
  try {
    scope.observer.transaction(transactionReport(tx, end));
  } catch {
    // An observer must never break mail flow.
  }
}
