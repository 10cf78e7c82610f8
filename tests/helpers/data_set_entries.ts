/**
 * Data set entries as a reader gives them, for the policy tests: each written on its own line
 * of /etc/opendkim.conf, from line 20 on.
 *
 * @module
 */
import type { DataSetEntry } from "../../lib/policy/dataset.ts";

/** One entry per item: a key alone, or `[key, value]`. */
export const entries = (...items: (string | [string, string])[]): DataSetEntry[] =>
  items.map((item, i) => {
    const origin = { file: "/etc/opendkim.conf", line: 20 + i };
    return typeof item === "string"
      ? { key: item, origin }
      : { key: item[0], value: item[1], origin };
  });
