import assert from "node:assert/strict";
import { checkKeyPath, type FsNode, type SafetyContext } from "../../lib/config/safe_keys.ts";
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

const dir = (path: string, mode: number, uid = 0, gid = 0): FsNode => ({
  path,
  isFile: false,
  isDirectory: true,
  mode,
  uid,
  gid,
});
const file = (path: string, mode: number, uid = 0, gid = 117): FsNode => ({
  path,
  isFile: true,
  isDirectory: false,
  mode,
  uid,
  gid,
});

const asOpendkim: SafetyContext = { trustedUids: [110], trustedNames: ["opendkim"], users };
const KEY = "/etc/opendkim/keys/example.com/mail.private";
const chain = (keyDirMode: number, f: FsNode, keysOwner = 0): FsNode[] => [
  dir("/", 0o755),
  dir("/etc", 0o755),
  dir("/etc/opendkim", 0o755),
  dir("/etc/opendkim/keys", keyDirMode, keysOwner, 117),
  dir("/etc/opendkim/keys/example.com", 0o755),
  f,
];

interface Case {
  name: string;
  nodes: FsNode[];
  ctx?: SafetyContext;
  want: { path: string; problem: RegExp; fix: string; fatal?: boolean }[];
}

const cases: Case[] = [
  {
    name: "root:opendkim 0640 (the seed's setup)",
    nodes: chain(0o755, file(KEY, 0o640)),
    want: [],
  },
  { name: "opendkim-owned 0600", nodes: chain(0o755, file(KEY, 0o600, 110)), want: [] },
  { name: "root 0400", nodes: chain(0o755, file(KEY, 0o400)), want: [] },
  {
    name: "world-readable",
    nodes: chain(0o755, file(KEY, 0o644)),
    want: [{ path: KEY, problem: /^can be read by every user$/, fix: `chmod 640 ${KEY}` }],
  },
  {
    name: "world-writable",
    nodes: chain(0o755, file(KEY, 0o602)),
    want: [{ path: KEY, problem: /written by every user/, fix: `chmod 600 ${KEY}` }],
  },
  {
    name: "world-readable and -writable",
    nodes: chain(0o755, file(KEY, 0o666)),
    want: [{ path: KEY, problem: /read and written by every user/, fix: `chmod 640 ${KEY}` }],
  },
  {
    name: "group-writable",
    nodes: chain(0o755, file(KEY, 0o660)),
    want: [{ path: KEY, problem: /written by group opendkim/, fix: `chmod 640 ${KEY}` }],
  },
  {
    name: "owned by another user",
    nodes: chain(0o755, file(KEY, 0o600, 1000)),
    want: [{ path: KEY, problem: /owned by bob/, fix: `chown root ${KEY}` }],
  },
  {
    name: "group with other members: warning only",
    nodes: chain(0o755, file(KEY, 0o640, 0, 200)),
    want: [{
      path: KEY,
      problem: /read by group dkimshared, which also has "postfix"/,
      fix: `chown opendkim ${KEY} && chmod 600 ${KEY}`,
      fatal: false,
    }],
  },
  {
    name: "world-writable directory",
    nodes: chain(0o777, file(KEY, 0o640)),
    want: [{
      path: "/etc/opendkim/keys",
      problem: /written by every user/,
      fix: "chmod o-w /etc/opendkim/keys",
    }],
  },
  {
    name: "sticky world-writable directory is fine",
    nodes: [
      dir("/", 0o755),
      dir("/tmp", 0o1777),
      dir("/tmp/k", 0o755),
      file("/tmp/k/a.private", 0o600),
    ],
    want: [],
  },
  {
    name: "group-writable directory whose group is only opendkim",
    nodes: chain(0o775, file(KEY, 0o640)),
    want: [],
  },
  {
    name: "group-writable directory of a shared group",
    nodes: [dir("/", 0o755), dir("/srv", 0o775, 0, 200), file("/srv/k.private", 0o600)],
    want: [{
      path: "/srv",
      problem: /written by group dkimshared \(also "postfix"\)/,
      fix: "chmod g-w /srv",
    }],
  },
  {
    name: "directory owned by another user",
    nodes: [
      dir("/", 0o755),
      dir("/home/bob", 0o755, 1000, 1000),
      file("/home/bob/k.private", 0o600),
    ],
    want: [{ path: "/home/bob", problem: /owned by bob/, fix: "chown root /home/bob" }],
  },
  {
    name: "a private directory ends the directory walk (OpenDKIM)",
    nodes: [
      dir("/", 0o755),
      dir("/etc", 0o700),
      dir("/etc/keys", 0o777),
      file("/etc/keys/k", 0o600),
    ],
    want: [],
  },
  {
    name: "the file is checked even below a private directory",
    nodes: [dir("/", 0o755), dir("/etc/dkimkeys", 0o700, 110), file("/etc/dkimkeys/k", 0o644, 110)],
    want: [{
      path: "/etc/dkimkeys/k",
      problem: /read by every user/,
      fix: "chmod 640 /etc/dkimkeys/k",
    }],
  },
  {
    name: "not a regular file",
    nodes: [dir("/", 0o755), dir("/dev", 0o755), { ...file("/dev/null", 0o666), isFile: false }],
    want: [{ path: "/dev/null", problem: /not a regular file/, fix: "ls -l /dev/null" }],
  },
  {
    name: "paths needing quotes",
    nodes: [dir("/", 0o755), file("/my keys/k", 0o644)],
    want: [{ path: "/my keys/k", problem: /read by every user/, fix: "chmod 640 '/my keys/k'" }],
  },
];

Deno.test("checkKeyPath() applies OpenDKIM's key safety rules with a fix for each problem", () => {
  for (const c of cases) {
    const got = checkKeyPath(c.nodes, c.ctx ?? asOpendkim);
    assert.equal(got.length, c.want.length, `${c.name}: ${got.map((p) => p.problem)}`);
    c.want.forEach((w, i) => {
      assert.equal(got[i].node.path, w.path, c.name);
      assert.match(got[i].problem, w.problem, c.name);
      assert.equal(got[i].fix, w.fix, c.name);
      assert.equal(got[i].fatal, w.fatal ?? true, c.name);
    });
  }
});

Deno.test("checkKeyPath() trusts root and the running user even without an account database", () => {
  const ctx: SafetyContext = { trustedUids: [4242], trustedNames: [] };
  assert.deepEqual(checkKeyPath([dir("/", 0o755), file("/k", 0o600, 4242)], ctx), []);
  const [p] = checkKeyPath([dir("/", 0o755), file("/k", 0o600, 4343)], ctx);
  assert.match(p.problem, /owned by uid 4343/);
  // Without the database a group-writable directory cannot be proven private.
  assert.equal(checkKeyPath([dir("/", 0o775), file("/k", 0o600)], ctx).length, 1);
});
