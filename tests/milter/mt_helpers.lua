-- Helpers shared by the miltertest scripts in this directory. The test passes the filter's
-- address as `socket` (-D socket=inet:PORT@127.0.0.1 or local:/path).

-- Stops the script with exit status 1. miltertest does not print the error itself, so the
-- message goes to standard output first, with the script line that failed.
function fail(message, level)
  local where = debug.getinfo(level + 1, "Sl")
  mt.echo("FAIL " .. where.short_src .. ":" .. where.currentline .. ": " .. message)
  error(message, level + 1)
end

-- Fails the script with `message` unless `condition` holds.
function check(condition, message)
  if not condition then
    fail(message, 2)
  end
end

-- miltertest functions return nil on success and an error string on failure.
function ok(result, what)
  if result ~= nil then
    fail(what .. " failed: " .. tostring(result), 2)
  end
end

-- Checks the last reply the filter sent.
function expect_reply(conn, want, what)
  local got = mt.getreply(conn)
  if got ~= want then
    fail(string.format("%s: reply '%s', expected '%s'", what, string.char(math.floor(got)),
      string.char(math.floor(want))), 2)
  end
end

-- Connects to the filter under test.
function open()
  local conn = mt.connect(socket, 20, 0.1)
  check(conn ~= nil, "mt.connect(" .. socket .. ") failed")
  return conn
end

-- Sends one envelope: macros, MAIL and RCPTs, each answered with continue.
function envelope(conn, queue_id, recipients)
  ok(mt.macro(conn, SMFIC_MAIL, "i", queue_id, "{auth_type}", "PLAIN"), "mt.macro(MAIL)")
  ok(mt.mailfrom(conn, "<sender@example.org>", "SIZE=100"), "mt.mailfrom()")
  expect_reply(conn, SMFIR_CONTINUE, "MAIL")
  for _, rcpt in ipairs(recipients) do
    ok(mt.rcptto(conn, rcpt), "mt.rcptto()")
    expect_reply(conn, SMFIR_CONTINUE, "RCPT")
  end
end
