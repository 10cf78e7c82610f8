/**
 * Lua policy scripts (opendkim-lua(3)) run unchanged in Debian's OpenDKIM 2.11 and in dkimd, on
 * the same opendkim.conf and the same messages through the milter protocol (the project's MTA
 * side, lib/milter/client.ts): the reply and every header change must be the same. Signatures
 * and Authentication-Results are compared by what they say (d=, s=, the dkim= results), not by
 * their timestamps and hashes.
 *
 * The scripts are those of typical deployments: a setup script that signs only some domains and
 * adds a signature per recipient domain; a final script that adds a header from the signature
 * results and rejects by a policy header with its own reply; a screen script that ignores the
 * signatures of one domain. Then dkimd alone: a script over its time or memory budget answers
 * that message with On-InternalError (tempfail) and the service carries on.
 */
import assert from "node:assert/strict";
import { latin1 } from "../../lib/bytes.ts";
import { signMessage } from "../../lib/dkim/sign.ts";
import { type ClientMessage, type MessageResult, MilterClient } from "../../lib/milter/client.ts";
import type { Reply } from "../../lib/milter/reply.ts";
import { parseSocketSpec } from "../../lib/milter/socket_spec.ts";
import { importPrivateKey } from "../../lib/crypto/private_key.ts";
import { freePort, startDkimd } from "../helpers/dkimd_process.ts";

const KEY = new URL("../testdata/keys/rsa2048_pkcs1.pem", import.meta.url);
const PUB = new URL("../testdata/keys/rsa2048_pub.der", import.meta.url);
const OPENDKIM = "/usr/sbin/opendkim";

/** A directory with the key, the KeyTable and TestPublicKeys both filters share. */
async function setUp(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-lua-" });
  await Deno.chmod(dir, 0o755);
  await Deno.copyFile(KEY, `${dir}/k.private`);
  await Deno.chmod(`${dir}/k.private`, 0o600);
  const p = btoa(String.fromCharCode(...await Deno.readFile(PUB)));
  await Deno.writeTextFile(
    `${dir}/keys.txt`,
    `s1._domainkey.example.com v=DKIM1; k=rsa; p=${p}\n` +
      `s2._domainkey.example.org v=DKIM1; k=rsa; p=${p}\n`,
  );
  await Deno.writeTextFile(
    `${dir}/key.table`,
    `k1 example.com:s1:${dir}/k.private\nk2 example.org:s2:${dir}/k.private\n`,
  );
  return dir;
}

/** The opendkim.conf both read (the Socket line differs). */
function conf(dir: string, socket: string, extra: string): string {
  return `Mode sv\nSocket ${socket}\nKeyTable ${dir}/key.table\nTestPublicKeys ${dir}/keys.txt\n` +
    `Canonicalization relaxed/relaxed\nAuthservID mx.example.net\nSignatureAlgorithm rsa-sha256\n` +
    `Syslog no\nRequireSafeKeys no\n${extra}`;
}

interface Filter {
  readonly socket: string;
  stop(): Promise<unknown>;
  log(): string;
}

