import assert from "node:assert/strict";
import type { Reply } from "../../lib/milter/reply.ts";
import { andThen, CommandQueue, type Replies, settle } from "../../lib/milter/scheduler.ts";

const C: Reply = { type: "continue" };
const T: Reply = { type: "tempfail" };
const failed = (error: unknown): Reply[] => [{ type: "quarantine", reason: String(error) }];

Deno.test("settle() answers at once, without a promise, when the callback does", () => {
  assert.deepEqual(settle(() => "ok", (a) => [{ type: "quarantine", reason: a }], failed), [
    { type: "quarantine", reason: "ok" },
  ]);
  assert.deepEqual(settle(() => undefined, () => [C], failed), [C]);
});

Deno.test("settle() hands what the callback or `then` throws to `failed`, at once", () => {
  assert.deepEqual(
    settle(
      () => {
        throw "boom";
      },
      () => [C],
      failed,
    ),
    [{ type: "quarantine", reason: "boom" }],
  );
  assert.deepEqual(
    settle(() => 1, () => {
      throw "bad answer";
    }, failed),
    [{ type: "quarantine", reason: "bad answer" }],
  );
});

Deno.test("settle() waits for a promise (or any thenable), and catches its rejection", async () => {
  const later = settle(() => Promise.resolve(2), (n) => n === 2 ? [C] : [], failed);
  assert.ok(later instanceof Promise);
  assert.deepEqual(await later, [C]);
  // A thenable that is not a Promise, as a filter written against another library may return.
  const thenable: PromiseLike<number> = {
    then: (resolve) => Promise.resolve(resolve ? resolve(3) : 3) as never,
  };
  assert.deepEqual(await settle(() => thenable, (n) => n === 3 ? [C] : [], failed), [C]);
  assert.deepEqual(await settle(() => Promise.reject("no"), () => [C], failed), [
    { type: "quarantine", reason: "no" },
  ]);
  assert.deepEqual(
    await settle(() => Promise.resolve(1), () => {
      throw "late";
    }, failed),
    [{ type: "quarantine", reason: "late" }],
  );
});

Deno.test("andThen() runs the next step at once on replies, and after a promise of them", async () => {
  const next = (r: Reply[]): Replies => [...r, T];
  assert.deepEqual(andThen([C], next), [C, T]);
  const later = andThen(Promise.resolve([C]), next);
  assert.ok(later instanceof Promise);
  assert.deepEqual(await later, [C, T]);
});

// A queue whose commands are delays in ms: 0 answers at once, more answers after that long.
function delays(log: string[]) {
  return new CommandQueue<number>((ms) => {
    log.push(`start ${ms}`);
    if (ms < 0) throw new Error("negative");
    if (ms === 0) return [C];
    return new Promise<Reply[]>((resolve) => setTimeout(() => resolve([T]), ms));
  }, (ms, error) => [{ type: "quarantine", reason: `${ms}: ${(error as Error).message}` }]);
}

Deno.test("CommandQueue.run() answers at once while nothing is pending", () => {
  const log: string[] = [];
  const queue = delays(log);
  assert.deepEqual(queue.run(0), [C]);
  assert.deepEqual(queue.run(0), [C]);
  assert.equal(queue.busy, false);
  assert.deepEqual(queue.run(-1), [{ type: "quarantine", reason: "-1: negative" }]);
  assert.deepEqual(log, ["start 0", "start 0", "start -1"]);
});

Deno.test("CommandQueue.run() queues commands behind a pending one, in order", async () => {
  const log: string[] = [];
  const queue = delays(log);
  const slow = queue.run(20);
  const quick = queue.run(0);
  assert.ok(slow instanceof Promise);
  assert.ok(quick instanceof Promise, "behind a pending command, even a quick one waits");
  assert.equal(queue.busy, true);
  assert.deepEqual(log, ["start 20"]);
  assert.deepEqual(await quick, [C]);
  assert.deepEqual(await slow, [T]);
  assert.deepEqual(log, ["start 20", "start 0"]);
  assert.equal(queue.busy, false);
  assert.deepEqual(queue.run(0), [C], "at once again once the queue is empty");
});

Deno.test("CommandQueue.run() hands a rejection to `failed`, and its promise resolves", async () => {
  const queue = new CommandQueue<string>(
    (name) => Promise.reject(new Error(name)),
    (name, error) => [{ type: "quarantine", reason: `${name}: ${(error as Error).message}` }],
  );
  assert.deepEqual(await queue.run("x"), [{ type: "quarantine", reason: "x: x" }]);
  assert.equal(queue.busy, false);
});

Deno.test("CommandQueue.after() runs once the queued commands are done, and never rejects", async () => {
  const log: string[] = [];
  const queue = delays(log);
  const slow = queue.run(10);
  const closed = queue.after(() => log.push("after"), () => log.push("failed"));
  assert.equal(queue.busy, true);
  assert.ok(queue.run(0) instanceof Promise, "a command after it waits too");
  await slow;
  await closed;
  assert.deepEqual(log.slice(0, 2), ["start 10", "after"]);
  const errors: unknown[] = [];
  await queue.after(() => {
    throw new Error("close failed");
  }, (error) => errors.push(error));
  assert.equal((errors[0] as Error).message, "close failed");
});
