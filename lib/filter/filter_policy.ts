/**
 * What the DKIM filter reads from a configuration: the settings, the header lists, and every
 * table it asks per connection or message, each behind an interface whose answers are promises.
 * The configuration loader builds one from files (config/build_policy.ts), a test from text in
 * memory; a table kept in a database (`dsn:`, `ldap:`) is one more implementation of the same
 * interfaces, and the filter does not change.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import type { SigningKey } from "../crypto/private_key.ts";
import type { TxtResolver } from "../dns/resolver.ts";
import type { SignerAuthorization } from "../policy/authorized_signers.ts";
import type { DataSetLookup } from "../policy/data_set_lookup.ts";
import type { ArcSealerPolicy } from "../config/build_policy.ts";
import type { HeaderLists } from "../policy/header_list.ts";
import type { HostLookup } from "../policy/host_list.ts";
import type { PrivateKeyInfo } from "../policy/key_table.ts";
import type { MacroList } from "../policy/macro_list.ts";
import type { SigningPolicy } from "../policy/signers.ts";
import type { PolicyScripts, ScriptDataSet } from "../lua/odkim_api.ts";
import type { ReplaceRule } from "../policy/replace_rules.ts";

/** The policy one transaction runs with. */
export interface FilterPolicy<K extends PrivateKeyInfo> extends SigningPolicy<K> {
  /** The configuration. */
  readonly config: Config;
  /** The host lists, asked per connection (PeerList) or per message. */
  readonly hosts: {
    /** InternalHosts: mail from these clients is signed. */
    readonly internal: HostLookup;
    /** ExternalIgnoreList: these clients may send as our domains unremarked, and are not verified. */
    readonly externalIgnore?: HostLookup;
    /** PeerList: these clients are accepted at connect and never filtered. */
    readonly peers?: HostLookup;
    /** RemoveARFrom: Authentication-Results fields from these hosts are removed. */
    readonly removeArFrom?: HostLookup;
  };
  /** The header name lists (read whole at load, as OpenDKIM does). */
  readonly headers: HeaderLists;
  /** MTA: `{daemon_name}` values whose mail is signed. */
  readonly mta?: DataSetLookup;
  /** MacroList: macros whose values mark mail to sign (the names are asked for at negotiation). */
  readonly macroList?: MacroList;
  /** DontSignMailTo: recipients (addresses or domains) whose mail is never signed. */
  readonly dontSignMailTo?: DataSetLookup;
  /** ExemptDomains: sender domains whose mail is neither signed nor verified. */
  readonly exemptDomains?: DataSetLookup;
  /** TrustSignaturesFrom: signing domains whose signatures are verified beside the limit. */
  readonly trustSignaturesFrom?: DataSetLookup;
  /** BodyLengthDB: recipients whose mail is signed with `l=`. */
  readonly bodyLengthDb?: DataSetLookup;
  /** ResignMailTo: recipients whose mail is verified and signed again; values name keys. */
  readonly resignMailTo?: DataSetLookup;
  /** ReplaceHeaders: the fields ReplaceRules applies to (lower case); absent, every field. */
  readonly replaceHeaders?: ReadonlySet<string>;
  /** ReplaceRules: replacements in header values before signing or verifying. */
  readonly replaceRules?: readonly ReplaceRule[];
  /** AuthorizedSigners: what each SASL login may put in From, when set. */
  readonly authorizedSigners?: SignerAuthorization;
  /** The Lua policy scripts, when any is set. */
  readonly luaScripts?: PolicyScripts;
  /** Opens a data set a script names (`odkim.db_open()`), when a script is set. */
  readonly openScriptDataSet?: (name: string, ignoreCase: boolean) => Promise<ScriptDataSet>;
  /** The ARC sealing key and header list, with ARCMode `s`. */
  readonly arcSealer?: ArcSealerPolicy<K>;
}

/** What one transaction runs with: the policy and the resolver built from a configuration. */
export interface Runtime {
  /** The policy of the loaded configuration, keys imported. */
  readonly loaded: FilterPolicy<SigningKey>;
  /** Where key records come from. */
  readonly resolver: TxtResolver;
}
