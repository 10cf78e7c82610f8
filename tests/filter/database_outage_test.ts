// A data set in a database that cannot answer, as the filter meets it: the rejected lookup is
// On-InternalError (default tempfail: the message is deferred, neither signed nor passed
// unsigned), and the outage is the data set's one log line, not one per message.
import assert from "node:assert/strict";
import { DkimFilter } from "../../lib/filter/dkim_filter.ts";
import { SigningTable } from "../../lib/policy/signing_table.ts";
import { CachedTable } from "../../lib/tables/cached_table.ts";
import type { TableBackend } from "../../lib/tables/table_backend.ts";
import { MemoryLogger } from "../helpers/milter_logger.ts";
import { MemoryMta } from "../helpers/memory_mta.ts";
import { exampleSigning, memoryRuntime } from "../helpers/memory_runtime.ts";

/** A database that refuses every query, counting them. */
class DownBackend implements TableBackend {
  readonly describe = "dsn:pgsql://dkim:***@db/mail/table=signing?keycol=sender?datacol=keyname";
  queries = 0;
  query(): Promise<(readonly string[] | undefined)[]> {
    this.queries++;
    return Promise.reject(new Error("connection refused"));
  }
  scan(): Promise<{ key: string; columns: readonly string[] }[]> {
    return Promise.reject(new Error("connection refused"));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

async function setup(extra: string) {
  const signing = await exampleSigning();
  const base = await memoryRuntime(`Mode sv\n${signing.conf}${extra}`, {
    files: signing.files,
    zone: signing.zone,
  });
  const backend = new DownBackend();
  const tableLog: string[] = [];
  const table = new CachedTable(backend, {
    setting: "SigningTable",
    cacheTtlMs: 60_000,
    staleMs: 0,
    queryTimeoutMs: 1_000,
    log: (_, m) => tableLog.push(m),
  });
  const runtime = { ...base, loaded: { ...base.loaded, signingTable: SigningTable.keyed(table) } };
  const log = new MemoryLogger();
  const filter = new DkimFilter({ runtime: () => runtime, logger: log, hostname: "mx.test" });
  return { backend, tableLog, log, mta: () => new MemoryMta(filter) };
}

function send(mta: MemoryMta, qid: string) {
  return mta.sendMessage({
    connect: { hostname: "localhost", address: "127.0.0.1" },
    helo: "localhost",
    macros: { mail: { i: qid } },
    from: "<alice@example.com>",
    rcpts: ["<bob@example.org>"],
    headers: [["From", " <alice@example.com>"], ["Subject", ` ${qid}`]],
    body: "Hi\r\n",
  });
}

Deno.test("DkimFilter defers mail (On-InternalError tempfail) while a database SigningTable cannot answer, logging the outage once", async () => {
  const { backend, tableLog, log, mta } = await setup("");
  for (const qid of ["A1", "A2", "A3"]) {
    const r = await send(mta(), qid);
    assert.deepEqual(r.final, {
      type: "replycode",
      code: 451,
      text: "4.7.1 DKIM filter error, try later",
    });
    assert.deepEqual(r.modifications, [], "not signed");
  }
  assert.equal(backend.queries, 1, "no query while the retry delay runs");
  assert.equal(tableLog.length, 1);
  assert.match(
    tableLog[0],
    /^SigningTable dsn:pgsql:\/\/dkim:\*\*\*@db\/.* is unavailable: connection refused/,
  );
  assert.deepEqual(log.lines.filter((l) => l.level === "error" || l.level === "warn"), []);
});

Deno.test("DkimFilter applies On-InternalError accept (passed unsigned, as configured) and LogWhy says why", async () => {
  const { log, mta } = await setup("On-InternalError accept\nLogWhy yes\n");
  const r = await send(mta(), "B1");
  assert.deepEqual(r.final, { type: "accept" });
  assert.deepEqual(r.modifications, []);
  assert.ok(
    log.lines.some((l) =>
      /^B1: SigningTable .* is unavailable: connection refused; On-InternalError$/.test(l.message)
    ),
    JSON.stringify(log.lines),
  );
});
