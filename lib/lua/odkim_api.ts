/**
 * The `odkim.*` functions of opendkim-lua(3), per hook, over a view of the message the filter
 * passes in ({@link OdkimMessage}); what a script asks for is written down in an
 * {@link OdkimEffects} for the filter to carry out. Each hook gets exactly the functions
 * OpenDKIM 2.11 registers for it (opendkim-lua.c), the globals `ctx`, `SMFIS_*` and `DB_*`, and
 * the values earlier hooks passed on with `odkim.export()`.
 *
 * Matched, quirks included (opendkim.c `dkimf_xs_*`): wrong argument counts and types raise
 * `odkim.NAME(): incorrect argument count|type`; `get_rcpt(ctx, n)` ignores `n` and returns the
 * first recipient (it reads the count from argument 1, the context); `del_header(ctx, name, n)`
 * ignores `n` and deletes the first instance; `add_header` inserts at position 1 of the header;
 * `del_rcpt` adds `Original-Recipient: rfc822;ADDRESS` and returns nil for an address not
 * among the recipients; `add_rcpt` and `del_rcpt` change nothing unless the MTA was asked for
 * recipient changes (OpenDKIM asks only with RedirectFailuresTo; see
 * {@link OdkimMessage.canChangeRecipients}); `set_result(ctx, SMFIS_ACCEPT)` in the final script changes nothing;
 * `sign()` with a key name but no KeyTable raises `odkim.sign(): request requires KeyTable`.
 *
 * Departures, on purpose: `get_dbhandle` answers with the set its code names (OpenDKIM reads
 * the code from the context argument and answers nil for every code); `quarantine` acts whatever the settings (OpenDKIM's call fails, returning
 * nil, unless CaptureUnknownErrors made it ask the MTA for quarantine; dkimd asks for it whenever a
 * final script is configured), and so do `add_rcpt` and `del_rcpt` (OpenDKIM: only with
 * RedirectFailuresTo); `signfor` applies the SigningTable to the address as opendkim-lua(3)
 * says (OpenDKIM 2.11 reads its arguments after popping them: it answers nil and signs nothing);
 * `spam` and `stats`
 * do nothing (no reputation or statistics service); `check_popauth` returns nil (no POPAUTH
 * database); `xtag` in the final script adds its tag to every signature being made and answers how many (as OpenDKIM; in the setup script OpenDKIM crashes once a signature is requested, dkimd answers 0 and adds nothing); `verify` on a message
 * being signed has it verified too, as OpenDKIM; `resign` does as opendkim-lua(3) says (the
 * message is verified, and signed only when it verifies), where Debian's build, lacking
 * `_FFR_RESIGN`, does nothing.
 *
 * @module
 */
import { decorateUserdata, LuaMultiReturn } from "wasmoon";
import type { DataSetLookup } from "../policy/data_set_lookup.ts";
import { type LuaBudget, type LuaScript, runLuaScript } from "./lua_vm.ts";
import { sigBodyHashCode, sigErrorCode } from "./sig_codes.ts";
import type { Verdict } from "../dkim/result.ts";

/** The four hooks of opendkim-lua(3). */
export type LuaHook = "setup" | "screen" | "statistics" | "final";

/** libmilter's `SMFIS_*` numbers, which `odkim.set_result()` takes. */
export const SMFIS = { CONTINUE: 0, REJECT: 1, DISCARD: 2, ACCEPT: 3, TEMPFAIL: 4 } as const;

/** opendkim.c's `DB_*` numbers, which `odkim.get_dbhandle()` takes. */
export const DB_HANDLES = {
  DB_DOMAINS: 1,
  DB_THIRDPARTY: 2,
  DB_DONTSIGNTO: 3,
  DB_MTAS: 4,
  DB_MACROS: 5,
  DB_SIGNINGTABLE: 11,
} as const;

