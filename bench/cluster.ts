/**
 * The figures of docs/scaling.md and of the failover rows of docs/guarantees.md, measured on
 * real `redis-server` processes this script starts on loopback:
 *
 * - `ops`: Redis commands and Redis-side CPU per send and per webhook status, for each component
 *   (INFO commandstats and INFO cpu of a single server around a known number of calls);
 * - `shards`: one workload on a cluster of 1 master and of 3 masters, client and server CPU per
 *   call measured separately, and the capacity model's prediction of the ratio;
 * - `wait`: the cost of `waitForReplicas` (a claim and a completion, with and without WAIT);
 * - `failover`: SIGKILL a master under load, count the acknowledged claims the promoted replica
 *   does not have.
 *
 * `npm run bench:cluster [-- ops shards wait failover]` (all by default). Prints Markdown.
 */
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Cluster, Redis } from 'ioredis';
import { startFakeWhatsApp } from '../examples/support/fake-whatsapp.js';
import {
  createCircuitBreaker,
  type IdempotencyStore,
  type RateLimiter,
  StoreUnavailableError,
} from '../src/index.js';
import type { RedisClientLike } from '../src/redis/client.js';
import {
  createRedisCircuitStore,
  createRedisDeliveryStore,
  createRedisIdempotencyStore,
  createRedisTokenBucket,
} from '../src/redis/index.js';
import { keySlot } from '../src/redis/replicas.js';
import type { WhatsAppDeliveryStore } from '../src/whatsapp/index.js';
import {
  closeClusterClients,
  connectCluster,
  type RedisCluster,
  startRedisCluster,
} from '../test/support/redis-cluster.js';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const wanted = (name: string): boolean => args.length === 0 || args.includes(name);
const out = (line = ''): void => {
  console.log(line);
};

/** Per-command calls and microseconds, from INFO commandstats. */
type CommandStats = Map<string, { calls: number; usec: number }>;

async function commandStats(node: Redis): Promise<CommandStats> {
  const info = await node.info('commandstats');
  const stats: CommandStats = new Map();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    stats.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return stats;
}

/** The server's CPU time (user + sys) so far, in microseconds, from INFO cpu. */
async function serverCpuUs(node: Redis): Promise<number> {
  const info = await node.info('cpu');
  const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1]);
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1]);
  return (user + sys) * 1e6;
}

/** What `fn` cost on `nodes`: commands by name, their execution µs, and server CPU µs. */
async function costOf(
  nodes: readonly Redis[],
  fn: () => Promise<void>,
): Promise<{ commands: CommandStats; cpuUs: number; clientCpuUs: number; ms: number }> {
  await Promise.all(nodes.map((n) => n.config('RESETSTAT')));
  const cpuBefore = await Promise.all(nodes.map(serverCpuUs));
  const client = process.cpuUsage();
  const start = performance.now();
  await fn();
  const ms = performance.now() - start;
  const clientUsage = process.cpuUsage(client);
  const cpuAfter = await Promise.all(nodes.map(serverCpuUs));
  const commands: CommandStats = new Map();
  for (const node of nodes) {
    for (const [name, s] of await commandStats(node)) {
      if (name === 'info' || name === 'config' || name.startsWith('cluster')) continue;
      const prev = commands.get(name) ?? { calls: 0, usec: 0 };
      commands.set(name, { calls: prev.calls + s.calls, usec: prev.usec + s.usec });
    }
  }
  return {
    commands,
    cpuUs: cpuAfter.reduce((sum, v, i) => sum + v - cpuBefore[i]!, 0),
    clientCpuUs: clientUsage.user + clientUsage.system,
    ms,
  };
}

/** Runs `call(i)` for i in [0, total) with `concurrency` calls in flight. */
async function drive(
  total: number,
  concurrency: number,
  call: (i: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await call(next++);
    }),
  );
}

