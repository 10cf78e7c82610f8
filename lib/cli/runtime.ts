/**
 * Loading what the server runs with: the configuration (a file, or the built-in default) with
 * its keys, and the key-record resolver it describes.
 *
 * @module
 */
import { errorMessage } from "../error_message.ts";
import { ConfigErrors } from "../config/config_error.ts";
import { denoLoadIo, loadConfig, type LoadedConfig, type LoadIo } from "../config/load.ts";
import type { SigningKey } from "../crypto/private_key.ts";
import { rsaPublicVerifierSelfTest } from "../crypto/rsa_public_verify.ts";
import {
  type CryptoBackendName,
  type CryptoEngine,
  openOpensslEngine,
  WEBCRYPTO_ENGINE,
} from "../crypto/crypto_backend.ts";
import type { ConfigWarning } from "../config/config_error.ts";
import { CachingResolver } from "../dns/cache.ts";
import { KeyFileResolver, readKeyFile } from "../dns/key_file.ts";
import { readResolvConf } from "../dns/resolv_conf.ts";
import type { TxtResolver } from "../dns/resolver.ts";
import { untrustedResolversWarning } from "../dns/dnssec.ts";
import type { Nameserver } from "../dns/nameserver.ts";
import { StubResolver } from "../dns/stub.ts";
import type { Runtime } from "../filter/dkim_filter.ts";
import { SourceError } from "../policy/origin.ts";

/** The filter's runtime, with the whole loaded configuration its policy came from. */
export interface LoadedRuntime extends Runtime {
  /** The loaded configuration: the policy, and where each setting came from, warnings, files. */
  readonly loaded: LoadedConfig<SigningKey>;
  /** The crypto its keys were imported with (CryptoBackend), for the verifier's keys too. */
  readonly crypto: CryptoEngine;
}

/**
 * The OpenSSL engine of this process, opened (and self-tested) on first use and kept: libcrypto
 * stays loaded for the process's life, and a reload reuses it.
 */
let opensslEngine: Promise<CryptoEngine | Error> | undefined;

/**
 * The engine for `backend`: WebCrypto, or OpenSSL once opened; when OpenSSL cannot be used,
 * the Error saying why (the caller falls back or refuses, per CryptoBackendRequired).
 */
export function cryptoEngine(
  backend: CryptoBackendName | undefined,
): Promise<CryptoEngine | Error> {
  if (backend !== "openssl") return Promise.resolve(WEBCRYPTO_ENGINE);
  opensslEngine ??= openOpensslEngine().catch((e) => e instanceof Error ? e : new Error(String(e)));
  return opensslEngine;
}

/** Imports a private key with `backend`, or with WebCrypto when that backend cannot be used. */
async function importWith(
  input: Uint8Array | string,
  source: string | undefined,
  backend: CryptoBackendName | undefined,
): Promise<SigningKey> {
  const engine = await cryptoEngine(backend);
  return await (engine instanceof Error ? WEBCRYPTO_ENGINE : engine).importPrivateKey(
    input,
    source,
  );
}

/** The name the built-in default configuration goes by in messages. */
export const BUILTIN_CONFIG = "(built-in default configuration)";

/**
 * The configuration served without a file: verify only, on inet:8891@127.0.0.1 (the seed's
 * socket), in the foreground, logging to standard error.
 */
export const BUILTIN_CONFIG_TEXT = "Mode v\nSocket inet:8891@127.0.0.1\nSyslog no\nBackground no\n";

/** A configuration that cannot be used: every problem, each naming its file and line. */
export class RuntimeConfigError extends Error {
  /** One line per problem. */
  readonly problems: readonly string[];

  /** Makes the error from the problems found. */
  constructor(problems: readonly string[], options?: ErrorOptions) {
    super(problems.join("\n"), options);
    this.name = "RuntimeConfigError";
    this.problems = problems;
  }
}

/** The I/O loading uses, serving the built-in default configuration from memory. */
export function runtimeIo(): LoadIo<SigningKey> {
  const io = denoLoadIo(importWith);
  const builtin = new TextEncoder().encode(BUILTIN_CONFIG_TEXT);
  return {
    ...io,
    readFile: (path) => path === BUILTIN_CONFIG ? Promise.resolve(builtin) : io.readFile(path),
    stat: (path) =>
      path === BUILTIN_CONFIG
        ? Promise.resolve({
          isFile: true,
          isDirectory: false,
          mode: 0o644,
          uid: 0,
          gid: 0,
          size: builtin.length,
        })
        : io.stat(path),
  };
}

/**
 * Loads the configuration at `path` (or the built-in default when undefined) and builds its
 * resolver. Rejects with {@link RuntimeConfigError} listing every problem.
 */
