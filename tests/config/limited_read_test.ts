import assert from "node:assert/strict";
import { type FileReadIo, readLimited } from "../../lib/config/limited_read.ts";
import { memoryIo } from "../helpers/memory_io.ts";

/** `io`, counting the files it reads. */
function counting(io: FileReadIo): FileReadIo & { reads: string[] } {
  const reads: string[] = [];
  return { stat: io.stat, readFile: (path) => (reads.push(path), io.readFile(path)), reads };
}

Deno.test("readLimited() reads a regular file of at most the limit", async () => {
  const io = counting(memoryIo({ "/etc/a": "abc", "/etc/empty": "" }));
  assert.deepEqual(await readLimited(io, "/etc/a", 3), new TextEncoder().encode("abc"));
  assert.deepEqual(await readLimited(io, "/etc/empty", 0), new Uint8Array());
  assert.deepEqual(io.reads, ["/etc/a", "/etc/empty"]);
});

Deno.test("readLimited() refuses by stat, before reading, what is too large or not a file", async () => {
  const io = counting(memoryIo({ "/etc/a": "abcd", "/var/log/x": "x" }));
  await assert.rejects(readLimited(io, "/etc/a", 3), { message: "larger than 3 bytes" });
  await assert.rejects(readLimited(io, "/var/log", 1 << 20), { message: "not a regular file" });
  assert.deepEqual(io.reads, [], "nothing was read");
});

Deno.test("readLimited() refuses a file that grew past the limit between stat and read", async () => {
  const io = memoryIo({ "/etc/a": { data: "ab", readAs: new Uint8Array(5) } });
  assert.equal((await io.stat("/etc/a")).size, 2);
  await assert.rejects(readLimited(io, "/etc/a", 4), { message: "larger than 4 bytes" });
  assert.equal((await readLimited(io, "/etc/a", 5)).length, 5);
});

Deno.test("readLimited() passes the I/O's own errors on", async () => {
  await assert.rejects(readLimited(memoryIo({}), "/etc/none", 10), Deno.errors.NotFound);
  const denied: FileReadIo = {
    stat: () => Promise.reject(new Deno.errors.PermissionDenied("stat")),
    readFile: () => Promise.reject(new Error("unreachable")),
  };
  await assert.rejects(readLimited(denied, "/etc/a", 10), Deno.errors.PermissionDenied);
});
