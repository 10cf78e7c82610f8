/**
 * The OS family `dkimd install` writes for, told from os-release(5): Debian and its derivatives
 * (Ubuntu) keep a service's environment in /etc/default, RHEL and its relatives (CentOS, Fedora,
 * Rocky, AlmaLinux) in /etc/sysconfig, and log mail to /var/log/mail.log and /var/log/maillog.
 * Both keep Postfix's queue, where its daemons look for a milter's unix socket, in
 * /var/spool/postfix (Postfix's `queue_directory` default, kept by both packages).
 *
 * @module
 */

import { join } from "node:path";

/** The families `dkimd install` knows. */
export type OsFamily = "debian" | "rhel";

/** The names `--family` takes. */
export const OS_FAMILIES: readonly OsFamily[] = ["debian", "rhel"];

/** Where a family keeps what the service needs. */
export interface FamilyLayout {
  /** The family. */
  readonly family: OsFamily;
  /** A person's name for it, for install's output. */
  readonly label: string;
  /** The unit's EnvironmentFile (the distribution's convention for per-service options). */
  readonly environmentFile: string;
  /** Postfix's queue directory: a milter socket path in main.cf is relative to it. */
  readonly postfixSpool: string;
  /** Where the syslog daemon writes the mail facility. */
  readonly mailLog: string;
  /** How to install Postfix there. */
  readonly installPostfix: string;
}

/** The layouts of the families, by name. */
export const FAMILY_LAYOUTS: Readonly<Record<OsFamily, FamilyLayout>> = {
  debian: {
    family: "debian",
    label: "Debian family",
    environmentFile: "/etc/default/dkimd",
    postfixSpool: "/var/spool/postfix",
    mailLog: "/var/log/mail.log",
    installPostfix: "apt-get install postfix",
  },
  rhel: {
    family: "rhel",
    label: "RHEL family",
    environmentFile: "/etc/sysconfig/dkimd",
    postfixSpool: "/var/spool/postfix",
    mailLog: "/var/log/maillog",
    installPostfix: "dnf install postfix",
  },
};

// os-release IDs (ID and ID_LIKE words) of each family.
const IDS: Readonly<Record<OsFamily, readonly string[]>> = {
  debian: ["debian", "ubuntu"],
  rhel: ["rhel", "centos", "fedora", "rocky", "almalinux"],
};

/**
 * Parses os-release(5) text: `KEY=value` lines, the value optionally in double or single quotes
 * with backslash escapes; comments and blank lines are skipped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseOsRelease } from "./os_family.ts";
 * const r = parseOsRelease('ID="rocky"\nID_LIKE="rhel centos fedora"\n# note\nVERSION_ID=9.4\n');
 * assert.deepEqual(r, { ID: "rocky", ID_LIKE: "rhel centos fedora", VERSION_ID: "9.4" });
 * ```
 */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2];
    const q = value[0];
    if ((q === '"' || q === "'") && value.endsWith(q) && value.length >= 2) {
      value = value.slice(1, -1).replace(/\\(.)/g, "$1");
    }
    out[m[1]] = value;
  }
  return out;
}

/**
 * The family of an os-release: its ID first, then the words of ID_LIKE in order (os-release(5):
 * the closest relative first); undefined for a system of neither family.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { osFamilyOf } from "./os_family.ts";
 * assert.equal(osFamilyOf({ ID: "ubuntu", ID_LIKE: "debian" }), "debian");
 * assert.equal(osFamilyOf({ ID: "almalinux", ID_LIKE: "rhel centos fedora" }), "rhel");
 * assert.equal(osFamilyOf({ ID: "linuxmint", ID_LIKE: "ubuntu" }), "debian");
 * assert.equal(osFamilyOf({ ID: "arch" }), undefined);
 * ```
 */
export function osFamilyOf(release: Readonly<Record<string, string>>): OsFamily | undefined {
  const ids = [release.ID ?? "", ...(release.ID_LIKE ?? "").split(/\s+/)]
    .map((id) => id.toLowerCase())
    .filter((id) => id !== "");
  for (const id of ids) {
    for (const family of OS_FAMILIES) {
      if (IDS[family].includes(id)) return family;
    }
  }
  return undefined;
}

/** What os-release under a root says. */
export interface OsRelease {
  /** The file read, or undefined when there was none. */
  readonly path?: string;
  /** Its PRETTY_NAME (or NAME, or ID). */
  readonly name?: string;
  /** Its family, if one `dkimd install` knows. */
  readonly family?: OsFamily;
}

/**
 * Reads os-release under `root`: /etc/os-release, else /usr/lib/os-release (os-release(5)'s
 * fallback, as images without /etc have it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readOsRelease } from "./os_family.ts";
 * const root = await Deno.makeTempDir();
 * await Deno.mkdir(`${root}/etc`);
 * await Deno.writeTextFile(`${root}/etc/os-release`, 'PRETTY_NAME="Debian GNU/Linux 12"\nID=debian\n');
 * assert.deepEqual(await readOsRelease(root), {
 *   path: `${root}/etc/os-release`,
 *   name: "Debian GNU/Linux 12",
 *   family: "debian",
 * });
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function readOsRelease(root: string): Promise<OsRelease> {
  for (const rel of ["etc/os-release", "usr/lib/os-release"]) {
    const path = join(root, rel);
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
    const release = parseOsRelease(text);
    const name = release.PRETTY_NAME ?? release.NAME ?? release.ID;
    const family = osFamilyOf(release);
    return { path, ...(name ? { name } : {}), ...(family ? { family } : {}) };
  }
  return {};
}