/** The configured policy scripts, by hook (SetupPolicyScript and the others). */
export type PolicyScripts = { readonly [H in LuaHook]?: LuaScript };

/** A value `odkim.export()` passes to later scripts. */
export type LuaExport = string | number | boolean | undefined;

/** One DKIM-Signature field of the message, as the screen and later hooks see it. */
export interface OdkimSignature {
  /** `d=`. */
  readonly domain?: string;
  /** `i=`, or `@` + `d=`. */
  readonly identity?: string;
  /** The verdict, once verification is done (statistics and final). */
  readonly verdict?: Pick<Verdict, "result" | "reason">;
  /** The body length the signer saw: `l=`, else the whole canonical body. */
  readonly bodyLength?: number;
  /** Canonical body bytes the signature covers. */
  readonly canonLength?: number;
}

/** What a script can see of the message; the filter fills it in. */
export interface OdkimMessage {
  /** The header fields as received, values without the leading space. */
  readonly headers: readonly { readonly name: string; readonly value: string }[];
  /** An MTA macro by name (with or without braces). */
  macro(name: string): string | undefined;
  /** The SMTP client. */
  readonly client: { readonly hostname: string; readonly address: string };
  /** The envelope sender, as the MTA gave it. */
  readonly envelopeFrom: string;
  /** The envelope recipients, without angle brackets. */
  readonly recipients: readonly string[];
  /** The sender's domain (From, or SenderHeaders), or "" when none was found. */
  readonly fromDomain: string;
  /** Whether the client is in InternalHosts. */
  readonly internal: boolean;
  /** Whether a KeyTable is configured (`odkim.sign()` with a key name needs one). */
  readonly hasKeyTable: boolean;
  /**
   * Whether recipients can be changed: OpenDKIM asks the MTA for that only with
   * RedirectFailuresTo, and without it `add_rcpt` returns nil and `del_rcpt` changes nothing.
   */
  readonly canChangeRecipients: boolean;
  /** The DKIM-Signature fields (screen and later). */
  readonly signatures: readonly OdkimSignature[];
  /** How many signatures dkimd is making (final, when signing): `odkim.xtag()` counts them. */
  readonly signing?: number;
  /** What earlier hooks exported. */
  readonly exported: ReadonlyMap<string, LuaExport>;
  /** Writes `odkim.log()` lines. */
  log(line: string): void;
  /** The configured data set `DB_*` names, or undefined when it is not set. */
  dbHandle?(which: number): DataSetLookup | undefined;
  /**
   * Opens a data set named as in opendkim.conf (`odkim.db_open()`); rejects with the message
   * the script's error carries. What it opens is closed when the call of the script ends.
   */
  openDataSet?(name: string, caseInsensitive: boolean): Promise<ScriptDataSet>;
  /**
   * Looks up `query.root` as an A record (`odkim.rbl_check()`): the four octets, undefined for
   * none, or a rejection whose message the script gets. `timeoutSeconds` is undefined when the
   * script gave none.
   */
  rblCheck?(name: string, timeoutSeconds: number | undefined): Promise<number[] | undefined>;
  /**
   * Signs as the SigningTable would for `user@domain` (`odkim.signfor()`): how many signatures
   * were added, or undefined without a SigningTable and a KeyTable (the call answers nil).
   * Rejects with the message the script's error carries.
   */
  signFor?(user: string, domain: string, multiple: boolean): Promise<number | undefined>;
  /**
   * Replaces the value of the `n`th field named `name` (from the bottom when negative) in the
   * copy of the header that is signed and verified (`odkim.replace_header()`); false when there
   * is no such field. The message delivered keeps its field.
   */
  replaceHeader?(name: string, n: number, value: string): boolean;
}

/** A data set a script opened with `odkim.db_open()`. */
export interface ScriptDataSet {
  /** Its entries, by key. */
  readonly lookup: DataSetLookup;
  /** Releases what it holds (a database connection); called when the script's call ends. */
  close(): Promise<void>;
}

