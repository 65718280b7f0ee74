import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A `redis-server` this test process started and controls. */
export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** The running server's pid, `undefined` while it is down. */
  readonly pid: number | undefined;
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Kills the server (SIGKILL), as a crash would. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: nothing is persisted). */
  start(): Promise<void>;
  /** Freezes the process (SIGSTOP): connections stay open, nothing answers. */
  freeze(): void;
  /** Thaws a frozen server (SIGCONT). */
  thaw(): void;
  /**
   * `CLIENT PAUSE ms mode`: the server holds every client's commands (or only writes) for `ms`
   * milliseconds, then runs them. Resolves once the pause is in force.
   */
  pause(ms: number, mode?: 'ALL' | 'WRITE'): Promise<void>;
  /** Sends one command to the server over a connection of its own; resolves with the raw reply. */
  command(...args: string[]): Promise<string>;
}

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /**
   * Persist with an append-only file (`appendonly yes`, `appendfsync always`) in a temporary
   * directory, so that a restart after SIGKILL reloads what was written.
   * @default false
   */
  readonly appendonly?: boolean;
  /** Where the append-only file goes. @default a fresh temporary directory */
  readonly dir?: string;
}

/** `true` when a `redis-server` binary is on the PATH. */
export function hasRedisServer(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Sends one RESP command on a fresh connection and resolves with the first reply chunk. */
function sendCommand(port: number, args: readonly string[]): Promise<string> {
  const frame = `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => socket.write(frame));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString());
    });
    socket.once('error', reject);
  });
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.write('PING\r\n');
        socket.once('data', (data) => {
          socket.destroy();
          resolve(data.toString().startsWith('+PONG'));
        });
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not come up on port ${port}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Starts a throwaway `redis-server` on a free port, with no persistence unless asked. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = await freePort();
  const persistence = options.appendonly
    ? [
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--dir',
        options.dir ?? mkdtempSync(join(tmpdir(), 'retrykit-redis-')),
      ]
    : ['--appendonly', 'no'];
  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        ...persistence,
        '--daemonize',
        'no',
      ],
      { stdio: 'ignore' },
    );
    await waitForPort(port, child);
  };
  const exit = (signal: NodeJS.Signals): Promise<void> =>
    new Promise((resolve) => {
      const c = child;
      if (c === undefined || c.exitCode !== null || c.signalCode !== null) return resolve();
      c.once('exit', () => resolve());
      if (signal === 'SIGTERM') c.kill('SIGCONT');
      c.kill(signal);
    });
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return child?.exitCode === null && child.signalCode === null ? child.pid : undefined;
    },
    stop: () => exit('SIGTERM'),
    kill: () => exit('SIGKILL'),
    start: launch,
    freeze: () => child?.kill('SIGSTOP'),
    thaw: () => child?.kill('SIGCONT'),
    pause: async (ms, mode = 'ALL') => {
      const reply = await sendCommand(port, ['CLIENT', 'PAUSE', String(ms), mode]);
      if (!reply.startsWith('+OK')) throw new Error(`CLIENT PAUSE failed: ${reply}`);
    },
    command: (...args) => sendCommand(port, args),
  };
}
