/**
 * The DKIM filter with AuthorizedSigners, driven by an in-memory MTA playing Postfix with SASL
 * (`{auth_type}` and `{auth_authen}` sent at MAIL): a login's own domain is signed, another's
 * From is not, and On-UnauthorizedSigner decides what the MTA is told, at end of headers; the
 * log line names the login, the From and the entry; the metrics count it. One test runs the
 * same filter behind a real milter socket; tests/e2e/postfix_authorized_signers_test.ts runs it
 * behind a real Postfix with SMTP AUTH.
 */
import assert from "node:assert/strict";
import { DkimFilter } from "../../lib/filter/dkim_filter.ts";
import { dkimFilterNeeds } from "../../lib/filter/filter_needs.ts";
import type { TransactionReport } from "../../lib/filter/observer.ts";
import { MilterClient } from "../../lib/milter/client.ts";
import type { Reply } from "../../lib/milter/reply.ts";
import { serve } from "../../lib/milter/server.ts";
import { Metrics } from "../../lib/ops/metrics.ts";
import type { HeaderPair } from "../helpers/milter_apply.ts";
import { MemoryLogger } from "../helpers/milter_logger.ts";
import { MemoryMta } from "../helpers/memory_mta.ts";
import { exampleSigning, MEMORY_CONF, memoryRuntime } from "../helpers/memory_runtime.ts";

const NOW = 1_800_000_000;
const EXTERNAL = { hostname: "laptop.example.org", address: "192.0.2.25" };
const BODY = "Hello.\r\n";

/** A shared host: example.com and example.net signed, each login its own domain. */
async function start(extraConf = "", observer?: Metrics | { reports: TransactionReport[] }) {
  const signing = await exampleSigning();
  const runtime = await memoryRuntime(
    `Mode sv\n${signing.conf}SigningTable csl:example.com=rsa,example.net=rsa\n` +
      `AuthorizedSigners csl:*=%,postmaster@example.com=example.com|example.net\n${extraConf}`,
    { files: signing.files, zone: signing.zone },
  );
  const log = new MemoryLogger();
  const reports = observer && "reports" in observer ? observer.reports : undefined;
  const filter = new DkimFilter({
    runtime: () => runtime,
    logger: log,
    hostname: "mx.example.net",
    now: () => NOW,
    observer: observer instanceof Metrics ? observer : {
      transaction: (r) => reports?.push(r),
      lookup() {},
      connections() {},
    },
  });
  return { filter, log };
}

function message(from: string, login: string | undefined) {
  const headers: HeaderPair[] = [["From", ` <${from}>`], ["Subject", " hi"]];
  const mail: Record<string, string> = { i: "4AB12C", "{auth_type}": "PLAIN" };
  if (login !== undefined) mail["{auth_authen}"] = login;
  return {
    connect: EXTERNAL,
    helo: EXTERNAL.hostname,
    macros: { connect: { j: "mx.example.net" }, mail },
    from: `<${from}>`,
    rcpts: ["<bob@example.org>"],
    headers,
    body: BODY,
  };
}

const signatures = (mods: readonly Reply[]) =>
  mods.filter((m) => m.type === "insheader" && m.name === "DKIM-Signature").length;

// The line of the AuthorizedSigners setting in the memory configuration.
const SETTING_LINE = 5;
const REFUSAL = new RegExp(
  `^4AB12C: login 'joe@example\\.com' may not sign for From 'ceo@example\\.net' ` +
    `\\(AuthorizedSigners "\\*" at ${MEMORY_CONF}:${SETTING_LINE} allows only %\\); ` +
    `not signing \\(On-UnauthorizedSigner (\\w+)\\)$`,
);

Deno.test("DkimFilter with AuthorizedSigners signs a login's own domain and, for postmaster, both", async () => {
  const { filter } = await start();
  const own = await new MemoryMta(filter).sendMessage(
    message("joe@example.com", "joe@example.com"),
  );
  assert.deepEqual(own.final, { type: "accept" });
  assert.equal(signatures(own.modifications), 1);
  const admin = await new MemoryMta(filter).sendMessage(
    message("ceo@example.net", "postmaster@example.com"),
  );
  assert.equal(signatures(admin.modifications), 1);
});

