/**
 * The real-Postfix harness (tests/helpers/postfix.ts), proved with the tag filter served by
 * lib/milter/server.ts: mail goes through a private Postfix and its milter to the SMTP sink, and
 * what arrives is compared byte for byte with what was submitted. These tests also pin down what
 * Postfix 3.7 changes in a message on the way and how it hands header values to a milter, which
 * DKIM signing behind Postfix depends on.
 */

import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { UserDb } from "../../lib/config/user_db.ts";
import { serve } from "../../lib/milter/server.ts";
import type { Filter, FilterConnection } from "../../lib/milter/filter.ts";
import { MemoryLogger } from "../helpers/milter_logger.ts";
import { tagFilter, type TagFilterStats } from "../helpers/milter_tag_filter.ts";
import { type PostfixInstance, startPostfix } from "../helpers/postfix.ts";
import type { ReceivedMessage } from "../helpers/smtp.ts";

// Bounds each wait for delivery; Postfix delivers in about 0.1 s.
const DELIVERY_TIMEOUT_MS = 15_000;

function newStats(): TagFilterStats {
  return { connections: 0, closed: 0, aborted: 0, messages: 0 };
}

/** What the tag filter saw of each header, and of negotiation and macros, per connection. */
interface Seen {
  leadingSpace: boolean[];
  headers: string[];
  macros: string[];
}

// The tag filter, recording the header values the MTA sent (latin1) and negotiation results.
function recordingTagFilter(stats: TagFilterStats, seen: Seen): Filter {
  const inner = tagFilter(stats);
  return {
    needs: inner.needs,
    connect(info, macros) {
      seen.leadingSpace.push(info.session.leadingSpace);
      seen.macros.push(`j=${macros.get("j")}`);
      const conn = inner.connect(info, macros) as FilterConnection;
      return {
        ...conn,
        envFrom(args, m) {
          seen.macros.push(
            `i=${m.get("i") ?? "(none)"} auth_type=${m.get("{auth_type}") ?? "(none)"}`,
          );
          return conn.envFrom?.(args, m);
        },
        header(name, value, m) {
          seen.headers.push(`${name}:${latin1(value)}`);
          return conn.header?.(name, value, m);
        },
      };
    },
  };
}

async function startTagMilter(socket: Parameters<typeof serve>[0]["socket"], umask?: number) {
  const stats = newStats();
  const seen: Seen = { leadingSpace: [], headers: [], macros: [] };
  const server = await serve({
    socket,
    filter: recordingTagFilter(stats, seen),
    logger: new MemoryLogger(),
    ...(umask === undefined ? {} : { umask }),
  });
  return { server, stats, seen };
}

function inetPort(server: { address: { kind: string } }): number {
  const address = server.address as { kind: "inet"; port: number };
  return address.port;
}

const bytes = (text: string) => fromLatin1(text);

// Splits a delivered message into its first header fields (each with its CRLF, folded lines
// kept) and everything after them.
function takeFields(data: Uint8Array, count: number): { fields: string[]; rest: Uint8Array } {
  const text = latin1(data);
  const fields: string[] = [];
  let at = 0;
  while (fields.length < count) {
    let end = text.indexOf("\r\n", at);
    while (end >= 0 && (text[end + 2] === " " || text[end + 2] === "\t")) {
      end = text.indexOf("\r\n", end + 2);
    }
    assert.ok(
      end >= 0,
      `header field ${fields.length + 1} ends with CRLF: ${JSON.stringify(text)}`,
    );
    fields.push(text.slice(at, end + 2));
    at = end + 2;
  }
  return { fields, rest: data.subarray(at) };
}

/**
 * The date Postfix writes in Received and Date fields: mail_date(3) formats
 * `%a, %e %b %Y %H:%M:%S %z (%Z)`, and `%e` pads a one-digit day with a space
 * (`Mon,  7 Dec 2026`), which RFC 5322 §3.3 allows (`day = ([FWS] 1*2DIGIT FWS)`). The harness
 * runs Postfix with TZ=UTC. Captured, for the tests that set Postfix's clock.
 */
