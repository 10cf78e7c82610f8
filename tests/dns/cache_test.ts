import assert from "node:assert/strict";
import {
  CachingResolver,
  type CachingResolverOptions,
  QUERY_CACHE_MAX_BYTES_DEFAULT,
} from "../../lib/dns/cache.ts";
import { DnsError, type LookupOptions, type TxtResolver } from "../../lib/dns/resolver.ts";
import { ZoneResolver } from "../helpers/zone_resolver.ts";

/** A clock the test moves by hand. */
function manualClock() {
  const clock = {
    ms: 1_000_000,
    now: () => clock.ms,
    advance: (s: number) => (clock.ms += s * 1000),
  };
  return clock;
}

function setup(
  zone: ConstructorParameters<typeof ZoneResolver>[0],
  options: CachingResolverOptions = {},
) {
  const inner = new ZoneResolver(zone);
  const clock = manualClock();
  const cache = new CachingResolver(inner, { clock, ...options });
  return { inner, clock, cache };
}

Deno.test("CachingResolver.resolveTxt() answers a repeat from the cache until the TTL ends", async () => {
  const { inner, clock, cache } = setup({ "a.example": { txt: ["one"], ttl: 60 } });
  assert.deepEqual(await cache.resolveTxt("a.example"), ["one"]);
  clock.advance(59);
  assert.deepEqual(await cache.resolveTxtWithTtl("A.Example."), {
    type: "records",
    records: ["one"],
    ttl: 1,
  });
  assert.equal(inner.calls.length, 1);
  inner.set("a.example", { txt: ["two"], ttl: 60 });
  clock.advance(1);
  assert.deepEqual(await cache.resolveTxt("a.example"), ["two"]);
  assert.deepEqual(inner.calls, ["a.example", "a.example"]);
});

Deno.test("CachingResolver.resolveTxtWithTtl() counts the TTL down", async () => {
  const { clock, cache } = setup({ "a.example": { txt: ["one"], ttl: 100 } });
  assert.equal((await cache.resolveTxtWithTtl("a.example")).ttl, 100);
  clock.advance(30.5);
  assert.equal((await cache.resolveTxtWithTtl("a.example")).ttl, 70);
});

Deno.test("CachingResolver.resolveTxt() caches NXDOMAIN and NODATA for the negative TTL", async () => {
  const { inner, clock, cache } = setup({
    "none.example": { negative: "nodata", ttl: 30 },
    "gone.example": { negative: "nxdomain", ttl: 30 },
  });
  for (let i = 0; i < 2; i++) {
    await assert.rejects(
      cache.resolveTxt("none.example"),
      (e) => e instanceof DnsError && e.code === "nodata",
    );
    await assert.rejects(
      cache.resolveTxt("gone.example"),
      (e) => e instanceof DnsError && e.code === "nxdomain",
    );
  }
  assert.equal(inner.calls.length, 2);
  clock.advance(30);
  inner.set("none.example", ["now here"]);
  assert.deepEqual(await cache.resolveTxt("none.example"), ["now here"]);
  assert.equal(inner.calls.length, 3);
});

Deno.test("CachingResolver.resolveTxt() uses the default TTL for negative answers without one", async () => {
  const { inner, clock, cache } = setup({ "none.example": "nodata" }, { defaultTtl: 10 });
  await assert.rejects(cache.resolveTxt("none.example"), { code: "nodata" });
  await assert.rejects(cache.resolveTxt("missing.example"), { code: "nxdomain" });
  clock.advance(9);
  await assert.rejects(cache.resolveTxt("none.example"), { code: "nodata" });
  await assert.rejects(cache.resolveTxt("missing.example"), { code: "nxdomain" });
  assert.equal(inner.calls.length, 2);
  clock.advance(1);
  await assert.rejects(cache.resolveTxt("none.example"), { code: "nodata" });
  assert.equal(inner.calls.length, 3);
});

Deno.test("CachingResolver.resolveTxt() never caches temporary failures", async () => {
  for (const code of ["servfail", "refused", "timeout", "malformed", "network"] as const) {
    const { inner, cache } = setup({ "bad.example": code });
    await assert.rejects(cache.resolveTxt("bad.example"), { code });
    await assert.rejects(cache.resolveTxt("bad.example"), { code });
    assert.equal(inner.calls.length, 2, code);
    inner.set("bad.example", ["fixed"]);
    assert.deepEqual(await cache.resolveTxt("bad.example"), ["fixed"]);
    assert.equal(cache.size, 1);
  }
});

