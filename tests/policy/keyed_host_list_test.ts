import assert from "node:assert/strict";
import type { DataSetLookup } from "../../lib/policy/data_set_lookup.ts";
import { HostList } from "../../lib/policy/host_list.ts";
import { parseIp } from "../../lib/policy/ip_address.ts";
import { addressKeys, hostKeys, KeyedHostList } from "../../lib/policy/keyed_host_list.ts";
import { NameSet } from "../../lib/policy/name_set.ts";

/** A set that records each lookup, as a database would see it. */
class RecordingSet implements DataSetLookup {
  readonly calls: string[][] = [];
  readonly #set: NameSet;
  constructor(keys: string[]) {
    const origin = { file: "dsn:sqlite3:///hosts.db/table=h?keycol=k?datacol=k", line: 0 };
    this.#set = new NameSet(keys.map((key) => ({ key, origin })), false);
  }
  lookup(keys: readonly string[]) {
    this.calls.push([...keys]);
    return this.#set.lookup(keys);
  }
}

Deno.test("hostKeys() is dkimf_checkhost()'s order: each level as !NAME then NAME", () => {
  assert.deepEqual(hostKeys("a.b.example."), [
    "!a.b.example",
    "a.b.example",
    "!.b.example",
    ".b.example",
    "!.example",
    ".example",
  ]);
  assert.deepEqual(hostKeys("[192.0.2.1]"), []);
  assert.deepEqual(hostKeys(""), []);
});

Deno.test("addressKeys() is dkimf_checkip()'s order for IPv4 and IPv6", () => {
  const v4 = addressKeys(parseIp("10.1.2.3")!);
  assert.equal(v4.length, 4 + 33 * 4);
  assert.deepEqual(v4.slice(0, 4), ["!10.1.2.3", "10.1.2.3", "![10.1.2.3]", "[10.1.2.3]"]);
  assert.ok(v4.indexOf("10.1.2.0/24") < v4.indexOf("10.0.0.0/8"));
  assert.deepEqual(v4.slice(-4), ["!0.0.0.0/0", "0.0.0.0/0", "![0.0.0.0]/0", "[0.0.0.0]/0"]);
  const v6 = addressKeys(parseIp("2001:DB8::1")!);
  assert.equal(v6.length, 4 + 129 * 4);
  assert.deepEqual(v6.slice(0, 2), ["!2001:db8::1", "2001:db8::1"]);
  assert.ok(v6.includes("2001:db8::/32"));
  assert.ok(v6.includes("[2001:db8::]/32"));
  // An IPv4-mapped client is asked as IPv4.
  assert.deepEqual(addressKeys(parseIp("::ffff:10.1.2.3")!).slice(0, 2), ["!10.1.2.3", "10.1.2.3"]);
});

Deno.test("KeyedHostList.match() asks every candidate in one lookup and the first found decides", async () => {
  const set = new RecordingSet([
    "10.0.0.0/8",
    "!10.0.0.66",
    ".example.com",
    "!bad.example.com",
    "[192.0.2.0]/24",
  ]);
  const list = new KeyedHostList(set);
  const inside = await list.match("mx.example.com", "192.0.2.9");
  assert.equal(inside.matched, true);
  assert.equal(inside.by, "name");
  assert.equal(inside.rule?.text, ".example.com");
  assert.equal(inside.rule?.kind, "domain");
  assert.equal(set.calls.length, 1, "one lookup per client");
  assert.equal(set.calls[0].length, hostKeys("mx.example.com").length + 4 + 33 * 4);
  assert.equal((await list.match(undefined, "10.9.9.9")).rule?.text, "10.0.0.0/8");
  const excluded = await list.match(undefined, "10.0.0.66");
  assert.equal(excluded.matched, false);
  assert.equal(excluded.rule?.text, "!10.0.0.66");
  // The name's "!" does not undo a matching address (OpenDKIM ORs the two tests).
  const both = await list.match("bad.example.com", "10.1.1.1");
  assert.equal(both.matched, true);
  assert.equal(both.by, "address");
  assert.equal(
    (await list.match("bad.example.com", "198.51.100.1")).rule?.text,
    "!bad.example.com",
  );
  assert.equal((await list.match(undefined, "[192.0.2.200]")).rule?.text, "[192.0.2.0]/24");
  assert.deepEqual(await list.match("other.example", "198.51.100.1"), { matched: false });
  assert.equal((await list.matchName("x.bad.example.com")).matched, true);
  assert.equal((await list.matchName("bad.example.com")).matched, false);
  assert.equal((await list.matchName("Y.Example.COM")).matched, true);
});

Deno.test("KeyedHostList agrees with HostList on OpenDKIM's cases", async () => {
  const entries = [
    "192.168.1.1",
    "!192.168.1.0/24",
    "10.0.0.0/8",
    "!10.0.0.66",
    ".example.com",
    "!bad.example.com",
    "2001:db8::/32",
  ];
  const { list } = HostList.fromStrings(entries, "InternalHosts");
  const keyed = new KeyedHostList(new RecordingSet(entries));
  const clients: [string | undefined, string | undefined][] = [
    [undefined, "192.168.1.1"],
    [undefined, "192.168.1.2"],
    [undefined, "10.0.0.66"],
    [undefined, "10.200.0.1"],
    ["a.example.com", undefined],
    ["bad.example.com", undefined],
    ["x.bad.example.com", "192.168.1.7"],
    [undefined, "2001:db8:1::5"],
    [undefined, "2001:db9::5"],
    ["example.com", "198.51.100.7"],
  ];
  for (const [name, ip] of clients) {
    assert.equal(
      (await keyed.match(name, ip)).matched,
      (await list.match(name, ip)).matched,
      `${name} ${ip}`,
    );
  }
});

Deno.test("HostList.keyed() answers through its lookup and lists no rules", async () => {
  const list = HostList.keyed(new KeyedHostList(new RecordingSet(["127.0.0.1"])));
  assert.equal(list.keyed, true);
  assert.equal(list.empty, false);
  assert.deepEqual(list.rules, []);
  assert.equal((await list.match(undefined, "127.0.0.1")).matched, true);
  assert.equal((await list.matchAddress(parseIp("127.0.0.1")!)).matched, true);
  assert.equal((await list.matchName("localhost")).matched, false);
  const down = HostList.keyed(
    new KeyedHostList({ lookup: () => Promise.reject(new Error("down")) }),
  );
  await assert.rejects(down.match("a", "127.0.0.1"), /down/);
});
