-- Option negotiation against the test filter, as a version 6 MTA (miltertest's default offer:
-- every action, every protocol flag, like Postfix's milter_protocol = 6) and as a version 2 one.
dofile(helpers)

local conn = open()
ok(mt.negotiate(conn, nil, nil, nil), "mt.negotiate()")
check(mt.test_action(conn, SMFIF_ADDHDRS), "SMFIF_ADDHDRS not requested")
check(mt.test_action(conn, SMFIF_CHGHDRS), "SMFIF_CHGHDRS not requested")
check(mt.test_action(conn, SMFIF_QUARANTINE), "optional SMFIF_QUARANTINE not requested")
check(mt.test_action(conn, SMFIF_SETSYMLIST), "no symbol lists sent")
check(mt.test_option(conn, SMFIP_NOHELO), "HELO not turned off")
check(mt.test_option(conn, SMFIP_NODATA), "DATA not turned off")
check(mt.test_option(conn, SMFIP_NOUNKNOWN), "unknown commands not turned off")
check(not mt.test_option(conn, SMFIP_NOHDRS), "headers turned off")
check(mt.test_option(conn, SMFIP_NR_HDR), "headers still answered")
check(mt.test_option(conn, SMFIP_NR_BODY), "body chunks still answered")
check(not mt.test_option(conn, SMFIP_NR_EOH), "end of headers not answered")
check(not mt.test_option(conn, SMFIP_NR_MAIL), "MAIL not answered")
check(mt.test_option(conn, SMFIP_HDR_LEADSPC), "leading space not requested")
check(mt.test_option(conn, SMFIP_SKIP), "SKIP not requested")
mt.disconnect(conn)

-- A version 2 MTA gets a version 2 answer, without the version 6 flags, and every header is
-- answered.
conn = open()
ok(mt.negotiate(conn, 2, 0x7F, 0x3F), "mt.negotiate(2)")
check(mt.test_option(conn, SMFIP_NOHELO), "v2: HELO not turned off")
check(not mt.test_option(conn, SMFIP_NR_HDR), "v2: no-reply flag in a version 2 answer")
check(not mt.test_option(conn, SMFIP_HDR_LEADSPC), "v2: leading space in a version 2 answer")
check(not mt.test_action(conn, SMFIF_SETSYMLIST), "v2: symbol lists in a version 2 answer")
ok(mt.conninfo(conn, "client.example.org", "192.0.2.2"), "mt.conninfo()")
expect_reply(conn, SMFIR_CONTINUE, "CONNECT")
envelope(conn, "V2", { "<one@example.net>" })
ok(mt.header(conn, "Subject", "Version 2"), "mt.header()")
expect_reply(conn, SMFIR_CONTINUE, "HEADER")
ok(mt.eoh(conn), "mt.eoh()")
expect_reply(conn, SMFIR_CONTINUE, "EOH")
ok(mt.bodystring(conn, "Hi\r\n"), "mt.bodystring()")
expect_reply(conn, SMFIR_CONTINUE, "BODY")
ok(mt.eom(conn), "mt.eom()")
expect_reply(conn, SMFIR_ACCEPT, "EOM")
-- Without HDR_LEADSPC the MTA puts the space back itself, so the value has none.
check(mt.eom_check(conn, MT_HDRINSERT, "X-Milter-Test", "V2 msg=1 rcpts=1", 0),
  "v2: X-Milter-Test not inserted as expected: " .. tostring(mt.getheader(conn, "X-Milter-Test", 0)))
mt.disconnect(conn)

-- Version 1 is refused: the filter closes the connection without an answer.
conn = open()
check(mt.negotiate(conn, 1, nil, nil) ~= nil, "version 1 was accepted")
mt.disconnect(conn, false)
