/**
 * `deno task bench`: dkimd, OpenDKIM and (when installed) rspamd side by side, behind the eyes of
 * a Postfix-like MTA. rspamd runs the RSA cells (bench/filters.ts `rspamdConfig`).
 *
 * Makes an RSA-2048 and an Ed25519 key, publishes both in a local DNS server (knotd on
 * 127.0.0.1), writes the corpus (realistic 2 KB, 200 KB and 2 MB messages, and copies signed
 * with each key), then for each of 3 repeats and each group of cells starts a fresh dkimd and a
 * fresh OpenDKIM with the same key and settings and runs every cell against both, alternating
 * which goes first. Each run is a separate load-client process (bench/load_client.ts) that
 * measures throughput, latency, and the filter's CPU time and peak memory from /proc. After the
 * cells of each repeat comes the memory pass (bench/memory_pass.ts): one process per filter
 * through sign/verify of 2 KB and 2 MB at 4 and 16 connections, its peak RSS never reset, checked
 * against the 90 MiB target. The ARC cell (issue 17) runs against dkimd alone, configured with
 * ARCMode sv: 2 KB messages carrying a 2-instance ARC chain sealed at bench start by two
 * forwarders whose RSA-2048 keys sit in the same DNS server (bench/arc_corpus.ts).
 *
 * Writes `bench/results/bench-<time>.jsonl` (one line per run) and `.md` (the table, the targets
 * and the machine), and prints the Markdown.
 *
 * Options: `--quick` (a one-minute subset), `--repeats N`, `--duration MS`, `--warmup MS`,
 * `--only dkimd|opendkim|rspamd`, `--cells REGEX` (on names such as `sign rsa 2KB c=4 qa`),
 * `--cpu-prof DIR` (dkimd writes V8 CPU profiles there), `--memory-only` (only the memory pass),
 * `--skip-memory` (no memory pass), `--crypto-backend openssl` (dkimd's CryptoBackend),
 * `--database-only` (only the database cell, bench/database_cell.ts: tables in PostgreSQL,
 * issue 14), `--skip-database`, `--dkimd-flags=FLAGS` (Deno flags added after the
 * service's, e.g. `--v8-flags=...` to try V8 settings), `--out DIR`.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { generateSigningKey, importPrivateKey } from "../lib/crypto/private_key.ts";
import { startDnsServer } from "../tests/helpers/dns_server.ts";
import { generateTestKey } from "../tests/helpers/peers.ts";
import {
  type Cell,
  type CellGroup,
  cellKey,
  fullCells,
  type KeyAlgorithm,
  quickCells,
} from "./cells.ts";
import { BENCH_DOMAIN, type SizeLabel, writeCorpus } from "./corpus.ts";
import { writeArcCorpus } from "./arc_corpus.ts";
import {
  type FilterName,
  type FilterProcess,
  type FilterSetup,
  OPENDKIM_PATH,
  RSPAMD_PATH,
  rspamdInstalled,
  startFilter,
} from "./filters.ts";
import type { LoadResult } from "./load_client.ts";
import { runCell } from "./load_run.ts";
import { markdownDatabase, runDatabaseBench } from "./database_cell.ts";
import { markdownMemory, type MemoryPass, type MemoryStep, runMemoryPass } from "./memory_pass.ts";
import {
  checkRspamdTargets,
  checkTargets,
  markdownArc,
  markdownTable,
  markdownTargets,
  rowsOf,
  type RunRecord,
} from "./report.ts";

/** Selectors the keys are published under. */
const SELECTORS: Readonly<Record<KeyAlgorithm, string>> = { rsa: "rsa2048", ed25519: "ed25519" };

/** Selectors of the ARC keys: the chain's two forwarders, then dkimd's sealing key. */
const ARC_SELECTORS = ["arc1", "arc2", "arcseal"] as const;

interface BenchOptions {
  readonly quick: boolean;
  readonly repeats: number;
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly only?: FilterName;
  readonly cellFilter?: RegExp;
  readonly cpuProf?: string;
  /** Extra Deno flags for dkimd, after the service's (a later `--v8-flags` value wins). */
  readonly dkimdFlags: readonly string[];
  /** Run the side-by-side cells. */
  readonly cells: boolean;
  /** Run the memory pass (bench/memory_pass.ts). */
  readonly memory: boolean;
  /** Run the database cell (bench/database_cell.ts). */
  readonly database: boolean;
  readonly out: string;
  /** dkimd's CryptoBackend (`--crypto-backend openssl`); default webcrypto. */
  readonly cryptoBackend?: "webcrypto" | "openssl";
}

