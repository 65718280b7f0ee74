import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type IdempotencyStore, StoreUnavailableError } from '../src/index.js';
import { createRedisIdempotencyStore, createRedisTokenBucket } from '../src/redis/index.js';
import { keySlot } from '../src/redis/replicas.js';
import { describeOwnRedis, uniquePrefix } from './support/redis.js';
import {
  closeClusterClients,
  connectCluster,
  type RedisCluster,
  startRedisCluster,
} from './support/redis-cluster.js';

const COMMAND_TIMEOUT_MS = 500;
const LEASE_MS = 60_000;

/** `count` keys whose records (`{prefix:key}`) the client places on the master on `port`. */
function keysOn(client: Cluster, prefix: string, port: number, count: number): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < count; i++) {
    const key = `order-${i}`;
    if (client.slots[keySlot(`{${prefix}:${key}}`)]?.[0] === `127.0.0.1:${port}`) keys.push(key);
  }
  return keys;
}

/** How many of `keys`, each claimed and acknowledged before, a new claim finds free: lost. */
async function lostClaims(store: IdempotencyStore, keys: readonly string[]): Promise<number> {
  let lost = 0;
  for (const key of keys) {
    if ((await store.claim(key, { leaseMs: LEASE_MS })).status === 'claimed') lost++;
  }
  return lost;
}

describeOwnRedis('Redis Cluster failover', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await startRedisCluster({ nodeTimeoutMs: 1_000 });
  });
  afterAll(async () => {
    closeClusterClients();
    await cluster?.stop();
  });

  it('fails calls with StoreUnavailableError while a killed master is replaced, then recovers, with no hang', async () => {
    const client = connectCluster(cluster);
    const prefix = uniquePrefix('failover');
    const store = createRedisIdempotencyStore(client, {
      prefix,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
    });
    const limiter = createRedisTokenBucket(client, {
      prefix: `${prefix}:rate`,
      capacity: 1_000_000,
      refillPerSecond: 1_000_000,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
    });
    await client.ping();
    const victim = cluster.nodes[0]!;
    const victimSlots = new Set(
      client.slots.flatMap((nodes, slot) =>
        nodes?.[0] === `127.0.0.1:${victim.port}` ? [slot] : [],
      ),
    );
    const onVictim = (key: string): boolean => victimSlots.has(keySlot(`{${prefix}:${key}}`));

    let stop = false;
    let n = 0;
    const outcomes: { at: number; ms: number; ok: boolean; key: string; error?: unknown }[] = [];
    const acked: string[] = [];
    const worker = async (): Promise<void> => {
      while (!stop) {
        const key = `order-${n++}`;
        const start = Date.now();
        try {
          await limiter.tryAcquire(key);
          const claim = await store.claim(key, { leaseMs: LEASE_MS });
          expect(claim.status).toBe('claimed');
          acked.push(key);
          outcomes.push({ at: start, ms: Date.now() - start, ok: true, key });
        } catch (error) {
          outcomes.push({ at: start, ms: Date.now() - start, ok: false, key, error });
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    await new Promise((r) => setTimeout(r, 300));
    const killedAt = Date.now();
    const ackedBeforeKill = acked.filter((k) => onVictim(k));
    await victim.kill();
    await cluster.waitHealthy(20_000);
    const healthyAt = Date.now();
    // Until the client has the new slot map and calls on the victim's slots go through again.
    const recovered = Date.now();
    for (;;) {
      const since = outcomes.filter((o) => o.at > healthyAt && onVictim(o.key));
      if (since.length >= 20 && since.slice(-20).every((o) => o.ok)) break;
      expect(Date.now() - recovered).toBeLessThan(15_000);
      await new Promise((r) => setTimeout(r, 50));
    }
    stop = true;
    await Promise.all(workers);

    const failures = outcomes.filter((o) => !o.ok);
    expect(failures.length).toBeGreaterThan(0);
    for (const f of failures) expect(f.error).toBeInstanceOf(StoreUnavailableError);
    // Two calls per round, each bounded by the command timeout (and WAIT's, not used here).
    expect(Math.max(...outcomes.map((o) => o.ms))).toBeLessThan(2 * COMMAND_TIMEOUT_MS + 500);
    const firstOkAfter = outcomes.find((o) => o.ok && o.at > killedAt && onVictim(o.key));
    const lost = await lostClaims(store, ackedBeforeKill);
    console.info(
      `failover: ${failures.length} of ${outcomes.length} calls failed (StoreUnavailableError), ` +
        `cluster_state ok again after ${healthyAt - killedAt} ms, first success on the killed ` +
        `master's slots ${firstOkAfter === undefined ? '-' : firstOkAfter.at - killedAt} ms after the kill; ` +
        `${lost} of ${ackedBeforeKill.length} acknowledged claims on it lost`,
    );
    await victim.restart();
    await cluster.waitHealthy();
    await cluster.waitReplicasInSync();
  });

  it('waitForReplicas: no claim is acknowledged before its replica has it, so a failover loses none', async () => {
    const client = connectCluster(cluster);
    await client.ping();
    const prefix = uniquePrefix('wait');
    const plain = createRedisIdempotencyStore(client, { prefix, commandTimeoutMs: 1_000 });
    const durable = createRedisIdempotencyStore(client, {
      prefix,
      commandTimeoutMs: 1_000,
      waitForReplicas: { replicas: 1, timeoutMs: 200 },
    });
    const [master] = client.nodes('master');
    const masterPort = master!.options.port!;
    const [replicaPort] = await cluster.replicasOf(masterPort);
    const replica = cluster.nodes.find((n) => n.port === replicaPort)!;
    const [warm, ...keys] = keysOn(client, prefix, masterPort, 21);

    // In sync: the durable store acknowledges.
    const held = await durable.claim(warm!, { leaseMs: LEASE_MS });
    expect(held.status).toBe('claimed');

    // The replica stops, and the master drops its link (what a replica that fell behind, or a
    // partition, looks like): writes reach the master only. (A frozen replica alone would still
    // get them: its kernel buffers the stream.)
    const plainKeys = keys.slice(0, 10);
    replica.freeze();
    try {
      await cluster.cli(masterPort, 'CLIENT', 'KILL', 'TYPE', 'replica');
      for (const key of plainKeys) {
        expect((await plain.claim(key, { leaseMs: LEASE_MS })).status).toBe('claimed');
      }
      for (const key of keys.slice(10)) {
        await expect(durable.claim(key, { leaseMs: LEASE_MS })).rejects.toBeInstanceOf(
          StoreUnavailableError,
        );
      }
      if (held.status === 'claimed') {
        await expect(
          durable.complete(warm!, held.token, 'sent', { resultTtlMs: LEASE_MS }),
        ).rejects.toThrow(/0 of 1 replicas acknowledged the write within 200 ms/);
      }
      // The master dies; the replica, without those writes, takes its slots over.
      await cluster.nodes.find((n) => n.port === masterPort)!.kill();
    } finally {
      replica.thaw();
    }
    await cluster.waitHealthy(20_000);
    const fresh = createRedisIdempotencyStore(connectCluster(cluster), { prefix });
    // Every claim the plain store acknowledged is gone; the durable store acknowledged none.
    expect(await lostClaims(fresh, plainKeys)).toBe(plainKeys.length);
  });
});