export async function loadRuntime(
  path: string | undefined,
  io: LoadIo<SigningKey> = runtimeIo(),
): Promise<LoadedRuntime> {
  let loaded: LoadedConfig<SigningKey>;
  try {
    loaded = await loadConfig(
      path ?? BUILTIN_CONFIG,
      io,
      path === undefined ? "opendkim" : undefined,
    );
  } catch (e) {
    if (e instanceof ConfigErrors) {
      throw new RuntimeConfigError(e.errors.map((x) => x.message), { cause: e });
    }
    if (e instanceof SourceError) throw new RuntimeConfigError([e.message], { cause: e });
    throw e;
  }
  const { crypto, warning } = await chosenEngine(loaded);
  if (warning) loaded = { ...loaded, warnings: [...loaded.warnings, warning] };
  const warnings: ConfigWarning[] = [];
  // The BigInt RSA verifier is checked against WebCrypto once per process (the first load pays
  // ~20 ms here rather than the first verified message); keys fall back to WebCrypto when it
  // fails, and the administrator is told.
  if (crypto.name === "webcrypto" && !(await rsaPublicVerifierSelfTest())) {
    warnings.push({
      message:
        "RSA verification: dkimd's own verifier disagreed with WebCrypto in its self-test; verifying RSA signatures with WebCrypto (slower)",
      origin: loaded.origins.cryptoBackend ?? { file: BUILTIN_CONFIG, line: 0 },
      setting: "CryptoBackend",
    });
  }
  const resolver = await makeResolver(loaded, (w) => warnings.push(w));
  if (warnings.length > 0) loaded = { ...loaded, warnings: [...loaded.warnings, ...warnings] };
  return { loaded, resolver, crypto };
}

/**
 * The engine CryptoBackend names; when OpenSSL cannot be used, a warning and WebCrypto, or with
 * CryptoBackendRequired a {@link RuntimeConfigError}.
 */
async function chosenEngine(
  loaded: LoadedConfig<SigningKey>,
): Promise<{ crypto: CryptoEngine; warning?: ConfigWarning }> {
  const { config } = loaded;
  const engine = await cryptoEngine(config.cryptoBackend);
  if (!(engine instanceof Error)) return { crypto: engine };
  const origin = loaded.origins.cryptoBackend ?? { file: BUILTIN_CONFIG, line: 0 };
  const where = `${origin.file}:${origin.line}`;
  if (config.cryptoBackendRequired) {
    throw new RuntimeConfigError([
      `Cannot use "CryptoBackend" openssl at ${where}: ${engine.message} (CryptoBackendRequired is on)`,
    ], { cause: engine });
  }
  return {
    crypto: WEBCRYPTO_ENGINE,
    warning: {
      message:
        `"CryptoBackend" openssl at ${where} cannot be used: ${engine.message}; using webcrypto`,
      origin,
      setting: "CryptoBackend",
    },
  };
}

/**
 * The resolver a configuration describes: TestPublicKeys (a key file), TestDNSData (records in
 * the configuration), or DNS through dkimd's stub resolver (Nameservers, else /etc/resolv.conf),
 * with DNSTimeout, and cached for the records' TTL when QueryCache is on. TrustAnchorFile or
 * ResolverConfiguration asks the resolver for DNSSEC (`dns/dnssec.ts`): the trust anchor must be
 * readable, as OpenDKIM requires, and `warn` is told when a nameserver is not local, so its AD
 * bit is not believed.
 */
export async function makeResolver(
  loaded: LoadedConfig<SigningKey>,
  warn: (warning: ConfigWarning) => void = () => {},
): Promise<TxtResolver> {
  const { config } = loaded;
  if (config.testPublicKeys !== undefined) {
    try {
      return new KeyFileResolver(await readKeyFile(config.testPublicKeys));
    } catch (e) {
      const why = errorMessage(e);
      throw new RuntimeConfigError([
        `Cannot read "TestPublicKeys" file "${config.testPublicKeys}": ${why}`,
      ], {
        cause: e,
      });
    }
  }
  if (loaded.testDnsData) {
    const map = new Map<string, string[]>();
    for (const [name, text] of loaded.testDnsData) {
      map.set(name.toLowerCase().replace(/\.$/, ""), [text]);
    }
    return new KeyFileResolver(map);
  }
  const nameservers = config.nameservers ?? (await readResolvConf()).nameservers;
  const dnssec = await dnssecWanted(loaded, nameservers, warn);
  const stub = new StubResolver({
    nameservers,
    timeoutMs: config.dnsTimeout * 1000,
    maxAnswerBytes: config.dnsMaxAnswerBytes,
    tcp: config.dnsConnect,
    dnssec,
  });
  return config.queryCache ? new CachingResolver(stub) : stub;
}

/**
 * Whether to ask for DNSSEC: when TrustAnchorFile or ResolverConfiguration is set. OpenDKIM
 * refuses to start when the trust anchor cannot be read ("can't access unbound trust anchor");
 * so does dkimd, though only the resolver reads it.
 */
async function dnssecWanted(
  loaded: LoadedConfig<SigningKey>,
  nameservers: readonly Nameserver[],
  warn: (warning: ConfigWarning) => void,
): Promise<boolean> {
  const { config } = loaded;
  if (config.trustAnchorFile === undefined && config.resolverConfiguration === undefined) {
    return false;
  }
  if (config.trustAnchorFile !== undefined) {
    try {
      (await Deno.open(config.trustAnchorFile, { read: true })).close();
    } catch (e) {
      throw new RuntimeConfigError([
        `Cannot read "TrustAnchorFile" "${config.trustAnchorFile}": ${errorMessage(e)}`,
      ], { cause: e });
    }
  }
  const why = untrustedResolversWarning(nameservers);
  if (why !== undefined) {
    const setting = config.trustAnchorFile !== undefined
      ? "trustAnchorFile"
      : "resolverConfiguration";
    const origin = loaded.origins[setting] ?? { file: BUILTIN_CONFIG, line: 0 };
    warn({
      message: why,
      origin,
      setting: setting === "trustAnchorFile" ? "TrustAnchorFile" : "ResolverConfiguration",
    });
  }
  return true;
}