const POSTFIX_DATE =
  "([A-Z][a-z]{2}, (?: [1-9]|[12][0-9]|3[01]) [A-Z][a-z]{2} [0-9]{4}) [0-9:]{8} \\+0000 \\(UTC\\)";
const RECEIVED_SMTP = new RegExp(
  "^Received: from client\\.test \\(unknown \\[(127\\.0\\.0\\.1|IPv6:::1)\\]\\)\r\n" +
    "\tby mx\\.postfix\\.test \\(Postfix\\) with ESMTP id ([0-9A-F]+)\r\n" +
    `\tfor <([^>]+)>; ${POSTFIX_DATE}\r\n$`,
);
const RECEIVED_PICKUP = new RegExp(
  "^Received: by mx\\.postfix\\.test \\(Postfix, from userid 0\\)\r\n" +
    `\tid ([0-9A-F]+); ${POSTFIX_DATE}\r\n$`,
);

// A message with every header Postfix would otherwise add, a folded header, odd spacing that
// relaxed canonicalization would hide but simple does not, 8-bit bytes, and a line that
// must be dot-stuffed on the wire.
const HEADERS = "From:  Alice <alice@example.com>\r\n" +
  "To:bob@example.net\r\n" +
  "Subject: folded\r\n \tsubject  \r\n" +
  "Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n" +
  "Message-ID: <harness-1@example.com>\r\n" +
  "X-Change-Me: old\r\n";
const BODY = "Caf\xe9 au lait\r\n.leading dot\r\n\r\n  spaced line  \r\n";

function checkTagged(message: ReceivedMessage, received: RegExp, body = BODY): string {
  const { fields, rest } = takeFields(message.data, 2);
  const tag = /^X-Milter-Test: ([0-9A-F]+) msg=1 rcpts=1\r\n$/.exec(fields[0]);
  assert.ok(tag, `first field is the milter's: ${JSON.stringify(fields[0])}`);
  const stamp = received.exec(fields[1]);
  assert.ok(stamp, `second field is Postfix's Received: ${JSON.stringify(fields[1])}`);
  // The queue id in the Received field is the one the milter got in macro `i`.
  assert.ok(stamp.slice(1).includes(tag[1]), `queue id ${tag[1]} in ${fields[1]}`);
  const headers = HEADERS.replace("X-Change-Me: old", "X-Change-Me: changed");
  const bodyBytes = bytes(body).length;
  assert.equal(latin1(rest), `${headers}X-Body-Bytes: ${bodyBytes}\r\n\r\n${body}`);
  return tag[1];
}

