/**
 * What `dkimd check-config` warns about beyond the loader's warnings: setups that work but let
 * someone other than the operator's own users get signatures. A Socket reachable beyond this
 * host (the milter protocol has no authentication), and a configuration that signs for more
 * than one domain without AuthorizedSigners (any authenticated client gets any of their
 * signatures, as with OpenDKIM).
 *
 * @module
 */
import type { LoadedConfig } from "../config/load.ts";
import type { PrivateKeyInfo } from "../policy/key_table.ts";
import { socketExposureWarning } from "../milter/socket_exposure.ts";
import { formatOrigin } from "../policy/origin.ts";

/** Most domains a warning names before "and N more". */
const NAMED_DOMAINS = 5;

/**
 * The domains a configuration signs for, as far as its tables say: the `d=` of each KeyTable
 * entry the SigningTable names, the domain of the entry's pattern where the key or its domain is
 * `%` (the sender's), the Domain entries of the single key. `open` when a pattern stands for
 * any domain (`*`, `*@*`) with a `%` key or domain: then there is no counting them.
 */
export function signingDomainsOf<K extends PrivateKeyInfo>(
  loaded: LoadedConfig<K>,
): { domains: ReadonlySet<string>; open: boolean } {
  const domains = new Set<string>();
  let open = false;
  const fromPattern = (pattern: string) => {
    const d = pattern.slice(pattern.lastIndexOf("@") + 1).toLowerCase().replace(/^(\*?\.)+/, "");
    if (d === "" || d.includes("*")) open = true;
    else domains.add(d);
  };
  if (loaded.signingTable && loaded.keyTable) {
    for (const rule of loaded.signingTable.rules) {
      const entry = rule.keyName === "%" ? undefined : loaded.keyTable.get(rule.keyName);
      if (entry && entry.domain !== "%") domains.add(entry.domain.toLowerCase());
      else fromPattern(rule.pattern);
    }
  } else if (loaded.singleKey) {
    for (const e of loaded.dataSets.domain?.entries ?? []) fromPattern(e.key);
  }
  return { domains, open };
}

/**
 * The warnings, each one line naming the setting, its place and the fix.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { securityWarnings } from "./security_warnings.ts";
 * import { buildPolicy, NO_KEYS } from "../config/build_policy.ts";
 * import { readOpendkimConf } from "../config/opendkim_conf.ts";
 * const read = readOpendkimConf("Mode v\nSocket inet:8891\n", "dkimd.conf");
 * const { policy } = buildPolicy(read, {}, NO_KEYS);
 * const loaded = { ...policy, origins: read.origins, warnings: [], dataSets: {}, files: [], tables: [] };
 * assert.match(securityWarnings(loaded)[0], /^"Socket" at dkimd\.conf:2 inet:8891@0\.0\.0\.0 listens on every IPv4 interface/);
 * ```
 */
export function securityWarnings<K extends PrivateKeyInfo>(loaded: LoadedConfig<K>): string[] {
  const { config, origins } = loaded;
  const at = (setting: string, field: keyof typeof origins) =>
    origins[field] ? `"${setting}" at ${formatOrigin(origins[field]!)}` : `"${setting}"`;
  const out: string[] = [];
  if (config.socket) {
    const w = socketExposureWarning(config.socket, at("Socket", "socket"));
    if (w) out.push(w);
  }
  if (config.mode.sign && !loaded.authorizedSigners) {
    const { domains, open } = signingDomainsOf(loaded);
    if (open || domains.size > 1) {
      const list = [...domains].slice(0, NAMED_DOMAINS).join(", ") +
        (domains.size > NAMED_DOMAINS ? ` and ${domains.size - NAMED_DOMAINS} more` : "");
      const what = open ? "any sender domain" : `${domains.size} domains (${list})`;
      const where = loaded.signingTable
        ? at("SigningTable", "signingTable")
        : at("Domain", "domain");
      out.push(
        `${where} signs for ${what} and "AuthorizedSigners" is not set: any authenticated ` +
          `client gets a signature for any of them, whatever it logged in as; set ` +
          `AuthorizedSigners to say which login may sign for which From (README, "Who may ` +
          `sign for whom")`,
      );
    }
  }
  return out;
}
