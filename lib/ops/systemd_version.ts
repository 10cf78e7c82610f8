/**
 * The service unit for the host's systemd: `Type=notify-reload` (systemd 253 and newer:
 * systemd sends the reload signal itself and waits for RELOADING=1 and READY=1) or, before
 * that, `Type=notify` with `ExecReload=/bin/kill -USR1 $MAINPID`, as systemd/dkimd.service ships
 * (RHEL/CentOS 9 have systemd 252). `dkimd install` takes the version from `--systemd-version`
 * or from `systemctl --version`.
 *
 * @module
 */

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

/**
 * The host's systemd version from `systemctl --version`, or undefined when systemctl is
 * missing or says something else (a container without systemd, a build host).
 */
export async function detectSystemdVersion(
  run: () => Promise<string> = async () => {
    const out = await new Deno.Command("systemctl", {
      args: ["--version"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout) : "";
  },
): Promise<number | undefined> {
  try {
    return parseSystemdVersion(await run());
  } catch {
    return undefined;
  }
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
