/**
 * The two configuration formats, and how a file is told to be one or the other, so `dkimd`
 * takes opendkim.conf and YAML alike without a flag; the loader reads whichever it is.
 *
 * @module
 */

/** The two configuration formats. */
export type ConfigFormat = "opendkim" | "yaml";

/**
 * Tells YAML from opendkim.conf: by the extension `.yaml`/`.yml`, else by the first line that
 * is not blank or a comment (`---` or `name:` is YAML; opendkim.conf never has a colon right
 * after the setting name).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { detectFormat } from "./config_format.ts";
 * assert.equal(detectFormat("/etc/dkimd.yaml", ""), "yaml");
 * assert.equal(detectFormat("/etc/opendkim.conf", "Socket inet:8891@localhost\n"), "opendkim");
 * assert.equal(detectFormat("/etc/dkimd", "# x\nmode: sv\n"), "yaml");
 * ```
 */
export function detectFormat(path: string, text: string): ConfigFormat {
  if (/\.ya?ml$/i.test(path)) return "yaml";
  if (/\.conf$/i.test(path)) return "opendkim";
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (t === "" || t.startsWith("#")) continue;
    return t === "---" || /^[A-Za-z_][\w-]*:(\s|$)/.test(t) ? "yaml" : "opendkim";
  }
  return "opendkim";
}
