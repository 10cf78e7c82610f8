import assert from "node:assert/strict";
import { UserDb } from "../../lib/config/user_db.ts";
import type { StatLike } from "../../lib/ops/run_as.ts";
import { checkoutOf, diagnoseStartFailure, unreadableProgram } from "../../lib/ops/worker_start.ts";
import { selfCommand } from "../../lib/ops/self_command.ts";

const WHO = { user: "opendkim", uid: 103, group: "opendkim", gid: 107 };

// What Deno 2 printed for a worker started as opendkim from /opt/dkimd (captured as such).
const DENO_OUTPUTS = [
  {
    name: "root's Deno cache (the issue: no node_modules in the checkout)",
    output: [
      "Download https://registry.npmjs.org/@leichtgewicht/ip-codec/-/ip-codec-2.0.5.tgz",
      "error: Failed caching npm package '@leichtgewicht/ip-codec@2.0.5'",
      "    0: failed to create directory '/root/.cache/deno/npm/registry.npmjs.org/@leichtgewicht/ip-codec/2.0.5_1a2b.tmp': Permission denied (os error 13)",
      "",
    ].join("\n"),
    want:
      /^user "opendkim" \(uid 103\) cannot write Deno's npm cache \("\/root\/\.cache\/deno\/npm\/registry\.npmjs\.org\/@leichtgewicht\/ip-codec\/2\.0\.5_1a2b\.tmp": Permission denied\): the npm packages were not in \/opt\/dkimd\/node_modules for it to read; fix: as root, run "deno install" in \/opt\/dkimd and "chmod -R a\+rX \/opt\/dkimd\/node_modules"/,
  },
  {
    name: "the npm packages cannot be fetched",
    output: [
      "error: Failed caching npm package 'yaml@2.9.1'",
      "    0: error sending request for url (https://registry.npmjs.org/yaml/-/yaml-2.9.1.tgz): client error (Connect)",
      "",
    ].join("\n"),
    want:
      /^user "opendkim" \(uid 103\) cannot fetch the npm packages \(Failed caching npm package 'yaml@2\.9\.1'\): .*fix: as root, run "deno install" in \/opt\/dkimd/,
  },
  {
    name: "node_modules not readable",
    output:
      "error: failed to create directory '/opt/dkimd/node_modules/.deno/node_modules': Permission denied (os error 13)\n",
    want:
      /^user "opendkim" \(uid 103\) cannot read "\/opt\/dkimd\/node_modules" \("\/opt\/dkimd\/node_modules\/\.deno\/node_modules": Permission denied\); fix: as root, run "deno install" in \/opt\/dkimd/,
  },
  {
    name: "a module not readable",
    output: [
      "error: Import 'file:///opt/dkimd/lib/bytes.ts' failed.",
      "    0: Permission denied (os error 13)",
      "    at file:///opt/dkimd/lib/cli/explain.ts:7:28",
      "",
    ].join("\n"),
    want:
      /^user "opendkim" \(uid 103\) cannot read "\/opt\/dkimd\/lib\/bytes\.ts" \(Permission denied\); fix: chmod -R a\+rX "\/opt\/dkimd"/,
  },
  {
    name: "deno.json not readable",
    output: [
      "error: Error reading config file 'file:///opt/dkimd/deno.json'.",
      "",
      "Caused by:",
      "    Permission denied (os error 13)",
      "",
    ].join("\n"),
    want:
      /^user "opendkim" \(uid 103\) cannot read "\/opt\/dkimd\/deno\.json" \(Permission denied\)/,
  },
  {
    name: "a key outside the checkout",
    output: "error: Uncaught PermissionDenied: Permission denied (os error 13): open '/etc/k'\n",
    want:
      /^user "opendkim" \(uid 103\) cannot read "\/etc\/k" \(Permission denied\); fix: make "\/etc\/k" readable by that user/,
  },
  {
    name: "a crash of dkimd's own",
    output: "error: Uncaught TypeError: x is undefined\n",
    want: null,
  },
  { name: "nothing said", output: "", want: null },
];

