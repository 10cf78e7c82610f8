/**
 * Reading the signing keys a configuration names: who may own a key file (root, the current
 * user, UserID's user), the RequireSafeKeys walk, the size-limited read and the import, once
 * per file; `%` paths and database KeyTable rows are opened the same way at signing time.
 * Everything about key files the loader does is here; what it finds goes to buildPolicy to
 * report.
 *
 * @module
 */

import { fileErrorMessage } from "../error_message.ts";
import { MIN_RSA_BITS } from "../crypto/key_type.ts";
import type {
  KeySource,
  KeyTableEntry,
  PrivateKeyInfo,
  TemplateKeyLoader,
} from "../policy/key_table.ts";
import { algorithmFitsKey } from "../policy/key_table.ts";
import type { Origin, SourceError } from "../policy/origin.ts";
import type { KeyOpening, OpenedKeys } from "./build_policy.ts";
import { ConfigError } from "./config_error.ts";
import type { LoadContext } from "./load_context.ts";
import type { LoadIo } from "./load_io.ts";
import { readPrivateKeyFile, UnsafeKeyError } from "./private_key_file.ts";
import type { Config } from "./schema.ts";
import type { UserDb } from "./user_db.ts";

/**
 * Opens `sources` in order, each key once, checking UserID's user exists (it may own key
 * files) and RequireSafeKeys first; keeps a way to open `%` paths and database rows later.
 */
export async function openKeys<K extends PrivateKeyInfo>(
  ctx: LoadContext<K>,
  config: Config,
  sources: readonly KeySource[],
): Promise<OpenedKeys<K>> {
  const accounts = await ctx.io.accounts();
  const trusted = trustedUsers(config, ctx.originOf("userId"), ctx.io, accounts, ctx.errors);
  const loader = new KeyLoader(ctx.io, config, trusted, accounts, ctx.resolve, ctx.files);
  return await loader.open(sources);
}

interface Trusted {
  readonly uids: number[];
  readonly names: string[];
}

/** Root, the current user, and UserID's user: who may own and read key files. */
function trustedUsers<K extends PrivateKeyInfo>(
  config: Config,
  at: Origin,
  io: LoadIo<K>,
  accounts: UserDb | undefined,
  errors: SourceError[],
): Trusted {
  const uids: number[] = [];
  const names: string[] = [];
  const euid = io.euid();
  if (euid !== null) {
    uids.push(euid);
    if (accounts) names.push(accounts.userName(euid));
  }
  if (config.userId && accounts) {
    const user = accounts.user(config.userId.user);
    if (!user) {
      errors.push(
        new ConfigError('Invalid "UserID"', at, `no such user "${config.userId.user}"`, {
          setting: "UserID",
        }),
      );
    } else {
      uids.push(user.uid);
      names.push(user.name);
    }
    if (config.userId.group !== undefined && !accounts.group(config.userId.group)) {
      errors.push(
        new ConfigError('Invalid "UserID"', at, `no such group "${config.userId.group}"`, {
          setting: "UserID",
        }),
      );
    }
  }
  return { uids, names };
}

/** Opens keys once each, checking safety first; what it finds goes to buildPolicy to report. */
class KeyLoader<K extends PrivateKeyInfo> {
  readonly #cache = new Map<string, Promise<LoadedKey<K>>>();

  constructor(
    readonly io: LoadIo<K>,
    readonly config: Config,
    readonly trusted: Trusted,
    readonly accounts: UserDb | undefined,
    readonly resolve: (p: string) => string,
    readonly files: string[],
  ) {}

  /** Opens `sources` in order, and keeps a way to open `%` paths at signing time. */
  async open(sources: readonly KeySource[]): Promise<OpenedKeys<K>> {
    const files = new Map<string, KeyOpening<K>>();
    const inline = new Map<string, KeyOpening<K>>();
    for (const source of sources) {
      if (source.kind === "inline") {
        if (!inline.has(source.data)) {
          inline.set(source.data, await this.#importInline(source.data));
        }
      } else if (!files.has(source.path)) {
        files.set(source.path, await this.#openFile(source.path));
      }
    }
    const loadTemplate: TemplateKeyLoader<K> = (p, entry) => this.#loadTemplate(p, entry);
    return { files, inline, loadTemplate, importRow: (source) => this.#importRow(source) };
  }

  /**
   * The key of a database KeyTable row, at first use: a file gets the RequireSafeKeys walk and
   * the size-limited read each time (the row's caller keeps the key), and every key the size
   * check a file key gets at load.
   */
  async #importRow(source: KeySource): Promise<K> {
    const key = source.kind === "file"
      ? (await this.#loadUncached(this.resolve(source.path))).key
      : await this.io.importKey(source.data);
    if (key.type === "rsa" && key.bits < MIN_RSA_BITS) {
      throw new Error(
        `${key.bits}-bit RSA; RFC 8301 §3.2: signers MUST use at least ${MIN_RSA_BITS} bits`,
      );
    }
    return key;
  }

  async #importInline(data: string): Promise<KeyOpening<K>> {
    try {
      return {
        key: await this.io.importKey(data, undefined, this.config.cryptoBackend),
        problems: [],
      };
    } catch (e) {
      return { failure: errorText(e), unsafe: false, cause: e };
    }
  }

  // A key file: its safety problems are reported for the first path that reads it only.
  async #openFile(written: string): Promise<KeyOpening<K>> {
    const path = this.resolve(written);
    const first = !this.#cache.has(path);
    try {
      const { key, problems } = await this.#load(path);
      return { key, path, problems: first ? problems : [] };
    } catch (e) {
      return e instanceof UnsafeKeyError
        ? { failure: e.message, unsafe: true }
        : { failure: errorText(e, path), unsafe: false, cause: e };
    }
  }

  /** Loads the key of a `%` path for one domain, at signing time. */
  async #loadTemplate(path: string, entry: KeyTableEntry): Promise<K> {
    const { key } = await this.#load(this.resolve(path));
    if (entry.algorithm && !algorithmFitsKey(entry.algorithm, key.type)) {
      throw new Error(`the key is ${key.type}, but the entry asks for ${entry.algorithm}`);
    }
    return key;
  }

  #load(path: string): Promise<LoadedKey<K>> {
    let pending = this.#cache.get(path);
    if (!pending) {
      pending = this.#loadUncached(path);
      this.#cache.set(path, pending);
    }
    return pending;
  }

  async #loadUncached(path: string): Promise<LoadedKey<K>> {
    const problems: string[] = [];
    const bytes = await readPrivateKeyFile(this.io, path, {
      safety: {
        trustedUids: this.trusted.uids,
        trustedNames: this.trusted.names,
        ...(this.accounts ? { users: this.accounts } : {}),
      },
      requireSafe: this.config.requireSafeKeys,
      warn: (p, text) =>
        problems.push(p.fatal ? `the key is not safe (RequireSafeKeys is off): ${text}` : text),
    });
    this.files.push(path);
    return { key: await this.io.importKey(bytes, path, this.config.cryptoBackend), problems };
  }
}

/** A key read from a file, with what the safety walk found. */
interface LoadedKey<K extends PrivateKeyInfo> {
  readonly key: K;
  readonly problems: readonly string[];
}

function errorText(e: unknown, path?: string): string {
  const text = fileErrorMessage(e);
  return path && !text.includes(path) ? `"${path}": ${text}` : text;
}