const f1 = (n: number): string => n.toFixed(1);
const k = (n: number): string => `${(n / 1000).toFixed(1)} k`;

// ---- ops: commands per component call --------------------------------------------------------

/** A client that counts the round trips (commands the adapters send) going through it. */
function counting(client: RedisClientLike): { client: RedisClientLike; trips: () => number } {
  let trips = 0;
  return {
    client: {
      evalsha: (...a) => {
        trips++;
        return client.evalsha(...a);
      },
      eval: (...a) => {
        trips++;
        return client.eval(...a);
      },
      set: (...a) => {
        trips++;
        return client.set!(...a);
      },
    },
    trips: () => trips,
  };
}

/**
 * Redis execution µs of the commands clients sent: EVALSHA and EVAL (their inner commands are
 * counted inside them, and again under their own names), and the SETs sent on their own.
 */
function executionUs(commands: CommandStats, topLevelSets: number): number {
  const us = (name: string) => commands.get(name)?.usec ?? 0;
  const set = commands.get('set');
  const perSet = set === undefined || set.calls === 0 ? 0 : set.usec / set.calls;
  return us('evalsha') + us('eval') + topLevelSets * perSet;
}

interface OpCost {
  readonly name: string;
  /** Round trips per call. */
  readonly trips: number;
  readonly execUs: number;
  readonly cpuUs: number;
  readonly clientUs: number;
}

function opRow(r: OpCost): string {
  return `| ${r.name} | ${r.trips.toFixed(2).replace(/\.?0+$/, '')} | ${f1(r.execUs)} | ${f1(r.cpuUs)} | ${f1(r.clientUs)} |`;
}

