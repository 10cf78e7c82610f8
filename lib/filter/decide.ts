/**
 * The sign-or-verify decision, exactly as opendkim(8) OPERATION describes it: a message is
 * signed when (1) its sender's domain has a signing entry and (2) the client (a) authenticated
 * (`{auth_type}` is set), (b) is in InternalHosts, (c) came in through a daemon named by MTA, or
 * (d) set macros matching MacroList; otherwise it is verified. Every step says why, in OpenDKIM's
 * LogWhy words, so the filter's logs and `dkimd explain` tell the same story.
 *
 * One step is dkimd's own: with AuthorizedSigners set, an authenticated message (`{auth_type}`
 * set, whichever step made it ours) is signed only when its login (`{auth_authen}`) may put its
 * sender in From; otherwise the decision is `unauthorized`, carrying On-UnauthorizedSigner's
 * action. Mail that is ours without authentication (InternalHosts, MTA, MacroList) has no login
 * to check and is signed as before.
 *
 * @module
 */
import type { UnauthorizedSignerAction } from "../config/values.ts";
import { describeAuthorization } from "../policy/authorized_signers.ts";
import type { DataSetLookup } from "../policy/data_set_lookup.ts";
import type { HostMatch } from "../policy/host_list.ts";
import type { PrivateKeyInfo } from "../policy/key_table.ts";
import { formatOrigin } from "../policy/origin.ts";
import { chooseSigners, type SignerChoice } from "../policy/signers.ts";
import type { FilterPolicy } from "./filter_policy.ts";
import type { Sender } from "./sender.ts";

