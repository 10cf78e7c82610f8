/**
 * The sign-or-verify decision, exactly as opendkim(8) OPERATION describes it: a message is
 * signed when (1) its sender's domain has a signing entry and (2) the client (a) authenticated
 * (`{auth_type}` is set), (b) is in InternalHosts, (c) came in through a daemon named by MTA, or
 * (d) set macros matching MacroList; otherwise it is verified. Every step says why, in OpenDKIM's
 * LogWhy words, so the filter's logs and `dkimd explain` tell the same story.
 *
 * @module
 */
import type { LoadedConfig } from "../config/load.ts";
import type { PrivateKeyInfo } from "../policy/key_table.ts";
import { formatOrigin } from "../policy/origin.ts";
import { chooseSigners, type SignerChoice } from "../policy/signers.ts";
import type { Sender } from "./sender.ts";

/** What the decision looks at. */
export interface DecisionInput<K extends PrivateKeyInfo> {
  /** The configuration in force for this message. */
  readonly loaded: LoadedConfig<K>;
  /** The SMTP client: its name and address as the MTA reported them. */
  readonly client: { readonly hostname: string; readonly address: string };
  /** The MTA's macros, by name without braces. */
  readonly macros: (name: string) => string | undefined;
  /** The sender from the header (From, or SenderHeaders), when one was found. */
  readonly sender?: Sender;
  /** The envelope recipients, as addresses (no angle brackets). */
  readonly recipients: readonly string[];
}

/** What to do with a message, and why. */
export type Decision<K extends PrivateKeyInfo> =
  | {
    readonly kind: "sign";
    readonly signers: readonly SignerChoice<K>[];
    readonly why: readonly string[];
  }
  | { readonly kind: "verify"; readonly why: readonly string[] }
  | { readonly kind: "skip"; readonly why: readonly string[] };

/** How the client describes itself in log lines: `host [address]`, as OpenDKIM logs it. */
export function clientLabel(
  client: { readonly hostname: string; readonly address: string },
): string {
  if (!client.hostname) return client.address ? `[${client.address}]` : "(unknown client)";
  const host = client.hostname;
  return client.address && !host.startsWith("[") ? `${host} [${client.address}]` : host;
}

/**
 * Decides whether a message is signed, verified or left alone, saying why at each step.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decide } from "./decide.ts";
 * import { denoLoadIo, loadConfig } from "../config/load.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/dkimd.conf`, "Mode v\n");
 * const loaded = await loadConfig(`${dir}/dkimd.conf`, denoLoadIo(() => Promise.reject(new Error("no keys"))));
 * const d = await decide({
 *   loaded, client: { hostname: "mx.example.net", address: "192.0.2.7" },
 *   macros: () => undefined, recipients: [],
 * });
 * assert.equal(d.kind, "verify");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function decide<K extends PrivateKeyInfo>(
  input: DecisionInput<K>,
): Promise<Decision<K>> {
  const { loaded, client, sender } = input;
  const { config } = loaded;
  const why: string[] = [];
  const label = clientLabel(client);

  if (sender && loaded.exemptDomains?.has(sender.domain)) {
    const entry = loaded.exemptDomains.get(sender.domain)!;
    return {
      kind: "skip",
      why: [
        `sender domain '${sender.domain}' is exempt (ExemptDomains ${formatOrigin(entry.origin)})`,
      ],
    };
  }

  // (2) Is the origin one we sign for?
  let origin: string | undefined;
  const internal = loaded.hosts.internal.match(
    client.hostname || undefined,
    client.address || undefined,
  );
  if (internal.matched) {
    origin = `${label} is internal (InternalHosts "${internal.rule?.text}" at ${
      internal.rule ? formatOrigin(internal.rule.origin) : "default"
    })`;
  } else {
    why.push(`${label} not internal`);
    const authType = input.macros("auth_type");
    if (authType) {
      origin = `authenticated (auth_type ${authType})`;
    } else {
      why.push("not authenticated");
      const daemon = input.macros("daemon_name");
      if (daemon !== undefined && loaded.mta?.has(daemon)) {
        origin = `daemon '${daemon}' is listed in MTA`;
      } else {
        const macro = loaded.macroList?.match(input.macros);
        if (macro?.matched) {
          origin = `macro '${macro.rule?.name}' matches MacroList (${macro.value})`;
        }
      }
    }
  }

  if (config.mode.sign && origin !== undefined) {
    why.push(origin);
    if (!sender) {
      why.push("can't determine message sender; not signing");
    } else {
      const blocked = input.recipients.find((r) =>
        loaded.dontSignMailTo?.has(r) || loaded.dontSignMailTo?.has(r.slice(r.lastIndexOf("@") + 1))
      );
      if (blocked !== undefined) {
        why.push(`recipient '${blocked}' is in DontSignMailTo; not signing`);
      } else {
        const choice = await chooseSigners(loaded.signing, sender.user, sender.domain);
        for (const note of choice.notes) why.push(note);
        if (choice.signers.length > 0) {
          for (const s of choice.signers) why.push(s.explanation);
          return { kind: "sign", signers: choice.signers, why };
        }
        why.push(choice.reason ?? `no signing key for '${sender.user}@${sender.domain}'`);
      }
    }
  } else if (config.mode.sign && sender && origin === undefined) {
    // OpenDKIM's complaint about outside mail claiming one of our signing domains, which
    // ExternalIgnoreList silences (opendkim.conf(5)).
    const ours = await chooseSigners(loaded.signing, sender.user, sender.domain).catch(() =>
      undefined
    );
    const ignored = loaded.hosts.externalIgnore?.match(
      client.hostname || undefined,
      client.address || undefined,
    );
    if (ours && ours.signers.length > 0 && !ignored?.matched) {
      why.push(`external host ${label} tried to send mail as ${sender.domain}`);
    }
  }

  if (!config.mode.verify) {
    why.push("verify mode not enabled; leaving the message alone");
    return { kind: "skip", why };
  }
  const ignored = loaded.hosts.externalIgnore?.match(
    client.hostname || undefined,
    client.address || undefined,
  );
  if (ignored?.matched) {
    why.push(`${label} is in ExternalIgnoreList ("${ignored.rule?.text}"); not verifying`);
    return { kind: "skip", why };
  }
  return { kind: "verify", why };
}
