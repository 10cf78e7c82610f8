/**
 * AuthorizedSigners (dkimd's own): which From addresses each SASL login may have signed. OpenDKIM
 * signs for any authenticated client (`{auth_type}` set) whatever domain its From names, so on a
 * shared host a customer of example.com gets example.net's signature by writing `From:
 * ceo@example.net`; dkim-milter and rspamd can refuse that, and so can dkimd.
 *
 * The data set's key is the login as the MTA gives it in `{auth_authen}`, or `*` for every login
 * without an entry of its own; its value lists what that login may put in From, separated by
 * commas (or `|`, which an inline `csl:` list needs, its commas separating entries):
 *
 * - `user@example.com`: that address;
 * - `example.com`: any address at that domain;
 * - `.example.com`: any address at a subdomain of example.com (not example.com itself);
 * - `%`: any address at the login's own domain, for a login of the form `user@domain`;
 * - `*`: anything.
 *
 * A login's own entry replaces the `*` entry (it does not add to it), so one login can be held to
 * less than every other; an entry with no value allows nothing. Logins compare ASCII
 * case-insensitively, as OpenDKIM opens its data sets, and so do addresses and domains.
 * The first entry for a key wins. A `refile:` set (or an inline pattern list) holds wildcard
 * patterns for the login, tried in order, the first matching one deciding.
 *
 * An exact set is asked through {@link DataSetLookup}, the login and `*` in one call, so a table
 * kept in a database answers it the same way.
 *
 * @module
 */

import type { DataSetLookup } from "./data_set_lookup.ts";
import type { DataSet, DataSetEntry } from "./dataset.ts";
import { RuleSet } from "./rule_set.ts";
import { formatOrigin, type Origin, SourceError, type SourceWarning } from "./origin.ts";
import { MAX_PATTERN_LENGTH, wildcardMatch } from "./signing_table.ts";

/** The key of the entry that applies to every login without one of its own. */
export const ANY_LOGIN = "*";

/** One thing a login may put in From. */
export type SenderGrant =
  | { readonly kind: "any"; readonly text: string }
  | { readonly kind: "login-domain"; readonly text: string }
  | { readonly kind: "address"; readonly text: string; readonly address: string }
  | { readonly kind: "domain"; readonly text: string; readonly domain: string }
  | { readonly kind: "subdomains"; readonly text: string; readonly domain: string };

/** One AuthorizedSigners entry. */
export interface SignerRule {
  /** The login (or `*`, or a wildcard pattern in a `refile:` set) as written. */
  readonly login: string;
  /** What the login may put in From; empty: nothing. */
  readonly grants: readonly SenderGrant[];
  /** Where the entry was written. */
  readonly origin: Origin;
}

/** The answer to "may this login have mail from this address signed?". */
export type Authorization =
  | {
    readonly allowed: true;
    /** The entry that decided. */
    readonly rule: SignerRule;
    /** The item of the entry that allows the address. */
    readonly grant: SenderGrant;
  }
  | {
    readonly allowed: false;
    /** The entry that decided; absent when there is none for the login and no `*` entry. */
    readonly rule?: SignerRule;
  };

/** AuthorizedSigners as the filter asks it, once per authenticated message it would sign. */
export interface SignerAuthorization {
  /**
   * Whether `login` (`{auth_authen}`; undefined when the MTA sent none) may have mail from
   * `user@domain` signed. Rejects when the set cannot answer.
   */
  authorize(login: string | undefined, user: string, domain: string): Promise<Authorization>;
}

// Domain names as the sender parser accepts them (letters, digits, "-", "_", dots).
const DOMAIN = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;

/**
 * Reads one item of an entry's value. Throws an `Error` whose message says what is wrong.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSenderGrant } from "./authorized_signers.ts";
 * assert.deepEqual(parseSenderGrant(".Example.COM"), { kind: "subdomains", text: ".Example.COM", domain: "example.com" });
 * assert.deepEqual(parseSenderGrant("%"), { kind: "login-domain", text: "%" });
 * assert.throws(() => parseSenderGrant("*@example.com"), /write "example\.com"/);
 * ```
 */
