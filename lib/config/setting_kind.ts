/**
 * The kinds of setting values (a Boolean, a bounded integer, seconds, text, an On-* action, one
 * of a list, a data set, or a value with its own syntax), each with everything the readers,
 * the YAML writer and the settings reference need: how opendkim.conf text is read, how a value
 * is written back, and what to tell a person about the syntax. A setting in `settings.ts` names
 * its kind; nothing else knows how a value of that setting is spelt.
 *
 * @module
 */

import { type DataSetSource, formatDataSetSource, parseDataSetSpec } from "../policy/dataset.ts";
import { parseDsn, redactDsnText } from "../tables/dsn.ts";
import { errorMessage } from "../error_message.ts";
import { type Origin, SourceError } from "../policy/origin.ts";
import {
  MILTER_ACTIONS,
  type MilterAction,
  parseAction,
  parseBoolean,
  parseIntegerIn,
  parseSeconds,
} from "./values.ts";

/** Context a value reader gets: where the value is, and a way to warn. */
export interface ValueContext {
  /** The setting's place. */
  readonly origin: Origin;
  /** The setting's name as the user wrote it. */
  readonly name: string;
  /** Records a warning about this value (the place is added). */
  warn(message: string): void;
}

/**
 * The data-set types a setting can be given (opendkim(8), DATA SETS): `csl:` is any inline list,
 * `dsn:` a database table, `ldap:` an `ldap://`, `ldaps://` or `ldapi://` URI.
 */
export type DataSetType = "file" | "refile" | "csl" | "dsn" | "ldap";

/** What every kind does, whatever its type. */
interface KindBase<T> {
  /** The value syntax, for people: `yes or no`, `0 to 3600`... */
  readonly syntax: string;
  /** Reads opendkim.conf text. Throws `ValueError` or `SourceError`. */
  parse(text: string, ctx: ValueContext): T;
  /** Writes a value as opendkim.conf text (for the settings reference). */
  format(value: T): string;
  /** The value as `config convert` writes it in YAML. */
  toYaml(value: T): unknown;
  /** YAML's extra spellings of a scalar (`5m`, `0o22`), turned into opendkim.conf text. */
  fromYaml?(text: string): string;
}

/** How a setting's value is written and read, by type. */
export type SettingKind<T> =
  & KindBase<T>
  & (
    | { readonly type: "bool" | "string" | "action" | "custom" }
    | { readonly type: "integer" | "seconds"; readonly min: number; readonly max: number }
    | { readonly type: "enum"; readonly values: readonly string[] }
    | {
      readonly type: "dataSet";
      /** The data-set types accepted; `refile:` (wildcard patterns) only where listed. */
      readonly accepts: readonly DataSetType[];
      /** The error detail when a type not accepted is given. */
      readonly refusal?: string;
    }
  );

const asIs = <T>(value: T): T => value;

/** A Boolean: OpenDKIM reads the first character (`yes`, `no`, `true`, `false`, `1`, `0`). */
export const BOOL: SettingKind<boolean> = {
  type: "bool",
  syntax: "yes or no",
  parse: (text) => parseBoolean(text),
  format: (value) => value ? "yes" : "no",
  toYaml: asIs,
};

/** Text taken as written (a file name, a selector). */
export const TEXT: SettingKind<string> = {
  type: "string",
  syntax: "text",
  parse: (text) => text,
  format: asIs,
  toYaml: asIs,
};

/** An On-* action (opendkim.conf(5), On-BadSignature), or its first letter. */
export const ACTION: SettingKind<MilterAction> = {
  type: "action",
  syntax: MILTER_ACTIONS.join(", "),
  parse: (text) => parseAction(text),
  format: asIs,
  toYaml: asIs,
};

/** A whole number from `min` to `max`, read as C's `strtol` reads it. */
export function integer(min: number, max: number): SettingKind<number> {
  return { type: "integer", min, max, syntax: `${min} to ${max}`, ...wholeNumber(min, max) };
}

/** A number of seconds from `min` to `max`; YAML may add a unit (`5m`, `1h`). */
export function seconds(min: number, max: number): SettingKind<number> {
  return {
    type: "seconds",
    min,
    max,
    syntax: `seconds, ${min} to ${max}`,
    ...wholeNumber(min, max),
    fromYaml: (text) => String(parseSeconds(text)),
  };
}

function wholeNumber(min: number, max: number) {
  return {
    parse: (text: string) => parseIntegerIn(text, min, max),
    format: String,
    toYaml: asIs<number>,
  };
}

/** One of `values`, read by `parse` (which names the values in its error). */
export function oneOf<T extends string>(
  values: readonly T[],
  parse: (text: string) => T,
): SettingKind<T> {
  return { type: "enum", values, syntax: values.join(", "), parse, format: asIs, toYaml: asIs };
}

/**
 * A data set of the types in `accepts`; a type not accepted is refused with `refusal` (default:
 * wildcard patterns are for the settings that accept `refile:`, named by the caller).
 */
export function dataSet(
  accepts: readonly DataSetType[],
  refusal?: string,
): SettingKind<DataSetSource> {
  return {
    type: "dataSet",
    accepts,
    ...(refusal === undefined ? {} : { refusal }),
    syntax: `data set (${
      accepts.map((t) => t === "file" ? "file" : t === "ldap" ? "ldap://" : `${t}:`).join(", ")
    })`,
    parse: (text, ctx) => readDataSet(text, ctx, accepts),
    format: formatDataSetSource,
    toYaml: formatDataSetSource,
  };
}

/** A value with a syntax of its own. `toYaml` defaults to `format`. */
export function custom<T>(spec: {
  syntax: string;
  parse: (text: string, ctx: ValueContext) => T;
  format: (value: T) => string;
  toYaml?: (value: T) => unknown;
  fromYaml?: (text: string) => string;
}): SettingKind<T> {
  return { type: "custom", toYaml: spec.format, ...spec };
}

/**
 * Reads a data-set value and warns when an inline list of one element looks like a file name:
 * OpenDKIM reads `KeyTable key.table` as a one-element list, not a file.
 */
function readDataSet(
  text: string,
  ctx: ValueContext,
  accepts: readonly DataSetType[],
): DataSetSource {
  const source = parseDataSetSpec(text, ctx.origin, ctx.name);
  if ((source.kind === "dsn" || source.kind === "ldap") && !accepts.includes(source.kind)) {
    throw new SourceError(
      `Cannot use "${ctx.name}"`,
      ctx.origin,
      `a database ("dsn:" or an LDAP URI) is not supported here: dkimd reads "${ctx.name}" ` +
        `whole, from a file or an inline list`,
    );
  }
  if (source.kind === "dsn") {
    try {
      parseDsn(source.text);
    } catch (e) {
      throw new SourceError(
        `Cannot parse "${ctx.name}"`,
        ctx.origin,
        `"${redactDsnText(source.text)}": ${errorMessage(e)}`,
        { cause: e },
      );
    }
  }
  if (source.kind === "inline" && source.entries.length === 1) {
    const only = source.entries[0].key;
    if (
      source.entries[0].value === undefined &&
      (/^\.{0,2}\//.test(only) || /\.(table|txt|conf|list|hosts)$/i.test(only) ||
        (only.includes("/") && !/^[!\[\]0-9A-Fa-f:./]+$/.test(only)))
    ) {
      ctx.warn(
        `"${only}" is read as a one-element list, as OpenDKIM reads it; write ` +
          `"file:${only}" or an absolute path to read a file`,
      );
    }
  }
  return source;
}