Deno.test("startPostfix() passes mail through a milter on an inet socket to the sink", async (t) => {
  const milter = await startTagMilter({ kind: "inet", host: "127.0.0.1", port: 0 });
  const postfix = await startPostfix({ smtpdMilters: `inet:127.0.0.1:${inetPort(milter.server)}` });
  let delivered = 0;
  try {
    await t.step("SMTP from 127.0.0.1: milter headers added, the rest byte for byte", async () => {
      const result = await postfix.sendSmtp({
        from: "alice@example.com",
        to: "bob@example.net",
        data: bytes(HEADERS + "\r\n" + BODY),
      });
      assert.equal(result.accepted, true, JSON.stringify(result.reply));
      assert.ok(result.extensions.includes("8BITMIME"));
      const messages = await postfix.waitForMessages(++delivered, DELIVERY_TIMEOUT_MS);
      const message = messages[delivered - 1];
      assert.equal(checkTagged(message, RECEIVED_SMTP), result.queueId);
      assert.equal(message.mailFrom, "alice@example.com");
      assert.deepEqual(message.rcptTo, ["bob@example.net"]);
      assert.deepEqual(message.mailParams, ["BODY=8BITMIME"]);
      assert.equal(message.helo, "mx.postfix.test");
    });

    await t.step("the milter sees header values as sent, folded with LF", () => {
      // Postfix offers SMFIP_HDR_LEADSPC at protocol 6: the space after the colon stays; folded
      // lines come with a bare LF, not CRLF; Postfix's own Received field is not shown.
      assert.deepEqual(milter.seen.leadingSpace, [true]);
      assert.deepEqual(milter.seen.headers, [
        "From:  Alice <alice@example.com>",
        "To:bob@example.net",
        "Subject: folded\n \tsubject  ",
        "Date: Mon, 02 Mar 2026 10:00:00 +0000",
        "Message-ID: <harness-1@example.com>",
        "X-Change-Me: old",
      ]);
      assert.equal(milter.seen.macros[0], "j=mx.postfix.test");
      // No queue id yet at MAIL FROM: Postfix opens the queue file at the first valid RCPT
      // (smtpd_delay_open_until_valid_rcpt); `i` comes with DATA, the header and end of message.
      // No {auth_type} either: the client did not authenticate.
      assert.equal(milter.seen.macros[1], "i=(none) auth_type=(none)");
    });

    await t.step("sendmail: the non_smtpd_milters path gives the same message", async () => {
      await postfix.sendmail({
        from: "alice@example.com",
        to: ["bob@example.net", "carol@example.net"],
        data: bytes(HEADERS + "\r\n" + BODY),
      });
      const messages = await postfix.waitForMessages(++delivered, DELIVERY_TIMEOUT_MS);
      const message = messages[delivered - 1];
      // One milter transaction, two recipients.
      const { fields } = takeFields(message.data, 1);
      assert.match(fields[0], /^X-Milter-Test: [0-9A-F]+ msg=1 rcpts=2\r\n$/);
      const onePerRcpt = bytes(latin1(message.data).replace("rcpts=2", "rcpts=1"));
      checkTagged({ ...message, data: onePerRcpt }, RECEIVED_PICKUP);
      assert.deepEqual(message.rcptTo, ["bob@example.net", "carol@example.net"]);
      assert.equal(milter.stats.messages, 2);
    });

    await t.step("a milter reject gives the SMTP client 5xx and delivers nothing", async () => {
      const result = await postfix.sendSmtp({
        from: "alice@example.com",
        to: "bob@example.net",
        data: bytes("From: alice@example.com\r\nX-Reject: yes\r\nSubject: rejected\r\n\r\nNo\r\n"),
      });
      assert.equal(result.stage, "message");
      assert.equal(result.reply.code, 550);
      assert.deepEqual(result.reply.lines, ["5.7.1 Rejected by test filter"]);
      await postfix.waitForLog(
        /milter-reject: [A-Z-]+ .*5\.7\.1 Rejected by test filter/,
        DELIVERY_TIMEOUT_MS,
      );
      // The next message is the next one the sink gets: the rejected one never reached it.
      const next = await postfix.sendSmtp({
        from: "alice@example.com",
        to: "bob@example.net",
        data: bytes("From: alice@example.com\r\nSubject: after the reject\r\n\r\nYes\r\n"),
      });
      assert.equal(next.accepted, true);
      const messages = await postfix.waitForMessages(++delivered, DELIVERY_TIMEOUT_MS);
      assert.equal(messages.length, delivered);
      assert.match(latin1(messages[delivered - 1].data), /^Subject: after the reject\r$/m);
      assert.doesNotMatch(messages.map((m) => latin1(m.data)).join(), /X-Reject/);
    });

    await t.step("a milter reject of a sendmail message bounces it to the sender", async () => {
      // There is no SMTP client to tell, so cleanup bounces; the bounce is internal mail, which
      // no milter sees (internal_mail_filter_classes is empty by default).
      await postfix.sendmail({
        from: "alice@example.com",
        to: "bob@example.net",
        data: bytes("From: alice@example.com\r\nX-Reject: yes\r\nSubject: rejected\r\n\r\nNo\r\n"),
      });
      const messages = await postfix.waitForMessages(++delivered, DELIVERY_TIMEOUT_MS);
      const bounce = messages[delivered - 1];
      assert.equal(bounce.mailFrom, "");
      assert.deepEqual(bounce.rcptTo, ["alice@example.com"]);
      const text = latin1(bounce.data);
      assert.match(text, /^Received: by mx\.postfix\.test \(Postfix\)\r\n/);
      assert.match(text, /^Subject: Undelivered Mail Returned to Sender\r$/m);
      assert.match(text, /Rejected by test filter/);
      assert.doesNotMatch(text, /^X-Milter-Test:/m);
    });

    await t.step(
      "what Postfix adds and rewrites for a local client, not for an external one",
      async () => {
        const data = bytes("From: alice\r\nSubject: bare\r\n\r\nBody\r\n");
        const local = await postfix.sendSmtp({
          from: "alice@example.com",
          to: "bob@example.net",
          data,
        });
        const external = await postfix.sendSmtp({
          from: "alice@example.com",
          to: "bob@example.net",
          data,
          sourceAddress: "::1",
        });
        assert.equal(local.accepted && external.accepted, true);
        delivered += 2;
        const messages = await postfix.waitForMessages(delivered, DELIVERY_TIMEOUT_MS);
        const byId = (id?: string) =>
          messages.find((m) => latin1(m.data).includes(`id ${id}\r\n`))!;
        // 127.0.0.1 is in local_header_rewrite_clients (permit_inet_interfaces): the From address
        // gets @$myhostname, and Message-Id and Date are appended to the header, before the
        // milter sees it, so a signature can cover them.
        const fromLocal = takeFields(byId(local.queueId).data, 2);
        assert.match(fromLocal.fields[1], RECEIVED_SMTP);
        assert.match(
          latin1(fromLocal.rest),
          new RegExp(
            "^From: alice@mx\\.postfix\\.test\\r\\nSubject: bare\\r\\n" +
              `Message-Id: <[0-9]{14}\\.${local.queueId}@mx\\.postfix\\.test>\\r\\n` +
              `Date: ${POSTFIX_DATE}\\r\\nX-Body-Bytes: 6\\r\\n\\r\\nBody\\r\\n$`,
          ),
        );
        // ::1 is not (inet_interfaces is 127.0.0.1 alone): the header is left alone.
        const fromExternal = takeFields(byId(external.queueId).data, 2);
        assert.equal(RECEIVED_SMTP.exec(fromExternal.fields[1])?.[1], "IPv6:::1");
        assert.equal(
          latin1(fromExternal.rest),
          "From: alice\r\nSubject: bare\r\nX-Body-Bytes: 6\r\n\r\nBody\r\n",
        );
      },
    );

    await t.step(
      "body lines over 998 bytes are split on the way out, bare LF becomes CRLF",
      async () => {
        const long = "x".repeat(1200);
        const result = await postfix.sendSmtp({
          from: "alice@example.com",
          to: "bob@example.net",
          data: bytes(
            `Subject: long\r\nDate: x\r\nMessage-ID: <l@x>\r\n\r\nbare\nlf\r\n${long}\r\n`,
          ),
        });
        assert.equal(result.accepted, true);
        const messages = await postfix.waitForMessages(++delivered, DELIVERY_TIMEOUT_MS);
        const { rest } = takeFields(messages[delivered - 1].data, 2);
        // The milter counted the body with the long line whole (1200 + 2 + 10 bytes): Postfix's
        // smtp client (smtp_line_length_limit = 998) breaks it after the milter has seen it. A
        // missing From gets the envelope sender (a local client).
        assert.equal(
          latin1(rest),
          "Subject: long\r\nDate: x\r\nMessage-ID: <l@x>\r\nFrom: alice@example.com\r\n" +
            "X-Body-Bytes: 1212\r\n\r\n" +
            `bare\r\nlf\r\n${long.slice(0, 998)}\r\n ${long.slice(998)}\r\n`,
        );
      },
    );
  } finally {
    await postfix.stop();
    await milter.server.close();
  }
  // stop() twice is harmless, and nothing of the instance is left.
  await postfix.stop();
  await assert.rejects(Deno.stat(postfix.root), Deno.errors.NotFound);
});

