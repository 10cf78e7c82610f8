import assert from "node:assert/strict";
import { UserDb } from "../../lib/config/user_db.ts";
import { readUserDb, resolveRunAs, unreadableFiles, UserIdError } from "../../lib/ops/run_as.ts";
import { nobody } from "../helpers/nobody.ts";
import { makeSharedTempDir } from "../helpers/shared_temp_dir.ts";

const ROOT = Deno.uid() === 0;

Deno.test("resolveRunAs() reads UserID as OpenDKIM does", () => {
  // Accounts of its own: which uids and group names the machine has must not matter.
  const db = UserDb.parse(
    "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    "root:x:0:\nnogroup:x:65534:\n",
  );
  const who = resolveRunAs({ user: "nobody" }, db);
  assert.deepEqual(who, { user: "nobody", uid: 65534, group: "nogroup", gid: 65534 });
  assert.equal(resolveRunAs({ user: String(who.uid) }, db).user, "nobody");
  assert.equal(resolveRunAs({ user: "nobody", group: "root" }, db).gid, 0);
  assert.equal(resolveRunAs({ user: "nobody", group: "4242" }, db).gid, 4242);
  assert.throws(() => resolveRunAs({ user: "no-such-user-x" }, db), UserIdError);
  assert.throws(
    () => resolveRunAs({ user: "nobody", group: "no-such-group-x" }, db),
    /no such group "no-such-group-x"/,
  );
  assert.throws(() => resolveRunAs({ user: "4242" }, db), /write "UserID 4242:GROUP"/);
});

Deno.test({
  name: "unreadableFiles() names the file or directory, the user and the fix",
  ignore: !ROOT,
  fn: async () => {
    const who = await nobody();
    const db = await readUserDb();
    const dir = await makeSharedTempDir(0o755);
    try {
      const key = `${dir}/dkim.private`;
      await Deno.writeTextFile(key, "not really a key\n");
      await Deno.chown(key, 0, 0);
      await Deno.chmod(key, 0o600);
      const [problem, ...rest] = await unreadableFiles([key, key], who, { db });
      assert.deepEqual(rest, []);
      assert.equal(
        problem,
        `File "${key}" is not readable by user "nobody" (uid ${who.uid}, gid ${who.gid}): owner root:root, ` +
          `mode 0600; fix: chgrp ${who.group} "${key}" && chmod g+r "${key}"`,
      );
      // The seed's fix: group of the service user, mode 640.
      await Deno.chown(key, 0, who.gid);
      await Deno.chmod(key, 0o640);
      assert.deepEqual(await unreadableFiles([key], who, { db }), []);
      await Deno.chmod(dir, 0o700);
      const [blocked] = await unreadableFiles([key], who, { db });
      assert.match(
        blocked,
        new RegExp(`^Directory "${dir}" cannot be entered by user "nobody" .*mode 0700`),
      );
      assert.deepEqual(await unreadableFiles([`${dir}/missing`], who, { db }), []);
      // Root reads everything.
      assert.deepEqual(
        await unreadableFiles([key], { user: "root", uid: 0, group: "root", gid: 0 }, { db }),
        [],
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
