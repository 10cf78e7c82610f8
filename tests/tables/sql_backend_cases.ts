/**
 * Keys an attacker controls (a From domain or address), for the SQL back ends' injection tests:
 * each must be bound as a value, match nothing, and leave the table as it was.
 *
 * @module
 */

/** Quotes, backslashes, NUL, LIKE wildcards, statement separators, comments, a very long key. */
export const HOSTILE_KEYS: readonly string[] = [
  "example.com'",
  "' OR '1'='1",
  "x' OR 1=1 --",
  '"example.com"',
  "example.com\\",
  "\\' OR 1=1 #",
  "example.com\0",
  "\0",
  "%",
  "example.%",
  "_xample.com",
  "%.com",
  "example.com; DROP TABLE signing; --",
  "'; DROP TABLE signing; --",
  "example.com -- ",
  "/* */example.com",
  "$1",
  "?",
  "é.example",
  "a".repeat(100_000),
];