async function startOpendkim(dir: string, extra: string): Promise<Filter> {
  const port = freePort();
  const socket = `inet:${port}@127.0.0.1`;
  await Deno.writeTextFile(`${dir}/opendkim.conf`, conf(dir, socket, extra));
  const child = new Deno.Command(OPENDKIM, {
    args: ["-f", "-x", `${dir}/opendkim.conf`],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s.pipeThrough(new TextDecoderStream())) text += c;
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`opendkim did not start:\n${text}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    socket,
    log: () => text,
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
      await pumps;
    },
  };
}

async function startBoth(extra: string, files: Record<string, string>) {
  const dir = await setUp();
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  const text = extra.replaceAll("$DIR", dir);
  const opendkim = await startOpendkim(dir, text);
  const dkimd = await startDkimd(dir, (socket) => conf(dir, socket, text));
  return {
    dir,
    opendkim,
    dkimd,
    async stop() {
      await Promise.all([opendkim.stop(), dkimd.stop()]);
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const INTERNAL = { hostname: "localhost", address: "127.0.0.1" };
const EXTERNAL = { hostname: "mail.example.net", address: "192.0.2.25" };
const BODY = "Hi,\r\n\r\nSee you at noon.\r\n";

function message(
  id: string,
  from: string,
  rcpts: string[],
  client: { hostname: string; address: string },
  extra: [string, string][] = [],
): ClientMessage {
  return {
    connect: client,
    macros: { mail: { i: id }, eoh: { i: id }, eom: { i: id } },
    from: `<${from}>`,
    rcpts: rcpts.map((r) => `<${r}>`),
    headers: [
      ...extra.map(([n, v]) => [n, ` ${v}`] as const),
      ["From", ` ${from}`],
      ["To", ` ${rcpts.join(", ")}`],
      ["Subject", " Lunch"],
      ["Date", " Mon, 07 Dec 2026 12:00:00 +0000"],
      ["Message-ID", ` <${id}@example.com>`],
    ],
    body: BODY,
  };
}

/** A message signed by dkimd's library with the keys of the KeyTable, for verification. */
async function signed(m: ClientMessage, signers: [string, string][]): Promise<ClientMessage> {
  const key = await importPrivateKey(await Deno.readTextFile(KEY));
  const text = m.headers.map(([n, v]) => `${n}:${typeof v === "string" ? v : latin1(v)}\r\n`)
    .join("") + "\r\n" + BODY;
  const fields = await signMessage(
    new TextEncoder().encode(text),
    signers.map(([d, s]) => ({
      domain: d,
      selector: s,
      key,
      canonicalization: ["relaxed", "relaxed"] as const,
    })),
  );
  const sigs = fields.map((f) => {
    const raw = latin1(f.raw);
    return ["DKIM-Signature", raw.slice(raw.indexOf(":") + 1)] as const;
  });
  return { ...m, headers: [...sigs, ...m.headers] };
}

/** What a filter did, in words that do not depend on time or on the implementation's style. */
function summary(r: MessageResult): string[] {
  const out: string[] = [];
  for (const m of r.modifications) out.push(describe(m));
  out.sort();
  out.push(`final: ${describeFinal(r.final)}`);
  return out;
}

function text(v: unknown): string {
  return typeof v === "string" ? v : latin1(v as Uint8Array);
}

function describe(m: Reply): string {
  if (m.type === "insheader" || m.type === "addheader" || m.type === "chgheader") {
    const value = text(m.value).replace(/\r?\n[ \t]+/g, " ").trim();
    if (m.name === "DKIM-Signature") {
      const d = /(?:^|;)\s*d=([^;\s]+)/.exec(value)?.[1];
      const s = /(?:^|;)\s*s=([^;\s]+)/.exec(value)?.[1];
      return `${m.type === "chgheader" ? "change" : "add"} DKIM-Signature d=${d} s=${s}`;
    }
    if (m.name === "Authentication-Results") {
      const results = [...value.matchAll(/dkim=(\w+)[^;]*?header\.d=([^\s;]+)/g)]
        .map((x) => `${x[1]}:${x[2]}`).sort();
      return `add Authentication-Results ${results.join(" ") || "(none)"}`;
    }
    if (m.name === "DKIM-Filter") return "add DKIM-Filter";
    return `${m.type === "chgheader" ? "change" : "add"} ${m.name}: ${value}`;
  }
  if (m.type === "quarantine") return `quarantine ${m.reason}`;
  return m.type;
}

function describeFinal(r: Reply): string {
  if (r.type === "replycode") return `${r.code} ${r.text}`.trim();
  return r.type;
}

async function run(socket: string, messages: ClientMessage[]): Promise<string[][]> {
  const out: string[][] = [];
  for (const m of messages) {
    const client = await MilterClient.connect(parseSocketSpec(socket));
    try {
      out.push(summary(await client.sendMessage(m)));
    } finally {
      await client.quit().catch(() => client.close());
    }
  }
  return out;
}

/**
 * Runs `messages` through both and checks each does `want`; `departure` is what OpenDKIM does
 * instead where dkimd departs from it on purpose (the test names why).
 */
async function compare(
  extra: string,
  files: Record<string, string>,
  messages: ClientMessage[],
  want: string[][],
  departure?: string[][],
): Promise<void> {
  const both = await startBoth(extra, files);
  try {
    const theirs = await run(both.opendkim.socket, messages);
    const ours = await run(both.dkimd.socket, messages);
    assert.deepEqual(theirs, departure ?? want, "OpenDKIM did not do what the test expects");
    assert.deepEqual(ours, want, `dkimd differs from OpenDKIM; its log:\n${both.dkimd.log()}`);
  } finally {
    await both.stop();
  }
}

Deno.test("SetupPolicyScript signs only some domains, and per recipient, as OpenDKIM does", async () => {
  const setup = `
-- Sign example.com's mail with k1; mail to example.net also gets example.org's k2.
if odkim.internal_ip(ctx) == 1 then
  if odkim.get_fromdomain(ctx) == "example.com" then odkim.sign(ctx, "k1") end
  for _, r in ipairs(odkim.get_rcptarray(ctx)) do
    if string.find(r, "@example.net", 1, true) then odkim.sign(ctx, "k2") break end
  end
end
`;
  await compare(`SetupPolicyScript $DIR/setup.lua\n`, { "setup.lua": setup }, [
    message("A1", "alice@example.com", ["bob@example.org"], INTERNAL),
    message("A2", "alice@example.com", ["carol@example.net", "bob@example.org"], INTERNAL),
    message("A3", "joe@other.test", ["bob@example.org"], INTERNAL),
    message("A4", "joe@other.test", ["carol@example.net"], INTERNAL),
  ], [
    ["add DKIM-Signature d=example.com s=s1", "final: accept"],
    [
      "add DKIM-Signature d=example.com s=s1",
      "add DKIM-Signature d=example.org s=s2",
      "final: accept",
    ],
    ["final: accept"],
    ["add DKIM-Signature d=example.org s=s2", "final: accept"],
  ]);
});

Deno.test("FinalPolicyScript adds a header from the signature results and rejects by policy, as OpenDKIM does", async () => {
  // The guards are for OpenDKIM: it runs each script once at start with no message (ctx is
  // NULL), where get_sigcount() says 1 and sig_getdomain() gives a NULL handle, not a string;
  // a Lua error there kills it (SIGSEGV), so deployed scripts must be written this way.
  const final = `
local n = odkim.get_sigcount(ctx) or 0
for i = 0, n - 1 do
  local sig = odkim.get_sighandle(ctx, i)
  local d = odkim.sig_getdomain(sig)
  if odkim.sig_result(sig) == 0 and type(d) == "string" then odkim.add_header(ctx, "X-DKIM-Pass", d) end
end
if odkim.get_header(ctx, "X-Reject-Me", 0) ~= nil then
  odkim.set_reply(ctx, "550", "5.7.0", "rejected by local policy")
  odkim.set_result(ctx, SMFIS_REJECT)
end
`;
  const good = await signed(
    message("B1", "alice@example.com", ["bob@example.org"], EXTERNAL),
    [["example.com", "s1"]],
  );
  const rejected = await signed(
    message("B2", "alice@example.com", ["bob@example.org"], EXTERNAL, [["X-Reject-Me", "yes"]]),
    [["example.com", "s1"]],
  );
  await compare(
    `FinalPolicyScript $DIR/final.lua\nSigningTable csl:*@example.com=k1\n`,
    { "final.lua": final },
    [good, rejected],
    [
      [
        "add Authentication-Results pass:example.com",
        "add X-DKIM-Pass: example.com",
        "final: accept",
      ],
      [
        "add Authentication-Results pass:example.com",
        "add X-DKIM-Pass: example.com",
        "final: 550 5.7.0 rejected by local policy",
      ],
    ],
  );
});

Deno.test("ScreenPolicyScript ignores the signatures of a domain, as OpenDKIM does", async () => {
  const screen = `
for i = 0, (odkim.get_sigcount(ctx) or 0) - 1 do
  local sig = odkim.get_sighandle(ctx, i)
  if odkim.sig_getdomain(sig) == "example.org" then odkim.sig_ignore(sig) end
end
`;
  const two = await signed(
    message("C1", "alice@example.com", ["bob@example.org"], EXTERNAL),
    [["example.com", "s1"], ["example.org", "s2"]],
  );
  // Departure: opendkim-lua(3) says verification then "act[s] as if that signature was not
  // present", and dkimd does so; OpenDKIM 2.11 still lists the ignored signature in
  // Authentication-Results, as dkim=fail (libopendkim skips it, opendkim.c reports it).
  await compare(
    `ScreenPolicyScript $DIR/screen.lua\nSigningTable csl:*@example.com=k1\n`,
    { "screen.lua": screen },
    [two],
    [["add Authentication-Results pass:example.com", "final: accept"]],
    [["add Authentication-Results fail:example.org pass:example.com", "final: accept"]],
  );
});

Deno.test("a Lua script over its time or memory budget is answered with On-InternalError and the service carries on", async () => {
  const dir = await setUp();
  await Deno.writeTextFile(
    `${dir}/setup.lua`,
    `if odkim.get_header(ctx, "X-Loop", 0) then while true do end end
if odkim.get_header(ctx, "X-Hog", 0) then local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 1048576) .. i end end
odkim.sign(ctx, "k1")
`,
  );
  const dkimd = await startDkimd(
    dir,
    (socket) => conf(dir, socket, `SetupPolicyScript ${dir}/setup.lua\n`),
  );
  try {
    const [loop, hog, after] = await run(dkimd.socket, [
      message("D1", "alice@example.com", ["bob@example.org"], INTERNAL, [["X-Loop", "1"]]),
      message("D2", "alice@example.com", ["bob@example.org"], INTERNAL, [["X-Hog", "1"]]),
      message("D3", "alice@example.com", ["bob@example.org"], INTERNAL),
    ]);
    assert.match(loop.at(-1)!, /^final: 451 /);
    assert.match(hog.at(-1)!, /^final: 451 /);
    assert.deepEqual(after, ["add DKIM-Signature d=example.com s=s1", "final: accept"]);
    assert.match(dkimd.log(), /setup\.lua: ran longer than its budget/);
    assert.match(dkimd.log(), /setup\.lua: used more than its budget/);
  } finally {
    await dkimd.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