// The dates Postfix writes on a one-digit day (padded with a space: this suite once failed on
// the 1st to the 9th of every month) and at a month end, by Postfix's own clock (libfaketime),
// whatever day the suite runs on.
for (
  const [clock, day] of [
    [new Date("2027-03-07T12:00:00Z"), "Sun,  7 Mar 2027"],
    [new Date("2027-01-31T12:00:00Z"), "Sun, 31 Jan 2027"],
  ] as const
) {
  Deno.test(`startPostfix() with its clock at ${day}: Received and Date fields`, async () => {
    const milter = await startTagMilter({ kind: "inet", host: "127.0.0.1", port: 0 });
    const postfix = await startPostfix({
      smtpdMilters: `inet:127.0.0.1:${inetPort(milter.server)}`,
      clock,
    });
    try {
      // From 127.0.0.1 (local_header_rewrite_clients) without a Date field: cleanup adds one.
      const sent = await postfix.sendSmtp({
        from: "alice@example.com",
        to: "bob@example.net",
        data: bytes("From: alice@example.com\r\nSubject: dated\r\n\r\nBody\r\n"),
      });
      assert.equal(sent.accepted, true, JSON.stringify(sent.reply));
      const [smtp] = await postfix.waitForMessages(1, DELIVERY_TIMEOUT_MS);
      const { fields, rest } = takeFields(smtp.data, 2);
      const received = RECEIVED_SMTP.exec(fields[1]);
      assert.equal(received?.[2], sent.queueId);
      assert.equal(received?.[4], day);
      const date = new RegExp(`^Date: ${POSTFIX_DATE}\r$`, "m").exec(latin1(rest));
      assert.equal(date?.[1], day);

      // The sendmail path: pickup's Received field. (Its Date field carries the time postdrop
      // took the message, and postdrop is set-group-id, so the loader ignores LD_PRELOAD there.)
      await postfix.sendmail({
        from: "alice@example.com",
        to: "bob@example.net",
        data: bytes(HEADERS + "\r\n" + BODY),
      });
      const [, local] = await postfix.waitForMessages(2, DELIVERY_TIMEOUT_MS);
      checkTagged(local, RECEIVED_PICKUP);
      assert.equal(RECEIVED_PICKUP.exec(takeFields(local.data, 2).fields[1])?.[2], day);
    } finally {
      await postfix.stop();
      await milter.server.close();
    }
  });
}

