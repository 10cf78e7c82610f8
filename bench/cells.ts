/**
 * The benchmark's cells: which workloads run, in which order, for the full run and the quick one.
 *
 * Full run (issue 7): sign and verify of 2 KB, 200 KB and 2 MB messages at concurrency 1, 4 and
 * 16 with an RSA-2048 key, the c=1 and c=16 cells once more without TCP_QUICKACK and
 * TCP_NODELAY (latency as Postfix sees it), and the same with an Ed25519 key for 2 KB and 200 KB. Ed25519 at 2 MB and
 * the no-quickack cells with Ed25519 are left out: at 2 MB the body hash is the whole cost
 * whatever signs it, and the Nagle/delayed-ACK stall does not depend on the key; that keeps a
 * full run of 3 repeats under 20 minutes on 2 cores.
 *
 * Both runs have the OpenSSL cell (issue 20): RSA-2048 signing of 2 KB at c=4 by a dkimd with
 * `CryptoBackend openssl`, a group of its own (the other cells keep the default backend, or
 * `--crypto-backend`'s), dkimd only: OpenDKIM and rspamd have no such setting, and the report
 * sets their runs of the same workload in the default-backend cell beside it.
 *
 * Both runs end with the ARC cell (issue 17): verify and seal 2 KB messages carrying a
 * 2-instance ARC chain at c=4 (RSA-2048), dkimd only: OpenDKIM 2.11 has no ARC.
 *
 * @module
 */
import type { CryptoBackendName } from "../lib/crypto/crypto_backend.ts";
import type { SizeLabel } from "./corpus.ts";
import type { LoadMode } from "./load_client.ts";

/** The signing key type of a cell. */
export type KeyAlgorithm = "rsa" | "ed25519";

/** One workload. */
export interface Cell {
  /** Sign, verify, or verify and ARC-seal. */
  readonly mode: LoadMode;
  /** Message size. */
  readonly size: SizeLabel;
  /** Connections at once. */
  readonly concurrency: number;
  /** The key that signs (sign mode) or signed (verify mode) the messages. */
  readonly algorithm: KeyAlgorithm;
  /** Whether the client sets TCP_NODELAY and TCP_QUICKACK (Postfix sets neither). */
  readonly quickAck: boolean;
  /**
   * dkimd's CryptoBackend for this cell, when the cell is about it; absent: the run's (the
   * default, or `--crypto-backend`).
   */
  readonly cryptoBackend?: CryptoBackendName;
}

/**
 * A stable name for a cell, used to group repeats: `sign rsa 2KB c=4 qa`, and the backend after
 * it when the cell names one (`sign rsa 2KB c=4 qa openssl`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cellKey } from "./cells.ts";
 * const cell = { mode: "sign", algorithm: "rsa", size: "2KB", concurrency: 4, quickAck: true } as const;
 * assert.equal(cellKey(cell), "sign rsa 2KB c=4 qa");
 * assert.equal(cellKey({ ...cell, cryptoBackend: "openssl" }), "sign rsa 2KB c=4 qa openssl");
 * ```
 */
export function cellKey(cell: Cell): string {
  return `${cell.mode} ${cell.algorithm} ${cell.size} c=${cell.concurrency} ${
    cell.quickAck ? "qa" : "noqa"
  }${cell.cryptoBackend ? ` ${cell.cryptoBackend}` : ""}`;
}

const ALL_CONCURRENCY = [1, 4, 16];
const NO_QUICKACK_CONCURRENCY = [1, 16];

/**
 * The cells of a full run, grouped by (key, size): each group runs against a freshly started
 * pair of filters, so a cell's peak memory never includes an earlier, larger message's.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fullCells } from "./cells.ts";
 * const cells = fullCells().flatMap((g) => g.cells);
 * assert.equal(cells.length, 44);
 * assert.ok(cells.some((c) => c.mode === "sign" && c.size === "2KB" && !c.quickAck && c.concurrency === 1));
 * ```
 */
