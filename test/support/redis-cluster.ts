import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, type ClusterOptions } from 'ioredis';
import { freePort } from './redis-server.js';

const run = promisify(execFile);

/** One `redis-server --cluster-enabled yes` of a {@link RedisCluster}. */
export interface ClusterNode {
  readonly port: number;
  /** SIGKILL, as a crash would; resolves once the process is gone. */
  kill(): Promise<void>;
  /** `true` until the process exits. */
  readonly alive: boolean;
  /** Freezes the process (SIGSTOP): connections stay open, nothing answers. */
  freeze(): void;
  /** Thaws a frozen node (SIGCONT). */
  thaw(): void;
  /**
   * Starts a killed node again on its port with its cluster config: it rejoins, as a replica
   * of whichever node took its slots over.
   */
  restart(): Promise<void>;
}

/** A Redis Cluster this test process started on loopback and controls. */
export interface RedisCluster {
  /** Every node, masters first as `redis-cli --cluster create` was given them. */
  readonly nodes: readonly ClusterNode[];
  /** `[{ host, port }]` of every node, the seed list of an ioredis `Cluster`. */
  readonly seeds: readonly { host: string; port: number }[];
  /** Sends one command to one node with `redis-cli`; resolves with its raw output. */
  cli(port: number, ...args: string[]): Promise<string>;
  /** The port of the master serving `key`'s slot now. */
  masterOf(key: string): Promise<number>;
  /** The ports of the replicas of the master on `port`, as it reports them. */
  replicasOf(port: number): Promise<number[]>;
  /** Resolves once every live replica's link to its master is up. */
  waitReplicasInSync(timeoutMs?: number): Promise<void>;
  /** Resolves once every node that is alive reports `cluster_state:ok`. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Stops every node and removes their directories. */
  stop(): Promise<void>;
}

/** Options of {@link startRedisCluster}. */
export interface RedisClusterOptions {
  /** Masters (each gets `replicasPerMaster` replicas): 1 (without replicas), or 3 or more. @default 3 */
  readonly masters?: number;
  /** @default 1 */
  readonly replicasPerMaster?: number;
  /**
   * `cluster-node-timeout`, in milliseconds: how long a silent master takes to be failed over.
   * Short, so that a failover test takes seconds.
   * @default 1_000
   */
  readonly nodeTimeoutMs?: number;
}

