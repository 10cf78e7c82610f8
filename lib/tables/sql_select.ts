/**
 * The SELECT both SQL servers (PostgreSQL, MySQL/MariaDB) are sent for a `dsn:` data set, and
 * what they share around it: the identifiers checked, the DSN named without its password, the
 * per-query deadline.
 *
 * OpenDKIM (opendkim-db.c, dkimf_db_get, DKIMF_DB_TYPE_DSN) sends one query per key,
 * `SELECT <datacol> FROM <table> WHERE <keycol> = '<escaped key>'[ AND <filter>]`, with the
 * key escaped by odbx_escape() and compared by the database's own `=` (no case folding of its
 * own), and copies out only the first row, an SQL NULL as an empty value. dkimd sends the same
 * comparison for a batch of keys in one round trip: one branch per key, each that very query
 * with the key a bound parameter and `LIMIT 1`, joined by `UNION ALL` and tagged with the key's
 * position, so each key gets the first row its own query would give, and the parameter takes
 * the key column's type as OpenDKIM's quoted literal does (a `citext` or case-insensitive
 * collation behaves the same). Two deliberate differences: the filter is parenthesised (OpenDKIM
 * splices `AND filter` bare, so a filter with a top-level OR matched rows of other keys), and
 * table and column names must be plain identifiers (OpenDKIM splices any text).
 *
 * @module
 */
import type { DsnSpec } from "./dsn_spec.ts";

/** Most keys sent in one query: keeps statements small and the prepared-statement cache bounded. */
export const MAX_KEYS_PER_QUERY = 50;

/** A plain SQL identifier, optionally schema-qualified (`schema.table`). */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]*$/;

/** How a dialect quotes an identifier and writes the n-th (0-based) parameter. */
export interface SqlDialect {
  /** Quotes one checked identifier part. */
  quote(part: string): string;
  /** The placeholder for parameter `n` (0-based). */
  param(n: number): string;
  /** Casts a selected column to text, so every value comes back as the server prints it. */
  text(column: string): string;
}

/**
 * Checks and quotes `name` (a table, key or data column of a DSN), throwing a clear error for
 * anything but a plain, optionally dotted, identifier.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { quoteIdentifier } from "./sql_select.ts";
 * const pg = { quote: (p: string) => `"${p.toLowerCase()}"`, param: (n: number) => `$${n + 1}`, text: (c: string) => c };
 * assert.equal(quoteIdentifier("mail.KeyTable", "table", pg), '"mail"."keytable"');
 * assert.throws(() => quoteIdentifier("t; DROP TABLE t", "table", pg), /not a plain SQL identifier/);
 * ```
 */
export function quoteIdentifier(name: string, what: string, dialect: SqlDialect): string {
  const parts = name.split(".");
  if (parts.length > 2 || !parts.every((p) => IDENTIFIER.test(p))) {
    throw new Error(
      `The DSN's ${what} ${JSON.stringify(name)} is not a plain SQL identifier ` +
        "(letters, digits, _ and $, optionally schema.name)",
    );
  }
  return parts.map((p) => dialect.quote(p)).join(".");
}

/** The parts of the SELECT that do not depend on the keys, checked once when a back end opens. */
export interface SelectShape {
  /** The data columns, cast to text, comma-separated. */
  readonly columns: string;
  /** The quoted key column. */
  readonly keycol: string;
  /** The quoted table. */
  readonly table: string;
  /** ` AND (filter)`, or empty. */
  readonly filter: string;
  /** The dialect. */
  readonly dialect: SqlDialect;
}

/** Checks the identifiers of `spec` and builds the fixed parts of its SELECT. */
export function selectShape(spec: DsnSpec, dialect: SqlDialect): SelectShape {
  if (spec.datacols.length === 0) throw new Error("The DSN names no datacol");
  return {
    columns: spec.datacols.map((c) => dialect.text(quoteIdentifier(c, "datacol", dialect)))
      .join(", "),
    keycol: quoteIdentifier(spec.keycol, "keycol", dialect),
    table: quoteIdentifier(spec.table, "table", dialect),
    filter: spec.filter === undefined || spec.filter.trim() === "" ? "" : ` AND (${spec.filter})`,
    dialect,
  };
}