Deno.test("CachingResolver.resolveTxt() caps TTLs and skips a TTL of zero", async () => {
  const { inner, clock, cache } = setup({
    "long.example": { txt: ["x"], ttl: 1_000_000 },
    "neg.example": { negative: "nxdomain", ttl: 1_000_000 },
    "zero.example": { txt: ["z"], ttl: 0 },
  }, { maxTtl: 100, maxNegativeTtl: 20 });
  assert.equal((await cache.resolveTxtWithTtl("long.example")).ttl, 100);
  assert.equal((await cache.resolveTxtWithTtl("neg.example")).ttl, 20);
  await cache.resolveTxt("zero.example");
  await cache.resolveTxt("zero.example");
  assert.equal(inner.calls.filter((n) => n === "zero.example").length, 2);
  clock.advance(20);
  await assert.rejects(cache.resolveTxt("neg.example"), { code: "nxdomain" });
  clock.advance(80);
  await cache.resolveTxt("long.example");
  assert.deepEqual(inner.calls.filter((n) => n !== "zero.example"), [
    "long.example",
    "neg.example",
    "neg.example",
    "long.example",
  ]);
});

Deno.test("CachingResolver.resolveTxt() coalesces concurrent lookups of one name", async () => {
  const { inner, cache } = setup({ "a.example": ["one"], "b.example": ["two"] });
  const release = inner.hold();
  const pending = [
    cache.resolveTxt("a.example"),
    cache.resolveTxt("A.EXAMPLE"),
    cache.resolveTxt("a.example."),
    cache.resolveTxt("b.example"),
  ];
  release();
  const results = await Promise.all(pending);
  assert.deepEqual(results, [["one"], ["one"], ["one"], ["two"]]);
  assert.deepEqual(inner.calls, ["a.example", "b.example"]);
  // Each caller gets its own array, so one cannot change another's (or the cache's) answer.
  results[0].push("tampered");
  assert.deepEqual(await cache.resolveTxt("a.example"), ["one"]);
});

Deno.test("CachingResolver.resolveTxt() coalesces failures too, then asks again", async () => {
  const { inner, cache } = setup({ "bad.example": "servfail" });
  const release = inner.hold();
  const pending = [cache.resolveTxt("bad.example"), cache.resolveTxt("bad.example")];
  release();
  for (const p of pending) await assert.rejects(p, { code: "servfail" });
  assert.equal(inner.calls.length, 1);
  await assert.rejects(cache.resolveTxt("bad.example"), { code: "servfail" });
  assert.equal(inner.calls.length, 2);
});

Deno.test("CachingResolver.resolveTxt() aborts one caller without failing the others", async () => {
  const { inner, cache } = setup({ "a.example": ["one"] });
  const release = inner.hold();
  const controller = new AbortController();
  const aborted = cache.resolveTxt("a.example", { signal: controller.signal });
  const patient = cache.resolveTxt("a.example");
  controller.abort();
  await assert.rejects(aborted, (e) => e instanceof DnsError && e.code === "timeout");
  release();
  assert.deepEqual(await patient, ["one"]);
  assert.equal(inner.calls.length, 1);
});

Deno.test("CachingResolver.resolveTxt() stops the shared query when every caller aborts", async () => {
  const zone = new ZoneResolver({ "slow.example": "timeout" });
  const signals: (AbortSignal | undefined)[] = [];
  const spy = {
    calls: zone.calls,
    resolveTxt: (name: string, options?: LookupOptions) => zone.resolveTxt(name, options),
    resolveTxtWithTtl(name: string, options?: LookupOptions) {
      signals.push(options?.signal);
      return zone.resolveTxtWithTtl(name, options);
    },
  };
  const cache = new CachingResolver(spy, { clock: manualClock() });
  const a = new AbortController();
  const b = new AbortController();
  const first = cache.resolveTxt("slow.example", { signal: a.signal });
  const second = cache.resolveTxt("slow.example", { signal: b.signal });
  a.abort();
  assert.equal(signals[0]?.aborted, false, "one caller still waits");
  b.abort();
  await assert.rejects(first, { code: "timeout" });
  await assert.rejects(second, { code: "timeout" });
  assert.equal(signals.length, 1);
  assert.equal(signals[0]?.aborted, true);
  // The next caller starts a fresh query instead of joining the aborted one.
  zone.set("slow.example", ["fast now"]);
  assert.deepEqual(await cache.resolveTxt("slow.example"), ["fast now"]);
  assert.equal(zone.calls.length, 2);
});

Deno.test("CachingResolver.resolveTxt() evicts the least recently used name", async () => {
  const { inner, cache } = setup({ "a.x": ["a"], "b.x": ["b"], "c.x": ["c"], "d.x": ["d"] }, {
    maxEntries: 3,
  });
  for (const n of ["a.x", "b.x", "c.x"]) await cache.resolveTxt(n);
  await cache.resolveTxt("a.x"); // a is now the most recent; b the least
  await cache.resolveTxt("d.x"); // evicts b
  assert.equal(cache.size, 3);
  inner.calls.length = 0;
  for (const n of ["a.x", "c.x", "d.x"]) await cache.resolveTxt(n);
  assert.deepEqual(inner.calls, []);
  await cache.resolveTxt("b.x");
  assert.deepEqual(inner.calls, ["b.x"]);
});