Deno.test("startPostfix() reaches a milter on a unix socket in the seed's layout", async () => {
  // The seed: /var/spool/postfix/opendkim owned by opendkim, group postfix, mode 0770, and
  // UMask 000, so the socket is srwxrwxrwx; Postfix's smtpd and cleanup run as user postfix.
  let milter: Awaited<ReturnType<typeof startTagMilter>> | undefined;
  const postfix = await startPostfix({
    socketDirectories: [{ name: "opendkim", owner: "opendkim", group: "postfix", mode: 0o770 }],
    smtpdMilters: (p) => `unix:${p.queueDirectory}/opendkim/opendkim.sock`,
  });
  const socketPath = `${postfix.queueDirectory}/opendkim/opendkim.sock`;
  const data = bytes(HEADERS + "\r\n" + BODY);
  try {
    const dir = await Deno.stat(`${postfix.queueDirectory}/opendkim`);
    const accounts = UserDb.parse(
      await Deno.readTextFile("/etc/passwd"),
      await Deno.readTextFile("/etc/group"),
    );
    assert.equal(accounts.userName(dir.uid!), "opendkim");
    assert.equal(accounts.groupName(dir.gid!), "postfix");
    assert.equal(dir.mode! & 0o7777, 0o770);

    milter = await startTagMilter({ kind: "unix", path: socketPath }, 0o000);
    assert.equal((await Deno.lstat(socketPath)).mode! & 0o777, 0o777);
    const result = await postfix.sendSmtp({
      from: "alice@example.com",
      to: "bob@example.net",
      data,
    });
    assert.equal(result.accepted, true);
    await postfix.sendmail({ from: "alice@example.com", to: "bob@example.net", data });
    const messages = await postfix.waitForMessages(2, DELIVERY_TIMEOUT_MS);
    checkTagged(messages[0], RECEIVED_SMTP);
    checkTagged(messages[1], RECEIVED_PICKUP);
    await milter.server.close();

    // A socket user postfix cannot write (root:root 0770, UMask 007) is a milter Postfix cannot
    // reach: the mail goes through untouched (milter_default_action = accept).
    milter = await startTagMilter({ kind: "unix", path: socketPath }, 0o007);
    const denied = await postfix.sendSmtp({
      from: "alice@example.com",
      to: "bob@example.net",
      data,
    });
    assert.equal(denied.accepted, true);
    const untouched = (await postfix.waitForMessages(3, DELIVERY_TIMEOUT_MS))[2];
    assert.match(latin1(untouched.data), /^Received: /);
    assert.equal(milter.stats.connections, 0);
    await postfix.waitForLog(
      /warning: connect to Milter service unix:\S+opendkim\.sock: Permission denied/,
      DELIVERY_TIMEOUT_MS,
    );
    // Group postfix on the socket is enough.
    const postfixGid = (await Deno.stat(`${postfix.queueDirectory}/opendkim`)).gid;
    await Deno.chown(socketPath, null, postfixGid);
    const allowed = await postfix.sendSmtp({
      from: "alice@example.com",
      to: "bob@example.net",
      data,
    });
    assert.equal(allowed.accepted, true);
    checkTagged((await postfix.waitForMessages(4, DELIVERY_TIMEOUT_MS))[3], RECEIVED_SMTP);
  } finally {
    await postfix.stop();
    await milter?.server.close();
  }
});