async function opsSection(): Promise<void> {
  const cluster = await startRedisCluster({ masters: 1, replicasPerMaster: 0 });
  const fake = await startFakeWhatsApp({ appSecret: 'bench-secret', rateLimitPerSecond: 1e9 });
  try {
    const raw = connectCluster(cluster, { enableAutoPipelining: true });
    await raw.ping();
    const nodes = raw.nodes('master');
    const counter = counting(raw);
    const client = counter.client;
    const N = 5_000;
    const prefix = `bench:${process.pid}`;
    const limiter = createRedisTokenBucket(client, {
      prefix: `${prefix}:rate`,
      capacity: 1e9,
      refillPerSecond: 1e9,
    });
    const adaptive = createRedisTokenBucket(client, {
      prefix: `${prefix}:arate`,
      capacity: 1e9,
      refillPerSecond: 1e9,
      adaptive: true,
    });
    const store = createRedisIdempotencyStore(client, { prefix: `${prefix}:idem` });
    const breaker = createCircuitBreaker({
      store: createRedisCircuitStore(client, { prefix: `${prefix}:circuit` }),
    });
    const deliveries: WhatsAppDeliveryStore = createRedisDeliveryStore(client, {
      prefix: `${prefix}:deliveries`,
    });
    const tokens = new Map<number, string>();
    const cases: [string, (i: number) => Promise<unknown>][] = [
      ['limiter `tryAcquire` (granted)', (i) => limiter.tryAcquire(`n${i % 1000}`)],
      ['limiter `tryAcquire`, adaptive', (i) => adaptive.tryAcquire(`n${i % 1000}`)],
      [
        'idempotency `claim` (new key)',
        async (i) => {
          const c = await store.claim(`c${i}`, { leaseMs: 30_000 });
          if (c.status === 'claimed') tokens.set(i, c.token);
        },
      ],
      ['idempotency `claim` (key taken)', (i) => store.claim(`c${i}`, { leaseMs: 30_000 })],
      [
        'idempotency `complete`',
        (i) =>
          store.complete(`c${i}`, tokens.get(i)!, { wamid: `w${i}` }, { resultTtlMs: 86_400_000 }),
      ],
      ['idempotency `markOnce`', (i) => store.markOnce(`m${i}`, 60_000)],
      ['breaker `execute` (closed)', (i) => breaker.execute(`n${i % 1000}`, () => 'ok')],
      ['delivery `begin`', (i) => deliveries.begin(`d${i}`, { to: '15550001' })],
      [
        'delivery `recordAttempt` (with wamid)',
        (i) => deliveries.recordAttempt(`d${i}`, { attemptId: 'a', externalId: `w${i}`, at: i }),
      ],
      [
        'delivery `applyStatus`',
        (i) =>
          deliveries.applyStatus(`w${i}`, {
            status: 'delivered',
            rank: 2,
            timestampMs: 1_700_000_000_000,
            errors: [],
          }),
      ],
    ];
    const measureOp = async (
      name: string,
      count: number,
      concurrency: number,
      call: (i: number) => Promise<unknown>,
    ): Promise<OpCost> => {
      const tripsBefore = counter.trips();
      let sets = 0;
      const cost = await costOf(nodes, async () => {
        const setBefore = counter.trips();
        await drive(count, concurrency, call);
        void setBefore;
      });
      const trips = counter.trips() - tripsBefore;
      const scripts =
        (cost.commands.get('evalsha')?.calls ?? 0) + (cost.commands.get('eval')?.calls ?? 0);
      sets = Math.max(0, trips - scripts);
      return {
        name,
        trips: trips / count,
        execUs: executionUs(cost.commands, sets) / count,
        cpuUs: cost.cpuUs / count,
        clientUs: cost.clientCpuUs / count,
      };
    };
    out('### Redis cost of each component call (1 shard, ioredis auto-pipelining, 64 in flight)');
    out();
    out(
      '| call | round trips | Redis execution µs (commandstats) | Redis CPU µs (INFO cpu) | client CPU µs |',
    );
    out('|---|---:|---:|---:|---:|');
    for (const [name, call] of cases) {
      await drive(500, 64, (i) => call(N + i)); // warm-up: scripts loaded
      out(opRow(await measureOp(name, N, 64, call)));
    }

    // A whole send and a whole status webhook, through the WhatsApp layer with every Redis
    // component wired in.
    const { createWhatsAppClient, createWebhookHandler } = await import('../src/whatsapp/index.js');
    const whatsapp = createWhatsAppClient({
      accessToken: fake.accessToken,
      phoneNumberId: '106540352242922',
      baseUrl: fake.url,
      limiter,
      breaker,
      store,
      deliveries,
    });
    const handler = createWebhookHandler({
      appSecret: 'bench-secret',
      store,
      deliveries,
      enqueue: () => {},
    });
    const sends = 2_000;
    const wamids: string[] = [];
    const send = async (i: number) => {
      const r = await whatsapp.sendMessage(
        { to: `4915100${String(i).padStart(5, '0')}`, type: 'text', text: { body: `Order ${i}` } },
        { idempotencyKey: `order-${i}` },
      );
      if (r.status === 'accepted') wamids[i] = r.messageId;
    };
    await drive(200, 16, (i) => send(sends + i));
    out(
      opRow(await measureOp('**a send** (`sendMessage` with an idempotency key)', sends, 16, send)),
    );
    const body = (i: number): string =>
      JSON.stringify({
        object: 'whatsapp_business_account',
        entry: [
          {
            id: 'waba',
            changes: [
              {
                field: 'messages',
                value: {
                  messaging_product: 'whatsapp',
                  metadata: {
                    display_phone_number: '15550001',
                    phone_number_id: '106540352242922',
                  },
                  statuses: [
                    {
                      id: wamids[i],
                      status: 'delivered',
                      timestamp: String(1_700_000_000 + i),
                      recipient_id: '4915100000',
                    },
                  ],
                },
              },
            ],
          },
        ],
      });
    const { createHmac } = await import('node:crypto');
    const deliver = async (i: number) => {
      const raw = body(i);
      const signature = `sha256=${createHmac('sha256', 'bench-secret').update(raw).digest('hex')}`;
      const r = await handler({ body: raw, headers: { 'x-hub-signature-256': signature } });
      if (r.status !== 200) throw new Error(`webhook answered ${r.status}`);
    };
    out(
      opRow(await measureOp('**a status webhook** (one status per delivery)', sends, 16, deliver)),
    );
    out();
  } finally {
    closeClusterClients();
    await fake.close();
    await cluster.stop();
  }
}

