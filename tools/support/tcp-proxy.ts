import { createServer, type Server, Socket } from 'node:net';

/**
 * A loopback TCP proxy between a client and a server (e.g. ioredis and `redis-server`) that
 * misbehaves on demand: holds replies back, drops them, or cuts every connection. Requests
 * always pass through, so the server executes what it receives even when the reply is lost.
 */
export interface TcpProxy {
  /** The proxy's port on 127.0.0.1. */
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** Holds every reply chunk for `ms` milliseconds before passing it on (0 passes at once). */
  delayReplies(ms: number): void;
  /**
   * Drops the next `count` reply chunks from the server (a chunk is one reply when the client
   * has one command in flight). The request already ran on the server.
   */
  dropReplies(count?: number): void;
  /**
   * Loses the next `count` reply chunks the way a network does: each one is dropped and its
   * connection cut at once, so the client sees a closed connection, never a reply stream out
   * of step with its commands (which `dropReplies` gives with several commands in flight).
   */
  loseReplies(count?: number): void;
  /** Resolves once every reply that `dropReplies` asked for has been dropped. */
  dropped(): Promise<void>;
  /** Destroys every open connection, both sides, as a network cut would. */
  cut(): void;
  /** While `true`, new connections are accepted and closed at once (the server looks down). */
  refuse(on: boolean): void;
  /** How many connections the proxy has accepted so far. */
  readonly connections: number;
  /** Cuts every connection and stops listening. */
  close(): Promise<void>;
}

/** Starts a proxy on a free loopback port in front of `127.0.0.1:targetPort`. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const open = new Set<Socket>();
  let delayMs = 0;
  let toDrop = 0;
  let toLose = 0;
  let refusing = false;
  let accepted = 0;
  let waiters: (() => void)[] = [];

  const settleDrops = (): void => {
    if (toDrop > 0) return;
    const ready = waiters;
    waiters = [];
    for (const resolve of ready) resolve();
  };

  const server: Server = createServer((client) => {
    accepted++;
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = new Socket();
    open.add(client);
    open.add(upstream);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    upstream.connect(targetPort, '127.0.0.1');
    client.on('data', (chunk) => {
      if (upstream.connecting || upstream.writable) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (toLose > 0) {
        toLose--;
        end();
        return;
      }
      if (toDrop > 0) {
        toDrop--;
        settleDrops();
        return;
      }
      const pass = (): void => {
        if (!client.destroyed) client.write(chunk);
      };
      if (delayMs > 0) setTimeout(pass, delayMs);
      else pass();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;

  const cut = (): void => {
    for (const socket of open) socket.destroy();
    open.clear();
  };

  const proxy: TcpProxy = {
    port,
    url: `redis://127.0.0.1:${port}`,
    delayReplies: (ms) => {
      delayMs = ms;
    },
    dropReplies: (count = 1) => {
      toDrop += count;
    },
    loseReplies: (count = 1) => {
      toLose += count;
    },
    dropped: () =>
      toDrop === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve)),
    cut,
    refuse: (on) => {
      refusing = on;
    },
    get connections() {
      return accepted;
    },
    close: () =>
      new Promise<void>((resolve) => {
        cut();
        server.close(() => resolve());
      }),
  };
  return proxy;
}
