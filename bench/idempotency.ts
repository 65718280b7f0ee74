import { Redis } from 'ioredis';
import { createMemoryIdempotencyStore, idempotent } from '../src/index.js';
import { type BenchSuite, interleaved, measure, ratioTable, redisForBench } from './harness.js';

export const idempotencySuite: BenchSuite = {
  name: 'idempotency',
  async run({ timeMs }) {
    // Source `.lua` files load as text only with this hook (the build inlines them).
    await import('../tools/lua-loader.mjs');
    const { createRedisIdempotencyStore } = await import('../src/redis/index.js');

    const server = await redisForBench();
    const redis = new Redis(server.url);
    const prefix = `bench:idem:${process.pid}`;
    const store = createRedisIdempotencyStore(redis, { prefix });
    let n = 0;
    const ttl = 60_000;
    const set = () => redis.set(`${prefix}:raw:${n++}`, '1', 'PX', ttl, 'NX');
    const claimComplete = async () => {
      const key = `cc:${n++}`;
      const claim = await store.claim(key, { leaseMs: 30_000 });
      if (claim.status === 'claimed')
        await store.complete(key, claim.token, 'ok', { resultTtlMs: ttl });
    };
    const oneByOne = await interleaved(
      {
        'raw SET NX PX': set,
        markOnce: () => store.markOnce(`m:${n++}`, ttl),
        'raw SET NX PX, twice in a row': async () => {
          await set();
          await set();
        },
        'claim + complete': claimComplete,
        'idempotent() (claim + fn + complete)': () =>
          idempotent(store, `i:${n++}`, async () => 'ok', { resultTtlMs: ttl }),
      },
      timeMs * 12,
    );

    const inFlight = 64;
    const burst = (op: () => Promise<unknown>) => () =>
      Promise.all(Array.from({ length: inFlight }, op));
    const concurrent = await interleaved(
      {
        [`raw SET NX PX ×${inFlight} in flight`]: burst(set),
        [`markOnce ×${inFlight} in flight`]: burst(() => store.markOnce(`mc:${n++}`, ttl)),
        [`claim + complete ×${inFlight} in flight`]: burst(claimComplete),
      },
      timeMs * 3,
    );

    const memory = createMemoryIdempotencyStore({ maxEntries: 100_000 });
    let m = 0;
    const fn = async () => 'ok';
    const inMemory = await measure(
      {
        'bare await fn()': () => fn(),
        'memory markOnce': () => memory.markOnce(`m:${m++}`, ttl),
        'memory claim + complete': async () => {
          const key = `c:${m++}`;
          const claim = await memory.claim(key, { leaseMs: 30_000 });
          if (claim.status === 'claimed')
            await memory.complete(key, claim.token, 'ok', { resultTtlMs: ttl });
        },
        'memory idempotent(), first call': () => idempotent(memory, `i:${m++}`, fn),
        'memory idempotent(), stored result': () => idempotent(memory, 'hot', fn),
      },
      { timeMs },
    );

    await redis.quit();
    await server.stop();

    /** Speed relative to the floor, paired batch by batch (see `interleaved`). */
    const vsFloor = (name: string) => oneByOne.find((r) => r.name === name)?.paired?.ratio ?? 0;
    const perTrip = (name: string, trips: number) => (vsFloor(name) * trips).toFixed(2);
    return [
      '## Idempotency: Redis against a raw `SET NX PX`',
      '',
      'One operation at a time on one connection, against the same `redis-server` in the same run,',
      'the cases interleaved operation by operation, in a new random order each turn, so that all',
      'see the same load; each number is bound by round-trip latency. The floor is a raw',
      '`SET key 1 NX PX ttl`, the cheapest possible "first time?" check. `markOnce` is that SET',
      '(one round trip); `claim` + `complete` is two round trips (the SET, then a script that checks',
      'the fencing token), so it compares against two SETs in a row.',
      'Target: `markOnce` and `claim` + `complete` within 90 % of the floor per round trip',
      '(ratio ≥ 0.90); `idempotent()`, which adds its own bookkeeping, is shown for reference.',
      '',
      ratioTable(oneByOne, 'raw SET NX PX'),
      '',
      `Per round trip against the floor: markOnce ${perTrip('markOnce', 1)}, claim + complete ${perTrip('claim + complete', 2)}, idempotent() ${perTrip('idempotent() (claim + fn + complete)', 2)}.`,
      '',
      `### ${inFlight} operations in flight`,
      '',
      'The same commands issued concurrently on one connection (ioredis pipelines them): throughput',
      "rather than latency. One op here is a batch of 64. Here Redis's own CPU is the limit, and",
      "`complete`'s script (read the record, compare the fencing token, write) costs it more than a",
      'SET does; the target above is judged one operation at a time.',
      '',
      ratioTable(concurrent, `raw SET NX PX ×${inFlight} in flight`),
      '',
      '## Idempotency: memory store',
      '',
      'The in-process store (LRU + TTL, 100,000 entries), against a bare call of the same function.',
      '',
      ratioTable(inMemory, 'bare await fn()'),
    ].join('\n');
  },
};
