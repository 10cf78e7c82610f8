-- miltertest drives a running dkimd (started by dkimd_miltertest_test.ts) as an MTA would:
-- several transactions on one connection, an abort mid-body, signing for an internal client,
-- verifying for an external one. dkimd asks for no HELO (SMFIP_NOHELO), so none is sent. Variables from the test (-D): socket, helpers, signature
-- (a DKIM-Signature value for the message below, made by dkimd sign), body, tampered.
dofile(helpers)

local function message(conn, id, from, extra_headers, text)
  ok(mt.macro(conn, SMFIC_MAIL, "i", id), "mt.macro(MAIL)")
  ok(mt.mailfrom(conn, "<" .. from .. ">"), "mt.mailfrom()")
  ok(mt.rcptto(conn, "<bob@example.org>"), "mt.rcptto()")
  for _, h in ipairs(extra_headers) do ok(mt.header(conn, h[1], h[2]), "mt.header(" .. h[1] .. ")") end
  ok(mt.header(conn, "From", "Alice <" .. from .. ">"), "mt.header(From)")
  ok(mt.header(conn, "To", "Bob <bob@example.org>"), "mt.header(To)")
  ok(mt.header(conn, "Subject", "Lunch tomorrow?"), "mt.header(Subject)")
  ok(mt.header(conn, "Date", "Fri, 27 Nov 2026 12:00:00 +0000"), "mt.header(Date)")
  ok(mt.header(conn, "Message-ID", "<" .. id .. "@example.com>"), "mt.header(Message-ID)")
  ok(mt.eoh(conn), "mt.eoh()")
  ok(mt.bodystring(conn, text), "mt.bodystring()")
  ok(mt.eom(conn), "mt.eom()")
end

-- An internal client: localhost is in InternalHosts.
local conn = open()
ok(mt.conninfo(conn, "localhost", "127.0.0.1"), "mt.conninfo()")

message(conn, "Q1", "alice@example.com", {}, body)
expect_reply(conn, SMFIR_ACCEPT, "EOM 1")
check(mt.eom_check(conn, MT_HDRINSERT, "DKIM-Signature"), "message 1 was not signed")
mt.echo("SIGNATURE1=" .. mt.getheader(conn, "DKIM-Signature", 0))

-- Not a signing domain: no signature, and nothing else to add (Mode sv, no A-R for own mail).
message(conn, "Q2", "carol@example.org", {}, body)
check(not mt.eom_check(conn, MT_HDRINSERT, "DKIM-Signature"), "message 2 was signed")

-- Aborted mid-body: the next transaction starts clean.
ok(mt.macro(conn, SMFIC_MAIL, "i", "Q3"), "mt.macro(MAIL)")
ok(mt.mailfrom(conn, "<alice@example.com>"), "mt.mailfrom()")
ok(mt.rcptto(conn, "<bob@example.org>"), "mt.rcptto()")
ok(mt.header(conn, "From", "alice@example.com"), "mt.header(From)")
ok(mt.eoh(conn), "mt.eoh()")
ok(mt.bodystring(conn, "half a body"), "mt.bodystring()")
ok(mt.abort(conn), "mt.abort()")

message(conn, "Q4", "alice@example.com", {}, body)
check(mt.eom_check(conn, MT_HDRINSERT, "DKIM-Signature"), "message 4 was not signed")
mt.disconnect(conn)

-- An external client: its mail is verified.
conn = open()
ok(mt.conninfo(conn, "mail.example.net", "192.0.2.25"), "mt.conninfo()")
message(conn, "Q5", "alice@example.com", { { "DKIM-Signature", signature } }, body)
expect_reply(conn, SMFIR_ACCEPT, "EOM 5")
check(mt.eom_check(conn, MT_HDRINSERT, "Authentication-Results"), "no Authentication-Results on message 5")
mt.echo("RESULTS5=" .. mt.getheader(conn, "Authentication-Results", 0))

message(conn, "Q6", "alice@example.com", { { "DKIM-Signature", signature } }, tampered)
mt.echo("RESULTS6=" .. mt.getheader(conn, "Authentication-Results", 0))
mt.disconnect(conn)
