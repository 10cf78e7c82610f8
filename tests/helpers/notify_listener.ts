/**
 * A stand-in for systemd's notification socket (there is no systemd PID 1 here): a unix
 * datagram socket, at a path or an abstract name, that records every sd_notify(3) message with
 * the time it arrived and the sender's address (dkimd binds `\0dkimd-notify-PID-...`, so the
 * sender's process id can be read from it).
 *
 * @module
 */

/** One received message. */
export interface NotifyMessage {
  /** The `NAME=value` fields. */
  readonly fields: Readonly<Record<string, string>>;
  /** `performance.now()` when it arrived. */
  readonly at: number;
  /** The process id in the sender's address, or 0. */
  readonly pid: number;
}

/** A listening stand-in. */
export interface NotifyListener {
  /** The value to give as NOTIFY_SOCKET (a path, or `@name`). */
  readonly notifySocket: string;
  /** Everything received so far. */
  readonly messages: readonly NotifyMessage[];
  /** Waits (bounded) for the first message after index `from` that `match` accepts. */
  next(
    match: (m: NotifyMessage) => boolean,
    from?: number,
    timeoutMs?: number,
  ): Promise<NotifyMessage>;
  /** Stops listening. */
  close(): void;
}

/** Parses an sd_notify datagram into its fields. */
export function parseNotifyMessage(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/** Listens at `dir/notify`, or at an abstract name when `abstract` is true. */
export function listenNotify(dir: string, options: { abstract?: boolean } = {}): NotifyListener {
  const name = `dkimd-test-notify-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const path = options.abstract ? `\0${name}` : `${dir}/notify`;
  const socket = Deno.listenDatagram({ transport: "unixpacket", path });
  const messages: NotifyMessage[] = [];
  const waiters: (() => void)[] = [];
  let closed = false;
  (async () => {
    try {
      for (;;) {
        const [data, addr] = await socket.receive();
        const sender = (addr as Deno.UnixAddr).path ?? "";
        const pid = Number(/dkimd-notify-(\d+)-/.exec(sender)?.[1] ?? 0);
        messages.push({
          fields: parseNotifyMessage(new TextDecoder().decode(data)),
          at: performance.now(),
          pid,
        });
        for (const w of waiters.splice(0)) w();
      }
    } catch (e) {
      if (!closed) throw e;
    }
  })();
  return {
    notifySocket: options.abstract ? `@${name}` : path,
    messages,
    async next(match, from = 0, timeoutMs = 20_000) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const hit = messages.slice(from).find(match);
        if (hit) return hit;
        const left = deadline - performance.now();
        if (left <= 0) {
          throw new Error(
            `No matching sd_notify message within ${timeoutMs} ms; got:\n${
              messages.map((m) => JSON.stringify(m.fields)).join("\n")
            }`,
          );
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 100));
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    close() {
      closed = true;
      socket.close();
    },
  };
}