// ---- shards: the same workload on 1 and 3 masters --------------------------------------------

interface Batch {
  readonly masters: number;
  readonly callsPerSecond: number;
  /** Client CPU per call, µs. */
  readonly clientUs: number;
  /** Server CPU per call, all shards together, µs. */
  readonly serverUs: number;
  /** CPU the batch used, client and shards together, in cores. */
  readonly coresUsed: number;
  /** Calls per read the servers processed (INFO stats): the batch a server wakes up to. */
  readonly callsPerRead: number;
}

/**
 * Reads the servers processed (INFO stats `total_reads_processed`) since the last
 * `CONFIG RESETSTAT`, all together.
 */
async function readsProcessed(nodes: readonly Redis[]): Promise<number> {
  let reads = 0;
  for (const node of nodes) {
    reads += Number(/total_reads_processed:(\d+)/.exec(await node.info('stats'))?.[1]);
  }
  return reads;
}

/**
 * The workload on one cluster: a send's limiter check and idempotency claim for 10,000
 * numbers, one client process (Node, one thread) with auto-pipelining. The process opens
 * `sockets` ioredis clients to the cluster; a batch can spread its iterations over the first
 * `spread` of them, round-robin, so that one process handles that many sockets to each shard,
 * each with its share of the calls in flight.
 */
async function shardSetup(masters: number, sockets = 1) {
  const cluster = await startRedisCluster({ masters, replicasPerMaster: 0 });
  const prefix = `bench:${process.pid}:${masters}`;
  const workers: { limiter: RateLimiter; store: IdempotencyStore }[] = [];
  let nodes: Redis[] = [];
  for (let j = 0; j < sockets; j++) {
    const client = connectCluster(cluster, { enableAutoPipelining: true });
    await client.ping();
    if (j === 0) nodes = client.nodes('master');
    workers.push({
      limiter: createRedisTokenBucket(client, {
        prefix: `${prefix}:rate`,
        capacity: 1e9,
        refillPerSecond: 1e9,
      }),
      store: createRedisIdempotencyStore(client, { prefix: `${prefix}:i` }),
    });
  }
  let n = 0;
  const batch = async (iterations: number, inFlight = IN_FLIGHT, spread = 1): Promise<Batch> => {
    const call = async (): Promise<void> => {
      const i = n++;
      const { limiter, store } = workers[i % spread]!;
      await limiter.tryAcquire(`n${i % 10_000}`);
      await store.claim(`m${i}`, { leaseMs: 600_000 });
    };
    const cost = await costOf(nodes, () => drive(iterations, inFlight, call));
    const reads = await readsProcessed(nodes);
    const calls = iterations * 2;
    return {
      callsPerRead: calls / reads,
      masters,
      callsPerSecond: calls / (cost.ms / 1000),
      clientUs: cost.clientCpuUs / calls,
      serverUs: cost.cpuUs / calls,
      coresUsed: (cost.clientCpuUs + cost.cpuUs) / (cost.ms * 1000),
    };
  };
  const shares = async (): Promise<number> => {
    const calls = (await Promise.all(nodes.map(commandStats))).map((st) =>
      [...st.values()].reduce((sum, c) => sum + c.calls, 0),
    );
    return Math.max(...calls) / calls.reduce((a, b) => a + b, 0);
  };
  return { batch, shares, stop: () => cluster.stop() };
}

