-- ABORT in the middle of the body resets the transaction, not the connection; a message can
-- also follow the end of the previous one without ABORT; a large random body arrives whole.
dofile(helpers)

local conn = open()
ok(mt.conninfo(conn, "client.example.org", "192.0.2.26"), "mt.conninfo()")
expect_reply(conn, SMFIR_CONTINUE, "CONNECT")

envelope(conn, "A1", { "<one@example.net>" })
ok(mt.header(conn, "Subject", " Aborted"), "mt.header()")
ok(mt.eoh(conn), "mt.eoh()")
ok(mt.bodystring(conn, "This message is never finished\r\n"), "mt.bodystring()")
ok(mt.abort(conn), "mt.abort()")

envelope(conn, "A2", { "<one@example.net>" })
ok(mt.header(conn, "Subject", " After the abort"), "mt.header()")
ok(mt.eoh(conn), "mt.eoh()")
ok(mt.bodystring(conn, "Short\r\n"), "mt.bodystring()")
ok(mt.eom(conn), "mt.eom()")
expect_reply(conn, SMFIR_ACCEPT, "EOM")
check(mt.eom_check(conn, MT_HDRINSERT, "X-Milter-Test", " A2 msg=1 rcpts=1", 0),
  "the aborted message was counted: " .. tostring(mt.getheader(conn, "X-Milter-Test", 0)))
check(mt.eom_check(conn, MT_HDRADD, "X-Body-Bytes", " 7"), "the aborted body leaked in")

-- No ABORT after end of message: the next MAIL starts the next transaction.
envelope(conn, "A3", { "<one@example.net>", "<two@example.net>" })
ok(mt.eoh(conn), "mt.eoh()")
ok(mt.bodyrandom(conn, 200000), "mt.bodyrandom()")
ok(mt.eom(conn), "mt.eom()")
expect_reply(conn, SMFIR_ACCEPT, "EOM")
check(mt.eom_check(conn, MT_HDRINSERT, "X-Milter-Test", " A3 msg=2 rcpts=2", 0),
  "third transaction: " .. tostring(mt.getheader(conn, "X-Milter-Test", 0)))
local bytes = tonumber(mt.getheader(conn, "X-Body-Bytes", 0))
check(bytes ~= nil and bytes >= 200000, "random body not counted whole: " .. tostring(bytes))

mt.disconnect(conn)