/** `true` when nothing listens on `port` on loopback now. */
function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function waitFor(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`Redis Cluster: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts a Redis Cluster on loopback: `masters` × (1 + `replicasPerMaster`) `redis-server`s
 * (1 master without replicas, or at least 3 masters, as `redis-cli --cluster create` wants)
 * with `--cluster-enabled yes` on free ports, each in a temporary directory with no
 * persistence, joined by `redis-cli --cluster create … --cluster-yes`. Resolves once every
 * node reports `cluster_state:ok` and every replica is in sync (about 1–2 s for 6 nodes).
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicasPerMaster ?? 1;
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 1_000;
  const count = masters * (1 + replicas);
  const dir = mkdtempSync(join(tmpdir(), 'retrykit-cluster-'));
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await freePort();
    // The cluster bus listens on port + 10000: both must be free and below 65536.
    if (port > 55_000 || ports.includes(port) || !(await isFree(port + 10_000))) continue;
    ports.push(port);
  }
  const children = new Map<number, ChildProcess>();
  const cli = async (port: number, ...args: string[]): Promise<string> =>
    (await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args])).stdout;

  const launch = (port: number): ChildProcess => {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        // A lone node knows no address of its own until another node meets it.
        '--cluster-announce-ip',
        '127.0.0.1',
        '--cluster-node-timeout',
        String(nodeTimeoutMs),
        // A replica may fail over however long it was away from its master; tests kill masters.
        '--cluster-replica-validity-factor',
        '0',
        '--dir',
        dir,
        '--dbfilename',
        `dump-${port}.rdb`,
        '--save',
        '',
        '--appendonly',
        'no',
        // Full sync to a replica over the socket: no RDB file on disk.
        '--repl-diskless-sync',
        'yes',
        '--repl-diskless-sync-delay',
        '0',
        '--daemonize',
        'no',
      ],
      { stdio: 'ignore' },
    );
    children.set(port, child);
    return child;
  };

  const stop = async (): Promise<void> => {
    await Promise.all(
      [...children.values()].map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGKILL');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    for (const port of ports) launch(port);
    await Promise.all(
      ports.map((port) =>
        waitFor(`node ${port}`, 10_000, async () => {
          const child = children.get(port)!;
          if (child.exitCode !== null) throw new Error(`redis-server on ${port} exited`);
          return (await cli(port, 'PING')).startsWith('PONG');
        }),
      ),
    );
    if (masters === 1 && replicas === 0) {
      // `redis-cli --cluster create` wants 3 masters at least: one node takes every slot itself.
      await cli(ports[0]!, 'CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    } else
      await run('redis-cli', [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ]);
  } catch (error) {
    await stop();
    throw error;
  }

  /** `[from, to, master port]` of each slot range, as `port` sees it. */
  const slotsOf = async (port: number): Promise<[number, number, number][]> => {
    const out = (await cli(port, '--json', 'CLUSTER', 'SLOTS')).trim();
    const ranges = JSON.parse(out) as [number, number, [string, number, string]][];
    return ranges.map(([from, to, [, master]]) => [from, to, master]);
  };

  const isAlive = (port: number): boolean => {
    const c = children.get(port)!;
    return c.exitCode === null && c.signalCode === null;
  };

  const waitHealthy = async (timeoutMs = 15_000): Promise<void> => {
    const live = ports.filter(isAlive);
    await waitFor('cluster_state:ok', timeoutMs, async () => {
      for (const port of live) {
        if (!(await cli(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
      }
      // Every slot served by a master that is alive, as every live node sees it.
      for (const port of live) {
        for (const [, , master] of await slotsOf(port)) if (!live.includes(master)) return false;
      }
      return true;
    });
  };

  const waitReplicasInSync = (timeoutMs = 15_000): Promise<void> =>
    waitFor('replicas in sync', timeoutMs, async () => {
      for (const port of ports.filter(isAlive)) {
        const info = await cli(port, 'INFO', 'replication');
        if (info.includes('role:slave') && !info.includes('master_link_status:up')) return false;
      }
      return true;
    });

  try {
    await waitHealthy();
    // Replicas in sync, so a kill right away finds a replica that can take over.
    await waitReplicasInSync();
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    nodes: ports.map((port) => ({
      port,
      get alive() {
        return isAlive(port);
      },
      freeze: () => children.get(port)?.kill('SIGSTOP'),
      thaw: () => children.get(port)?.kill('SIGCONT'),
      restart: async () => {
        if (isAlive(port)) throw new Error(`node ${port} is still running`);
        const child = launch(port);
        await waitFor(`node ${port} back`, 10_000, async () => {
          if (child.exitCode !== null) throw new Error(`redis-server on ${port} exited`);
          return (await cli(port, 'PING')).startsWith('PONG');
        });
      },
      kill: () =>
        new Promise<void>((resolve) => {
          const c = children.get(port)!;
          if (!isAlive(port)) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGKILL');
        }),
    })),
    seeds: ports.map((port) => ({ host: '127.0.0.1', port })),
    cli,
    masterOf: async (key) => {
      const live = ports.find(isAlive)!;
      const slot = Number((await cli(live, 'CLUSTER', 'KEYSLOT', key)).trim());
      for (const [from, to, port] of await slotsOf(live))
        if (slot >= from && slot <= to) return port;
      throw new Error(`no master serves slot ${slot}`);
    },
    replicasOf: async (port) => {
      const info = await cli(port, 'INFO', 'replication');
      return [...info.matchAll(/^slave\d+:.*?port=(\d+)/gm)].map((m) => Number(m[1]));
    },
    waitHealthy,
    waitReplicasInSync,
    stop,
  };
}

const clients: Cluster[] = [];

/** The per-node options {@link connectCluster} passes on to each node's connection. */
export interface ClusterConnectOptions {
  /** @default 1 */
  readonly maxRetriesPerRequest?: number | null;
  /** Milliseconds before a command fails (ioredis `commandTimeout`). */
  readonly commandTimeout?: number;
}

/**
 * An ioredis `Cluster` on `cluster`, closed by {@link closeClusterClients}. Fails fast while a
 * slot has no master (`CLUSTERDOWN`, a refused connection) instead of queueing for ever.
 */
export function connectCluster(
  cluster: RedisCluster,
  options: Omit<ClusterOptions, 'redisOptions'> & ClusterConnectOptions = {},
): Cluster {
  const { maxRetriesPerRequest = 1, commandTimeout, ...rest } = options;
  const client = new Cluster([...cluster.seeds], {
    scaleReads: 'master',
    retryDelayOnClusterDown: 100,
    retryDelayOnFailover: 100,
    retryDelayOnTryAgain: 100,
    ...rest,
    redisOptions:
      commandTimeout === undefined
        ? { maxRetriesPerRequest }
        : { maxRetriesPerRequest, commandTimeout },
  });
  clients.push(client);
  return client;
}

/** Closes every client {@link connectCluster} opened. */
export function closeClusterClients(): void {
  // disconnect, not quit: a test may leave a node frozen, and QUIT to it would never answer.
  for (const c of clients.splice(0)) c.disconnect();
}