/**
 * The capacity model: calls per second of one client process and `masters` shards on `cores`
 * cores, from the CPU one call costs the client (`c`) and the server (`s`, all shards together),
 * in µs. The client is one thread, so it can't pass 1/c; a shard is one thread and gets
 * `share` of the calls, so the busiest can't pass 1/(s·share); together they can't use more
 * than the cores: `cores / (c + s)`.
 */
function predict(c: number, s: number, share: number, cores: number): number {
  return Math.min(1e6 / c, 1e6 / (s * share), (cores * 1e6) / (c + s));
}

/** Iterations (two calls each) per batch of the `shards` section. */
const BATCH = 20_000;
/** Iterations in flight in the `shards` section. */
const IN_FLIGHT = 240;
/** Rounds of the `shards` section. */
const ROUNDS = 8;

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

async function shardsSection(): Promise<void> {
  const cores = cpus().length;
  const one = await shardSetup(1, 3);
  const three = await shardSetup(3);
  try {
    // The setups, each a batch: the 3-shard run the model predicts, and the single-shard
    // experiments that isolate what changes from 1 shard to 3.
    const setups: { label: string; run: () => Promise<Batch> }[] = [
      // The baseline: 1 shard, one socket, every call in flight on it.
      { label: `1 shard, ${IN_FLIGHT} in flight, 1 socket`, run: () => one.batch(BATCH) },
      // The client's side of 3 shards: the same calls spread over three sockets, a third of
      // the pipeline on each (what the client does with 3 shards), on the one shard.
      {
        label: `1 shard, ${IN_FLIGHT} in flight over 3 sockets`,
        run: () => one.batch(BATCH, IN_FLIGHT, 3),
      },
      // A shard's side of 3 shards: one socket with a third of the calls in flight, so each
      // wake-up of the server reads the batch one of 3 shards gets.
      {
        label: `1 shard, ${IN_FLIGHT / 3} in flight, 1 socket`,
        run: () => one.batch(BATCH, IN_FLIGHT / 3),
      },
      { label: `3 shards, ${IN_FLIGHT} in flight`, run: () => three.batch(BATCH) },
    ];
    // Warm-up (scripts loaded on every socket), then rounds of one batch per setup back to
    // back, so each round meets the same load from the rest of the machine; the order turns
    // each round. Medians over the rounds.
    for (const s of setups) await s.run();
    const rounds: Batch[][] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const got: Batch[] = [];
      for (let j = 0; j < setups.length; j++) {
        const at = (i + j) % setups.length;
        got[at] = await setups[at]!.run();
      }
      rounds.push(got);
    }
    const share3 = await three.shares();
    const perSetup = setups.map((s, at) => {
      const pick = (f: (b: Batch) => number) => median(rounds.map((r) => f(r[at]!)));
      return {
        label: s.label,
        c: pick((b) => b.clientUs),
        s: pick((b) => b.serverUs),
        t: pick((b) => b.callsPerSecond),
        got: pick((b) => b.coresUsed),
        perCpuSecond: pick((b) => 1e6 / (b.clientUs + b.serverUs)),
        perRead: pick((b) => b.callsPerRead),
      };
    });
    out(
      `### 1 shard and 3 shards, the same workload (${cores} cores shared with other work, load average ${loadavg()[0]!.toFixed(1)})`,
    );
    out();
    out(
      '| setup | calls/s | CPU it got (cores) | calls per CPU-second | client CPU µs/call | Redis CPU µs/call (all shards) | calls per server read |',
    );
    out('|---|---:|---:|---:|---:|---:|---:|');
    for (const r of perSetup) {
      out(
        `| ${r.label} | ${k(r.t)} | ${r.got.toFixed(2)} | ${k(r.perCpuSecond)} | ${f1(r.c)} | ${f1(r.s)} | ${f1(r.perRead)} |`,
      );
    }
    const [base, spread, shallow, actual] = perSetup as [
      (typeof perSetup)[0],
      (typeof perSetup)[0],
      (typeof perSetup)[0],
      (typeof perSetup)[0],
    ];
    // The model: a call on 3 shards costs the client what it costs with three sockets of a
    // third of the pipeline each, and costs Redis what one shard costs at the depth and batch
    // size each of the 3 shards sees. Both CPU-bound on the same cores, throughput goes as
    // 1 / cost.
    const cost1 = base.c + base.s;
    const predicted3 = spread.c + shallow.s;
    const measured3 = actual.c + actual.s;
    const predictedRatio = cost1 / predicted3;
    const measuredRatio = cost1 / measured3;
    const perRound = rounds.map((r) => {
      const c1 = r[0]!.clientUs + r[0]!.serverUs;
      return {
        measured: c1 / (r[3]!.clientUs + r[3]!.serverUs),
        predicted: c1 / (r[1]!.clientUs + r[2]!.serverUs),
      };
    });
    out();
    out(
      `- ${rounds.length} rounds of batches of ${BATCH * 2} calls, medians; the busiest of the 3 shards took ${(share3 * 100).toFixed(0)} % of the calls`,
    );
    out(
      `- predicted 3-shard cost: client ${f1(spread.c)} µs (3 sockets) + Redis ${f1(shallow.s)} µs (${IN_FLIGHT / 3} in flight) = ${f1(predicted3)} µs a call; measured ${f1(actual.c)} + ${f1(actual.s)} = ${f1(measured3)} µs`,
    );
    out(
      `- 3 shards / 1 shard, calls per CPU-second (= throughput when both have the same cores): measured **${measuredRatio.toFixed(2)}**, model **${predictedRatio.toFixed(2)}** (off by ${(((predictedRatio - measuredRatio) / measuredRatio) * 100).toFixed(0)} %)`,
    );
    out(
      `- per round, measured / model: ${perRound.map((p) => `${p.measured.toFixed(2)}/${p.predicted.toFixed(2)}`).join(', ')}`,
    );
    out(
      `- on 2 idle cores (model): 1 shard ${k(predict(base.c, base.s, 1, cores))} calls/s, 3 shards ${k(predict(spread.c, shallow.s, share3, cores))}`,
    );
    out(
      `- calls per second as run: ${(actual.t / base.t).toFixed(2)}, with ${(actual.got / base.got).toFixed(2)}× the CPU: on a machine shared with other work, 4 busy processes get more of it than 2`,
    );
    out();
  } finally {
    closeClusterClients();
    await one.stop();
    await three.stop();
  }
}

