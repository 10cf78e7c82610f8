import assert from "node:assert/strict";
import { listenUnix, removeOwnSocket } from "../../lib/milter/unix_socket.ts";
import { MemoryLogger } from "../helpers/milter_logger.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const exists = (path: string) => Deno.lstat(path).then(() => true, () => false);

Deno.test("removeOwnSocket() removes the socket it made, and nothing that took its path since", async () => {
  await withDir(async (dir) => {
    const log = new MemoryLogger();
    const path = `${dir}/milter.sock`;
    const { listener, ino } = await listenUnix(path, undefined, log);
    assert.ok(ino !== null);
    // Another process's socket at the path has another inode.
    await removeOwnSocket(path, ino + 1, log);
    assert.ok(await exists(path), "another's socket stays");
    await removeOwnSocket(path, ino, log);
    assert.ok(!(await exists(path)), "our own socket goes");
    listener.close();

    // A file at the path, even with the inode number asked for, is not a socket.
    await Deno.writeTextFile(path, "keep me");
    await removeOwnSocket(path, (await Deno.lstat(path)).ino, log);
    assert.equal(await Deno.readTextFile(path), "keep me");
    await Deno.remove(path);

    // Gone already: nothing to do, nothing to say.
    await removeOwnSocket(path, ino, log);
    assert.deepEqual(log.at("warn"), []);
  });
});
