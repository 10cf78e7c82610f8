import assert from "node:assert/strict";
import {
  type KeyFileIo,
  keyFileSafety,
  readPrivateKeyFile,
  UnsafeKeyError,
} from "../../lib/config/private_key_file.ts";
import type { SafetyContext } from "../../lib/config/safe_keys.ts";
import { UserDb } from "../../lib/config/user_db.ts";
import { MAX_PRIVATE_KEY_INPUT_BYTES } from "../../lib/crypto/private_key.ts";
import { memoryIo, type MemoryNode } from "../helpers/memory_io.ts";

const KEY = new TextEncoder().encode("-----BEGIN PRIVATE KEY-----\n");
const DIRS: Record<string, MemoryNode> = {
  "/": { mode: 0o755 },
  "/etc": { mode: 0o755 },
  "/etc/dkimd": { mode: 0o755 },
};
const ROOT_ONLY: SafetyContext = { trustedUids: [0], trustedNames: ["root"] };

/** The warnings read with RequireSafeKeys off, as "problem | fix". */
async function warningsFor(
  io: KeyFileIo,
  path: string,
  safety: SafetyContext = ROOT_ONLY,
): Promise<string[]> {
  const seen: string[] = [];
  await readPrivateKeyFile(io, path, {
    safety,
    requireSafe: false,
    warn: (p) => seen.push(`${p.problem} | ${p.fix}`),
  });
  return seen;
}

Deno.test("readPrivateKeyFile() judges the key file's mode by the RequireSafeKeys rule", async () => {
  // The cases testkey's own rule had; each line is now what the loader says for that mode.
  const cases: { mode: number; path?: string; want: string[] }[] = [
    { mode: 0o600, want: [] },
    { mode: 0o400, want: [] },
    { mode: 0o640, want: [] },
    { mode: 0o100640, want: [] },
    { mode: 0o644, want: ["can be read by every user | chmod 640 /etc/dkimd/k"] },
    { mode: 0o100604, want: ["can be read by every user | chmod 600 /etc/dkimd/k"] },
    { mode: 0o660, want: ["can be written by group gid 0 | chmod 640 /etc/dkimd/k"] },
    { mode: 0o666, want: ["can be read and written by every user | chmod 640 /etc/dkimd/k"] },
    // Execute alone lets nobody read or change the key: OpenDKIM's rule does not count it.
    { mode: 0o601, want: [] },
    {
      mode: 0o644,
      path: "/etc/dkimd/it's here",
      want: [`can be read by every user | chmod 640 '/etc/dkimd/it'\\''s here'`],
    },
  ];
  for (const c of cases) {
    const path = c.path ?? "/etc/dkimd/k";
    const io = memoryIo({ ...DIRS, [path]: { mode: c.mode, data: KEY } });
    assert.deepEqual(await warningsFor(io, path), c.want, c.mode.toString(8));
  }
});

Deno.test("readPrivateKeyFile() warns about a group read by others, and refuses only what is fatal", async () => {
  const accounts = UserDb.parse(
    "root:x:0:0::/root:/bin/sh\nopendkim:x:110:117::/:/bin/false\npostfix:x:105:105::/:/bin/false\n",
    "root:x:0:\nopendkim:x:117:postfix\n",
  );
  const safety = keyFileSafety(0, accounts, ["opendkim"]);
  const io = memoryIo({
    ...DIRS,
    "/etc/dkimd/k": { mode: 0o640, gid: 117, data: KEY },
    "/etc/dkimd/open": { mode: 0o644, data: KEY },
  });
  const warnings: string[] = [];
  const bytes = await readPrivateKeyFile(io, "/etc/dkimd/k", {
    safety,
    requireSafe: true,
    warn: (p, text) => warnings.push(`${p.fatal} ${text}`),
  });
  assert.deepEqual(bytes, KEY);
  assert.deepEqual(warnings, [
    'false file "/etc/dkimd/k" can be read by group opendkim, which also has "postfix" ' +
    "(owner root, group opendkim, mode 0640); fix: chown opendkim /etc/dkimd/k && chmod 600 /etc/dkimd/k",
  ]);
  await assert.rejects(
    readPrivateKeyFile(io, "/etc/dkimd/open", { safety, requireSafe: true, warn: () => {} }),
    (e: unknown) =>
      e instanceof UnsafeKeyError && e.problems.length === 1 &&
      e.message === 'file "/etc/dkimd/open" can be read by every user ' +
          "(owner root, group root, mode 0644); fix: chmod 640 /etc/dkimd/open",
  );
});

Deno.test("readPrivateKeyFile() walks and reads the resolved path", async () => {
  const io = memoryIo({
    ...DIRS,
    "/srv": { mode: 0o777 },
    "/srv/k": { mode: 0o600, data: KEY },
    "/etc/dkimd/k": { mode: 0o600, data: Uint8Array.of(1) },
  }, { links: { "/etc/dkimd/link": "/srv/k" } });
  assert.deepEqual(await warningsFor(io, "/etc/dkimd/link"), [
    "can be written by every user | chmod o-w /srv",
    "can be written by group gid 0 | chmod g-w /srv",
  ]);
  const bytes = await readPrivateKeyFile(io, "/etc/dkimd/link", {
    safety: ROOT_ONLY,
    requireSafe: false,
    warn: () => {},
  });
  assert.deepEqual(bytes, KEY);
});

Deno.test("readPrivateKeyFile() reads at most MAX_PRIVATE_KEY_INPUT_BYTES of a regular file", async () => {
  const read = (io: KeyFileIo, path: string) =>
    readPrivateKeyFile(io, path, { safety: ROOT_ONLY, requireSafe: false, warn: () => {} });
  const big = new Uint8Array(MAX_PRIVATE_KEY_INPUT_BYTES + 1);
  const io = memoryIo({
    ...DIRS,
    "/etc/dkimd/full": { mode: 0o600, data: big.subarray(1) },
    "/etc/dkimd/big": { mode: 0o600, data: big },
    "/etc/dkimd/grew": { mode: 0o600, data: KEY, readAs: big },
  });
  assert.equal((await read(io, "/etc/dkimd/full")).length, MAX_PRIVATE_KEY_INPUT_BYTES);
  const tooLarge = { message: `larger than ${MAX_PRIVATE_KEY_INPUT_BYTES} bytes` };
  await assert.rejects(read(io, "/etc/dkimd/big"), tooLarge);
  await assert.rejects(read(io, "/etc/dkimd/grew"), tooLarge);
  await assert.rejects(read(io, "/etc/dkimd"), { message: "not a regular file" });
  await assert.rejects(read(io, "/etc/dkimd/none"), Deno.errors.NotFound);
});

Deno.test("keyFileSafety() trusts the running user and the named ones the database knows", () => {
  const accounts = UserDb.parse("opendkim:x:110:117::/:/bin/false\n", "");
  assert.deepEqual(keyFileSafety(1000, accounts, ["opendkim", "ghost"]), {
    trustedUids: [1000, 110],
    trustedNames: ["1000", "opendkim"],
    users: accounts,
  });
  assert.deepEqual(keyFileSafety(null, undefined, ["opendkim"]), {
    trustedUids: [],
    trustedNames: [],
  });
});
