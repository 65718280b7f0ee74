import { expect, it } from 'vitest';
import { IdempotencyInProgressError, idempotent } from '../../src/index.js';
import { createRedisIdempotencyStore } from '../../src/redis/index.js';
import {
  connectRedis,
  describeOwnRedis,
  ownRedisServer,
  ready,
  uniquePrefix,
} from '../support/redis.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

// `fn` ran, then Redis went away before its result was stored. Until the lease runs out the key
// is still the caller's: the store's return must record the result, so that a duplicate gets it
// instead of running `fn` a second time once the lease is over.
const LEASE = 20_000;

describeOwnRedis('idempotent() when the store fails after fn ran', () => {
  it('records the result once the store is back, and a duplicate gets it without running fn', async () => {
    const server = await ownRedisServer();
    const proxy = await startTcpProxy(server.port);
    const redis = connectRedis(proxy.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
    await ready(redis);
    const store = createRedisIdempotencyStore(redis, {
      prefix: uniquePrefix('complete'),
      commandTimeoutMs: 300,
    });
    let runs = 0;
    const notRecorded: string[] = [];
    const first = await idempotent(
      store,
      'send:1',
      async () => {
        runs++;
        proxy.refuse(true);
        proxy.cut();
        return { wamid: 'wamid.1' };
      },
      { leaseMs: LEASE, onNotRecorded: ({ reason }) => notRecorded.push(reason) },
    );
    expect(first).toEqual({ wamid: 'wamid.1' });
    expect(notRecorded).toEqual(['store_unavailable']);

    proxy.refuse(false);
    await ready(redis);
    const duplicate = async () =>
      idempotent(
        store,
        'send:1',
        async () => {
          runs++;
          return { wamid: 'wamid.2' };
        },
        { leaseMs: LEASE, waitForResultMs: 0 },
      );
    let answer: unknown;
    for (let i = 0; i < 100; i++) {
      answer = await duplicate().catch((error: unknown) => error);
      if (!(answer instanceof IdempotencyInProgressError)) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(answer).toEqual({ wamid: 'wamid.1' });
    expect(runs).toBe(1);
  });

  it('releases the key once the store is back when fn failed, so the retry runs at once', async () => {
    const server = await ownRedisServer();
    const proxy = await startTcpProxy(server.port);
    const redis = connectRedis(proxy.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
    await ready(redis);
    const store = createRedisIdempotencyStore(redis, {
      prefix: uniquePrefix('release'),
      commandTimeoutMs: 300,
    });
    let runs = 0;
    await expect(
      idempotent(
        store,
        'send:2',
        async () => {
          runs++;
          proxy.refuse(true);
          proxy.cut();
          throw new Error('503 from the API');
        },
        { leaseMs: LEASE },
      ),
    ).rejects.toThrow('503 from the API');

    proxy.refuse(false);
    await ready(redis);
    let answer: unknown;
    for (let i = 0; i < 100; i++) {
      answer = await idempotent(
        store,
        'send:2',
        async () => {
          runs++;
          return 'sent';
        },
        { leaseMs: LEASE, waitForResultMs: 0 },
      ).catch((error: unknown) => error);
      if (!(answer instanceof IdempotencyInProgressError)) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(answer).toBe('sent');
    expect(runs).toBe(2);
  });
});
