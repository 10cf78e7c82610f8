/**
 * The benchmark's database cell (issue 14): dkimd with its KeyTable and SigningTable in
 * PostgreSQL holding 100,000 domains (and the benchmark's own), against the same dkimd with
 * the files of the other cells. dkimd only: OpenDKIM's `dsn:` is measured by the comparison
 * test, not here.
 *
 * - Time to ready: from spawning dkimd to its socket accepting, with 10 rows and with 100,000
 *   rows in each table (and with the files, for reference). dkimd asks a database per message,
 *   never at start, so the two must match; OpenDKIM takes 5.7 s at 100,000 rows.
 * - Warm signing: RSA and Ed25519 sign of 2 KB at c=4 (quickack), database (DataSetCacheTTL 60:
 *   the warm-up fills the cache) next to files; the issue's target is a ratio of at least 0.9.
 * - Cold lookup: sign of 2 KB at c=1 with DataSetCacheTTL 0, so every message asks PostgreSQL
 *   (one SigningTable query for its keys, one KeyTable query), next to the same with a warm
 *   cache: the difference in p50 and p99 is what a cache miss adds to a message.
 *
 * Runs on a private PostgreSQL (tests/helpers/postgres_server.ts); when PostgreSQL 15 is not
 * installed the cell is skipped with a line saying so.
 *
 * @module
 */
import { startPostgres } from "../tests/helpers/postgres_server.ts";
import type { KeyAlgorithm } from "./cells.ts";
import { BENCH_DOMAIN } from "./corpus.ts";
import { type FilterProcess, type FilterSetup, startDkimdFilter } from "./filters.ts";
import type { LoadResult } from "./load_client.ts";
import { type LoadRunTiming, runCell } from "./load_run.ts";
import { median } from "./stats.ts";

/** Domains in each big table, besides the benchmark's own. */
export const DATABASE_ROWS = 100_000;

/** Domains in each small table, for the startup comparison. */
const SMALL_ROWS = 10;

/** Starts timed per table size. */
const STARTS = 3;

/** Where startPostgres finds PostgreSQL 15 (Debian's `postgresql-15`). */
const POSTGRES_PROGRAM = "/usr/lib/postgresql/15/bin/postgres";

/** One load run of the cell. */
export interface DatabaseRun {
  /** `file` (the other cells' tables) or `pgsql`. */
  readonly tables: "file" | "pgsql";
  /** The signing key. */
  readonly algorithm: KeyAlgorithm;
  /** Connections at once. */
  readonly concurrency: number;
  /** The round (0 up), pairing a database run with the file run next to it. */
  readonly round?: number;
  /** DataSetCacheTTL of the pgsql runs, in seconds (0: every message asks). */
  readonly cacheTtl?: number;
  /** What the load client measured. */
  readonly result: LoadResult;
}

/** Everything the cell measured. */
export interface DatabaseBench {
  /** Rows in each big table. */
  readonly rows: number;
  /** Time to ready in ms, per start, by what the tables held. */
  readonly startupMs: { readonly small: number[]; readonly big: number[]; readonly file: number[] };
  /** The load runs. */
  readonly runs: DatabaseRun[];
}

/** What the cell needs from the benchmark. */
export interface DatabaseBenchInput {
  /** A private directory. */
  readonly dir: string;
  /** The filter setup per key, as the other cells use it (its files are the reference). */
  readonly setupFor: (algorithm: KeyAlgorithm) => FilterSetup;
  /** The 2 KB sign corpus. */
  readonly corpus: string;
  /** Warm-up and measured window per run. */
  readonly timing: LoadRunTiming;
  /** Rounds of the load runs (the benchmark's repeats); the report takes medians. */
  readonly repeats: number;
  /** Extra Deno flags for dkimd. */
  readonly dkimdFlags: readonly string[];
  /** Progress lines. */
  readonly progress: (line: string) => void;
}

/**
 * Runs the database cell; resolves undefined (after saying why) when PostgreSQL is not
 * installed.
 */
