/**
 * A Dovecot authentication server for tests, so a real Postfix can authenticate SMTP clients
 * (`smtpd_sasl_type = dovecot`, `smtpd_sasl_path = inet:127.0.0.1:PORT`) without Dovecot: the
 * server side of Dovecot's authentication protocol 1.x as Postfix's xsasl_dovecot_server speaks
 * it (handshake `VERSION`, `MECH`, `DONE`; then `AUTH id PLAIN ... resp=BASE64` answered `OK id
 * user=NAME` or `FAIL id`, with `CONT` when the client sent no initial response), PLAIN only,
 * from a table of logins and passwords. Postfix then passes the login to milters as
 * `{auth_authen}`.
 *
 * @module
 */

/** A running authentication server. */
export interface DovecotAuth {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** The logins it let in, in order. */
  readonly logins: readonly string[];
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/** Longest line read from a client: Postfix's requests are a few hundred bytes. */
const MAX_LINE_BYTES = 8192;

/** Starts a server that accepts PLAIN with the passwords of `users` (login → password). */
export function startDovecotAuth(users: Readonly<Record<string, string>>): DovecotAuth {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const logins: string[] = [];
  const connections = new Set<Deno.Conn>();
  const encoder = new TextEncoder();

  // The answer to one PLAIN response (authzid NUL authcid NUL password, base64).
  const answer = (id: string, base64: string): string => {
    let fields: string[] = [];
    try {
      fields = atob(base64).split("\0");
    } catch {
      return `FAIL\t${id}\treason=bad base64\n`;
    }
    const [, login, password] = fields;
    if (fields.length !== 3 || users[login] === undefined || users[login] !== password) {
      return `FAIL\t${id}\treason=Authentication failed\n`;
    }
    logins.push(login);
    return `OK\t${id}\tuser=${login}\n`;
  };

  const serveConnection = async (conn: Deno.Conn) => {
    connections.add(conn);
    const send = (text: string) => conn.write(encoder.encode(text));
    try {
      await send("VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nSPID\t1\nCUID\t1\nDONE\n");
      const decoder = new TextDecoder();
      let pending = "";
      for await (const chunk of conn.readable) {
        pending += decoder.decode(chunk, { stream: true });
        if (pending.length > MAX_LINE_BYTES && !pending.includes("\n")) break;
        let nl: number;
        while ((nl = pending.indexOf("\n")) >= 0) {
          const [command, id, ...args] = pending.slice(0, nl).split("\t");
          pending = pending.slice(nl + 1);
          if (command === "AUTH") {
            const resp = args.find((a) => a.startsWith("resp="));
            await send(resp ? answer(id, resp.slice(5)) : `CONT\t${id}\t\n`);
          } else if (command === "CONT") {
            await send(answer(id, args[0] ?? ""));
          }
          // VERSION and CPID need no answer.
        }
      }
    } catch {
      // A connection closed by either side ends here.
    } finally {
      connections.delete(conn);
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  };

  const accepting = (async () => {
    try {
      for await (const conn of listener) serveConnection(conn);
    } catch {
      // The listener was closed.
    }
  })();

  return {
    port: (listener.addr as Deno.NetAddr).port,
    logins,
    async close() {
      listener.close();
      for (const conn of connections) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
      await accepting;
    },
  };
}
