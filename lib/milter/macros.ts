/**
 * The macro store: the macros the MTA sent, kept per stage as libmilter keeps them, so a filter
 * reads them as `smfi_getsymval` would. The MTA sends a stage's macros in a MACRO command just
 * before the command of that stage; a lookup takes the latest stage that defines the name; a
 * command of a stage forgets every later stage's macros (libmilter's `mi_clr_macros`), and the
 * end of a transaction forgets the transaction's stages.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MacroStore } from "./macros.ts";
 * import { SMFIC_CONNECT, SMFIC_MAIL, SMFIM_CONNECT } from "./constants.ts";
 * const macros = new MacroStore();
 * macros.receive(SMFIC_CONNECT, [["j", "mx.example.net"], ["{daemon_name}", "smtpd"]]);
 * macros.receive(SMFIC_MAIL, [["{auth_type}", "PLAIN"], ["j", "relay.example.net"]]);
 * assert.equal(macros.get("{auth_type}"), "PLAIN");
 * assert.equal(macros.get("auth_type"), "PLAIN");
 * assert.equal(macros.get("j"), "relay.example.net"); // the later stage wins
 * macros.endTransaction();
 * assert.equal(macros.get("j"), "mx.example.net");
 * macros.enter(SMFIM_CONNECT);
 * assert.equal(macros.get("daemon_name"), "smtpd"); // a stage keeps its own macros
 * ```
 *
 * @module
 */

import type { MacroPair } from "./command.ts";
import {
  MACRO_STAGE_OF_COMMAND,
  SMFIM_CONNECT,
  SMFIM_DATA,
  SMFIM_ENVFROM,
  SMFIM_ENVRCPT,
  SMFIM_EOH,
  SMFIM_EOM,
  SMFIM_HELO,
} from "./constants.ts";
import type { MacroReader } from "./filter.ts";

// Macro stages, in libmilter's order (its ctx_mac_ptr indices equal the SMFIM_* numbers).
const STAGE_COUNT = 7;
// The order stages happen in, for "latest stage wins" lookups.
const LOOKUP_ORDER = [
  SMFIM_EOM,
  SMFIM_EOH,
  SMFIM_DATA,
  SMFIM_ENVRCPT,
  SMFIM_ENVFROM,
  SMFIM_HELO,
  SMFIM_CONNECT,
];
// Stages that belong to one transaction, cleared when it ends.
const TRANSACTION_STAGES = [SMFIM_ENVFROM, SMFIM_ENVRCPT, SMFIM_DATA, SMFIM_EOM, SMFIM_EOH];

function macroKey(name: string): string {
  return name.length > 2 && name.startsWith("{") && name.endsWith("}") ? name.slice(1, -1) : name;
}

/**
 * One connection's macros, per stage. The session stores each MACRO command with
 * {@link MacroStore.receive}, and tells the store where the connection is with
 * {@link MacroStore.enter}, {@link MacroStore.endTransaction} and {@link MacroStore.clear}; the
 * filter only reads, through {@link MacroReader}.
 */
export class MacroStore implements MacroReader {
  // Per stage, names (without braces) and values in turn: a stage holds a few macros, and the
  // MTA sends a stage's anew before each command of a message.
  #stages: Array<string[] | undefined> = new Array(STAGE_COUNT);

  /**
   * Keeps the macros of a MACRO command sent for the command byte `forCommand` (`SMFIC_*`),
   * replacing that stage's earlier ones. Returns false, keeping nothing, when that command has
   * no macro stage.
   */
  receive(forCommand: number, pairs: readonly MacroPair[]): boolean {
    const stage = MACRO_STAGE_OF_COMMAND.get(forCommand);
    if (stage === undefined) return false;
    const flat = new Array<string>(pairs.length * 2);
    for (let i = 0; i < pairs.length; i++) {
      flat[2 * i] = macroKey(pairs[i][0]);
      flat[2 * i + 1] = pairs[i][1];
    }
    this.#stages[stage] = flat;
    return true;
  }

  /**
   * A command of `stage` (`SMFIM_*`) arrived: forgets the macros of every stage after it, as
   * libmilter's `mi_clr_macros(ctx, index + 1)` does, and keeps those just sent for it.
   */
  enter(stage: number): void {
    for (let s = stage + 1; s < STAGE_COUNT; s++) this.#stages[s] = undefined;
  }

  /** The transaction ended (end of message or abort): forgets the macros of its stages. */
  endTransaction(): void {
    for (const s of TRANSACTION_STAGES) this.#stages[s] = undefined;
  }

  /** The connection ended: forgets every macro. */
  clear(): void {
    this.#stages = new Array(STAGE_COUNT);
  }

  /** The value of a macro, from the latest stage that defines it, or undefined. */
  get(name: string): string | undefined {
    const key = macroKey(name);
    for (const s of LOOKUP_ORDER) {
      const flat = this.#stages[s];
      if (!flat) continue;
      // The last definition of a name in one MACRO command wins, as it did in a Map.
      for (let i = flat.length - 2; i >= 0; i -= 2) if (flat[i] === key) return flat[i + 1];
    }
    return undefined;
  }
}
