import fc from 'fast-check';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { StoreUnavailableError } from '../src/index.js';
import {
  createRedisCircuitStore,
  createRedisDeadLetterQueue,
  createRedisDeliveryStore,
  createRedisIdempotencyStore,
  createRedisTokenBucket,
} from '../src/redis/index.js';
import { keySlot } from '../src/redis/replicas.js';
import { circuitStoreContract } from './support/circuit-store-contract.js';
import { deadLetterContract, LEASE_MS, passRedisTime } from './support/dead-letter-contract.js';
import { deliveryStoreContract } from './support/delivery-store-contract.js';
import { reportersAddUp } from './support/fleet-metrics-scenario.js';
import { idempotencyStoreContract } from './support/idempotency-contract.js';
import { rateLimiterContract } from './support/rate-limiter-contract.js';
import { connectRedis, describeOwnRedis, describeRedis, uniquePrefix } from './support/redis.js';
import {
  closeClusterClients,
  connectCluster,
  type RedisCluster,
  startRedisCluster,
} from './support/redis-cluster.js';
import { advanceDeliveryTime, advanceRedisTime } from './support/redis-time.js';

// Every Redis contract suite, unchanged, on a real Redis Cluster (3 masters, 3 replicas)
// through ioredis's `Cluster` client: the suites' keys spread over all three shards.
describeOwnRedis('on a Redis Cluster', () => {
  let cluster: RedisCluster;
  let shared: Cluster;
  beforeAll(async () => {
    cluster = await startRedisCluster();
    shared = connectCluster(cluster);
  });
  afterAll(async () => {
    closeClusterClients();
    await cluster?.stop();
  });

  rateLimiterContract('Redis token bucket on a cluster (client clock)', (limits, clock, onEvent) =>
    createRedisTokenBucket(shared, {
      ...limits,
      clock,
      ...(onEvent === undefined ? {} : { onEvent }),
      timeSource: 'client',
      prefix: uniquePrefix('cluster-rate'),
    }),
  );

  idempotencyStoreContract('redis cluster', async () => {
    const prefix = uniquePrefix('cluster-idem');
    return {
      store: createRedisIdempotencyStore(shared, { prefix }),
      advance: (ms) => advanceRedisTime(shared, prefix, ms),
    };
  });

  deadLetterContract('redis cluster', async ({ onEvent }) => {
    const prefix = uniquePrefix('cluster-dlq');
    return {
      dlq: createRedisDeadLetterQueue<{ n: number; text?: string }>(shared, {
        prefix,
        ...(onEvent === undefined ? {} : { onEvent }),
      }),
      expireLeases: () => new Promise((resolve) => setTimeout(resolve, LEASE_MS + 10)),
      passTime: (ms) => passRedisTime(shared, prefix, ms),
    };
  });

  circuitStoreContract('Redis circuit store on a cluster, two clients (client clock)', () => {
    const prefix = uniquePrefix('cluster-circuit');
    return [
      createRedisCircuitStore(shared, { prefix, timeSource: 'client' }),
      createRedisCircuitStore(connectCluster(cluster), { prefix, timeSource: 'client' }),
    ];
  });

  deliveryStoreContract('redis cluster', async () => {
    const prefix = uniquePrefix('cluster-delivery');
    return {
      store: createRedisDeliveryStore(shared, { prefix, recordTtlMs: 60_000 }),
      advance: (ms) => advanceDeliveryTime(shared, prefix, ms),
      recordTtlMs: 60_000,
    };
  });

  it('fleet metrics: reporters on a cluster add up to what one createMetrics reports', async () => {
    await reportersAddUp(shared);
  });

  it("slows every instance at once: one instance's throttle is the other's refusal", async () => {
    const options = {
      capacity: 80,
      refillPerSecond: 80,
      adaptive: true,
      prefix: uniquePrefix('cluster-adaptive'),
    };
    const a = createRedisTokenBucket(shared, options);
    const b = createRedisTokenBucket(connectCluster(cluster), options);
    for (const phone of ['p1', 'p2', 'p3']) {
      expect((await b.tryAcquire(phone)).ok).toBe(true);
      a.feedback(phone).throttled({ retryable: true, reason: 'rate_limited', retryAfterMs: 2_000 });
      await a.tryAcquire(phone);
      const refused = await b.tryAcquire(phone);
      expect(!refused.ok && refused.retryAfterMs).toBeGreaterThan(1_900);
    }
  });

  it('computes the slot of any key as Redis does (CLUSTER KEYSLOT), hash tags included', async () => {
    const node = shared.nodes('master')[0]!;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ unit: 'grapheme', maxLength: 30 }),
          fc.tuple(fc.string(), fc.string(), fc.string()).map(([a, b, c]) => `${a}{${b}}${c}`),
        ),
        async (key) => {
          expect(keySlot(key)).toBe(await node.cluster('KEYSLOT', key));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('waitForReplicas: WAIT goes to the master of the key, on every shard', async () => {
    const store = createRedisIdempotencyStore(shared, {
      prefix: uniquePrefix('cluster-wait'),
      waitForReplicas: { replicas: 1, timeoutMs: 1_000 },
    });
    for (let i = 0; i < 30; i++) {
      const claim = await store.claim(`order-${i}`, { leaseMs: 10_000 });
      expect(claim.status).toBe('claimed');
      if (claim.status !== 'claimed') continue;
      expect(await store.complete(`order-${i}`, claim.token, i, { resultTtlMs: 10_000 })).toBe(
        true,
      );
    }
  });

  // Runs last: the suites above left their keys behind.
  it('spread the suites over all three masters', async () => {
    const sizes = await Promise.all(shared.nodes('master').map((n) => n.dbsize()));
    expect(sizes).toHaveLength(3);
    for (const size of sizes) expect(size).toBeGreaterThan(0);
  });
});

describeRedis('waitForReplicas on one Redis', () => {
  it('rejects a claim with StoreUnavailableError when the server has no replica to wait for', async () => {
    const store = createRedisIdempotencyStore(connectRedis(), {
      prefix: uniquePrefix('wait-single'),
      waitForReplicas: { replicas: 1, timeoutMs: 20 },
    });
    const error = await store.claim('k', { leaseMs: 10_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(String(error)).toMatch(/0 of 1 replicas acknowledged the write within 20 ms \(WAIT\)/);
  });

  it('validates the option, naming it and the value', () => {
    const redis = connectRedis();
    const make = (waitForReplicas: unknown, client: unknown = redis) =>
      createRedisIdempotencyStore(client as never, {
        prefix: 'p',
        waitForReplicas: waitForReplicas as never,
      });
    expect(() => make(1)).toThrow(
      /waitForReplicas must be an object \{ replicas, timeoutMs \}, got 1/,
    );
    expect(() => make({ replicas: 0, timeoutMs: 10 })).toThrow(
      /waitForReplicas.replicas must be a finite number between 1 and \d+, got 0/,
    );
    expect(() => make({ replicas: 1, timeoutMs: 0 })).toThrow(
      /waitForReplicas.timeoutMs must be a finite number between 1 and \d+, got 0/,
    );
    expect(() => make({ replicas: 1.5, timeoutMs: 10 })).toThrow(
      /waitForReplicas.replicas must be an integer, got 1.5/,
    );
    const scriptsOnly = { evalsha: redis.evalsha.bind(redis), eval: redis.eval.bind(redis) };
    expect(() => make({ replicas: 1, timeoutMs: 10 }, scriptsOnly)).toThrow(
      /waitForReplicas needs an ioredis client/,
    );
  });
});