Deno.test("startPostfix() delivers while the milter is down and filters again when it is back", async () => {
  // A port nobody listens on: the milter is stopped.
  const probe = await startTagMilter({ kind: "inet", host: "127.0.0.1", port: 0 });
  const port = inetPort(probe.server);
  await probe.server.close();
  const postfix = await startPostfix({ smtpdMilters: `inet:127.0.0.1:${port}` });
  let milter: Awaited<ReturnType<typeof startTagMilter>> | undefined;
  const data = bytes(HEADERS + "\r\n" + BODY);
  try {
    const result = await postfix.sendSmtp({
      from: "alice@example.com",
      to: "bob@example.net",
      data,
    });
    assert.equal(result.accepted, true);
    await postfix.sendmail({ from: "alice@example.com", to: "bob@example.net", data });
    const messages = await postfix.waitForMessages(2, DELIVERY_TIMEOUT_MS);
    for (
      const [message, received] of [[messages[0], RECEIVED_SMTP], [
        messages[1],
        RECEIVED_PICKUP,
      ]] as const
    ) {
      const { fields, rest } = takeFields(message.data, 1);
      assert.match(fields[0], received);
      assert.equal(latin1(rest), HEADERS + "\r\n" + BODY);
    }
    const log = await postfix.waitForLog(
      new RegExp(
        `warning: connect to Milter service inet:127\\.0\\.0\\.1:${port}: Connection refused`,
      ),
      DELIVERY_TIMEOUT_MS,
    );
    assert.match(log, /status=sent/);

    milter = await startTagMilter({ kind: "inet", host: "127.0.0.1", port });
    const back = await postfix.sendSmtp({ from: "alice@example.com", to: "bob@example.net", data });
    assert.equal(back.accepted, true);
    checkTagged((await postfix.waitForMessages(3, DELIVERY_TIMEOUT_MS))[2], RECEIVED_SMTP);
  } finally {
    await postfix.stop();
    await milter?.server.close();
  }
});