// ---- wait: the cost of waitForReplicas -------------------------------------------------------

async function waitSection(): Promise<void> {
  const cluster = await startRedisCluster();
  try {
    const client = connectCluster(cluster, { enableAutoPipelining: true });
    await client.ping();
    out(
      '### `waitForReplicas: { replicas: 1, timeoutMs: 100 }`: claim + complete (3 masters + 3 replicas)',
    );
    out();
    out(
      '| in flight | without WAIT | with WAIT | cost | mean latency without | mean latency with |',
    );
    out('|---:|---:|---:|---:|---:|---:|');
    for (const concurrency of [1, 64]) {
      const total = concurrency === 1 ? 2_000 : 20_000;
      const rate = [0, 0];
      const latency = [0, 0];
      // Warm-up, then without and with WAIT alternately, 3 rounds each: the machine's load
      // swings hit both alike.
      for (let round = -1; round < 3; round++) {
        for (const wait of [0, 1]) {
          const store = createRedisIdempotencyStore(client, {
            prefix: `bench:wait:${concurrency}:${wait}:${round}`,
            ...(wait === 1 ? { waitForReplicas: { replicas: 1, timeoutMs: 100 } } : {}),
          });
          let spent = 0;
          const start = performance.now();
          await drive(total, concurrency, async (i) => {
            const t = performance.now();
            const claim = await store.claim(`o${i}`, { leaseMs: 30_000 });
            if (claim.status !== 'claimed') throw new Error(`unexpected ${claim.status}`);
            await store.complete(`o${i}`, claim.token, i, { resultTtlMs: 60_000 });
            spent += performance.now() - t;
          });
          if (round < 0) continue;
          rate[wait]! += total / ((performance.now() - start) / 1000) / 3;
          latency[wait]! += spent / total / 3;
        }
      }
      out(
        `| ${concurrency} | ${k(rate[0]!)} /s | ${k(rate[1]!)} /s | ${(((rate[0]! - rate[1]!) / rate[0]!) * 100).toFixed(0)} % fewer | ${latency[0]!.toFixed(2)} ms | ${latency[1]!.toFixed(2)} ms |`,
      );
    }
    out();
  } finally {
    closeClusterClients();
    await cluster.stop();
  }
}