export async function runDatabaseBench(
  input: DatabaseBenchInput,
): Promise<DatabaseBench | undefined> {
  try {
    await Deno.stat(POSTGRES_PROGRAM);
  } catch {
    input.progress(
      `database cell skipped: PostgreSQL 15 is not installed (no ${POSTGRES_PROGRAM}; ` +
        "Debian package postgresql)",
    );
    return undefined;
  }
  await using pg = await startPostgres();
  const keyFiles: Record<KeyAlgorithm, string> = {
    rsa: `${input.dir}/rsa.private`,
    ed25519: `${input.dir}/ed25519.private`,
  };
  await Deno.mkdir(input.dir, { recursive: true });
  for (const algorithm of ["rsa", "ed25519"] as const) {
    await Deno.writeTextFile(keyFiles[algorithm], input.setupFor(algorithm).keyPem, {
      mode: 0o600,
    });
  }
  // One KeyTable and one SigningTable per size and key; filler rows name keys never used.
  const load = async (suffix: string, rows: number) => {
    for (const algorithm of ["rsa", "ed25519"] as const) {
      const setup = input.setupFor(algorithm);
      const keys = `keys_${algorithm}_${suffix}`;
      const signing = `signing_${algorithm}_${suffix}`;
      await pg.sql(`CREATE TABLE ${keys} (id text PRIMARY KEY, domain_name text NOT NULL,
          selector text NOT NULL, private_key text NOT NULL);
        CREATE TABLE ${signing} (sender text PRIMARY KEY, key_id text NOT NULL);
        INSERT INTO ${keys} SELECT 'k' || i, 'd' || i || '.example', 'sel',
          '/nonexistent/k' || i || '.private' FROM generate_series(1, ${rows}) AS i;
        INSERT INTO ${signing} SELECT 'd' || i || '.example', 'k' || i
          FROM generate_series(1, ${rows}) AS i;
        INSERT INTO ${keys} VALUES ('bench', '${BENCH_DOMAIN}', '${setup.selector}',
          '${keyFiles[algorithm]}');
        INSERT INTO ${signing} VALUES ('${BENCH_DOMAIN}', 'bench');
        ANALYZE ${keys}; ANALYZE ${signing};`);
    }
  };
  const loadStart = Date.now();
  await load("big", DATABASE_ROWS);
  await load("small", SMALL_ROWS);
  input.progress(
    `database: loaded 2 x ${DATABASE_ROWS} + 2 x ${SMALL_ROWS} rows per key in ${
      Date.now() - loadStart
    } ms`,
  );
  const db = `${pg.user}:${pg.password}@${pg.port}+${pg.host}/${pg.database}`;
  const tables = (algorithm: KeyAlgorithm, suffix: string, ttl: number) => [
    `KeyTable dsn:pgsql://${db}/table=keys_${algorithm}_${suffix}?keycol=id?datacol=domain_name,selector,private_key`,
    `SigningTable dsn:pgsql://${db}/table=signing_${algorithm}_${suffix}?keycol=sender?datacol=key_id`,
    `DataSetCacheTTL ${ttl}`,
  ];
  const setup = (algorithm: KeyAlgorithm, name: string, lines?: readonly string[]) => ({
    ...input.setupFor(algorithm),
    dir: `${input.dir}/${name}`,
    tables: lines,
  });
  const start = (s: FilterSetup) => startDkimdFilter(s, input.dkimdFlags);

  // Time to ready, alternating sizes so the machine's load falls on both alike.
  const startupMs = { small: [] as number[], big: [] as number[], file: [] as number[] };
  for (let i = 0; i < STARTS; i++) {
    for (const which of ["small", "big", "file"] as const) {
      const s = which === "file"
        ? setup("rsa", "start-file")
        : setup("rsa", `start-${which}`, tables("rsa", which, 60));
      const t0 = performance.now();
      const f = await start(s);
      startupMs[which].push(performance.now() - t0);
      await f.stop();
    }
  }
  input.progress(
    `database: ready after start ${fmtMs(startupMs.small)} ms with ${SMALL_ROWS} rows, ${
      fmtMs(startupMs.big)
    } ms with ${DATABASE_ROWS}, ${fmtMs(startupMs.file)} ms with files`,
  );

  const runs: DatabaseRun[] = [];
  let round = 0;
  const run = async (
    filter: FilterProcess,
    tablesKind: "file" | "pgsql",
    algorithm: KeyAlgorithm,
    concurrency: number,
    cacheTtl?: number,
  ) => {
    const result = await runCell(
      { mode: "sign", size: "2KB", concurrency, algorithm, quickAck: true },
      filter,
      input.corpus,
      input.timing,
    );
    runs.push({ tables: tablesKind, algorithm, concurrency, round, cacheTtl, result });
    input.progress(
      `database: sign ${algorithm} 2KB c=${concurrency} ${tablesKind}${
        cacheTtl === undefined ? "" : ` ttl=${cacheTtl}`
      } ${result.msgsPerSecond.toFixed(0)} msg/s p50 ${result.p50Ms.toFixed(2)} ms p99 ${
        result.p99Ms.toFixed(2)
      } ms err ${result.errors}`,
    );
  };
  for (const algorithm of ["rsa", "ed25519"] as const) {
    const file = await start(setup(algorithm, `file-${algorithm}`));
    const warm = await start(setup(algorithm, `pgsql-${algorithm}`, tables(algorithm, "big", 60)));
    // The cold lookup (RSA only): every message a cache miss.
    const cold = algorithm === "rsa"
      ? await start(setup(algorithm, "pgsql-cold", tables(algorithm, "big", 0)))
      : undefined;
    try {
      for (round = 0; round < input.repeats; round++) {
        // Which goes first alternates, so a busy moment of the machine falls on both alike.
        const flip = <T>(pair: readonly [T, T]) => round % 2 === 0 ? pair : [pair[1], pair[0]];
        for (const [f, kind] of flip([[file, "file"], [warm, "pgsql"]] as const)) {
          await run(f, kind, algorithm, 4, kind === "pgsql" ? 60 : undefined);
        }
        if (!cold) continue;
        for (const [f, ttl] of flip([[warm, 60], [cold, 0]] as const)) {
          await run(f, "pgsql", algorithm, 1, ttl);
        }
      }
    } finally {
      await file.stop();
      await warm.stop();
      await cold?.stop();
    }
  }
  return { rows: DATABASE_ROWS, startupMs, runs };
}

