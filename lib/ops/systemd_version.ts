/**
 * The systemd version of the system `dkimd install` writes for, and the service unit it gets:
 * `Type=notify-reload` (systemd 253 and newer: systemd sends the reload signal itself and waits
 * for RELOADING=1 and READY=1) or, before that, `Type=notify` with
 * `ExecReload=/bin/kill -USR1 $MAINPID`, as systemd/dkimd.service ships (RHEL/CentOS 9 and
 * Debian 12 have systemd 252). Under a `--root` tree nothing there can be run, so the version is
 * read from the name of systemd's shared library, which every systemd since 246 installs as
 * `libsystemd-shared-<version>[...].so` (Debian: /usr/lib/<triplet>/systemd/, RHEL:
 * /usr/lib64/systemd/, others /usr/lib/systemd/); on the running system (`/`) `systemctl
 * --version` answers when the library is not found. `--systemd-version` overrides both.
 *
 * @module
 */

import { join } from "node:path";

/** The first systemd with `Type=notify-reload` (systemd.service(5), v253). */
export const NOTIFY_RELOAD_MIN_VERSION = 253;

/**
 * The version number in `systemctl --version` output (`systemd 252 (252.38-1~deb12u1)`), or
 * undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSystemdVersion } from "./systemd_version.ts";
 * assert.equal(parseSystemdVersion("systemd 252 (252.38-1~deb12u1)\n+PAM +AUDIT"), 252);
 * assert.equal(parseSystemdVersion("systemd 256 (256.7-1.fc41)\n"), 256);
 * assert.equal(parseSystemdVersion("command not found"), undefined);
 * ```
 */
export function parseSystemdVersion(text: string): number | undefined {
  const m = /^systemd (\d{1,5})\b/.exec(text);
  return m ? Number(m[1]) : undefined;
}

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
 * On `/` without the library, `systemctl --version` (or `run`, for tests) answers.
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
export async function detectSystemdVersion(
  root = "/",
  run: () => Promise<string> = systemctlVersion,
): Promise<number | undefined> {
  let found: number | undefined;
  for (const dir of await libraryDirs(root)) {
    for (const e of await entries(dir)) {
      const v = versionOfSharedLibrary(e.name);
      if (v !== undefined && (found === undefined || v > found)) found = v;
    }
  }
  if (found !== undefined || root !== "/") return found;
  try {
    return parseSystemdVersion(await run());
  } catch {
    // No systemctl (or no permission to run it): the version stays unknown.
    return undefined;
  }
}

async function systemctlVersion(): Promise<string> {
  const out = await new Deno.Command("systemctl", {
    args: ["--version"],
    stdout: "piped",
    stderr: "null",
  }).output();
  return out.success ? new TextDecoder().decode(out.stdout) : "";
}

/**
 * The unit `text` (systemd/dkimd.service, `Type=notify` with ExecReload) for systemd `version`:
 * from {@link NOTIFY_RELOAD_MIN_VERSION} on, `Type=notify-reload` with `ReloadSignal=SIGUSR1`
 * (OpenDKIM's reload signal) and no ExecReload; otherwise, or when the version is unknown,
 * `text` unchanged.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serviceUnitFor } from "./systemd_version.ts";
 * const unit = "[Service]\nType=notify\nExecStart=/usr/local/sbin/dkimd serve\nExecReload=/bin/kill -USR1 $MAINPID\n";
 * assert.equal(serviceUnitFor(unit, 252), unit);
 * assert.equal(serviceUnitFor(unit, undefined), unit);
 * assert.equal(
 *   serviceUnitFor(unit, 253),
 *   "[Service]\nType=notify-reload\nReloadSignal=SIGUSR1\nExecStart=/usr/local/sbin/dkimd serve\n",
 * );
 * ```
 */
export function serviceUnitFor(text: string, version: number | undefined): string {
  if (version === undefined || version < NOTIFY_RELOAD_MIN_VERSION) return text;
  return text
    .replace(/^Type=notify$/m, "Type=notify-reload\nReloadSignal=SIGUSR1")
    .replace(/^ExecReload=.*\n/m, "");
}

/** The service type {@link serviceUnitFor} writes for `version`, for install's message. */
export function serviceTypeFor(version: number | undefined): "notify" | "notify-reload" {
  return version !== undefined && version >= NOTIFY_RELOAD_MIN_VERSION ? "notify-reload" : "notify";
}