Deno.test("CachingResolver.resolveTxt() gives a plain resolver's answers the default TTL", async () => {
  let asked = 0;
  const plain: TxtResolver = {
    resolveTxt(name: string, _options?: LookupOptions) {
      asked++;
      return name === "k.example"
        ? Promise.resolve(["key"])
        : Promise.reject(new DnsError("nxdomain", name));
    },
  };
  const clock = manualClock();
  const cache = new CachingResolver(plain, { clock, defaultTtl: 5 });
  assert.deepEqual(await cache.resolveTxtWithTtl("k.example"), {
    type: "records",
    records: ["key"],
    ttl: 5,
  });
  await assert.rejects(cache.resolveTxt("n.example"), { code: "nxdomain" });
  await cache.resolveTxt("k.example");
  await assert.rejects(cache.resolveTxt("n.example"), { code: "nxdomain" });
  assert.equal(asked, 2);
  clock.advance(5);
  await cache.resolveTxt("k.example");
  assert.equal(asked, 3);
});

Deno.test("CachingResolver.resolveTxt() turns a misbehaving resolver's throw into a DnsError", async () => {
  const broken: TxtResolver = { resolveTxt: () => Promise.reject(new TypeError("bug")) };
  const cache = new CachingResolver(broken);
  await assert.rejects(
    cache.resolveTxt("a.example"),
    (e) => e instanceof DnsError && e.code === "network" && e.cause instanceof TypeError,
  );
  assert.equal(cache.size, 0);
});

Deno.test("CachingResolver() rejects bad limits; clear() empties the cache", async () => {
  const inner = new ZoneResolver({ "a.example": ["a"] });
  assert.throws(() => new CachingResolver(inner, { maxEntries: 0 }), RangeError);
  assert.throws(() => new CachingResolver(inner, { maxTtl: -1 }), RangeError);
  assert.throws(() => new CachingResolver(inner, { defaultTtl: 1.5 }), RangeError);
  const cache = new CachingResolver(inner);
  await cache.resolveTxt("a.example");
  assert.equal(cache.size, 1);
  cache.clear();
  assert.equal(cache.size, 0);
  await cache.resolveTxt("a.example");
  assert.equal(inner.calls.length, 2);
});

Deno.test("CachingResolver.resolveTxt() keeps at most maxBytes of names and text, oldest out", async () => {
  const text = (n: number) => `v=DKIM1; n=${"x".repeat(8000)}${n}; p=AAAA`;
  const zone: Record<string, string[]> = {};
  for (let i = 0; i < 20; i++) zone[`s${i}._domainkey.example`] = [text(i)];
  const { inner, cache } = setup(zone, { maxBytes: 50_000 });
  for (let i = 0; i < 20; i++) await cache.resolveTxt(`s${i}._domainkey.example`);
  // Each answer is charged its name, its 8 KiB of text and 256 bytes: six fit in 50,000.
  assert.equal(cache.size, 6);
  assert.ok(cache.bytes <= 50_000, String(cache.bytes));
  inner.calls.length = 0;
  await cache.resolveTxt("s19._domainkey.example");
  await cache.resolveTxt("s0._domainkey.example");
  assert.deepEqual(inner.calls, ["s0._domainkey.example"]);
  // One answer over the whole budget is still kept, alone: the stub bounds a single answer.
  const one = setup({ "big.example": ["y".repeat(9000)] }, { maxBytes: 1000 });
  await one.cache.resolveTxt("big.example");
  await one.cache.resolveTxt("big.example");
  assert.equal(one.inner.calls.length, 1);
  assert.throws(() => new CachingResolver(inner, { maxBytes: -1 }), RangeError);
  cache.clear();
  assert.equal(cache.bytes, 0);
});

Deno.test("CachingResolver keeps 4 MiB by default (QUERY_CACHE_MAX_BYTES_DEFAULT)", async () => {
  const record = `v=DKIM1; n=${"x".repeat(8 * 1024 - 20)}; p=AAAA`;
  const inner: TxtResolver = { resolveTxt: (name) => Promise.resolve([`${record}${name}`]) };
  const cache = new CachingResolver(inner);
  for (let i = 0; i < 1000; i++) await cache.resolveTxt(`s${i}._domainkey.example`);
  assert.ok(cache.bytes <= QUERY_CACHE_MAX_BYTES_DEFAULT, String(cache.bytes));
  assert.ok(cache.size < 520 && cache.size > 480, String(cache.size));
});