function fmtMs(values: readonly number[]): string {
  return `${median(values).toFixed(0)} (${values.map((v) => v.toFixed(0)).join(", ")})`;
}

/**
 * The cell as Markdown: time to ready, warm ratios, and what a cold lookup adds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { markdownDatabase } from "./database_cell.ts";
 * const r = (msgs: number, p50: number, p99: number) => ({
 *   mode: "sign", concurrency: 4, quickAck: true, messages: msgs, errors: 0, errorSamples: [],
 *   seconds: 1, msgsPerSecond: msgs, p50Ms: p50, p99Ms: p99, meanBytes: 2048,
 * }) as const;
 * const text = markdownDatabase({
 *   rows: 100000,
 *   startupMs: { small: [500], big: [510], file: [490] },
 *   runs: [
 *     { tables: "file", algorithm: "rsa", concurrency: 4, round: 0, result: r(1000, 3, 6) },
 *     { tables: "pgsql", algorithm: "rsa", concurrency: 4, round: 0, cacheTtl: 60, result: r(950, 3, 6) },
 *     { tables: "pgsql", algorithm: "rsa", concurrency: 1, cacheTtl: 60, result: r(400, 2, 4) },
 *     { tables: "pgsql", algorithm: "rsa", concurrency: 1, cacheTtl: 0, result: r(300, 3, 5.5) },
 *   ],
 * });
 * assert.match(text, /\| sign rsa 2KB c=4 \| 1000 \| 950 \| 0\.95 \(0\.95\) \| ✅/);
 * assert.match(text, /cold lookup adds 1\.00 ms at p50 and 1\.50 ms at p99/);
 * ```
 */