/** What the decision looks at. */
export interface DecisionInput<K extends PrivateKeyInfo> {
  /** The policy in force for this message. */
  readonly policy: FilterPolicy<K>;
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
  | { readonly kind: "skip"; readonly why: readonly string[] }
  | {
    /** AuthorizedSigners refuses the login this sender: the message is not signed. */
    readonly kind: "unauthorized";
    /** The steps before the refusal. */
    readonly why: readonly string[];
    /** The refusal: the login, the sender and the entry that decided. */
    readonly refusal: string;
    /** On-UnauthorizedSigner: what the MTA is told. */
    readonly action: UnauthorizedSignerAction;
  };

/** How the client describes itself in log lines: `host [address]`, as OpenDKIM logs it. */
export function clientLabel(
  client: { readonly hostname: string; readonly address: string },
): string {
  if (!client.hostname) return client.address ? `[${client.address}]` : "(unknown client)";
  const host = client.hostname;
  return client.address && !host.startsWith("[") ? `${host} [${client.address}]` : host;
}

/**
 * Decides whether a message is signed, verified or left alone, saying why at each step. Every
 * table is asked through the policy's lookups, so a rejected lookup (a database that cannot
 * answer) rejects the decision.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decide } from "./decide.ts";
 * import { buildPolicy, NO_KEYS } from "../config/build_policy.ts";
 * import { readOpendkimConf } from "../config/opendkim_conf.ts";
 * const { policy } = buildPolicy(readOpendkimConf("Mode v\n", "dkimd.conf"), {}, NO_KEYS);
 * const d = await decide({
 *   policy, client: { hostname: "mx.example.net", address: "192.0.2.7" },
 *   macros: () => undefined, recipients: [],
 * });
 * assert.equal(d.kind, "verify");
 * ```
 */
export async function decide<K extends PrivateKeyInfo>(
  input: DecisionInput<K>,
): Promise<Decision<K>> {
  const { policy, client, sender } = input;
  const { config } = policy;
  const why: string[] = [];
  const label = clientLabel(client);
  // ExternalIgnoreList is asked once at most, by whichever step needs it first.
  let ignoredAnswer: Promise<HostMatch | undefined> | undefined;
  const ignored = () =>
    ignoredAnswer ??= policy.hosts.externalIgnore?.match(
      client.hostname || undefined,
      client.address || undefined,
    ) ?? Promise.resolve(undefined);

  if (sender && policy.exemptDomains) {
    const [exempt] = await policy.exemptDomains.lookup([sender.domain]);
    if (exempt) {
      return {
        kind: "skip",
        why: [
          `sender domain '${sender.domain}' is exempt (ExemptDomains ${
            formatOrigin(exempt.origin)
          })`,
        ],
      };
    }
  }

  // (2) Is the origin one we sign for?
  const origin = await signingOrigin(input, label, why);

  if (config.mode.sign && origin !== undefined) {
    why.push(origin);
    if (!sender) {
      why.push("can't determine message sender; not signing");
    } else {
      const blocked = await blockedRecipient(policy.dontSignMailTo, input.recipients);
      if (blocked !== undefined) {
        why.push(`recipient '${blocked}' is in DontSignMailTo; not signing`);
      } else {
        const choice = await chooseSigners(policy, sender.user, sender.domain);
        for (const note of choice.notes) why.push(note);
        if (choice.signers.length > 0) {
          const refusal = await unauthorizedSigner(input, sender, why);
          if (refusal !== undefined) {
            return { kind: "unauthorized", why, refusal, action: config.onUnauthorizedSigner };
          }
          for (const s of choice.signers) why.push(s.explanation);
          return { kind: "sign", signers: choice.signers, why };
        }
        why.push(choice.reason ?? `no signing key for '${sender.user}@${sender.domain}'`);
      }
    }
  } else if (config.mode.sign && sender && origin === undefined) {
    // OpenDKIM's complaint about outside mail claiming one of our signing domains, which
    // ExternalIgnoreList silences (opendkim.conf(5)).
    const ours = await chooseSigners(policy, sender.user, sender.domain).catch(() => undefined);
    if (ours && ours.signers.length > 0 && !(await ignored())?.matched) {
      why.push(`external host ${label} tried to send mail as ${sender.domain}`);
    }
  }

  if (!config.mode.verify) {
    why.push("verify mode not enabled; leaving the message alone");
    return { kind: "skip", why };
  }
  const ignore = await ignored();
  if (ignore?.matched) {
    why.push(`${label} is in ExternalIgnoreList ("${ignore.rule?.text}"); not verifying`);
    return { kind: "skip", why };
  }
  return { kind: "verify", why };
}

/**
 * Why mail from this client is ours to sign (OpenDKIM's steps (a) to (d)), or undefined after
 * noting in `why` each step that did not say so.
 */
async function signingOrigin<K extends PrivateKeyInfo>(
  input: DecisionInput<K>,
  label: string,
  why: string[],
): Promise<string | undefined> {
  const { policy, client } = input;
  const internal = await policy.hosts.internal.match(
    client.hostname || undefined,
    client.address || undefined,
  );
  if (internal.matched) {
    return `${label} is internal (InternalHosts "${internal.rule?.text}" at ${
      internal.rule ? formatOrigin(internal.rule.origin) : "default"
    })`;
  }
  why.push(`${label} not internal`);
  const authType = input.macros("auth_type");
  if (authType) return `authenticated (auth_type ${authType})`;
  why.push("not authenticated");
  const daemon = input.macros("daemon_name");
  if (daemon !== undefined && policy.mta) {
    const [listed] = await policy.mta.lookup([daemon]);
    if (listed) return `daemon '${daemon}' is listed in MTA`;
  }
  const macro = await policy.macroList?.match(input.macros);
  if (macro?.matched) return `macro '${macro.rule?.name}' matches MacroList (${macro.value})`;
  return undefined;
}

/**
 * With AuthorizedSigners set and the message authenticated, why its login may not have mail
 * from `sender` signed, or undefined after noting in `why` the entry that allows it. An
 * unauthenticated message is not asked about: it has no login.
 */
async function unauthorizedSigner<K extends PrivateKeyInfo>(
  input: DecisionInput<K>,
  sender: Sender,
  why: string[],
): Promise<string | undefined> {
  const signers = input.policy.authorizedSigners;
  if (!signers || !input.macros("auth_type")) return undefined;
  // An empty {auth_authen} is no login at all: only the "*" entry can allow it.
  const login = input.macros("auth_authen") || undefined;
  const answer = await signers.authorize(login, sender.user, sender.domain);
  const line = describeAuthorization(
    answer,
    login,
    `${sender.user}@${sender.domain}`,
    sender.field,
  );
  if (!answer.allowed) return line;
  why.push(line);
  return undefined;
}

/** The first recipient DontSignMailTo lists, by its address or its domain; one lookup for all. */
async function blockedRecipient(
  list: DataSetLookup | undefined,
  recipients: readonly string[],
): Promise<string | undefined> {
  if (!list || recipients.length === 0) return undefined;
  const hits = await list.lookup(recipients.flatMap((r) => [r, r.slice(r.lastIndexOf("@") + 1)]));
  return recipients.find((_, i) => hits[2 * i] !== undefined || hits[2 * i + 1] !== undefined);
}
