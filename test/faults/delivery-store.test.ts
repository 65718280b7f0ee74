import { expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/index.js';
import { createRedisDeliveryStore } from '../../src/redis/index.js';
import { connectRedis, describeOwnRedis, ownRedisServer, ready } from '../support/redis.js';

const T = 1_700_000_000_000;
const SENT = { status: 'sent', rank: 1, timestampMs: T };

describeOwnRedis('Redis delivery store under Redis faults', () => {
  it('a paused Redis fails each call within commandTimeoutMs with StoreUnavailableError', async () => {
    const server = await ownRedisServer();
    const redis = connectRedis(server.url, { maxRetriesPerRequest: 0 });
    await ready(redis);
    const store = createRedisDeliveryStore(redis, { prefix: 'fault:d', commandTimeoutMs: 200 });
    await store.begin('k', { to: '1' });
    await server.pause(900, 'ALL');
    const started = performance.now();
    const errors = await Promise.all([
      store.recordAttempt('k', { attemptId: 'k#1', externalId: 'wamid.1', at: T }).catch((e) => e),
      store.applyStatus('wamid.1', SENT).catch((e: unknown) => e),
      store.get('k').catch((e: unknown) => e),
    ]);
    for (const error of errors) {
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error).toMatchObject({ code: 'STORE_UNAVAILABLE' });
    }
    expect(performance.now() - started).toBeLessThan(700);
    await new Promise((resolve) => setTimeout(resolve, 900));
    // The commands held by the pause ran afterwards, each whole: the attempt with its index.
    const record = await store.get('k');
    const wamids = record?.attempts.map((a) => a.externalId) ?? [];
    expect(await store.findKey('wamid.1')).toBe(wamids.includes('wamid.1') ? 'k' : undefined);
  });

  it('a claim whose reply is lost takes its lease all the same: the record comes back when it runs out', async () => {
    const server = await ownRedisServer();
    const redis = connectRedis(server.url, { maxRetriesPerRequest: 0 });
    await ready(redis);
    const store = createRedisDeliveryStore(redis, { prefix: 'fault:claim', commandTimeoutMs: 200 });
    await store.begin('k', { to: '1' }, { dueInMs: 0 });
    await server.pause(600, 'ALL');
    await expect(store.claimDue({ limit: 5, leaseMs: 1_000 })).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    await new Promise((resolve) => setTimeout(resolve, 700));
    // The claim ran after the pause: leased to nobody until its lease runs out, then back.
    expect(await store.claimDue({ limit: 5, leaseMs: 1_000 })).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const [again] = await store.claimDue({ limit: 5, leaseMs: 1_000 });
    expect(again?.record.key).toBe('k');
  });

  it('a crash mid-stream leaves every record whole: an attempt and its index, or neither', async () => {
    const server = await ownRedisServer({ appendonly: true });
    const redis = connectRedis(server.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
    await ready(redis);
    const store = createRedisDeliveryStore(redis, { prefix: 'fault:crash', commandTimeoutMs: 500 });
    const n = 300;
    for (let i = 0; i < n; i++) await store.begin(`k${i}`, { i });
    const write = (i: number) =>
      store
        .recordAttempt(`k${i}`, { attemptId: `k${i}#1`, externalId: `wamid.${i}`, at: T })
        .then(() => store.applyStatus(`wamid.${i}`, SENT))
        .catch((e: unknown) => e);
    for (let i = 0; i < 50; i++) await write(i);
    // The rest in 10 lanes, each one write after another; the server is killed while some
    // are in flight.
    let done = 0;
    let killed: Promise<void> | undefined;
    const outcomes: unknown[] = [];
    const lane = async (first: number) => {
      for (let i = first; i < n; i += 10) {
        outcomes.push(await write(i));
        if (++done === 20) killed = server.kill();
      }
    };
    await Promise.all(Array.from({ length: 10 }, (_, l) => lane(50 + l)));
    const failures = outcomes.filter((o) => o instanceof Error);
    expect(failures.length).toBeGreaterThan(0);
    for (const f of failures) expect(f).toBeInstanceOf(StoreUnavailableError);

    await killed;
    await server.start();
    const again = connectRedis(server.url, { maxRetriesPerRequest: 0 });
    await ready(again);
    const reread = createRedisDeliveryStore(again, { prefix: 'fault:crash' });
    let whole = 0;
    for (let i = 0; i < n; i++) {
      const record = await reread.get(`k${i}`);
      expect(record).toBeDefined();
      const attempt = record?.attempts[0];
      const key = await reread.findKey(`wamid.${i}`);
      if (attempt === undefined) {
        expect(key).toBeUndefined();
      } else {
        expect(attempt.externalId).toBe(`wamid.${i}`);
        expect(key).toBe(`k${i}`);
        whole++;
      }
    }
    expect(whole).toBeGreaterThan(0);
  });
});