export function markdownDatabase(bench: DatabaseBench): string {
  // The medians of the matching runs, or undefined when none ran.
  const find = (tables: "file" | "pgsql", algorithm: KeyAlgorithm, c: number, ttl?: number) => {
    const found = bench.runs.filter((r) =>
      r.tables === tables && r.algorithm === algorithm && r.concurrency === c &&
      (ttl === undefined || r.cacheTtl === ttl)
    ).map((r) => r.result);
    if (found.length === 0) return undefined;
    const of = (f: (r: LoadResult) => number) => median(found.map(f));
    return {
      runs: found.length,
      msgsPerSecond: of((r) => r.msgsPerSecond),
      p50Ms: of((r) => r.p50Ms),
      p99Ms: of((r) => r.p99Ms),
    };
  };
  const lines = [
    `Time to ready after start (spawn to socket accepting; median of ${bench.startupMs.big.length}, each run in brackets): ` +
    `${fmtMs(bench.startupMs.small)} ms with ${SMALL_ROWS} rows per table, ` +
    `${fmtMs(bench.startupMs.big)} ms with ${bench.rows} rows, ${
      fmtMs(bench.startupMs.file)
    } ms with the files. Target: under 1 s whatever the table size ` +
    `${median(bench.startupMs.big) < 1000 ? "✅" : "❌"}.`,
    "",
    "| cell (warm cache, DataSetCacheTTL 60) | files msg/s (median) | PostgreSQL msg/s (median) | ratio: median (per round) | ≥ 0.9 |",
    "| --- | ---: | ---: | ---: | :---: |",
  ];
  for (const algorithm of ["rsa", "ed25519"] as const) {
    const file = find("file", algorithm, 4);
    const pgsql = find("pgsql", algorithm, 4);
    if (!file || !pgsql) continue;
    // The ratio of each round's pair (run back to back), then their median: on a busy machine
    // a pair shares its moment's load, where two separate medians need not.
    const ratios = bench.runs.filter((r) =>
      r.tables === "pgsql" && r.algorithm === algorithm && r.concurrency === 4
    ).flatMap((db) => {
      const f = bench.runs.find((r) =>
        r.tables === "file" && r.algorithm === algorithm && r.concurrency === 4 &&
        r.round === db.round
      );
      return f ? [db.result.msgsPerSecond / f.result.msgsPerSecond] : [];
    });
    const ratio = median(ratios);
    lines.push(
      `| sign ${algorithm} 2KB c=4 | ${file.msgsPerSecond.toFixed(0)} | ${
        pgsql.msgsPerSecond.toFixed(0)
      } | ${ratio.toFixed(2)} (${ratios.map((r) => r.toFixed(2)).join(", ")}) | ${
        ratio >= 0.9 ? "✅" : "❌"
      } |`,
    );
  }
  const warm = find("pgsql", "rsa", 1, 60);
  const cold = find("pgsql", "rsa", 1, 0);
  if (warm && cold) {
    lines.push(
      "",
      `Sign rsa 2KB c=1 (medians of ${cold.runs}): warm p50 ${warm.p50Ms.toFixed(2)} ms, p99 ${
        warm.p99Ms.toFixed(2)
      } ms; every message a cache miss (DataSetCacheTTL 0: a SigningTable and a KeyTable ` +
        `query) p50 ${cold.p50Ms.toFixed(2)} ms, p99 ${cold.p99Ms.toFixed(2)} ms: a cold ` +
        `lookup adds ${(cold.p50Ms - warm.p50Ms).toFixed(2)} ms at p50 and ${
          (cold.p99Ms - warm.p99Ms).toFixed(2)
        } ms at p99.`,
    );
  }
  return lines.join("\n");
}