Deno.test("DkimFilter with AuthorizedSigners does not sign another domain's From, and On-UnauthorizedSigner answers at end of headers", async () => {
  const cases: [string, Reply][] = [
    ["accept", { type: "accept" }],
    ["reject", {
      type: "replycode",
      code: 550,
      text: "5.7.1 From address not authorized for this login",
    }],
    ["tempfail", {
      type: "replycode",
      code: 451,
      text: "4.7.1 From address not authorized for this login, try later",
    }],
    ["discard", { type: "discard" }],
  ];
  for (const [action, final] of cases) {
    const reports: TransactionReport[] = [];
    const { filter, log } = await start(`On-UnauthorizedSigner ${action}\n`, { reports });
    const r = await new MemoryMta(filter).sendMessage(
      message("ceo@example.net", "joe@example.com"),
    );
    assert.deepEqual(r.final, final, action);
    assert.deepEqual(r.modifications, [], action);
    // Answered at end of headers: the body is never sent.
    assert.equal(r.replies.at(-1)?.command, "eoh", action);
    const line = log.find("warn", REFUSAL);
    assert.ok(line, `${action}: ${JSON.stringify(log.lines)}`);
    assert.equal(REFUSAL.exec(line.message)?.[1], action);
    assert.deepEqual(reports.map((x) => [x.disposition, x.action]), [["unauthorized", action]]);
  }
});

Deno.test("DkimFilter with AuthorizedSigners logs the refusal whatever LogWhy says, and the allowing entry with LogWhy", async () => {
  const quiet = await start();
  await new MemoryMta(quiet.filter).sendMessage(message("ceo@example.net", "joe@example.com"));
  assert.ok(quiet.log.find("warn", REFUSAL));
  assert.equal(quiet.log.lines.filter((l) => l.level !== "debug").length, 1);
  const why = await start("LogWhy yes\n");
  await new MemoryMta(why.filter).sendMessage(message("joe@example.com", "joe@example.com"));
  assert.ok(
    why.log.find(
      "info",
      /^4AB12C: login 'joe@example\.com' may sign for From 'joe@example\.com' \(AuthorizedSigners "\*" at .*: "%"\)$/,
    ),
    JSON.stringify(why.log.lines),
  );
});

Deno.test("DkimFilter with AuthorizedSigners counts refusals in dkimd_messages_total", async () => {
  const metrics = new Metrics();
  const { filter } = await start("On-UnauthorizedSigner reject\n", metrics);
  await new MemoryMta(filter).sendMessage(message("ceo@example.net", "joe@example.com"));
  await new MemoryMta(filter).sendMessage(message("ceo@example.net", "ann@example.com"));
  await new MemoryMta(filter).sendMessage(message("joe@example.com", "joe@example.com"));
  const text = metrics.render();
  assert.match(
    text,
    /^dkimd_messages_total\{disposition="unauthorized",action="reject"\} 2$/m,
  );
  assert.match(text, /^dkimd_messages_total\{disposition="signed",action="accept"\} 1$/m);
});

Deno.test("DkimFilter with AuthorizedSigners refuses behind a milter socket as it does in memory", async () => {
  const { filter, log } = await start("On-UnauthorizedSigner reject\n");
  const server = await serve({
    socket: { kind: "inet", host: "127.0.0.1", port: 0 },
    filter,
    logger: log,
  });
  const client = await MilterClient.connect(server.address);
  try {
    const refused = await client.sendMessage({
      ...message("ceo@example.net", "joe@example.com"),
      body: new TextEncoder().encode(BODY),
    });
    assert.deepEqual(refused.final, {
      type: "replycode",
      code: 550,
      text: "5.7.1 From address not authorized for this login",
    });
    assert.ok(log.find("warn", REFUSAL));
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("dkimFilterNeeds() asks for {auth_type} and {auth_authen} at MAIL, where Postfix sends them", () => {
  const mail = dkimFilterNeeds().macros?.envFrom ?? [];
  assert.ok(mail.includes("{auth_type}"));
  assert.ok(mail.includes("{auth_authen}"));
});
