/**
 * The settings reference, written from the table in `settings.ts`: plain text for
 * `dkimd check-config --settings`, Markdown for the README (a test checks the README's copy
 * against {@link settingsMarkdown}, so the two cannot drift apart).
 *
 * @module
 */

import { SETTING_LIST, type SettingEntry, type SettingGroup } from "./settings.ts";
import { UNIMPLEMENTED_SETTINGS } from "./unimplemented_settings.ts";

/** The heading of each group, in the table's order. */
export const GROUP_TITLES: { readonly [G in SettingGroup]: string } = {
  service: "Service",
  signing: "Signing",
  hosts: "Which mail is signed or verified",
  signatures: "Signatures made",
  limits: "Limits",
  results: "Actions and added fields",
  dns: "DNS",
  tables: "Data sets in databases (dsn:, ldap:)",
  ldap: "LDAP data sets",
  rotation: "Key rotation (dkimd rotate)",
  other: "Other checks",
  arc: "ARC (RFC 8617)",
  logging: "Logging",
  process: "Process",
};

/** One row of the reference: every column as text. */
export interface ReferenceRow {
  /** The opendkim.conf name. */
  readonly name: string;
  /** The YAML path, or `-` for an old name that has none. */
  readonly yaml: string;
  /** The value syntax. */
  readonly value: string;
  /** The default, for people. */
  readonly default: string;
  /** What it does, with "dkimd's own" for settings OpenDKIM does not have. */
  readonly doc: string;
  /** Against OpenDKIM 2.11: `same`, `same, except ...`, or `dkimd's own`. */
  readonly opendkim: string;
}

/** The column headings of {@link ReferenceRow}, in order. */
export const REFERENCE_COLUMNS: readonly string[] = [
  "setting",
  "YAML",
  "value",
  "default",
  "what it does",
  "OpenDKIM 2.11",
];

/** The reference row of one setting. */
export function referenceRow(s: SettingEntry): ReferenceRow {
  const fallback = s.default === undefined ? "none" : s.kind.format(s.default);
  return {
    name: s.name,
    yaml: s.yaml ?? "-",
    value: s.kind.syntax,
    default: s.defaultText ?? fallback,
    doc: s.dkimd ? `${s.doc} (dkimd's own)` : s.doc,
    opendkim: s.dkimd ? "dkimd's own" : s.opendkim ? `same, except ${s.opendkim}` : "same",
  };
}

/** The settings of each group, in the table's order. */
export function groupedSettings(): [SettingGroup, SettingEntry[]][] {
  return (Object.keys(GROUP_TITLES) as SettingGroup[]).map((g) => [
    g,
    SETTING_LIST.filter((s) => s.group === g),
  ]);
}

/** OpenDKIM's settings that dkimd ignores, by why: `[why, names]`, in the list's order. */
export function ignoredByWhy(): [string, string[]][] {
  const byWhy = new Map<string, string[]>();
  for (const s of UNIMPLEMENTED_SETTINGS) {
    const why = s.why || "not implemented";
    byWhy.set(why, [...byWhy.get(why) ?? [], s.name]);
  }
  return [...byWhy];
}

/**
 * The reference as plain text lines: per group, each setting's name, YAML key, syntax and
 * default, then what it does and where it departs from OpenDKIM; last, the OpenDKIM settings
 * dkimd ignores, by reason.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { settingsText } from "./settings_reference.ts";
 * const lines = settingsText();
 * assert.ok(lines.includes("  DNSTimeout (YAML dnsTimeout): seconds, 0 to 3600; default 5"));
 * ```
 */
export function settingsText(): string[] {
  const out: string[] = [];
  for (const [group, settings] of groupedSettings()) {
    out.push(`${GROUP_TITLES[group]}:`);
    for (const s of settings) {
      const r = referenceRow(s);
      const yaml = r.yaml === "-" ? "no YAML key" : `YAML ${r.yaml}`;
      out.push(`  ${r.name} (${yaml}): ${r.value}; default ${r.default}`, `      ${r.doc}`);
      if (r.opendkim.startsWith("same, ")) out.push(`      OpenDKIM 2.11: ${r.opendkim}`);
    }
    out.push("");
  }
  out.push("OpenDKIM settings dkimd ignores (each gives a warning):");
  for (const [why, names] of ignoredByWhy()) out.push(`  ${why}: ${names.join(", ")}`);
  return out;
}

/** Escapes text for a Markdown table cell: `|` ends a cell, `*` and `_` mark emphasis. */
function cell(text: string): string {
  return text.replace(/[|*_\\]/g, (c) => `\\${c}`);
}

/** A Markdown table with columns padded as `deno fmt` pads them. */
function markdownTable(head: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)];
}

/**
 * The reference as Markdown: a `####` heading and a table per group (the last column says
 * "same", "same, except ..." or "dkimd's own" against OpenDKIM 2.11), then the settings dkimd
 * ignores with the reason. The README holds this text between its settings-reference markers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { settingsMarkdown } from "./settings_reference.ts";
 * assert.match(settingsMarkdown(), /^#### Service\n\n\| setting +\| YAML/);
 * ```
 */
export function settingsMarkdown(): string {
  const out: string[] = [];
  for (const [group, settings] of groupedSettings()) {
    const rows = settings.map((s) => {
      const r = referenceRow(s);
      const name = `\`${r.name}\``;
      return [name, r.yaml === "-" ? "-" : `\`${r.yaml}\``, r.value, r.default, r.doc, r.opendkim]
        .map((c, i) => i < 2 ? c : cell(c));
    });
    out.push(`#### ${GROUP_TITLES[group]}`, "", ...markdownTable(REFERENCE_COLUMNS, rows), "");
  }
  out.push(
    "#### OpenDKIM settings dkimd ignores",
    "",
    "Each gives a warning naming it, its line and the reason.",
    "",
    ...markdownTable(
      ["not implemented, because", "settings"],
      ignoredByWhy().map(([why, names]) => [cell(why), names.join(", ")]),
    ),
  );
  return out.join("\n") + "\n";
}
