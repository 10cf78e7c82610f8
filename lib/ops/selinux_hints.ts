/**
 * SELinux, as `dkimd install` meets it on RHEL and its relatives: the targeted policy lets
 * Postfix's daemons (postfix_smtpd_t, postfix_cleanup_t) connect to a milter only on a port
 * labelled `milter_port_t`, and to a socket file whose type is a milter's data type, as
 * OpenDKIM's `dkim_milter_data_t` (the type of /run/opendkim and /var/spool/opendkim). A socket
 * directory dkimd's tmpfiles entry makes inside Postfix's spool would otherwise inherit the
 * spool's type, and a port other than the policy's would be refused. Install prints the
 * commands; it never changes the policy itself.
 *
 * @module
 */

import { dirname, join } from "node:path";
import type { SocketSpec } from "../milter/socket_spec.ts";

/** The port type the targeted policy lets Postfix connect to a milter on. */
export const MILTER_PORT_TYPE = "milter_port_t";

/** The file type of OpenDKIM's runtime and socket directories in the targeted policy. */
export const MILTER_DATA_TYPE = "dkim_milter_data_t";

/** Whether SELinux enforces under `root`, and what said so. */
export interface SelinuxState {
  /** True when it enforces now, or is configured to from the next boot. */
  readonly enforcing: boolean;
  /** The file that said so, for install's output. */
  readonly source?: string;
}

// The file's text, trimmed; undefined if it is absent, "unreadable" if Deno may not read it
// (Deno asks for --allow-all to read under the real /sys, which the service's flags do not give).
async function readTrimmed(path: string): Promise<string | undefined | "unreadable"> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
      return undefined;
    }
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      return "unreadable";
    }
    throw e;
  }
}

// What getenforce(8) prints ("Enforcing", "Permissive", "Disabled"); undefined without it.
async function getenforce(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("getenforce", { stdout: "piped", stderr: "null" })
      .output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  } catch {
    // Not installed (no SELinux userland), or not allowed to run: nothing to tell.
    return undefined;
  }
}

/**
 * Reads whether SELinux enforces under `root`: /sys/fs/selinux/enforce holding 1 (the file
 * `getenforce` itself reads, there when selinuxfs is mounted; on the running system, where Deno
 * will not read /sys under the service's permissions, `getenforce` is asked), else
 * /etc/selinux/config saying `SELINUX=enforcing` (an image built with `--root` enforces once
 * booted).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSelinuxState } from "./selinux_hints.ts";
 * const root = await Deno.makeTempDir();
 * assert.deepEqual(await readSelinuxState(root), { enforcing: false });
 * await Deno.mkdir(`${root}/sys/fs/selinux`, { recursive: true });
 * await Deno.writeTextFile(`${root}/sys/fs/selinux/enforce`, "1");
 * assert.deepEqual(await readSelinuxState(root), {
 *   enforcing: true,
 *   source: `${root}/sys/fs/selinux/enforce`,
 * });
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function readSelinuxState(root: string): Promise<SelinuxState> {
  const enforce = join(root, "sys/fs/selinux/enforce");
  const now = await readTrimmed(enforce);
  if (now === "1") return { enforcing: true, source: enforce };
  if (now === "unreadable" && root === "/") {
    const mode = await getenforce();
    if (mode !== undefined) {
      return mode === "Enforcing"
        ? { enforcing: true, source: "getenforce" }
        : { enforcing: false };
    }
  } else if (now !== undefined) return { enforcing: false };
  const config = join(root, "etc/selinux/config");
  const text = await readTrimmed(config);
  if (
    typeof text === "string" && text !== "unreadable" &&
    /^\s*SELINUX\s*=\s*enforcing\s*$/mi.test(text)
  ) {
    return { enforcing: true, source: config };
  }
  return { enforcing: false };
}

/**
 * The commands that let Postfix reach dkimd listening on `socket` under SELinux: a TCP port
 * labelled `milter_port_t`, or the unix socket's directory labelled `dkim_milter_data_t`
 * (persistently with `semanage fcontext`, then applied with `restorecon`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { selinuxHints } from "./selinux_hints.ts";
 * assert.deepEqual(selinuxHints({ kind: "inet", host: "localhost", port: 8891 }), [
 *   "semanage port -a -t milter_port_t -p tcp 8891",
 * ]);
 * assert.deepEqual(
 *   selinuxHints({ kind: "unix", path: "/var/spool/postfix/opendkim/opendkim.sock" }),
 *   [
 *     "semanage fcontext -a -t dkim_milter_data_t '/var/spool/postfix/opendkim(/.*)?'",
 *     "restorecon -Rv /var/spool/postfix/opendkim",
 *   ],
 * );
 * ```
 */
export function selinuxHints(socket: SocketSpec): string[] {
  if (socket.kind === "inet") {
    return [`semanage port -a -t ${MILTER_PORT_TYPE} -p tcp ${socket.port}`];
  }
  const dir = dirname(socket.path);
  return [
    `semanage fcontext -a -t ${MILTER_DATA_TYPE} '${dir}(/.*)?'`,
    `restorecon -Rv ${dir}`,
  ];
}
