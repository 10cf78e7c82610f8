import assert from "node:assert/strict";
import { DnsError } from "../../lib/dns/resolver.ts";
import { ZoneResolver } from "./zone_resolver.ts";

Deno.test("ZoneResolver.resolveTxt() answers each kind of entry and records calls", async () => {
  const zone = new ZoneResolver({
    "s._domainkey.example.com": ["v=DKIM1; p=abc", "second"],
    "ttl.example": { txt: ["x"], ttl: 7 },
    "none.example": "nodata",
    "neg.example": { negative: "nxdomain", ttl: 9 },
    "bad.example": "servfail",
    "ref.example": "refused",
  });
  assert.deepEqual(await zone.resolveTxt("S._domainkey.Example.com."), [
    "v=DKIM1; p=abc",
    "second",
  ]);
  assert.deepEqual(await zone.resolveTxtWithTtl("ttl.example"), {
    type: "records",
    records: ["x"],
    ttl: 7,
  });
  assert.deepEqual(await zone.resolveTxtWithTtl("neg.example"), { type: "nxdomain", ttl: 9 });
  for (
    const [name, code] of [
      ["none.example", "nodata"],
      ["neg.example", "nxdomain"],
      ["bad.example", "servfail"],
      ["ref.example", "refused"],
      ["unknown.example", "nxdomain"],
    ]
  ) {
    await assert.rejects(
      zone.resolveTxt(name),
      (e) => e instanceof DnsError && e.code === code && e.query === name,
    );
  }
  assert.equal(zone.calls[0], "S._domainkey.Example.com.");
  assert.equal(zone.calls.length, 8);
});

Deno.test("ZoneResolver.resolveTxt() ends a timeout entry by the signal or by itself", async () => {
  const zone = new ZoneResolver({ "slow.example": "timeout" });
  await assert.rejects(zone.resolveTxt("slow.example"), { code: "timeout" });
  const controller = new AbortController();
  const pending = zone.resolveTxt("slow.example", { signal: controller.signal });
  controller.abort(new Error("stop"));
  await assert.rejects(
    pending,
    (e) => e instanceof DnsError && e.code === "timeout" && /aborted/.test(e.message),
  );
});

Deno.test("ZoneResolver.hold() keeps lookups pending until released", async () => {
  const zone = new ZoneResolver({ "a.example": ["a"] });
  const release = zone.hold();
  let done = false;
  const pending = zone.resolveTxt("a.example").then((r) => {
    done = true;
    return r;
  });
  await new Promise((ok) => setTimeout(ok, 10));
  assert.equal(done, false);
  zone.set("a.example", ["changed"]);
  release();
  assert.deepEqual(await pending, ["changed"]);
  zone.delete("a.example");
  await assert.rejects(zone.resolveTxt("a.example"), { code: "nxdomain" });
});
