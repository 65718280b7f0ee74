import { describe, expect, it } from 'vitest';
import { createMemoryDeadLetterQueue, StoreUnavailableError } from '../src/index.js';
import { createRedisDeadLetterQueue } from '../src/redis/index.js';
import { createManualClock } from '../src/testing/index.js';
import { deadLetterContract, LEASE_MS, letter } from './support/dead-letter-contract.js';
import {
  connectRedis,
  describeOwnRedis,
  describeRedis,
  ownRedisServer,
  ready,
  uniquePrefix,
} from './support/redis.js';

deadLetterContract('memory', async ({ onEvent }) => {
  const clock = createManualClock(Date.parse('2026-01-02T00:00:00Z'));
  const dlq = createMemoryDeadLetterQueue<{ n: number; text?: string }>({
    clock,
    ...(onEvent === undefined ? {} : { onEvent }),
  });
  return { dlq, expireLeases: () => clock.advance(LEASE_MS) };
});

describe('createMemoryDeadLetterQueue', () => {
  it('refuses an entry once full rather than drop one it accepted', async () => {
    const dlq = createMemoryDeadLetterQueue({ maxEntries: 2 });
    await dlq.add(letter(1));
    await dlq.add(letter(2));
    await expect(dlq.add(letter(3))).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(await dlq.add(letter(2))).toMatchObject({ id: 'm-2' });
    expect(await dlq.size()).toBe(2);
  });

  it('validates its options', () => {
    expect(() => createMemoryDeadLetterQueue({ maxEntries: 0 })).toThrow(
      /^maxEntries must be a finite number between 1 and \d+, got 0$/,
    );
    expect(() => createMemoryDeadLetterQueue({ onEvent: 1 as never })).toThrow(
      'onEvent must be a function, got 1',
    );
  });
});

describeRedis('createRedisDeadLetterQueue', () => {
  const redis = connectRedis();
  deadLetterContract('redis', async ({ onEvent }) => {
    const dlq = createRedisDeadLetterQueue<{ n: number; text?: string }>(redis, {
      prefix: uniquePrefix('dlq'),
      ...(onEvent === undefined ? {} : { onEvent }),
    });
    return {
      dlq,
      expireLeases: () => new Promise((resolve) => setTimeout(resolve, LEASE_MS + 10)),
    };
  });

  it('keeps entries for a new client with the same prefix (a restarted worker)', async () => {
    const prefix = uniquePrefix('dlq-restart');
    const before = createRedisDeadLetterQueue(connectRedis(), { prefix });
    await before.add(letter(1));
    await before.add(letter(2, 'auth'));
    const after = createRedisDeadLetterQueue(connectRedis(), { prefix });
    expect(await after.size()).toBe(2);
    expect((await after.list({ reason: 'auth' })).entries.map((e) => e.id)).toEqual(['m-2']);
  });

  it('redrives each entry once across workers on separate connections', async () => {
    const prefix = uniquePrefix('dlq-workers');
    const workers = [0, 1, 2].map(() => createRedisDeadLetterQueue(connectRedis(), { prefix }));
    for (let n = 0; n < 60; n++) await workers[0]?.add(letter(n));
    const runs: string[] = [];
    const reports = await Promise.all(
      workers.map((dlq) =>
        dlq.redrive({}, async (entry) => {
          runs.push(entry.id);
          await new Promise((resolve) => setImmediate(resolve));
        }),
      ),
    );
    expect(runs).toHaveLength(60);
    expect(new Set(runs).size).toBe(60);
    expect(reports.flatMap((r) => r.redriven).sort()).toEqual([...runs].sort());
    expect(await workers[1]?.size()).toBe(0);
  });

  it('keeps every key of one queue under one hash tag (one cluster slot)', async () => {
    const prefix = uniquePrefix('dlq-slot');
    const dlq = createRedisDeadLetterQueue(redis, { prefix });
    await dlq.add(letter(1, 'auth'));
    await dlq.add(letter(2, 'timeout'));
    await dlq.redrive({ ids: ['m-1'] }, () => {
      throw new Error('still down');
    });
    const keys = await redis.keys(`*${prefix}*`);
    expect(keys.length).toBeGreaterThanOrEqual(6);
    for (const key of keys) expect(key.startsWith(`{${prefix}:dead-letters}:`)).toBe(true);
    expect(await dlq.purge()).toBe(2);
    expect(await redis.keys(`*${prefix}*`)).toEqual([`{${prefix}:dead-letters}:seq`]);
  });

  it('validates its options', () => {
    expect(() => createRedisDeadLetterQueue(redis, { prefix: '' })).toThrow(
      'prefix must not be empty',
    );
    expect(() => createRedisDeadLetterQueue(redis, { prefix: 'a{b}' })).toThrow(/prefix/);
    expect(() => createRedisDeadLetterQueue(redis, { prefix: 'p', timeoutMs: -1 })).toThrow(
      'timeoutMs must be a finite number >= 0, got -1',
    );
  });
});

describeOwnRedis('createRedisDeadLetterQueue with Redis down', () => {
  it('rejects with StoreUnavailableError, never a wrong answer', async () => {
    const server = await ownRedisServer();
    const redis = connectRedis(server.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
    redis.on('error', () => {});
    await ready(redis);
    const dlq = createRedisDeadLetterQueue(redis, { prefix: 'down', timeoutMs: 500 });
    await dlq.add(letter(1));
    await server.stop();
    await expect(dlq.add(letter(2))).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(dlq.size()).rejects.toMatchObject({ operation: 'deadLetter.size' });
    await expect(dlq.redrive({}, () => {})).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});