function options(args: string[]): BenchOptions {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      repeats: { type: "string" },
      duration: { type: "string" },
      warmup: { type: "string" },
      only: { type: "string" },
      cells: { type: "string" },
      "cpu-prof": { type: "string" },
      "dkimd-flags": { type: "string" },
      "memory-only": { type: "boolean", default: false },
      "skip-memory": { type: "boolean", default: false },
      "database-only": { type: "boolean", default: false },
      "skip-database": { type: "boolean", default: false },
      out: { type: "string", default: new URL("./results", import.meta.url).pathname },
      "crypto-backend": { type: "string" },
    },
    strict: true,
  });
  const int = (name: string, text: string | undefined, fallback: number) => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new TypeError(`Invalid "--${name}" ${text}`);
    return n;
  };
  if (values.only !== undefined && !["dkimd", "opendkim", "rspamd"].includes(values.only)) {
    throw new TypeError(
      `Invalid "--only" ${values.only}: expected "dkimd", "opendkim" or "rspamd"`,
    );
  }
  const backend = values["crypto-backend"];
  if (backend !== undefined && backend !== "webcrypto" && backend !== "openssl") {
    throw new TypeError(`Invalid "--crypto-backend" ${backend}: expected "webcrypto" or "openssl"`);
  }
  return {
    quick: values.quick,
    repeats: int("repeats", values.repeats, values.quick ? 1 : 3),
    durationMs: int("duration", values.duration, values.quick ? 1500 : 2000),
    warmupMs: int("warmup", values.warmup, values.quick ? 500 : 600),
    only: values.only as FilterName | undefined,
    cellFilter: values.cells === undefined ? undefined : new RegExp(values.cells),
    cpuProf: values["cpu-prof"],
    dkimdFlags: values["dkimd-flags"]?.split(/\s+/).filter((f) => f !== "") ?? [],
    cells: !values["memory-only"] && !values["database-only"],
    memory: !values["skip-memory"] && !values["database-only"],
    database: !values["skip-database"] && !values["memory-only"],
    out: values.out,
    cryptoBackend: backend,
  };
}

async function text(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    return new TextDecoder().decode(out.stdout.length > 0 ? out.stdout : out.stderr).trim();
  } catch {
    return "";
  }
}

/** The machine, for the report: CPU, cores, memory, kernel, Deno and OpenDKIM versions. */
async function machine(): Promise<string> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const model = cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown CPU";
  const mhz = cpuinfo.match(/^cpu MHz\s*:\s*(.*)$/m)?.[1];
  const mem = (await Deno.readTextFile("/proc/meminfo").catch(() => "")).match(
    /^MemTotal:\s*(\d+)/m,
  )?.[1];
  const opendkim = (await text(OPENDKIM_PATH, ["-V"])).split("\n")[0] || "OpenDKIM not installed";
  const rspamd = (await text(RSPAMD_PATH, ["--version"])).split("\n")[0] || "rspamd not installed";
  return [
    `${model}${
      mhz ? ` @ ${Number(mhz).toFixed(0)} MHz` : ""
    }, ${navigator.hardwareConcurrency} cores`,
    `${mem ? (Number(mem) / 1048576).toFixed(1) : "?"} GiB RAM, Linux ${Deno.osRelease()}`,
    `Deno ${Deno.version.deno} (V8 ${Deno.version.v8}), ${opendkim}, ${rspamd}`,
  ].join("; ");
}

/** CPU milliseconds of one WebCrypto signature in this process, all threads (process.cpuUsage). */
async function signCpuMs(type: KeyAlgorithm, ops: number): Promise<number> {
  const key = await generateSigningKey(type, type === "rsa" ? 2048 : undefined);
  const data = new Uint8Array(700).fill(0x61);
  for (let i = 0; i < 20; i++) await key.sign(data);
  const before = process.cpuUsage();
  for (let i = 0; i < ops; i++) await key.sign(data);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / ops;
}

function mib(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}

function memoryProgress(name: FilterName, repeat: number, step: MemoryStep): string {
  return `memory r${repeat} ${cellKey(step.cell).padEnd(28)} ${name.padEnd(8)} ${
    step.msgsPerSecond.toFixed(0).padStart(6)
  } msg/s  peak so far ${mib(step.peakSoFarBytes).padStart(6)} MiB  err ${step.errors}`;
}

