import { expect, it } from 'vitest';
import { idempotent, StoreUnavailableError } from '../../src/index.js';
import { createRedisIdempotencyStore } from '../../src/redis/index.js';
import { connectRedis, describeOwnRedis, ownRedisServer, ready } from '../support/redis.js';
import type { RedisServer } from '../support/redis-server.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

// Claims whose answer went missing: Redis ran (or will run) the claim, the caller never heard.
// A lease of 30 s stands for "the whole lease": a caller that waited for it would fail the
// test's time limit, and `waitForResultMs: 0` turns any wait into an error.
const LEASE = 30_000;

/** `fn` for `idempotent`, counting its runs. */
function counter() {
  const runs: string[] = [];
  const fn = async ({ key }: { key: string }) => {
    runs.push(key);
    return { sent: key, run: runs.length };
  };
  return { runs, fn };
}

/** Resolves once `key` of `prefix` is gone from Redis (the orphaned claim was released). */
async function released(redis: ReturnType<typeof connectRedis>, prefix: string, key: string) {
  for (let i = 0; i < 200 && (await redis.exists(`{${prefix}:${key}}`)) === 1; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describeOwnRedis('idempotency claims whose answer was lost', () => {
  for (const path of ['SET NX', 'script'] as const) {
    it(`a claim re-sent after a dropped reply is the caller's own (${path} path): fn runs once, at once`, async () => {
      const server = await ownRedisServer();
      const proxy = await startTcpProxy(server.port);
      const redis = connectRedis(proxy.url, { maxRetriesPerRequest: 5 });
      await ready(redis);
      const client: Parameters<typeof createRedisIdempotencyStore>[0] =
        path === 'SET NX'
          ? redis
          : { evalsha: redis.evalsha.bind(redis), eval: redis.eval.bind(redis) };
      const store = createRedisIdempotencyStore(client, {
        prefix: 'resent',
        commandTimeoutMs: 5000,
      });
      // Load the claim script, so that the dropped reply is the claim's own (not a NOSCRIPT).
      await store.claim('warm-up', { leaseMs: LEASE });
      await store.claim('warm-up', { leaseMs: LEASE });
      const { runs, fn } = counter();

      proxy.dropReplies(1);
      const call = idempotent(store, 'send:1', fn, { leaseMs: LEASE, waitForResultMs: 0 });
      await proxy.dropped();
      proxy.cut();
      expect(await call).toEqual({ sent: 'send:1', run: 1 });

      // Later calls get the stored result.
      expect(await idempotent(store, 'send:1', fn, { waitForResultMs: 0 })).toEqual({
        sent: 'send:1',
        run: 1,
      });
      expect(runs).toEqual(['send:1']);
    });
  }

  const stalls: [string, (server: RedisServer) => Promise<() => void>][] = [
    [
      'CLIENT PAUSE',
      async (server) => {
        await server.pause(500);
        return () => {};
      },
    ],
    [
      'SIGSTOP',
      async (server) => {
        server.freeze();
        return () => server.thaw();
      },
    ],
  ];
  for (const [name, stall] of stalls) {
    it(`a claim that timed out under ${name} and ran later is released: the retry runs fn once`, async () => {
      const server = await ownRedisServer();
      const a = connectRedis(server.url);
      const b = connectRedis(server.url);
      await Promise.all([ready(a), ready(b)]);
      const storeA = createRedisIdempotencyStore(a, { prefix: 'stalled', commandTimeoutMs: 150 });
      const storeB = createRedisIdempotencyStore(b, { prefix: 'stalled' });
      const { runs, fn } = counter();

      const resume = await stall(server);
      const error = await idempotent(storeA, 'k', fn, { leaseMs: LEASE }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(runs).toEqual([]);
      resume();

      // The claim runs when Redis resumes, and nobody would complete it: the store releases it.
      // The retry (another process here) then runs fn at once, never waiting out the lease.
      await released(b, 'stalled', 'k');
      expect(await idempotent(storeB, 'k', fn, { leaseMs: LEASE, waitForResultMs: 0 })).toEqual({
        sent: 'k',
        run: 1,
      });
      expect(await idempotent(storeA, 'k', fn, { waitForResultMs: 0 })).toEqual({
        sent: 'k',
        run: 1,
      });
      expect(runs).toEqual(['k']);
    });
  }

  it('a claim that timed out, then was re-sent after its reply was dropped, is released: the retry runs fn once', async () => {
    const server = await ownRedisServer();
    const proxy = await startTcpProxy(server.port);
    const a = connectRedis(proxy.url, { maxRetriesPerRequest: 5 });
    a.on('error', () => {}); // the cut below
    await ready(a);
    const storeA = createRedisIdempotencyStore(a, { prefix: 'resent-late', commandTimeoutMs: 150 });
    const { runs, fn } = counter();

    // The claim's SET takes the key, its reply is lost and the connection hangs past the
    // timeout; on reconnect ioredis sends the SET again, which finds the key taken (null).
    proxy.dropReplies(1);
    const error = await idempotent(storeA, 'k', fn, { leaseMs: LEASE }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    await proxy.dropped();
    proxy.cut();
    await ready(a);
    const b = connectRedis(server.url);
    await ready(b);
    await released(b, 'resent-late', 'k');
    const storeB = createRedisIdempotencyStore(b, { prefix: 'resent-late' });
    expect(await idempotent(storeB, 'k', fn, { leaseMs: LEASE, waitForResultMs: 0 })).toEqual({
      sent: 'k',
      run: 1,
    });
    expect(runs).toEqual(['k']);
  });

  it('a claim held in the offline queue while Redis restarts is released once it runs', async () => {
    const server = await ownRedisServer();
    const a = connectRedis(server.url, { maxRetriesPerRequest: null });
    a.on('error', () => {}); // reconnect attempts while the server is down
    await ready(a);
    const storeA = createRedisIdempotencyStore(a, { prefix: 'offline', commandTimeoutMs: 150 });
    const { runs, fn } = counter();

    await server.kill();
    const error = await idempotent(storeA, 'k', fn, { leaseMs: LEASE }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    await server.start();
    // ioredis sends the queued claim on reconnect; it takes the empty server's key.
    const b = connectRedis(server.url);
    await ready(b);
    await ready(a);
    await released(b, 'offline', 'k');
    const storeB = createRedisIdempotencyStore(b, { prefix: 'offline' });
    expect(await idempotent(storeB, 'k', fn, { leaseMs: LEASE, waitForResultMs: 0 })).toEqual({
      sent: 'k',
      run: 1,
    });
    expect(runs).toEqual(['k']);
  });

  it("a job retry with the same requestId takes its own orphaned claim, and the late release can't drop it", async () => {
    const server = await ownRedisServer();
    const redis = connectRedis(server.url);
    await ready(redis);
    const store = createRedisIdempotencyStore(redis, { prefix: 'job', commandTimeoutMs: 150 });
    const { runs, fn } = counter();
    const options = { leaseMs: LEASE, requestId: 'job:42', waitForResultMs: 0 };

    await server.pause(400);
    const error = await idempotent(store, 'send:42', fn, options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    // BullMQ retries the job until Redis answers; the late claim and its release land meanwhile.
    let result: unknown = error;
    for (let i = 0; i < 20 && result instanceof StoreUnavailableError; i++) {
      result = await idempotent(store, 'send:42', fn, options).catch((e: unknown) => e);
    }
    expect(result).toEqual({ sent: 'send:42', run: 1 });
    expect(runs).toEqual(['send:42']);
    expect(await idempotent(store, 'send:42', fn, { waitForResultMs: 0 })).toEqual({
      sent: 'send:42',
      run: 1,
    });
  });
});

describeOwnRedis('a late release never drops a newer claim', () => {
  it('fences the release of a failed claim by its attempt, not only by the requestId', async () => {
    const server = await ownRedisServer();
    const redis = connectRedis(server.url);
    await ready(redis);
    // A client whose first SET runs on Redis, then fails as a dropped connection does, and
    // whose releases wait until the test lets them go: the order a slow connection can produce.
    let firstSet = true;
    const held: (() => Promise<unknown>)[] = [];
    const client = {
      set: (...args: Parameters<typeof redis.set>) => {
        if (!firstSet) return redis.set(...args);
        firstSet = false;
        return redis.set(...args).then(async () => {
          await new Promise((resolve) => setTimeout(resolve, 200));
          throw new Error('Connection is closed.');
        });
      },
      evalsha: (sha: string, numKeys: number, ...rest: (string | number)[]) =>
        rest.length === 3
          ? new Promise((resolve, reject) => {
              held.push(() => {
                const reply = redis.evalsha(sha, numKeys, ...rest);
                reply.then(resolve, reject);
                return reply;
              });
            })
          : redis.evalsha(sha, numKeys, ...rest),
      eval: redis.eval.bind(redis),
    } as unknown as Parameters<typeof createRedisIdempotencyStore>[0];
    const store = createRedisIdempotencyStore(client, { prefix: 'fence', commandTimeoutMs: 100 });
    const plain = createRedisIdempotencyStore(redis, { prefix: 'fence' });
    await plain.release('warm-up', 'none');

    await expect(store.claim('k', { leaseMs: LEASE, requestId: 'job:1' })).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    for (let i = 0; i < 100 && held.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(held).toHaveLength(1);
    // The job's retry takes its own claim; then the first attempt's release arrives.
    expect(await store.claim('k', { leaseMs: LEASE, requestId: 'job:1' })).toEqual({
      status: 'claimed',
      token: 'job:1',
    });
    expect(await held[0]?.()).toBe(0);
    expect(await plain.claim('k', { leaseMs: LEASE })).toMatchObject({ status: 'in_progress' });
    expect(await store.complete('k', 'job:1', 'done', { resultTtlMs: 60_000 })).toBe(true);
    expect(await plain.claim('k', { leaseMs: LEASE })).toEqual({
      status: 'completed',
      result: 'done',
    });
  });
});