Deno.test("startPostfix() works with milter_protocol = 2", async () => {
  const milter = await startTagMilter({ kind: "inet", host: "127.0.0.1", port: 0 });
  const postfix: PostfixInstance = await startPostfix({
    smtpdMilters: `inet:127.0.0.1:${inetPort(milter.server)}`,
    milterProtocol: 2,
  });
  try {
    const data = bytes(HEADERS + "\r\n" + BODY);
    const result = await postfix.sendSmtp({
      from: "alice@example.com",
      to: "bob@example.net",
      data,
    });
    assert.equal(result.accepted, true);
    await postfix.sendmail({ from: "alice@example.com", to: "bob@example.net", data });
    const messages = await postfix.waitForMessages(2, DELIVERY_TIMEOUT_MS);
    // Without SMFIP_HDR_LEADSPC the filter gives values without their space and Postfix puts
    // one back, so the delivered message is the same as at protocol 6.
    checkTagged(messages[0], RECEIVED_SMTP);
    checkTagged(messages[1], RECEIVED_PICKUP);
    // Postfix removed one space after each colon (only a space, and only one).
    assert.deepEqual(milter.seen.leadingSpace, [false, false]);
    assert.deepEqual(milter.seen.headers.slice(0, 6), [
      "From: Alice <alice@example.com>",
      "To:bob@example.net",
      "Subject:folded\n \tsubject  ",
      "Date:Mon, 02 Mar 2026 10:00:00 +0000",
      "Message-ID:<harness-1@example.com>",
      "X-Change-Me:old",
    ]);
  } finally {
    await postfix.stop();
    await milter.server.close();
  }
});

Deno.test("startPostfix() reaches a milter on ::1", async () => {
  const milter = await startTagMilter({ kind: "inet", host: "::1", port: 0 });
  const postfix = await startPostfix({ smtpdMilters: `inet:[::1]:${inetPort(milter.server)}` });
  try {
    const data = bytes(HEADERS + "\r\n" + BODY);
    const result = await postfix.sendSmtp({
      from: "alice@example.com",
      to: "bob@example.net",
      data,
    });
    assert.equal(result.accepted, true);
    checkTagged((await postfix.waitForMessages(1, DELIVERY_TIMEOUT_MS))[0], RECEIVED_SMTP);
  } finally {
    await postfix.stop();
    await milter.server.close();
  }
});

Deno.test("startPostfix() instances run side by side", async () => {
  const [a, b] = await Promise.all([startPostfix({}), startPostfix({})]);
  try {
    assert.notEqual(a.smtpPort, b.smtpPort);
    assert.notEqual(a.root, b.root);
    const data = bytes("Subject: side by side\r\n\r\nHi\r\n");
    await Promise.all([
      a.sendSmtp({ from: "a@example.com", to: "x@example.net", data }),
      b.sendSmtp({ from: "b@example.com", to: "y@example.net", data }),
    ]);
    const [fromA] = await a.waitForMessages(1, DELIVERY_TIMEOUT_MS);
    const [fromB] = await b.waitForMessages(1, DELIVERY_TIMEOUT_MS);
    assert.deepEqual([fromA.mailFrom, fromB.mailFrom], ["a@example.com", "b@example.com"]);
    assert.deepEqual([a.sink.messages.length, b.sink.messages.length], [1, 1]);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});
