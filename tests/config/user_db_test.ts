import assert from "node:assert/strict";
import { UserDb } from "../../lib/config/user_db.ts";

const users = UserDb.parse(
  [
    "root:x:0:0:root:/root:/bin/bash",
    "opendkim:x:110:117::/run/opendkim:/usr/sbin/nologin",
    "postfix:x:111:118::/var/spool/postfix:/usr/sbin/nologin",
    "bob:x:1000:1000::/home/bob:/bin/bash",
  ].join("\n"),
  ["root:x:0:", "opendkim:x:117:", "postfix:x:118:", "bob:x:1000:", "dkimshared:x:200:postfix"]
    .join("\n"),
);

Deno.test("UserDb lists primary and supplementary group members", () => {
  assert.deepEqual(users.groupUsers(117), ["opendkim"]);
  assert.deepEqual(users.groupUsers(200), ["postfix"]);
  assert.equal(users.user("110")?.name, "opendkim");
  assert.equal(users.user("nobody"), undefined);
  assert.equal(users.group("opendkim")?.gid, 117);
  assert.equal(users.userName(4242), "4242");
});

Deno.test("UserDb.parse() skips lines getpwent(3) would skip and keeps the rest", () => {
  const db = UserDb.parse(
    [
      "",
      "# a comment is not an account",
      "short:x:5",
      "badid:x:abc:5::/:/bin/sh",
      "badgid:x:6:-1::/:/bin/sh",
      "+nis",
      "ok:x:7:70::/:/bin/sh",
      "crlf:x:8:80::/:/bin/sh\r",
    ].join("\n"),
    [
      "g1:x:70: alice , bob ,,",
      "nogid:x::alice",
      "g2:x",
      "g3:x:90",
      "g4:x:91:carol",
    ].join("\n"),
  );
  assert.deepEqual(db.user("ok"), { name: "ok", uid: 7, gid: 70 });
  assert.deepEqual(db.user("crlf"), { name: "crlf", uid: 8, gid: 80 });
  for (const name of ["short", "badid", "badgid", "+nis", "# a comment is not an account"]) {
    assert.equal(db.user(name), undefined, name);
  }
  assert.deepEqual(db.group("g1"), { name: "g1", gid: 70, members: ["alice", "bob"] });
  assert.deepEqual(db.group("g3"), { name: "g3", gid: 90, members: [] });
  assert.equal(db.group("nogid"), undefined);
  assert.equal(db.group("g2"), undefined);
  assert.deepEqual(db.groupUsers(70), ["ok", "alice", "bob"]);
});

Deno.test("UserDb looks names up exactly and numbers up as ids, known or not", () => {
  assert.equal(users.user("Root"), undefined);
  assert.deepEqual(users.user("0"), { name: "root", uid: 0, gid: 0 });
  // A number no account has is still a uid (UserID 4242), with no primary group.
  assert.deepEqual(users.user("4242"), { name: "4242", uid: 4242, gid: -1 });
  assert.deepEqual(users.group("4242"), { name: "4242", gid: 4242, members: [] });
  assert.deepEqual(users.group("200"), { name: "dkimshared", gid: 200, members: ["postfix"] });
  assert.equal(users.groupName(118), "postfix");
  assert.equal(users.groupName(4242), "4242");
  assert.equal(users.userName(1000), "bob");
  assert.deepEqual(users.groupUsers(4242), []);
});

Deno.test("UserDb.groupUsers() names a user once, primary members first", () => {
  const db = UserDb.parse(
    "a:x:1:50::/:/bin/sh\nb:x:2:50::/:/bin/sh\nc:x:3:60::/:/bin/sh\n",
    "g:x:50:c,a,c\nh:x:60:\n",
  );
  assert.deepEqual(db.groupUsers(50), ["a", "b", "c"]);
  assert.deepEqual(db.groupUsers(60), ["c"]);
});