export function parseSenderGrant(text: string): SenderGrant {
  if (text === "*") return { kind: "any", text };
  if (text === "%") return { kind: "login-domain", text };
  const lower = text.toLowerCase().replace(/\.$/, "");
  const at = lower.lastIndexOf("@");
  if (at >= 0) {
    const local = lower.slice(0, at);
    const domain = lower.slice(at + 1);
    if (local === "*" && DOMAIN.test(domain)) {
      throw new Error(`"${text}": write "${domain}" for every address at a domain`);
    }
    if (local === "" || !DOMAIN.test(domain) || /[%*]/.test(local)) {
      throw new Error(`"${text}" is not an address user@domain`);
    }
    return { kind: "address", text, address: `${local}@${domain}` };
  }
  if (lower.startsWith(".") && DOMAIN.test(lower.slice(1))) {
    return { kind: "subdomains", text, domain: lower.slice(1) };
  }
  if (DOMAIN.test(lower)) return { kind: "domain", text, domain: lower };
  throw new Error(
    `"${text}" is not an address, a domain, ".domain", "%" (the login's domain) or "*"`,
  );
}

/**
 * Reads one entry: the login and its comma- (or `|`-) separated items. Throws
 * {@link SourceError} naming the entry's place for an item that is none of the forms.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSignerRule } from "./authorized_signers.ts";
 * const origin = { file: "/etc/dkimd/authorized_signers", line: 2 };
 * const rule = parseSignerRule({ key: "joe@example.com", value: "%, .example.com|jo@example.org", origin });
 * assert.deepEqual(rule.grants.map((g) => g.kind), ["login-domain", "subdomains", "address"]);
 * ```
 */
export function parseSignerRule(e: DataSetEntry, setting = "AuthorizedSigners"): SignerRule {
  const fail = (detail: string) =>
    new SourceError(`Cannot parse ${setting} entry "${e.key}"`, e.origin, detail);
  if (e.key.length > MAX_PATTERN_LENGTH) throw fail("the entry is too long");
  const grants: SenderGrant[] = [];
  for (const item of (e.value ?? "").split(/[,|\s]+/)) {
    if (item === "") continue;
    try {
      grants.push(parseSenderGrant(item));
    } catch (err) {
      throw fail(err instanceof Error ? err.message : String(err));
    }
  }
  return { login: e.key, grants, origin: e.origin };
}

/** The domain of a login of the form `user@domain`, lower-cased; undefined for any other login. */
function loginDomain(login: string | undefined): string | undefined {
  const at = login?.lastIndexOf("@") ?? -1;
  if (login === undefined || at < 0) return undefined;
  const domain = login.slice(at + 1).toLowerCase().replace(/\.$/, "");
  return DOMAIN.test(domain) ? domain : undefined;
}

/**
 * True when `grant` lets `login` put `user@domain` in From.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { grantAllows, parseSenderGrant } from "./authorized_signers.ts";
 * assert.ok(grantAllows(parseSenderGrant("%"), "joe@Example.com", "ceo", "example.com"));
 * assert.ok(!grantAllows(parseSenderGrant("%"), "joe", "ceo", "example.com"));
 * assert.ok(!grantAllows(parseSenderGrant(".example.com"), "joe", "a", "example.com"));
 * ```
 */
export function grantAllows(
  grant: SenderGrant,
  login: string | undefined,
  user: string,
  domain: string,
): boolean {
  const d = domain.toLowerCase().replace(/\.$/, "");
  switch (grant.kind) {
    case "any":
      return true;
    case "login-domain":
      return loginDomain(login) === d;
    case "address":
      return `${user.toLowerCase()}@${d}` === grant.address;
    case "domain":
      return d === grant.domain;
    case "subdomains":
      return d.endsWith(`.${grant.domain}`);
  }
}

/**
 * A parsed AuthorizedSigners set.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AuthorizedSigners } from "./authorized_signers.ts";
 * const at = (line: number) => ({ file: "/etc/dkimd/authorized_signers", line });
 * const { signers } = AuthorizedSigners.fromDataSet({
 *   source: { kind: "file", path: "/etc/dkimd/authorized_signers" },
 *   patterns: false,
 *   entries: [
 *     { key: "*", value: "%", origin: at(1) },
 *     { key: "postmaster@example.com", value: "example.com, example.net", origin: at(2) },
 *   ],
 * });
 * assert.equal((await signers.authorize("joe@example.com", "joe", "example.com")).allowed, true);
 * const no = await signers.authorize("joe@example.com", "ceo", "example.net");
 * assert.deepEqual([no.allowed, no.rule?.login], [false, "*"]);
 * assert.equal((await signers.authorize("Postmaster@EXAMPLE.com", "ceo", "example.net")).allowed, true);
 * ```
 */
export class AuthorizedSigners implements SignerAuthorization {
  /** Every entry in order; none for a set kept elsewhere ({@link AuthorizedSigners.keyed}). */
  readonly rules: readonly SignerRule[];
  /** True when the logins are wildcard patterns (`refile:`). */
  readonly patterns: boolean;
  readonly #set: RuleSet<SignerRule>;