/** A signature `odkim.sign()` asked for. */
export interface SignRequest {
  /** The KeyTable entry, or undefined for the single key (KeyFile). */
  readonly keyName?: string;
  /** The `i=` value. */
  readonly identity?: string;
  /** The `l=` value. */
  readonly bodyLength?: number;
}

/** The milter result `odkim.set_result()` asked for. */
export type LuaResult = "reject" | "discard" | "accept" | "tempfail";

/** Everything a script asked for, for the filter to carry out. */
export class OdkimEffects {
  /** Signatures requested (setup). */
  readonly sign: SignRequest[] = [];
  /** `odkim.verify()` was called (setup). */
  verify = false;
  /** `odkim.use_ltag()` was called (setup). */
  useLtag = false;
  /** `odkim.resign()` was called (setup). */
  resign = false;
  /** Extension tags for every signature (`odkim.xtag()`). */
  readonly xtags: [string, string][] = [];
  /** The result asked for (setup, final). */
  result?: LuaResult;
  /** The SMTP reply asked for (final). */
  reply?: { readonly rcode: string; readonly xcode: string; readonly text: string };
  /** Values for later scripts. */
  readonly exports = new Map<string, LuaExport>();
  /** Indices of signatures to ignore (screen). */
  readonly ignored = new Set<number>();
  /** Header fields to add, in order (final; `del_rcpt` adds one too). */
  readonly addHeaders: { name: string; value: string }[] = [];
  /** Header field names whose first instance is deleted (final). */
  readonly delHeaders: string[] = [];
  /** Recipients to add (final). */
  readonly addRcpts: string[] = [];
  /** Recipients to remove (final). */
  readonly delRcpts: string[] = [];
  /** The quarantine reason (final). */
  quarantine?: string;
}

/** The functions each hook gets (opendkim-lua.c's `dkimf_lua_lib_*` tables). */
const HOOK_FUNCTIONS: Readonly<Record<LuaHook, readonly string[]>> = {
  setup: [
    "check_popauth",
    "db_check",
    "db_close",
    "db_open",
    "export",
    "get_clienthost",
    "get_clientip",
    "get_dbhandle",
    "get_envfrom",
    "get_fromdomain",
    "get_header",
    "get_mtasymbol",
    "get_rcpt",
    "get_rcptarray",
    "internal_ip",
    "log",
    "rcpt_count",
    "replace_header",
    "resign",
    "set_result",
    "sign",
    "signfor",
    "spam",
    "use_ltag",
    "verify",
    "xtag",
  ],
  screen: [
    "db_check",
    "db_close",
    "db_open",
    "export",
    "get_dbhandle",
    "get_envfrom",
    "get_fromdomain",
    "get_header",
    "get_mtasymbol",
    "get_rcpt",
    "get_rcptarray",
    "get_sigarray",
    "get_sigcount",
    "get_sighandle",
    "log",
    "parse_field",
    "rcpt_count",
    "sig_getdomain",
    "sig_getidentity",
    "sig_ignore",
    "spam",
  ],
  statistics: [
    "export",
    "get_envfrom",
    "get_header",
    "get_mtasymbol",
    "get_rcpt",
    "get_rcptarray",
    "get_sigarray",
    "get_sigcount",
    "get_sighandle",
    "log",
    "parse_field",
    "rbl_check",
    "rcpt_count",
    "sig_bhresult",
    "sig_bodylength",
    "sig_canonlength",
    "sig_getdomain",
    "sig_getidentity",
    "sig_result",
    "stats",
    "spam",
  ],
  final: [
    "add_header",
    "add_rcpt",
    "del_header",
    "del_rcpt",
    "get_clienthost",
    "get_clientip",
    "get_envfrom",
    "get_fromdomain",
    "get_header",
    "get_mtasymbol",
    "get_rcpt",
    "get_rcptarray",
    "get_sigarray",
    "get_sigcount",
    "get_sighandle",
    "log",
    "quarantine",
    "parse_field",
    "rbl_check",
    "rcpt_count",
    "set_reply",
    "set_result",
    "sig_bhresult",
    "sig_bodylength",
    "sig_canonlength",
    "sig_getdomain",
    "sig_getidentity",
    "sig_result",
    "spam",
    "xtag",
  ],
};