// ---- failover: acknowledged claims lost to a SIGKILLed master ---------------------------------

async function failoverTrial(): Promise<{ acked: number; lost: number; electionMs: number }> {
  const cluster: RedisCluster = await startRedisCluster({ nodeTimeoutMs: 1_000 });
  try {
    const client: Cluster = connectCluster(cluster, { enableAutoPipelining: true });
    await client.ping();
    const prefix = `bench:failover:${Math.random().toString(36).slice(2)}`;
    const store = createRedisIdempotencyStore(client, { prefix, commandTimeoutMs: 500 });
    const victim = cluster.nodes[0]!;
    const victimSlots = new Set(
      client.slots.flatMap((n, slot) => (n?.[0] === `127.0.0.1:${victim.port}` ? [slot] : [])),
    );
    const acked: string[] = [];
    let killedAt = 0;
    let firstOk = 0;
    let stop = false;
    let n = 0;
    const worker = async (): Promise<void> => {
      while (!stop) {
        const key = `o${n++}`;
        const sentAt = Date.now();
        try {
          if ((await store.claim(key, { leaseMs: 600_000 })).status !== 'claimed') continue;
          const mine = victimSlots.has(keySlot(`{${prefix}:${key}}`));
          // Acknowledged before the kill: the ones a failover may lose.
          if (mine && (killedAt === 0 || sentAt < killedAt)) acked.push(key);
          if (mine && killedAt !== 0 && sentAt > killedAt && firstOk === 0) firstOk = Date.now();
        } catch (error) {
          if (!(error instanceof StoreUnavailableError)) throw error;
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    };
    const workers = Array.from({ length: 64 }, worker);
    await new Promise((r) => setTimeout(r, 500));
    killedAt = Date.now();
    await victim.kill();
    await cluster.waitHealthy(30_000);
    while (firstOk === 0) await new Promise((r) => setTimeout(r, 20));
    stop = true;
    await Promise.all(workers);
    let lost = 0;
    for (const key of acked) {
      if ((await store.claim(key, { leaseMs: 1_000 })).status === 'claimed') lost++;
    }
    return { acked: acked.length, lost, electionMs: firstOk - killedAt };
  } finally {
    closeClusterClients();
    await cluster.stop();
  }
}

async function failoverSection(): Promise<void> {
  out('### SIGKILL of a master under claim load (64 in flight, `cluster-node-timeout` 1 s)');
  out();
  out(
    '| trial | claims acknowledged by the master before the kill | lost after the failover | kill → first claim on its slots |',
  );
  out('|---:|---:|---:|---:|');
  for (let t = 1; t <= 5; t++) {
    const r = await failoverTrial();
    out(`| ${t} | ${r.acked} | ${r.lost} | ${(r.electionMs / 1000).toFixed(1)} s |`);
  }
  out();
}

out(`Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}.`);
out();
if (wanted('ops')) await opsSection();
if (wanted('shards')) await shardsSection();
if (wanted('wait')) await waitSection();
if (wanted('failover')) await failoverSection();
process.exit(0);
