import assert from "node:assert/strict";
import {
  CachedTable,
  type CachedTableOptions,
  TableUnavailableError,
} from "../../lib/tables/cached_table.ts";
import type { TableBackend } from "../../lib/tables/table_backend.ts";

/** A table in memory that can be taken down, slowed or held, and records every query. */
class MemoryBackend implements TableBackend {
  readonly describe = "memory://test";
  readonly rows = new Map<string, string[]>();
  readonly queries: string[][] = [];
  readonly signals: AbortSignal[] = [];
  failure: Error | undefined;
  /** When set, queries wait for it (and never answer if it never resolves). */
  gate: Promise<void> | undefined;
  closed = false;

  query(keys: readonly string[], signal: AbortSignal): Promise<(readonly string[] | undefined)[]> {
    this.queries.push([...keys]);
    this.signals.push(signal);
    const answer = () => {
      if (this.closed) throw new Error("closed");
      if (this.failure) throw this.failure;
      return keys.map((k) => this.rows.get(k));
    };
    return this.gate ? this.gate.then(answer) : Promise.resolve().then(answer);
  }

  scan(limit: number): Promise<{ key: string; columns: readonly string[] }[]> {
    return Promise.resolve(
      [...this.rows].slice(0, limit).map(([key, columns]) => ({ key, columns })),
    );
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

class Clock {
  now = 1_000_000;
  readonly read = () => this.now;
}

function setup(overrides: Partial<CachedTableOptions> = {}) {
  const backend = new MemoryBackend();
  backend.rows.set("example.com", ["example.com", "sel", "/k.pem"]);
  const clock = new Clock();
  const logs: [string, string][] = [];
  const keys: [string, number][] = [];
  const queries: boolean[] = [];
  const table = new CachedTable(backend, {
    setting: "KeyTable",
    cacheTtlMs: 60_000,
    staleMs: 300_000,
    queryTimeoutMs: 1_000,
    clock: clock.read,
    log: (level, message) => logs.push([level, message]),
    observer: {
      tableKeys: (_, outcome, count) => keys.push([outcome, count]),
      tableQuery: (_, ok) => queries.push(ok),
    },
    retryInitialMs: 1_000,
    retryMaxMs: 8_000,
    ...overrides,
  });
  return { backend, clock, logs, keys, queries, table };
}

Deno.test("CachedTable.lookup() asks the missing keys in one query and joins columns with ':'", async () => {
  const { backend, table, keys } = setup();
  const [hit, miss, again] = await table.lookup(["example.com", "example.org", "example.com"]);
  assert.equal(hit?.key, "example.com");
  assert.equal(hit?.value, "example.com:sel:/k.pem");
  assert.equal(hit?.origin.file, 'KeyTable memory://test row "example.com"');
  assert.equal(miss, undefined);
  assert.equal(again, hit && again);
  assert.deepEqual(backend.queries, [["example.com", "example.org"]]);
  await table.lookup(["example.org", "example.com"]);
  assert.equal(backend.queries.length, 1, "both answers, positive and negative, were cached");
  assert.deepEqual(keys, [["database", 2], ["cache", 2]]);
});

Deno.test("CachedTable.lookup() asks again after the TTL: a changed row and an added row are used", async () => {
  const { backend, clock, table } = setup();
  await table.lookup(["example.com", "new.example"]);
  backend.rows.set("example.com", ["example.com", "sel2", "/k2.pem"]);
  backend.rows.set("new.example", ["new.example", "s", "/n.pem"]);
  clock.now += 59_999;
  const [old, none] = await table.lookup(["example.com", "new.example"]);
  assert.equal(old?.value, "example.com:sel:/k.pem");
  assert.equal(none, undefined, "the negative entry holds within the TTL");
  clock.now += 1;
  const [changed, added] = await table.lookup(["example.com", "new.example"]);
  assert.equal(changed?.value, "example.com:sel2:/k2.pem");
  assert.equal(added?.value, "new.example:s:/n.pem");
  assert.equal(backend.queries.length, 2);
});

Deno.test("CachedTable.lookup() shares one query between identical misses asked at once", async () => {
  const { backend, table } = setup();
  let open!: () => void;
  backend.gate = new Promise((resolve) => (open = resolve));
  const first = table.lookup(["example.com"]);
  const second = table.lookup(["example.com", "other.example"]);
  await Promise.resolve();
  open();
  const [[a], [b, c]] = await Promise.all([first, second]);
  assert.equal(a?.value, "example.com:sel:/k.pem");
  assert.equal(b?.value, a?.value);
  assert.equal(c, undefined);
  assert.deepEqual(backend.queries, [["example.com"], ["other.example"]]);
});

Deno.test("CachedTable.lookup() rejects when the database fails, and serves stale entries up to the limit", async () => {
  const { backend, clock, table, logs } = setup();
  await table.lookup(["example.com"]);
  backend.failure = new Error("connection refused");
  clock.now += 60_000;
  const [stale] = await table.lookup(["example.com"]);
  assert.equal(stale?.value, "example.com:sel:/k.pem", "served stale within the limit");
  await assert.rejects(
    table.lookup(["example.com", "unknown.example"]),
    (e: unknown) => {
      assert.ok(e instanceof TableUnavailableError);
      assert.equal(e.setting, "KeyTable");
      assert.match(e.message, /KeyTable memory:\/\/test is unavailable: connection refused/);
      return true;
    },
  );
  clock.now += 300_000;
  await assert.rejects(table.lookup(["example.com"]), TableUnavailableError);
  assert.equal(logs.filter(([level]) => level === "warning").length, 1);
});

Deno.test("CachedTable.lookup() backs off after a failure: no query until the delay passes, growing to the cap", async () => {
  const { backend, clock, table } = setup();
  backend.failure = new Error("down");
  await assert.rejects(table.lookup(["a.example"]), TableUnavailableError);
  assert.equal(backend.queries.length, 1);
  for (let i = 0; i < 20; i++) {
    await assert.rejects(table.lookup([`m${i}.example`]), TableUnavailableError);
  }
  assert.equal(backend.queries.length, 1, "failing fast while the delay runs");
  const delays: number[] = [];
  for (let attempt = 0; attempt < 6; attempt++) {
    const before: number = backend.queries.length;
    let waited = 0;
    while (backend.queries.length === before) {
      clock.now += 500;
      waited += 500;
      await assert.rejects(table.lookup(["a.example"]), TableUnavailableError);
    }
    delays.push(waited);
  }
  assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
  backend.failure = undefined;
  clock.now += 8_000;
  assert.deepEqual(await table.lookup(["a.example"]), [undefined]);
  assert.equal(table.down, false);
  // After recovery the delay starts again from the first one.
  backend.failure = new Error("down again");
  clock.now += 60_000;
  await assert.rejects(table.lookup(["z.example"]), TableUnavailableError);
  const before: number = backend.queries.length;
  clock.now += 999;
  await assert.rejects(table.lookup(["z.example"]), TableUnavailableError);
  assert.equal(backend.queries.length, before);
  clock.now += 1;
  await assert.rejects(table.lookup(["z.example"]), TableUnavailableError);
  assert.equal(backend.queries.length, before + 1);
});

Deno.test("CachedTable.lookup() sends one probe at a time while the database is down", async () => {
  const { backend, clock, table } = setup();
  backend.failure = new Error("down");
  await assert.rejects(table.lookup(["a.example"]), TableUnavailableError);
  clock.now += 1_000;
  let open!: () => void;
  backend.gate = new Promise((resolve) => (open = resolve));
  backend.failure = undefined;
  const probe = table.lookup(["a.example"]);
  await assert.rejects(table.lookup(["b.example"]), TableUnavailableError);
  open();
  assert.deepEqual(await probe, [undefined]);
  assert.equal(backend.queries.length, 2);
  assert.deepEqual(await table.lookup(["b.example"]), [undefined]);
});

Deno.test("CachedTable.lookup() gives up after the query timeout and aborts the back end's signal", async () => {
  const { backend, table } = setup({ queryTimeoutMs: 30 });
  backend.gate = new Promise(() => {});
  const started = performance.now();
  await assert.rejects(table.lookup(["example.com"]), /no answer within 30 ms/);
  assert.ok(performance.now() - started < 2_000);
  assert.equal(backend.signals[0].aborted, true);
});

Deno.test("CachedTable logs one line when an outage starts and one when it ends", async () => {
  const { backend, clock, table, logs, queries } = setup();
  backend.failure = new Error("ECONNREFUSED");
  for (let i = 0; i < 50; i++) {
    clock.now += 2_000;
    await assert.rejects(table.lookup([`d${i}.example`]), TableUnavailableError);
  }
  assert.equal(logs.length, 1);
  assert.equal(logs[0][0], "warning");
  assert.match(logs[0][1], /^KeyTable memory:\/\/test is unavailable: ECONNREFUSED/);
  backend.failure = undefined;
  clock.now += 60_000;
  await table.lookup(["example.com"]);
  await table.lookup(["example.org"]);
  assert.equal(logs.length, 2);
  assert.equal(logs[1][0], "info");
  assert.match(logs[1][1], /^KeyTable memory:\/\/test answers again after \d+ s unavailable$/);
  assert.ok(queries.includes(false) && queries.at(-1) === true);
});

Deno.test("CachedTable keeps at most maxEntries keys, dropping the oldest", async () => {
  const { backend, table } = setup({ maxEntries: 2 });
  await table.lookup(["a", "b", "c"]);
  await table.lookup(["c"]);
  assert.equal(backend.queries.length, 1);
  await table.lookup(["a"]);
  assert.equal(backend.queries.length, 2, "the oldest entry was dropped");
});

Deno.test("CachedTable.close() closes the back end", async () => {
  const { backend, table } = setup();
  await table.close();
  assert.equal(backend.closed, true);
  await assert.rejects(table.lookup(["example.com"]), TableUnavailableError);
});
