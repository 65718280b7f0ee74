/**
 * The soak's processes: its own `redis-server` (append-only file on), a fault proxy between
 * the children and Redis, the fake Cloud API (in this process, so its log is at hand), the
 * webhook receiver process and N worker processes, each of which can be SIGKILLed and
 * started again.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type CloudRequest,
  type FakeWhatsApp,
  startFakeWhatsApp,
  type WebhookPost,
} from '../../examples/support/fake-whatsapp.js';
import { freePort, type RedisServer, startRedisServer } from '../support/redis-server.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import type { ChildMessage, SoakProcessConfig, WorkerCounters } from './config.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** A child process the soak can kill and start again. */
export interface ChildHandle {
  readonly name: string;
  /** The running process's pid, or `undefined` while it is down. */
  readonly pid: number | undefined;
  /** Starts it and resolves once it says it is ready. */
  start(): Promise<void>;
  /** SIGKILL, as a crash would; resolves once it exited. */
  kill(): Promise<void>;
  /** SIGTERM (SIGKILL after `graceMs`); resolves once it exited. */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** A tsx child running `tools/soak/<script>`, its output appended to `logFile`. */
export function childProcess(
  name: string,
  script: string,
  args: readonly string[],
  config: SoakProcessConfig,
  logFile: string,
  onMessage: (message: ChildMessage) => void = () => {},
): ChildHandle {
  let child: ChildProcess | undefined;
  return {
    name,
    get pid() {
      return child?.exitCode === null && child.signalCode === null ? child.pid : undefined;
    },
    start: () =>
      new Promise<void>((resolve, reject) => {
        const log = openSync(logFile, 'a');
        const c = spawn(
          process.execPath,
          [
            '--import',
            'tsx',
            '--import',
            './tools/lua-loader.mjs',
            `tools/soak/${script}`,
            ...args,
          ],
          {
            cwd: root,
            env: { ...process.env, SOAK_CONFIG: JSON.stringify(config) },
            stdio: ['ignore', log, log, 'ipc'],
          },
        );
        closeSync(log);
        child = c;
        running.add(c);
        const timer = setTimeout(() => reject(new Error(`${name} did not start in 60 s`)), 60_000);
        c.on('message', (message: ChildMessage) => {
          if (message.type === 'ready') {
            clearTimeout(timer);
            resolve();
          }
          onMessage(message);
        });
        c.once('exit', (code, signal) => {
          running.delete(c);
          clearTimeout(timer);
          reject(new Error(`${name} exited before it was ready (${signal ?? code})`));
        });
      }),
    kill: async () => {
      const c = child;
      if (c === undefined) return;
      c.kill('SIGKILL');
      await exited(c);
    },
    stop: async (graceMs = 10_000) => {
      const c = child;
      if (c === undefined) return;
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), graceMs);
      await exited(c);
      clearTimeout(timer);
    },
  };
}

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  readonly dir: string;
  readonly workers: number;
  readonly concurrency: number;
  readonly phoneNumbers: readonly string[];
  readonly perNumberLimit: number;
  readonly pair: { readonly capacity: number; readonly refillPerSecond: number };
  readonly seed: number;
  /** Recipients whose accepted messages later fail, and with which code (chaos decides). */
  readonly failAfterAccept: (to: string) => number | undefined;
  /** Recipients that always get 131026 when sent to. */
  readonly undeliverable: (to: string) => boolean;
  readonly onRequest: (request: CloudRequest) => void;
  /** What happens to the answer of an accepted message (chaos decides). */
  readonly acceptThen: (to: string) => 'drop' | 'hang' | undefined;
  /** Extra delay of an accepted message's statuses (chaos decides). */
  readonly statusDelayMs: (to: string) => number;
  /** Whether an accepted message's statuses are lost (chaos decides). */
  readonly dropStatuses: (to: string) => boolean;
  readonly onWebhook: (post: WebhookPost) => void;
}

/** Everything one soak run starts. */
export interface Cluster {
  readonly redis: RedisServer;
  readonly proxy: TcpProxy;
  readonly fake: FakeWhatsApp;
  readonly receiver: ChildHandle;
  readonly workers: readonly ChildHandle[];
  readonly config: SoakProcessConfig;
  /** Each worker incarnation's latest counters, by `<slot>/<pid>`. */
  readonly counters: ReadonlyMap<string, WorkerCounters>;
  close(): Promise<void>;
}

/** Starts Redis, the proxy, the fake API, the receiver and the workers. */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const logs = join(options.dir, 'logs');
  const fallbackDir = join(options.dir, 'fallback');
  const aof = join(options.dir, 'redis');
  const eventsDir = join(options.dir, 'events');
  for (const d of [logs, fallbackDir, aof, eventsDir]) mkdirSync(d, { recursive: true });
  const redis = await startRedisServer({ appendonly: true, dir: aof });
  // An interrupted soak (Ctrl-C) must not leave its redis-server behind.
  const killRedis = (): void => {
    if (redis.pid !== undefined) process.kill(redis.pid, 'SIGKILL');
  };
  process.on('exit', killRedis);
  const proxy = await startTcpProxy(redis.port);
  const receiverPort = await freePort();
  const fake = await startFakeWhatsApp({
    webhookUrl: `http://127.0.0.1:${receiverPort}/webhook`,
    rateLimitPerSecond: options.perNumberLimit,
    seed: options.seed,
    failAfterAccept: options.failAfterAccept,
    undeliverable: options.undeliverable,
    duplicateShare: 0.05,
    reorderShare: 0.1,
    // Meta redelivers for a week; here for as long as a receiver restart can take.
    webhookAttempts: 60,
    maxWebhookRetryDelayMs: 2_000,
    onRequest: options.onRequest,
    acceptThen: options.acceptThen,
    statusDelayMs: options.statusDelayMs,
    dropStatuses: options.dropStatuses,
    onWebhook: options.onWebhook,
  });
  const config: SoakProcessConfig = {
    redisUrl: proxy.url,
    apiUrl: fake.url,
    accessToken: fake.accessToken,
    appSecret: fake.appSecret,
    phoneNumbers: options.phoneNumbers,
    perNumberLimit: options.perNumberLimit,
    pair: options.pair,
    fallbackDir,
    concurrency: options.concurrency,
    eventsDir,
  };
  const counters = new Map<string, WorkerCounters>();
  const receiver = childProcess(
    'receiver',
    'receiver.ts',
    [String(receiverPort)],
    config,
    join(logs, 'receiver.log'),
  );
  const workers = Array.from({ length: options.workers }, (_, i) => {
    const slot = `worker-${i + 1}`;
    const handle: ChildHandle = childProcess(
      slot,
      'worker.ts',
      [slot],
      config,
      join(logs, `${slot}.log`),
      (message) => {
        if (message.type === 'metrics') counters.set(`${slot}/${handle.pid}`, message.snapshot);
      },
    );
    return handle;
  });
  await Promise.all([receiver.start(), ...workers.map((w) => w.start())]);
  return {
    redis,
    proxy,
    fake,
    receiver,
    workers,
    config,
    counters,
    close: async () => {
      await Promise.all([...workers, receiver].map((c) => c.stop()));
      await fake.close();
      await proxy.close();
      await redis.stop();
      process.off('exit', killRedis);
    },
  };
}