export function fullCells(): CellGroup[] {
  const groups: CellGroup[] = [];
  for (const algorithm of ["rsa", "ed25519"] as const) {
    const sizes: SizeLabel[] = algorithm === "rsa" ? ["2KB", "200KB", "2MB"] : ["2KB", "200KB"];
    for (const size of sizes) {
      const cells: Cell[] = [];
      for (const mode of ["sign", "verify"] as const) {
        for (const concurrency of ALL_CONCURRENCY) {
          cells.push({ mode, size, concurrency, algorithm, quickAck: true });
        }
        if (algorithm === "rsa") {
          for (const concurrency of NO_QUICKACK_CONCURRENCY) {
            cells.push({ mode, size, concurrency, algorithm, quickAck: false });
          }
        }
      }
      groups.push({ algorithm, size, cells });
    }
  }
  return [...groups, opensslGroup(), arcGroup()];
}

/**
 * The OpenSSL cell's group (issue 20): RSA-2048 signing of 2 KB at c=4 by a dkimd with
 * `CryptoBackend openssl`, dkimd only (the peers' runs of the same workload are those of the
 * default-backend cell: they have no backend to choose).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cellKey } from "./cells.ts";
 * import { opensslGroup } from "./cells.ts";
 * assert.deepEqual(opensslGroup().cells.map(cellKey), ["sign rsa 2KB c=4 qa openssl"]);
 * ```
 */
export function opensslGroup(): CellGroup {
  return {
    algorithm: "rsa",
    size: "2KB",
    cryptoBackend: "openssl",
    cells: [{
      mode: "sign",
      size: "2KB",
      concurrency: 4,
      algorithm: "rsa",
      quickAck: true,
      cryptoBackend: "openssl",
    }],
  };
}

/**
 * The ARC cell's group: verify+seal of 2 KB messages with a 2-instance chain at c=4, against a
 * dkimd configured with ARCMode sv (a group of its own, so ARC's work never enters the other
 * cells), dkimd only: OpenDKIM has no ARC.
 */
export function arcGroup(): CellGroup {
  return {
    algorithm: "rsa",
    size: "2KB",
    arc: true,
    cells: [{ mode: "arc", size: "2KB", concurrency: 4, algorithm: "rsa", quickAck: true }],
  };
}

/**
 * The quick run's cells (`--quick`, about a minute): the ones the issue's targets name, once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { quickCells } from "./cells.ts";
 * assert.equal(quickCells().flatMap((g) => g.cells).length, 9);
 * ```
 */
export function quickCells(): CellGroup[] {
  const c4 = (mode: LoadMode, algorithm: KeyAlgorithm, size: SizeLabel): Cell => ({
    mode,
    size,
    concurrency: 4,
    algorithm,
    quickAck: true,
  });
  return [
    {
      algorithm: "rsa",
      size: "2KB",
      cells: [
        c4("sign", "rsa", "2KB"),
        c4("verify", "rsa", "2KB"),
        { mode: "sign", size: "2KB", concurrency: 1, algorithm: "rsa", quickAck: false },
      ],
    },
    { algorithm: "ed25519", size: "2KB", cells: [c4("sign", "ed25519", "2KB")] },
    { algorithm: "rsa", size: "200KB", cells: [c4("verify", "rsa", "200KB")] },
    {
      algorithm: "rsa",
      size: "2MB",
      cells: [c4("sign", "rsa", "2MB"), c4("verify", "rsa", "2MB")],
    },
    opensslGroup(),
    arcGroup(),
  ];
}

/** Cells that share a key and a message size, run against one pair of filter processes. */
export interface CellGroup {
  /** The key both filters sign with. */
  readonly algorithm: KeyAlgorithm;
  /** The message size of every cell. */
  readonly size: SizeLabel;
  /** The cells, in order. */
  readonly cells: readonly Cell[];
  /** dkimd seals with ARC (ARCMode sv) and OpenDKIM, which has no ARC, sits the group out. */
  readonly arc?: boolean;
  /** dkimd's CryptoBackend for the group; the peers, which have none, sit it out. */
  readonly cryptoBackend?: CryptoBackendName;
}