  private constructor(set: RuleSet<SignerRule>) {
    this.#set = set;
    this.rules = set.rules;
    this.patterns = set.patterns;
  }

  /**
   * Builds the set from a loaded data set, reading every entry now so a mistake is reported at
   * load with its place. Throws {@link SourceError} for an item that is none of the forms;
   * warns about a login given twice in an exact set (the first entry is used).
   */
  static fromDataSet(
    dataSet: DataSet,
    setting = "AuthorizedSigners",
  ): { signers: AuthorizedSigners; warnings: SourceWarning[] } {
    const { set, warnings } = RuleSet.fromDataSet(
      dataSet,
      (e) => parseSignerRule(e, setting),
      (e, first) =>
        `${setting} login "${e.key}" at ${formatOrigin(e.origin)} is already ` +
        `given at ${formatOrigin(first.origin)}; the first entry is used`,
    );
    return { signers: new AuthorizedSigners(set), warnings };
  }

  /**
   * An exact set kept behind `set` (a database, say), never walked: each question asks it the
   * login and `*` in one call and reads the entry found. An entry with an item that is none of
   * the forms rejects the question with a {@link SourceError} naming its place.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { NameSet } from "./name_set.ts";
   * import { AuthorizedSigners } from "./authorized_signers.ts";
   * const origin = { file: "dsn:pgsql://db/dkim/table=signers", line: 0 };
   * const signers = AuthorizedSigners.keyed(new NameSet([{ key: "joe", value: "example.com", origin }], true));
   * assert.equal((await signers.authorize("JOE", "joe", "example.com")).allowed, true);
   * ```
   */
  static keyed(set: DataSetLookup, setting = "AuthorizedSigners"): AuthorizedSigners {
    return new AuthorizedSigners(RuleSet.keyed(set, (e) => parseSignerRule(e, setting)));
  }

  /**
   * The entry that applies to `login`: its own, else `*`'s (in a pattern set, the first pattern
   * matching it), or undefined when there is none.
   */
  async ruleFor(login: string | undefined): Promise<SignerRule | undefined> {
    if (this.patterns) {
      return this.rules.find((r) => wildcardMatch(r.login, login ?? ""));
    }
    const keys = login === undefined || login === ANY_LOGIN ? [ANY_LOGIN] : [login, ANY_LOGIN];
    const hit = (await this.#set.exact(keys)).find((h) => h !== undefined);
    return hit && this.#set.ruleOf(hit);
  }

  /** Whether `login` may have mail from `user@domain` signed, and which entry says so. */
  async authorize(
    login: string | undefined,
    user: string,
    domain: string,
  ): Promise<Authorization> {
    const rule = await this.ruleFor(login);
    if (!rule) return { allowed: false };
    const grant = rule.grants.find((g) => grantAllows(g, login, user, domain));
    return grant ? { allowed: true, rule, grant } : { allowed: false, rule };
  }
}

/**
 * One line saying what {@link SignerAuthorization.authorize} answered and why, for LogWhy, the
 * refusal's log line and `dkimd explain`: the login, the address, the entry and its place, and
 * the item that allowed it or every item there is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeAuthorization, parseSignerRule } from "./authorized_signers.ts";
 * const rule = parseSignerRule({ key: "*", value: "%", origin: { file: "/etc/dkimd/signers", line: 1 } });
 * assert.equal(
 *   describeAuthorization({ allowed: false, rule }, "joe@example.com", "ceo@example.net", "From"),
 *   `login 'joe@example.com' may not sign for From 'ceo@example.net' ` +
 *     `(AuthorizedSigners "*" at /etc/dkimd/signers:1 allows only %)`,
 * );
 * ```
 */
export function describeAuthorization(
  answer: Authorization,
  login: string | undefined,
  address: string,
  field: string,
  setting = "AuthorizedSigners",
): string {
  const who = login === undefined
    ? "login (none: the MTA sent no {auth_authen})"
    : `login '${login}'`;
  const what = `${field} '${address}'`;
  if (answer.allowed) {
    return `${who} may sign for ${what} (${setting} "${answer.rule.login}" at ` +
      `${formatOrigin(answer.rule.origin)}: "${answer.grant.text}")`;
  }
  if (!answer.rule) {
    return `${who} may not sign for ${what} (${setting} has no entry for it and no "*" entry)`;
  }
  const items = answer.rule.grants.map((g) => g.text);
  return `${who} may not sign for ${what} (${setting} "${answer.rule.login}" at ` +
    `${formatOrigin(answer.rule.origin)} ${
      items.length === 0 ? "allows nothing" : `allows only ${items.join(", ")}`
    })`;
}
