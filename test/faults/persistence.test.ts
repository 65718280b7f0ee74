import { expect, it } from 'vitest';
import { idempotent } from '../../src/index.js';
import { createRedisDeadLetterQueue, createRedisIdempotencyStore } from '../../src/redis/index.js';
import { letter } from '../support/dead-letter-contract.js';
import { connectRedis, describeOwnRedis, ownRedisServer, ready } from '../support/redis.js';

// docs/redis-settings.md: idempotency keys and dead letters outlive a Redis crash only with an
// append-only file. Both halves of that sentence are checked here.
async function crashAndRestart(appendonly: boolean, appendfsync?: 'everysec' | 'no') {
  const server = await ownRedisServer({ appendonly });
  if (appendfsync !== undefined) {
    expect(await server.command('CONFIG', 'SET', 'appendfsync', appendfsync)).toMatch(/^\+OK/);
  }
  const redis = connectRedis(server.url, { maxRetriesPerRequest: 50 });
  redis.on('error', () => {});
  await ready(redis);
  const store = createRedisIdempotencyStore(redis, { prefix: 'idem' });
  const dlq = createRedisDeadLetterQueue(redis, { prefix: 'dlq' });
  const runs: string[] = [];
  const send = (key: string) =>
    idempotent(store, key, () => {
      runs.push(key);
      return { sent: key };
    });

  expect(await send('wamid.1')).toEqual({ sent: 'wamid.1' });
  expect(await store.markOnce('webhook.1', 60_000)).toBe(true);
  await dlq.add(letter(1));
  await dlq.redrive({}, () => Promise.reject(new Error('HTTP 503')));

  await server.kill();
  await server.start();
  await redis.ping();

  const again = await send('wamid.1');
  return {
    again,
    runs,
    firstMark: await store.markOnce('webhook.1', 60_000),
    entry: await dlq.get('m-1'),
    size: await dlq.size(),
    redriven: (await dlq.redrive({}, () => {})).redriven,
  };
}

describeOwnRedis('Redis persistence and what survives a crash', () => {
  it('with appendonly yes: completed keys, marks and dead letters survive SIGKILL + restart', async () => {
    const after = await crashAndRestart(true);
    expect(after.again).toEqual({ sent: 'wamid.1' });
    expect(after.runs).toEqual(['wamid.1']);
    expect(after.firstMark).toBe(false);
    expect(after.size).toBe(1);
    expect(after.entry).toMatchObject({ id: 'm-1', redriveFailures: 1 });
    expect(after.entry?.attempts).toHaveLength(2);
    expect(after.redriven).toEqual([]);
  });

  it('with appendfsync everysec or no: a crash of the Redis process alone loses nothing', async () => {
    for (const mode of ['everysec', 'no'] as const) {
      const after = await crashAndRestart(true, mode);
      expect(after.runs).toEqual(['wamid.1']);
      expect(after.firstMark).toBe(false);
      expect(after.size).toBe(1);
    }
  });

  it('without persistence: every key is "first time" again and the dead letters are gone', async () => {
    const after = await crashAndRestart(false);
    expect(after.runs).toEqual(['wamid.1', 'wamid.1']);
    expect(after.firstMark).toBe(true);
    expect(after.size).toBe(0);
    expect(after.entry).toBeUndefined();
  });
});
