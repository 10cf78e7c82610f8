/**
 * The DKIM filter's runtime built from text in memory: a configuration in opendkim.conf format,
 * the files it names (data sets, PEM keys) and a DNS zone, loaded by the real loader over
 * {@link memoryIo} (opendkim.conf reader, then buildPolicy), so filter tests touch no disk.
 *
 * @module
 */
import { toBase64 } from "../../lib/bytes.ts";
import type { LoadedConfig } from "../../lib/config/load.ts";
import { loadConfig } from "../../lib/config/load.ts";
import type { SigningKey } from "../../lib/crypto/private_key.ts";
import type { Runtime } from "../../lib/filter/dkim_filter.ts";
import { KEYS_DIR, loadKey } from "./dkim_fixtures.ts";
import { type MemoryFiles, memoryIo } from "./memory_io.ts";
import { type ZoneEntry, ZoneResolver } from "./zone_resolver.ts";

/** Where the configuration of a memory runtime is, for messages that name it. */
export const MEMORY_CONF = "/etc/dkimd/dkimd.conf";

/** A runtime with its whole configuration and a zone a test can change. */
export interface MemoryRuntime extends Runtime {
  /** The loaded configuration. */
  readonly loaded: LoadedConfig<SigningKey>;
  /** The DNS, in memory. */
  readonly resolver: ZoneResolver;
}

/** What a memory runtime is made of besides its configuration text. */
export interface MemoryRuntimeOptions {
  /** The files the configuration names, by absolute path. */
  readonly files?: MemoryFiles;
  /** What DNS answers. */
  readonly zone?: Record<string, ZoneEntry>;
}

/** Loads `conf` (opendkim.conf format) with `files` from memory. */
export async function memoryRuntime(
  conf: string,
  options: MemoryRuntimeOptions = {},
): Promise<MemoryRuntime> {
  const files = new Map(
    options.files instanceof Map ? options.files : Object.entries(options.files ?? {}),
  );
  files.set(MEMORY_CONF, conf);
  const loaded = await loadConfig(MEMORY_CONF, memoryIo(files));
  return { loaded, resolver: new ZoneResolver(options.zone) };
}

/** A signing setup: configuration lines, the files they name, and the DNS publishing the keys. */
export interface ExampleSigning {
  /** KeyTable and SigningTable lines. */
  readonly conf: string;
  /** The tables and the PEM keys, by path. */
  readonly files: Readonly<Record<string, string>>;
  /** The key records. */
  readonly zone: Readonly<Record<string, ZoneEntry>>;
}

/**
 * An RSA-2048 and an Ed25519 test key signing example.com's mail (selectors `rsa` and `ed`),
 * in a KeyTable and a `refile:` SigningTable under /etc/dkimd.
 */
export async function exampleSigning(): Promise<ExampleSigning> {
  const pem = (name: string) => Deno.readTextFile(new URL(name, KEYS_DIR));
  const rsa = await loadKey("rsa2048_pkcs8.pem");
  const ed = await loadKey("ed25519.pem");
  return {
    conf: "KeyTable /etc/dkimd/key.table\nSigningTable refile:/etc/dkimd/signing.table\n",
    files: {
      "/etc/dkimd/key.table": "rsa example.com:rsa:/etc/dkimd/keys/rsa.pem\n" +
        "ed example.com:ed:/etc/dkimd/keys/ed.pem\n",
      "/etc/dkimd/signing.table": "*@example.com rsa\n*@example.com ed\n",
      "/etc/dkimd/keys/rsa.pem": await pem("rsa2048_pkcs8.pem"),
      "/etc/dkimd/keys/ed.pem": await pem("ed25519.pem"),
    },
    zone: {
      "rsa._domainkey.example.com": [`v=DKIM1; k=rsa; p=${toBase64(rsa.publicKey)}`],
      "ed._domainkey.example.com": [`v=DKIM1; k=ed25519; p=${toBase64(ed.publicKey)}`],
    },
  };
}
