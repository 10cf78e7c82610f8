/**
 * The systemd version of the system `dkimd install` writes for: it decides what the unit may
 * use (Type=notify-reload needs 253; RHEL/CentOS 9 and Debian 12 ship 252). Under a `--root`
 * tree nothing there can be run, so the version is read from the name of systemd's shared
 * library, which every systemd since 246 installs as `libsystemd-shared-<version>[...].so`
 * (Debian: /usr/lib/<triplet>/systemd/, RHEL: /usr/lib64/systemd/, others /usr/lib/systemd/);
 * on the running system (`/`) `systemctl --version` answers when the library is not found.
 *
 * @module
 */

import { join } from "node:path";

// Where distributions put libsystemd-shared, relative to the root. "*" is one directory level
// (the multiarch triplet on Debian).
const LIBRARY_DIRS = ["usr/lib/systemd", "usr/lib64/systemd", "usr/lib/*/systemd"];

/**
 * The version in a libsystemd-shared file name, or undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { versionOfSharedLibrary } from "./systemd_version.ts";
 * assert.equal(versionOfSharedLibrary("libsystemd-shared-252.so"), 252);
 * assert.equal(versionOfSharedLibrary("libsystemd-shared-256.11-1.fc41.so"), 256);
 * assert.equal(versionOfSharedLibrary("libsystemd.so.0"), undefined);
 * ```
 */
export function versionOfSharedLibrary(name: string): number | undefined {
  const m = /^libsystemd-shared-(\d+)\b.*\.so$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * The version `systemctl --version` prints on its first line ("systemd 252 (252.38-1~deb12u1)").
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { versionOfSystemctl } from "./systemd_version.ts";
 * assert.equal(versionOfSystemctl("systemd 252 (252.38-1~deb12u1)\n+PAM +AUDIT\n"), 252);
 * assert.equal(versionOfSystemctl("nonsense"), undefined);
 * ```
 */
export function versionOfSystemctl(output: string): number | undefined {
  const m = /^systemd (\d+)\b/.exec(output);
  return m ? Number(m[1]) : undefined;
}

async function entries(dir: string): Promise<Deno.DirEntry[]> {
  const out: Deno.DirEntry[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return [];
    throw e;
  }
  return out;
}

async function libraryDirs(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const pattern of LIBRARY_DIRS) {
    const [head, tail] = pattern.split("/*/");
    if (tail === undefined) {
      out.push(join(root, pattern));
      continue;
    }
    for (const e of await entries(join(root, head))) {
      if (e.isDirectory) out.push(join(root, head, e.name, tail));
    }
  }
  return out;
}

/**
 * The systemd version under `root`, or undefined when it cannot be told (no systemd there).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { detectSystemdVersion } from "./systemd_version.ts";
 * const root = await Deno.makeTempDir();
 * await Deno.mkdir(`${root}/usr/lib64/systemd`, { recursive: true });
 * await Deno.writeTextFile(`${root}/usr/lib64/systemd/libsystemd-shared-252.so`, "");
 * assert.equal(await detectSystemdVersion(root), 252);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function detectSystemdVersion(root: string): Promise<number | undefined> {
  let found: number | undefined;
  for (const dir of await libraryDirs(root)) {
    for (const e of await entries(dir)) {
      const v = versionOfSharedLibrary(e.name);
      if (v !== undefined && (found === undefined || v > found)) found = v;
    }
  }
  if (found !== undefined || root !== "/") return found;
  try {
    const out = await new Deno.Command("systemctl", {
      args: ["--version"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? versionOfSystemctl(new TextDecoder().decode(out.stdout)) : undefined;
  } catch {
    // No systemctl (or no permission to run it): the version stays unknown.
    return undefined;
  }
}
