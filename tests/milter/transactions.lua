-- Several transactions on one connection, as Postfix sends them: connect, then per message
-- macros, MAIL, RCPTs, headers (no reply), EOH, body (no reply), end of message with header
-- changes, and ABORT. Then a message refused by a header, and one quarantined.
dofile(helpers)

local conn = open()
ok(mt.macro(conn, SMFIC_CONNECT, "j", "mx.example.org"), "mt.macro(CONNECT)")
ok(mt.conninfo(conn, "client.example.org", "192.0.2.25"), "mt.conninfo()")
expect_reply(conn, SMFIR_CONTINUE, "CONNECT")
check(mt.test_option(conn, SMFIP_NOHELO), "HELO not turned off")

for n = 1, 3 do
  local id = "QID" .. n
  envelope(conn, id, { "<one@example.net>", "<two@example.net>" })
  ok(mt.header(conn, "From", " sender@example.org"), "mt.header(From)")
  ok(mt.header(conn, "Subject", " Message " .. n), "mt.header(Subject)")
  ok(mt.header(conn, "X-Remove-Me", " yes"), "mt.header(X-Remove-Me)")
  ok(mt.header(conn, "X-Change-Me", " old"), "mt.header(X-Change-Me)")
  ok(mt.eoh(conn), "mt.eoh()")
  expect_reply(conn, SMFIR_CONTINUE, "EOH")
  ok(mt.bodystring(conn, "Hello\r\n"), "mt.bodystring(1)")
  ok(mt.bodystring(conn, "World!\r\n"), "mt.bodystring(2)")
  ok(mt.eom(conn), "mt.eom()")
  expect_reply(conn, SMFIR_ACCEPT, "EOM")
  local want = " " .. id .. " msg=" .. n .. " rcpts=2"
  check(mt.eom_check(conn, MT_HDRINSERT, "X-Milter-Test", want, 0),
    "X-Milter-Test not inserted at the top: " .. tostring(mt.getheader(conn, "X-Milter-Test", 0)))
  check(mt.getheader(conn, "X-Milter-Test", 0) == want, "mt.getheader(X-Milter-Test)")
  check(mt.eom_check(conn, MT_HDRADD, "X-Body-Bytes", " 15"), "X-Body-Bytes not added")
  check(mt.eom_check(conn, MT_HDRDELETE, "X-Remove-Me"), "X-Remove-Me not deleted")
  check(mt.eom_check(conn, MT_HDRCHANGE, "X-Change-Me", " changed"), "X-Change-Me not changed")
  check(not mt.eom_check(conn, MT_QUARANTINE), "quarantined without asking")
  ok(mt.abort(conn), "mt.abort()")
end

-- X-Reject: decided at the header, which is not answered, so the refusal comes at EOH.
envelope(conn, "QID4", { "<one@example.net>" })
ok(mt.header(conn, "X-Reject", " yes"), "mt.header(X-Reject)")
ok(mt.header(conn, "Subject", " ignored"), "mt.header(Subject)")
ok(mt.eoh(conn), "mt.eoh()")
expect_reply(conn, SMFIR_REPLYCODE, "EOH after X-Reject")
ok(mt.abort(conn), "mt.abort()")

-- X-Quarantine: accepted, quarantined, counted as the connection's fourth message.
envelope(conn, "QID5", { "<one@example.net>" })
ok(mt.header(conn, "X-Quarantine", " yes"), "mt.header(X-Quarantine)")
ok(mt.eoh(conn), "mt.eoh()")
ok(mt.bodystring(conn, "Quarantine me\r\n"), "mt.bodystring()")
ok(mt.eom(conn), "mt.eom()")
expect_reply(conn, SMFIR_ACCEPT, "EOM")
check(mt.eom_check(conn, MT_QUARANTINE, "test quarantine"), "not quarantined")
check(mt.eom_check(conn, MT_HDRINSERT, "X-Milter-Test", " QID5 msg=4 rcpts=1", 0),
  "X-Milter-Test of the quarantined message")

mt.disconnect(conn)