Deno.test("diagnoseStartFailure() names the cause and the fix of Deno's start failures in one line", () => {
  for (const { name, output, want } of DENO_OUTPUTS) {
    const got = diagnoseStartFailure(output, WHO, "/opt/dkimd");
    if (want === null) {
      assert.equal(got, undefined, name);
      continue;
    }
    assert.ok(got, name);
    assert.match(got, want, name);
    assert.doesNotMatch(got, /\n/, name);
  }
});

Deno.test("checkoutOf() finds the checkout in the command selfCommand() builds", () => {
  const command = selfCommand(["-f"], {
    execPath: "/usr/bin/deno",
    mainModule: "file:///opt/dkimd/main.ts",
    configFile: "/opt/dkimd/deno.json",
  });
  assert.equal(checkoutOf(command), "/opt/dkimd");
});

/** A file system of modes: every path not listed is a directory of mode 0755 owned by root. */
function fs(modes: Record<string, number>): (path: string) => Promise<StatLike> {
  return (path) => {
    if (path in modes) {
      const mode = modes[path];
      return Promise.resolve({ mode, uid: 0, gid: 0, isDirectory: (mode & 0o40000) !== 0 });
    }
    if (/\.(ts|json|lock)$/.test(path)) return Promise.reject(new Deno.errors.NotFound(path));
    return Promise.resolve({ mode: 0o40755, uid: 0, gid: 0, isDirectory: true });
  };
}

Deno.test("unreadableProgram() checks dkimd's own files as the user, and says how to fix each case", async () => {
  const db = UserDb.parse("root:x:0:0::/root:/bin/sh\n", "root:x:0:\n");
  const program = (dir: string) => ({
    execPath: "/usr/bin/deno",
    mainModule: `file://${dir}/main.ts`,
    configFile: `${dir}/deno.json`,
  });
  const files = (dir: string, extra: Record<string, number> = {}) => ({
    [`${dir}/main.ts`]: 0o100644,
    [`${dir}/deno.json`]: 0o100644,
    [`${dir}/deno.lock`]: 0o100644,
    ...extra,
  });
  const cases = [
    { name: "readable", dir: "/opt/dkimd", modes: files("/opt/dkimd"), want: null },
    {
      name: "under root's home",
      dir: "/root/dkimd",
      modes: files("/root/dkimd", { "/root": 0o40700 }),
      want:
        /^User "opendkim" \(uid 103, gid 107\) cannot read dkimd's own files: directory "\/root" \(owner root:root, mode 0700\) is in the way of "\/root\/dkimd\/main\.ts"; fix: clone dkimd where that user can read it \(e\.g\. \/opt\/dkimd/,
    },
    {
      name: "cloned with umask 077",
      dir: "/opt/dkimd",
      modes: files("/opt/dkimd", { "/opt/dkimd/main.ts": 0o100600 }),
      want:
        /"\/opt\/dkimd\/main\.ts" \(owner root:root, mode 0600\) is not readable; fix: chmod -R a\+rX "\/opt\/dkimd"/,
    },
    {
      name: "node_modules private",
      dir: "/opt/dkimd",
      modes: files("/opt/dkimd", { "/opt/dkimd/node_modules": 0o40700 }),
      want:
        /directory "\/opt\/dkimd\/node_modules" \(owner root:root, mode 0700\) is in the way of "\/opt\/dkimd\/node_modules\/\.deno"; fix: chmod -R a\+rX "\/opt\/dkimd"/,
    },
  ];
  for (const { name, dir, modes, want } of cases) {
    const got = await unreadableProgram(program(dir), WHO, { stat: fs(modes), db });
    if (want === null) assert.equal(got, undefined, name);
    else assert.match(got ?? "", want, name);
  }
  // A compiled dkimd carries its code: nothing to check.
  assert.equal(
    await unreadableProgram(
      { execPath: "/root/dkimd", mainModule: "file:///tmp/deno-compile-dkimd/main.ts" },
      WHO,
      { stat: fs({ "/root": 0o40700 }) },
    ),
    undefined,
  );
});