function progress(record: RunRecord, index: number, total: number): string {
  const r = record.result;
  const f = (
    n: number | undefined,
    d: number,
  ) => (n === undefined || !Number.isFinite(n) ? "–" : n.toFixed(d));
  return `[${index}/${total}] r${record.repeat} ${cellKey(record.cell).padEnd(28)} ${
    record.filter.padEnd(8)
  } ` +
    `${f(r.msgsPerSecond, 0).padStart(6)} msg/s  p50 ${f(r.p50Ms, 2).padStart(7)} ms  p99 ${
      f(r.p99Ms, 2).padStart(7)
    } ms  cpu ${f(r.cpuMsPerMessage, 3).padStart(7)} ms/msg  rss ${
      f((r.peakRssBytes ?? NaN) / 1048576, 0).padStart(4)
    } MiB  err ${r.errors}`;
}

async function main(): Promise<void> {
  const opts = options(Deno.args);
  const started = new Date();
  const stamp = started.toISOString().replace(/[:.]/g, "-").slice(0, 19);
  const filters: FilterName[] = opts.only
    ? [opts.only]
    : ["dkimd", "opendkim", ...(await rspamdInstalled() ? ["rspamd" as const] : [])];
  const groups: CellGroup[] = (opts.quick ? quickCells() : fullCells())
    .map((g) => ({
      ...g,
      cells: g.cells.filter((c) =>
        opts.cells && (!opts.cellFilter || opts.cellFilter.test(cellKey(c)))
      ),
    }))
    .filter((g) => g.cells.length > 0);
  // OpenDKIM has no ARC: the ARC group runs against dkimd alone; rspamd runs the RSA groups.
  // The peers have no CryptoBackend: the OpenSSL group is dkimd's alone (the report sets the
  // peers' runs of the default-backend cell beside it).
  const filtersOf = (g: CellGroup) =>
    g.arc || g.cryptoBackend
      ? filters.filter((f) => f === "dkimd")
      : filters.filter((f) => f !== "rspamd" || g.algorithm === "rsa");
  const total = groups.reduce((n, g) => n + g.cells.length * filtersOf(g).length, 0) *
    opts.repeats;
  const sizes = [
    ...new Set([
      ...groups.map((g) => g.size),
      ...(opts.memory ? ["2KB", "2MB"] : []),
      ...(opts.database ? ["2KB"] : []),
    ]),
  ] as SizeLabel[];

  const host = await machine();
  console.error(`dkimd benchmark: ${total} runs; ${host}`);
  const dir = await Deno.makeTempDir({ prefix: "dkimd-bench-" });
  await Deno.mkdir(opts.out, { recursive: true });
  const jsonl = `${opts.out}/bench-${stamp}.jsonl`;
  const records: RunRecord[] = [];
  const keys = {
    rsa: await generateTestKey("rsa-sha256", 2048),
    ed25519: await generateTestKey("ed25519-sha256"),
  };
  const arcKeys = await Promise.all(ARC_SELECTORS.map(() => generateTestKey("rsa-sha256", 2048)));
  const dns = await startDnsServer({
    zone: BENCH_DOMAIN,
    records: {
      [`${SELECTORS.rsa}._domainkey.${BENCH_DOMAIN}`]: [keys.rsa.record],
      [`${SELECTORS.ed25519}._domainkey.${BENCH_DOMAIN}`]: [keys.ed25519.record],
      ...Object.fromEntries(
        ARC_SELECTORS.map((s, i) => [`${s}._domainkey.${BENCH_DOMAIN}`, [arcKeys[i].record]]),
      ),
    },
  });
  try {
    console.error("Writing the corpus...");
    const corpus = await writeCorpus(
      `${dir}/corpus`,
      await Promise.all((["rsa", "ed25519"] as const).map(async (algorithm) => ({
        algorithm,
        selector: SELECTORS[algorithm],
        key: await importPrivateKey(keys[algorithm].privatePem),
      }))),
      sizes,
    );
    const arcCorpus = groups.some((g) => g.arc)
      ? await writeArcCorpus(
        `${dir}/corpus/arc/2KB`,
        corpus.verify.rsa["2KB"],
        await Promise.all([0, 1].map(async (i) => ({
          domain: BENCH_DOMAIN,
          selector: ARC_SELECTORS[i],
          key: await importPrivateKey(arcKeys[i].privatePem),
        }))),
        BENCH_DOMAIN,
      )
      : undefined;
    const rsaSignMs = await signCpuMs("rsa", opts.quick ? 100 : 300);
    const edSignMs = await signCpuMs("ed25519", 300);
    console.error(
      `WebCrypto in this process: RSA-2048 sign ${rsaSignMs.toFixed(3)} ms CPU, Ed25519 sign ${
        edSignMs.toFixed(3)
      } ms CPU`,
    );

    let index = 0;
    const passes: MemoryPass[] = [];
    const setupFor = (
      algorithm: KeyAlgorithm,
      arc = false,
      cryptoBackend = opts.cryptoBackend,
    ): FilterSetup => ({
      dir: `${dir}/filters-${algorithm}${arc ? "-arc" : ""}${
        cryptoBackend === opts.cryptoBackend ? "" : `-${cryptoBackend}`
      }`,
      keyPem: keys[algorithm].privatePem,
      selector: SELECTORS[algorithm],
      algorithm: algorithm === "rsa" ? "rsa-sha256" : "ed25519-sha256",
      nameserver: dns.nameserver,
      arc: arc ? { selector: ARC_SELECTORS[2], keyPem: arcKeys[2].privatePem } : undefined,
      cryptoBackend,
    });
    const corpusOf = (cell: Cell) =>
      cell.mode === "sign"
        ? corpus.sign[cell.size]
        : cell.mode === "arc"
        ? arcCorpus!
        : corpus.verify[cell.algorithm][cell.size];
    for (let repeat = 1; repeat <= opts.repeats; repeat++) {
      for (const group of groups) {
        const setup = setupFor(
          group.algorithm,
          group.arc,
          group.cryptoBackend ?? opts.cryptoBackend,
        );
        const groupFilters = filtersOf(group);
        const dkimdFlags = [
          ...opts.dkimdFlags,
          ...(opts.cpuProf
            ? [
              "--cpu-prof",
              `--cpu-prof-dir=${opts.cpuProf}`,
              `--cpu-prof-name=dkimd-${group.algorithm}-${group.size}${
                group.cryptoBackend ? `-${group.cryptoBackend}` : ""
              }-r${repeat}.cpuprofile`,
            ]
            : []),
        ];
        const running = new Map<FilterName, FilterProcess>();
        for (const name of groupFilters) {
          running.set(name, await startFilter(name, setup, dkimdFlags));
        }
        try {
          for (const [i, cell] of group.cells.entries()) {
            const order = (i + repeat) % 2 === 0 ? groupFilters : [...groupFilters].reverse();
            for (const name of order) {
              let result: LoadResult;
              try {
                result = await runCell(cell, running.get(name)!, corpusOf(cell), opts);
              } catch (e) {
                console.error(String(e));
                // The filter may have died: start it again for the next cells.
                await running.get(name)!.stop();
                running.set(name, await startFilter(name, setup, dkimdFlags));
                continue;
              }
              const record: RunRecord = { cell, filter: name, repeat, result };
              records.push(record);
              await Deno.writeTextFile(jsonl, `${JSON.stringify(record)}\n`, { append: true });
              console.error(progress(record, ++index, total));
            }
          }
        } finally {
          for (const f of running.values()) await f.stop();
        }
      }
      if (!opts.memory) continue;
      // One process per filter through every cell of the memory target, its peak never reset.
      const memoryFilters = filters.filter((f) => f !== "rspamd");
      for (const name of repeat % 2 === 0 ? memoryFilters : [...memoryFilters].reverse()) {
        const filter = await startFilter(name, setupFor("rsa"), opts.dkimdFlags);
        try {
          const pass = await runMemoryPass(
            filter,
            repeat,
            corpusOf,
            opts,
            (step) => console.error(memoryProgress(name, repeat, step)),
          );
          passes.push(pass);
          await Deno.writeTextFile(jsonl, `${JSON.stringify({ memoryPass: pass })}\n`, {
            append: true,
          });
          console.error(
            `memory r${repeat} ${name}: idle ${mib(pass.idleRssBytes)} MiB, peak ${
              mib(pass.peakRssBytes)
            } MiB, idle after ${mib(pass.afterRssBytes)} MiB`,
          );
        } catch (e) {
          console.error(String(e));
        } finally {
          await filter.stop();
        }
      }
    }

    const database = opts.database && opts.only !== "opendkim"
      ? await runDatabaseBench({
        dir: `${dir}/database`,
        setupFor: (algorithm) => setupFor(algorithm),
        corpus: corpus.sign["2KB"],
        timing: opts,
        repeats: opts.repeats,
        dkimdFlags: opts.dkimdFlags,
        progress: (line) => console.error(line),
      })
      : undefined;
    if (database) {
      await Deno.writeTextFile(jsonl, `${JSON.stringify({ database })}\n`, { append: true });
    }

    const rows = rowsOf(records);
    const minutes = ((Date.now() - started.getTime()) / 60000).toFixed(1);
    const report = [
      `# dkimd benchmark, ${started.toISOString()}`,
      "",
      `Machine: ${host}.`,
      "",
      `Command: \`deno task bench${
        Deno.args.length ? ` ${Deno.args.join(" ")}` : ""
      }\`; ${opts.repeats} repeat(s), ` +
      `${opts.warmupMs} ms warm-up + ${opts.durationMs} ms measured per run; ${minutes} minutes. ` +
      "Medians over the repeats (peak RSS: the highest); CPU is the filter process's utime+stime " +
      "from /proc over the measured window, divided by the messages completed in it. " +
      "`qa`: the client sets TCP_NODELAY and, after each read, TCP_QUICKACK; `noqa`: neither, " +
      "as Postfix (both write as Postfix does: 4 KiB stream buffer, flushed after DATA). " +
      "Ratios are dkimd ÷ OpenDKIM, and ÷ rspamd. rspamd (when installed) is measured over its " +
      "whole process tree (main process and 2 `rspamd_proxy` workers, milter, self_scan) with " +
      "only its `dkim` and `dkim_signing` modules and `milter_headers`' Authentication-Results " +
      "(bench/filters.ts `rspamdConfig`); it signs more header fields than dkimd's default " +
      "(its own list, oversigning several), so its header hash covers more. dkimd's " +
      `CryptoBackend: ${opts.cryptoBackend ?? "webcrypto"}, but \`openssl\` in the cells so ` +
      "named (OpenDKIM and rspamd, which have no such setting, show there their runs of the " +
      "same cell without the backend's name).",
      "",
      `WebCrypto signature CPU in one process: RSA-2048 ${rsaSignMs.toFixed(3)} ms, Ed25519 ${
        edSignMs.toFixed(3)
      } ms.`,
      "",
      markdownTable(rows),
      "",
      ...(markdownArc(rows) ? ["## ARC (issue 17)", "", markdownArc(rows), ""] : []),
      "## Targets (issue 7)",
      "",
      markdownTargets(checkTargets(rows, edSignMs)),
      "",
      "## Targets against rspamd (issue 20)",
      "",
      markdownTargets(checkRspamdTargets(rows, {
        earlier: checkTargets(rows, edSignMs),
        memoryPeakBytes: passes.filter((p) => p.filter === "dkimd").map((p) => p.peakRssBytes),
      })),
      "",
      ...(database
        ? [
          "## Tables in PostgreSQL (issue 14)",
          "",
          `dkimd alone, its KeyTable and SigningTable in a private PostgreSQL 15 holding ` +
          `${database.rows} domains each besides the benchmark's (dsn:pgsql, loaded with ` +
          "generate_series), next to the same dkimd with the files of the cells above.",
          "",
          markdownDatabase(database),
          "",
        ]
        : []),
      ...(passes.length > 0
        ? [
          "## Memory (issue 16)",
          "",
          "One process per filter, started once with the service's flags (dkimd: the `start` " +
          "task's, including its `--v8-flags`" +
          (opts.dkimdFlags.length ? `, then \`${opts.dkimdFlags.join(" ")}\`` : "") +
          "), through every cell below in turn; each cell column is the peak RSS so far (VmHWM, " +
          "never reset) and that cell's messages per second. Idle: 1 s after listening, and 1 s " +
          "after the last cell.",
          "",
          markdownMemory(passes),
          "",
        ]
        : []),
    ].join("\n");
    await Deno.writeTextFile(`${opts.out}/bench-${stamp}.md`, report);
    console.log(report);
    console.error(`Wrote ${jsonl} and ${opts.out}/bench-${stamp}.md`);
  } finally {
    await dns.close();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