/** Functions whose JS side answers with a promise: the Lua wrapper waits for it. */
const ASYNC_FUNCTIONS = ["db_check", "db_close", "db_open", "rbl_check", "signfor"];

/** The header OpenDKIM adds for each recipient `del_rcpt` removes (opendkim.h ORCPTHEADER). */
export const ORIGINAL_RECIPIENT_FIELD = "Original-Recipient";

// Opaque handles: what Lua holds for ctx, a signature and a data set.
class ContextHandle {}
class SignatureHandle {
  constructor(readonly index: number) {}
}
class DataSetHandle {
  constructor(
    readonly lookup: DataSetLookup,
    readonly caseInsensitive: boolean,
    readonly opened?: ScriptDataSet,
  ) {}
}

const isString = (v: unknown) => typeof v === "string" || typeof v === "number";
const str = (v: unknown) => String(v);

/**
 * Runs one hook's script against `message`, resolving to what it asked for; rejects with a
 * LuaRunError (lua_vm.ts) when the script fails or goes over its budget.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileLuaScript } from "./lua_vm.ts";
 * import { runHook } from "./odkim_api.ts";
 * const script = await compileLuaScript("setup.lua", `
 *   if odkim.get_fromdomain(ctx) == "example.com" then odkim.sign(ctx, "k1") end`);
 * const effects = await runHook("setup", script, {
 *   headers: [{ name: "From", value: "a@example.com" }], macro: () => undefined,
 *   client: { hostname: "localhost", address: "127.0.0.1" }, envelopeFrom: "<a@example.com>",
 *   recipients: ["b@example.org"], fromDomain: "example.com", internal: true, hasKeyTable: true,
 *   canChangeRecipients: false,
 *   signatures: [], exported: new Map(), log() {},
 * });
 * assert.deepEqual(effects.sign, [{ keyName: "k1" }]);
 * ```
 */
export async function runHook(
  hook: LuaHook,
  script: LuaScript,
  message: OdkimMessage,
  budget?: LuaBudget,
): Promise<OdkimEffects> {
  const effects = new OdkimEffects();
  const ctx = new ContextHandle();
  const opened: ScriptDataSet[] = [];
  const all = odkimFunctions(message, effects, ctx, opened);
  const odkim: Record<string, unknown> = {};
  // OpenDKIM's functions push an explicit nil; a JS undefined would be no value at all, and
  // `tostring(odkim.f(ctx))` would fail.
  for (const name of HOOK_FUNCTIONS[hook]) {
    const fn = all[name];
    odkim[name] = (...a: unknown[]) => {
      const r = fn(...a);
      return r === undefined ? LuaMultiReturn.from([undefined]) : r;
    };
  }
  const globals: Record<string, unknown> = {
    odkim,
    ctx: decorateUserdata(ctx),
    SMFIS_TEMPFAIL: SMFIS.TEMPFAIL,
    SMFIS_ACCEPT: SMFIS.ACCEPT,
    SMFIS_DISCARD: SMFIS.DISCARD,
    SMFIS_REJECT: SMFIS.REJECT,
  };
  if (hook !== "final") Object.assign(globals, DB_HANDLES);
  for (const [name, value] of message.exported) {
    if (!(name in globals)) globals[name] = value;
  }
  // The promise-returning functions wait in Lua, so scripts call them as OpenDKIM's.
  const wrapped = ASYNC_FUNCTIONS.filter((n) => HOOK_FUNCTIONS[hook].includes(n));
  const prelude = wrapped.length === 0
    ? ""
    : `for _, n in ipairs({${
      wrapped.map((n) => JSON.stringify(n)).join(",")
    }}) do local f = odkim[n]; odkim[n] = function(...) return table.unpack(f(...):await()) end end`;
  try {
    await runLuaScript(script, globals, prelude, budget);
  } finally {
    // OpenDKIM closes them when the Lua state is collected, at the end of the call.
    await Promise.all(opened.map((d) => d.close().catch(() => {})));
  }
  return effects;
}

