/**
 * A test {@link Filter} that records every callback as a line of text and answers as its
 * `behaviour` says (continue and an empty end of message by default), so tests can script a
 * filter's reactions, throws included, and check what the session called.
 *
 * @module
 */

import { latin1 } from "../../lib/bytes.ts";
import type {
  ConnectInfo,
  EndOfMessage,
  Filter,
  FilterConnection,
  FilterNeeds,
  MacroReader,
  MaybeAction,
  MaybeBodyAction,
} from "../../lib/milter/filter.ts";

/**
 * Scripted answers; each receives the callback's arguments and may throw. Header values and body
 * chunks are lent as to any filter (FilterConnection, "Borrowed bytes"): a behaviour that keeps
 * one past its call keeps a copy.
 */
export interface Behaviour {
  connect?(info: ConnectInfo, macros: MacroReader): void | Promise<void>;
  helo?(name: string, macros: MacroReader): MaybeAction;
  envFrom?(args: readonly string[], macros: MacroReader): MaybeAction;
  envRcpt?(args: readonly string[], macros: MacroReader): MaybeAction;
  header?(name: string, value: Uint8Array, macros: MacroReader): MaybeAction;
  endOfHeaders?(macros: MacroReader): MaybeAction;
  body?(chunk: Uint8Array): MaybeBodyAction;
  endOfMessage?(macros: MacroReader): EndOfMessage | Promise<EndOfMessage>;
}

/**
 * Records calls as `"header Subject: Hi"`-style lines in {@link RecordingFilter.calls}: text made
 * during the call, so the lent bytes themselves are never kept.
 */
export class RecordingFilter implements Filter {
  readonly calls: string[] = [];
  readonly infos: ConnectInfo[] = [];
  readonly needs: FilterNeeds;
  readonly behaviour: Behaviour;

  constructor(needs: FilterNeeds, behaviour: Behaviour = {}) {
    this.needs = needs;
    this.behaviour = behaviour;
  }

  /** The calls recorded since the last `take()`, and forgets them. */
  take(): string[] {
    return this.calls.splice(0);
  }

  async connect(info: ConnectInfo, macros: MacroReader): Promise<FilterConnection> {
    this.calls.push(`connect ${info.hostname} ${info.family} ${info.address} ${info.port}`);
    this.infos.push(info);
    await this.behaviour.connect?.(info, macros);
    const calls = this.calls;
    const b = this.behaviour;
    return {
      helo(name, m) {
        calls.push(`helo ${name}`);
        return b.helo?.(name, m);
      },
      envFrom(args, m) {
        calls.push(`envFrom ${args.join(" ")}`);
        return b.envFrom?.(args, m);
      },
      envRcpt(args, m) {
        calls.push(`envRcpt ${args.join(" ")}`);
        return b.envRcpt?.(args, m);
      },
      header(name, value, m) {
        calls.push(`header ${name}:${latin1(value)}`);
        return b.header?.(name, value, m);
      },
      endOfHeaders(m) {
        calls.push("eoh");
        return b.endOfHeaders?.(m);
      },
      body(chunk) {
        calls.push(`body ${latin1(chunk)}`);
        return b.body?.(chunk);
      },
      endOfMessage(m) {
        calls.push("eom");
        return b.endOfMessage?.(m) ?? { modifications: [], action: "continue" };
      },
      abort() {
        calls.push("abort");
      },
      close() {
        calls.push("close");
      },
    };
  }
}