/**
 * The query for `count` keys (parameters 0..count-1): one `LIMIT 1` branch per key, the key's
 * position as the first column.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lookupQuery, selectShape } from "./sql_select.ts";
 * const dialect = { quote: (p: string) => `"${p}"`, param: (n: number) => `$${n + 1}`, text: (c: string) => `${c}::text` };
 * const shape = selectShape({ backend: "pgsql", database: "d", table: "t", keycol: "k", datacols: ["v"], filter: "on" }, dialect);
 * assert.equal(
 *   lookupQuery(shape, 2),
 *   '(SELECT 0, "v"::text FROM "t" WHERE "k" = $1 AND (on) LIMIT 1) UNION ALL ' +
 *     '(SELECT 1, "v"::text FROM "t" WHERE "k" = $2 AND (on) LIMIT 1)',
 * );
 * ```
 */
export function lookupQuery(shape: SelectShape, count: number): string {
  const branches: string[] = [];
  for (let i = 0; i < count; i++) {
    branches.push(
      `(SELECT ${i}, ${shape.columns} FROM ${shape.table} WHERE ${shape.keycol} = ` +
        `${shape.dialect.param(i)}${shape.filter} LIMIT 1)`,
    );
  }
  return branches.join(" UNION ALL ");
}

/** The query for a walk of the table (tools only): key and data columns, the filter applied. */
export function scanQuery(shape: SelectShape, limit: number): string {
  const where = shape.filter === "" ? "" : ` WHERE ${shape.filter.slice(" AND ".length)}`;
  const limitN = Math.max(0, Math.floor(limit));
  return `SELECT ${shape.dialect.text(shape.keycol)}, ${shape.columns} FROM ${shape.table}` +
    `${where} LIMIT ${limitN}`;
}

/**
 * Puts the rows of {@link lookupQuery} (position first, then the data columns) back in the
 * order of the keys; an SQL NULL becomes "" as OpenDKIM copies it out empty.
 */
export function answersFromRows(
  count: number,
  rows: readonly (readonly unknown[])[],
): (readonly string[] | undefined)[] {
  const answers: (readonly string[] | undefined)[] = new Array(count).fill(undefined);
  for (const row of rows) {
    const i = Number(row[0]);
    if (answers[i] !== undefined) continue;
    answers[i] = row.slice(1).map((v) => v === null || v === undefined ? "" : String(v));
  }
  return answers;
}

/**
 * The error a back end rejects with: the redacted DSN, then why, with `secret` (the password)
 * scrubbed from any text a client library produced.
 */
export function backendError(describe: string, why: string, secret?: string): Error {
  const text = secret ? why.split(secret).join("***") : why;
  return new Error(`Cannot query ${describe}: ${text}`);
}

/**
 * Runs `run` until `signal` aborts or `timeoutMs` passes, whichever first; then calls `cancel`
 * (which must stop the query on the server) and rejects with a message naming `describe`.
 */
export function withDeadline<T>(
  describe: string,
  timeoutMs: number,
  signal: AbortSignal,
  run: () => Promise<T>,
  cancel: () => void,
): Promise<T> {
  const deadline = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
  if (deadline.aborted) return Promise.reject(abortError(describe, deadline, timeoutMs));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      try {
        cancel();
      } catch {
        // The query had already ended.
      }
      reject(abortError(describe, deadline, timeoutMs));
    };
    deadline.addEventListener("abort", onAbort, { once: true });
    run().then(resolve, reject).finally(() => deadline.removeEventListener("abort", onAbort));
  });
}

function abortError(describe: string, signal: AbortSignal, timeoutMs: number): Error {
  const reason = signal.reason;
  const timedOut = reason instanceof DOMException && reason.name === "TimeoutError";
  return backendError(
    describe,
    timedOut ? `no answer within the query timeout (${timeoutMs} ms)` : "the query was abandoned",
  );
}