function odkimFunctions(
  message: OdkimMessage,
  effects: OdkimEffects,
  ctx: ContextHandle,
  opened: ScriptDataSet[],
): Record<string, (...args: unknown[]) => unknown> {
  const fail = (name: string, what: "count" | "type"): never => {
    throw new Error(`odkim.${name}(): incorrect argument ${what}`);
  };
  // Checks the count and that argument 1 is the context, as every dkimf_xs_* does.
  const check = (name: string, args: unknown[], min: number, max = min) => {
    if (args.length < min || args.length > max) fail(name, "count");
    if (min > 0 && args[0] !== ctx) fail(name, "type");
  };
  const sigAt = (name: string, v: unknown): number => {
    if (!(v instanceof SignatureHandle)) fail(name, "type");
    return (v as SignatureHandle).index;
  };
  const sig = (v: unknown, name: string) => message.signatures[sigAt(name, v)];
  const headerAt = (name: string, n: number) => {
    const lower = name.toLowerCase();
    const found = message.headers.filter((h) => h.name.toLowerCase() === lower);
    const i = n < 0 ? found.length + n : n;
    return found[i]?.value;
  };
  const results = (list: unknown[]) => list; // a multiple return for the wrapper's unpack

  return {
    check_popauth(...a) {
      check("check_popauth", a, 1);
      return undefined;
    },
    db_open(...a) {
      if (a.length < 1 || a.length > 2) fail("db_open", "count");
      if (!isString(a[0]) || (a.length === 2 && typeof a[1] !== "boolean")) {
        fail("db_open", "type");
      }
      const name = str(a[0]);
      if (!message.openDataSet) throw new Error(`${name}: odkim.db_open() failed`);
      const icase = a[1] === true;
      return message.openDataSet(name, icase).then((set) => {
        opened.push(set);
        return results([decorateUserdata(new DataSetHandle(set.lookup, icase, set))]);
      });
    },
    db_check(...a) {
      if (a.length !== 2) fail("db_check", "count");
      if (!(a[0] instanceof DataSetHandle) || !isString(a[1])) fail("db_check", "type");
      const db = a[0] as DataSetHandle;
      const key = db.caseInsensitive ? str(a[1]).toLowerCase() : str(a[1]);
      return db.lookup.lookup([key]).then(
        ([hit]) => results([hit === undefined ? 0 : 1]),
        () => results([]),
      );
    },
    db_close(...a) {
      if (a.length !== 1) fail("db_close", "count");
      if (!(a[0] instanceof DataSetHandle)) fail("db_close", "type");
      const set = (a[0] as DataSetHandle).opened;
      if (set) {
        opened.splice(opened.indexOf(set), 1);
        return set.close().then(() => results([1]), () => results([1]));
      }
      return Promise.resolve(results([1]));
    },
    get_dbhandle(...a) {
      check("get_dbhandle", a, 2);
      const lookup = message.dbHandle?.(Number(a[1]));
      return lookup ? decorateUserdata(new DataSetHandle(lookup, false)) : undefined;
    },
    export(...a) {
      if (a.length < 3 || a.length % 2 !== 1) fail("export", "count");
      for (let i = 1; i < a.length; i += 2) {
        const v = a[i + 1];
        if (!isString(a[i]) || !(v === undefined || isString(v) || typeof v === "boolean")) {
          fail("export", "type");
        }
        effects.exports.set(str(a[i]), v as LuaExport);
      }
      return undefined;
    },
    get_clienthost(...a) {
      check("get_clienthost", a, 1);
      return message.client.hostname || `[${message.client.address}]`;
    },
    get_clientip(...a) {
      check("get_clientip", a, 1);
      return message.client.address || undefined;
    },
    get_envfrom(...a) {
      check("get_envfrom", a, 1);
      return message.envelopeFrom;
    },
    get_fromdomain(...a) {
      check("get_fromdomain", a, 1);
      return message.fromDomain;
    },
    get_header(...a) {
      check("get_header", a, 3);
      if (!isString(a[1]) || typeof a[2] !== "number") fail("get_header", "type");
      return headerAt(str(a[1]), Math.trunc(a[2] as number));
    },
    get_mtasymbol(...a) {
      check("get_mtasymbol", a, 2);
      if (!isString(a[1])) fail("get_mtasymbol", "type");
      const name = str(a[1]);
      return message.macro(name.replace(/^\{(.*)\}$/, "$1")) ?? undefined;
    },
    get_rcpt(...a) {
      check("get_rcpt", a, 2);
      if (typeof a[1] !== "number") fail("get_rcpt", "type");
      // OpenDKIM reads n from argument 1 (the context), so it is always the first recipient.
      return message.recipients[0];
    },
    get_rcptarray(...a) {
      check("get_rcptarray", a, 1);
      return [...message.recipients];
    },
    rcpt_count(...a) {
      check("rcpt_count", a, 1);
      return message.recipients.length;
    },
    internal_ip(...a) {
      check("internal_ip", a, 1);
      return message.internal ? 1 : 0;
    },
    log(...a) {
      check("log", a, 2);
      if (!isString(a[1])) fail("log", "type");
      message.log(str(a[1]));
      return undefined;
    },
    replace_header(...a) {
      check("replace_header", a, 4);
      if (!isString(a[1]) || typeof a[2] !== "number" || !isString(a[3])) {
        fail("replace_header", "type");
      }
      // OpenDKIM answers nil for a field that is not there, and nothing at all otherwise.
      const done = message.replaceHeader?.(str(a[1]), Math.trunc(a[2] as number), str(a[3]));
      return done ? LuaMultiReturn.from([]) : undefined;
    },
    resign(...a) {
      check("resign", a, 1);
      effects.resign = true;
      return undefined;
    },
    set_result(...a) {
      check("set_result", a, 2);
      if (typeof a[1] !== "number") fail("set_result", "type");
      const r = ({
        [SMFIS.TEMPFAIL]: "tempfail",
        [SMFIS.ACCEPT]: "accept",
        [SMFIS.DISCARD]: "discard",
        [SMFIS.REJECT]: "reject",
      } as Record<number, LuaResult>)[a[1] as number];
      if (r === undefined) return undefined;
      effects.result = r;
      return 1;
    },
    sign(...a) {
      if (a.length === 0 || a.length > 4) fail("sign", "count");
      if (a[0] !== ctx) fail("sign", "type");
      if (a.length > 1 && !isString(a[1])) fail("sign", "type");
      let identity: string | undefined;
      let bodyLength: number | undefined;
      for (let i = 2; i < a.length; i++) {
        if (typeof a[i] === "number") {
          if (bodyLength !== undefined) fail("sign", "type");
          bodyLength = a[i] as number;
        } else if (typeof a[i] === "string") {
          if (identity !== undefined) fail("sign", "type");
          identity = a[i] as string;
        } else fail("sign", "type");
      }
      const keyName = a.length > 1 ? str(a[1]) : undefined;
      if (keyName !== undefined && !message.hasKeyTable) {
        throw new Error("odkim.sign(): request requires KeyTable");
      }
      effects.sign.push({
        ...(keyName !== undefined ? { keyName } : {}),
        ...(identity ? { identity } : {}),
        ...(bodyLength !== undefined ? { bodyLength } : {}),
      });
      return 1;
    },
    signfor(...a) {
      if (a.length !== 2 && a.length !== 3) fail("signfor", "count");
      if (a[0] !== ctx || !isString(a[1]) || (a.length === 3 && typeof a[2] !== "boolean")) {
        fail("signfor", "type");
      }
      if (!message.signFor) return Promise.resolve(results([]));
      const parsed = parseAddress(str(a[1]));
      if (!parsed) throw new Error("odkim.signfor(): can't parse address");
      return message.signFor(parsed.user, parsed.domain, a[2] === true).then((n) =>
        results(n === undefined ? [] : [n])
      );
    },
    spam(...a) {
      check("spam", a, 1);
      return undefined;
    },
    stats(...a) {
      check("stats", a, 3);
      return undefined;
    },
    use_ltag(...a) {
      check("use_ltag", a, 1);
      effects.useLtag = true;
      return undefined;
    },
    verify(...a) {
      check("verify", a, 1);
      effects.verify = true;
      return undefined;
    },
    xtag(...a) {
      check("xtag", a, 3);
      if (!isString(a[1]) || !isString(a[2])) fail("xtag", "type");
      const tag = str(a[1]);
      const value = str(a[2]);
      // libopendkim refuses its own tags and anything not a tag-name (RFC 6376 §3.2).
      if (
        !/^[A-Za-z][A-Za-z0-9_]*$/.test(tag) ||
        ["v", "a", "b", "bh", "c", "d", "h", "i", "l", "q", "s", "t", "x", "z"].includes(tag) ||
        /[;\s]/.test(value)
      ) return -1;
      effects.xtags.push([tag, value]);
      // OpenDKIM answers how many signatures got the tag.
      return message.signing ?? 0;
    },
    get_sigarray(...a) {
      check("get_sigarray", a, 1);
      return message.signatures.map((_, i) => decorateUserdata(new SignatureHandle(i)));
    },
    get_sigcount(...a) {
      check("get_sigcount", a, 1);
      return message.signatures.length;
    },
    get_sighandle(...a) {
      check("get_sighandle", a, 2);
      if (typeof a[1] !== "number") fail("get_sighandle", "type");
      const n = a[1] as number;
      if (n < 0 || n >= message.signatures.length) return undefined;
      return decorateUserdata(new SignatureHandle(n));
    },
    parse_field(...a) {
      if (a.length !== 1) fail("parse_field", "count");
      if (!isString(a[0])) fail("parse_field", "type");
      const parsed = parseAddress(str(a[0]));
      return parsed ? LuaMultiReturn.from([parsed.user, parsed.domain]) : undefined;
    },
    sig_getdomain(...a) {
      if (a.length !== 1) fail("sig_getdomain", "count");
      return sig(a[0], "sig_getdomain")?.domain;
    },
    sig_getidentity(...a) {
      if (a.length !== 1) fail("sig_getidentity", "count");
      return sig(a[0], "sig_getidentity")?.identity;
    },
    sig_ignore(...a) {
      if (a.length !== 1) fail("sig_ignore", "count");
      effects.ignored.add(sigAt("sig_ignore", a[0]));
      return undefined;
    },
    sig_result(...a) {
      if (a.length !== 1) fail("sig_result", "count");
      const v = sig(a[0], "sig_result")?.verdict;
      return v ? sigErrorCode(v) : 0;
    },
    sig_bhresult(...a) {
      if (a.length !== 1) fail("sig_bhresult", "count");
      const v = sig(a[0], "sig_bhresult")?.verdict;
      return v ? sigBodyHashCode(v) : 0;
    },
    sig_bodylength(...a) {
      if (a.length !== 1) fail("sig_bodylength", "count");
      return sig(a[0], "sig_bodylength")?.bodyLength;
    },
    sig_canonlength(...a) {
      if (a.length !== 1) fail("sig_canonlength", "count");
      return sig(a[0], "sig_canonlength")?.canonLength;
    },
    rbl_check(...a) {
      if (a.length < 3 || a.length > 4) fail("rbl_check", "count");
      if (
        a[0] !== ctx || !isString(a[1]) || !isString(a[2]) ||
        (a.length === 4 && typeof a[3] !== "number")
      ) fail("rbl_check", "type");
      if (!message.rblCheck) return Promise.resolve(results([]));
      const timeout = typeof a[3] === "number" ? a[3] : undefined;
      // Found: the four octets; none: no value at all; a failure: librbl's message.
      return message.rblCheck(`${str(a[1])}.${str(a[2])}`, timeout).then(
        (octets) => results(octets ?? []),
        (e) => results([(e as Error).message]),
      );
    },
    add_header(...a) {
      check("add_header", a, 3);
      if (!isString(a[1]) || !isString(a[2])) fail("add_header", "type");
      effects.addHeaders.push({ name: str(a[1]), value: str(a[2]) });
      return 1;
    },
    del_header(...a) {
      check("del_header", a, 3);
      if (!isString(a[1]) || typeof a[2] !== "number") fail("del_header", "type");
      effects.delHeaders.push(str(a[1]));
      return 1;
    },
    add_rcpt(...a) {
      check("add_rcpt", a, 2);
      if (!isString(a[1])) fail("add_rcpt", "type");
      if (!message.canChangeRecipients) return undefined;
      effects.addRcpts.push(str(a[1]));
      return 1;
    },
    del_rcpt(...a) {
      check("delete_rcpt", a, 2);
      if (!isString(a[1])) fail("delete_rcpt", "type");
      const addr = str(a[1]).toLowerCase();
      const known = message.recipients.find((r) => r.toLowerCase() === addr);
      if (known === undefined) return undefined;
      // OpenDKIM's smfi_delrcpt() fails without the action negotiated; it logs and returns 1.
      if (!message.canChangeRecipients) {
        message.log(`odkim.del_rcpt(): recipients cannot be changed here; '${known}' kept`);
        return 1;
      }
      effects.delRcpts.push(known);
      effects.addHeaders.push({ name: ORIGINAL_RECIPIENT_FIELD, value: `rfc822;${known}` });
      return 1;
    },
    quarantine(...a) {
      check("quarantine", a, 2);
      if (!isString(a[1])) fail("quarantine", "type");
      effects.quarantine = str(a[1]);
      return 1;
    },
    set_reply(...a) {
      check("set_reply", a, 4);
      if (!isString(a[1]) || !isString(a[2]) || !isString(a[3])) fail("set_reply", "type");
      const rcode = str(a[1]);
      const xcode = str(a[2]);
      // libmilter's smfi_setreply(): a 4xx or 5xx code, an extended code of the same class.
      if (!/^[45]\d\d$/.test(rcode)) return undefined;
      if (xcode !== "" && (!/^[45]\.\d{1,3}\.\d{1,3}$/.test(xcode) || xcode[0] !== rcode[0])) {
        return undefined;
      }
      effects.reply = { rcode, xcode, text: str(a[3]) };
      return 1;
    },
  };
}

// odkim.parse_field(): the user and domain of an address in a header field value, comments
// and display name dropped (libopendkim's dkim_mail_parse()).
function parseAddress(text: string): { user: string; domain: string } | undefined {
  const noComments = text.replace(/\([^()]*\)/g, "");
  const angle = /<([^<>]*)>/.exec(noComments);
  const addr = (angle ? angle[1] : noComments).trim().replace(/\s+/g, "");
  const at = addr.lastIndexOf("@");
  if (at <= 0 || at === addr.length - 1) return undefined;
  return { user: addr.slice(0, at).replace(/^"|"$/g, ""), domain: addr.slice(at + 1) };
}
