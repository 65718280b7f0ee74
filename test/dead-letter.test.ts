import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEAD_LETTER_DEFAULTS } from '../src/core/dead-letter/redrive.js';
import { computeDelay, createMemoryDeadLetterQueue, StoreUnavailableError } from '../src/index.js';
import { createRedisDeadLetterQueue } from '../src/redis/index.js';
import { createManualClock } from '../src/testing/index.js';
import {
  deadLetterContract,
  LEASE_MS,
  letter,
  passRedisTime,
} from './support/dead-letter-contract.js';
import {
  connectRedis,
  describeOwnRedis,
  describeRedis,
  ownRedisServer,
  ready,
  uniquePrefix,
} from './support/redis.js';

/** A dead letter as retrykit 0.1 wrote it: each attempt's platform code under `code`. */
const WRITTEN_BY_0_1 = `{
  "id": "wamid.old",
  "payload": { "n": 1 },
  "reason": "rate_limited",
  "disposition": "exhausted",
  "attempts": [
    { "message": "(#130429) Rate limit hit", "code": 130429, "reason": "rate_limited", "at": "2025-06-01T10:00:00.000Z" },
    { "message": "socket hang up", "code": "ECONNRESET", "reason": "network", "at": "2025-06-01T10:00:02.000Z" },
    { "message": "HTTP 503", "reason": "service_unavailable", "at": "2025-06-01T10:00:06.000Z" }
  ],
  "firstAttemptAt": "2025-06-01T10:00:00.000Z",
  "lastAttemptAt": "2025-06-01T10:00:06.000Z",
  "deadAt": "2025-06-01T10:00:06.000Z",
  "source": "whatsapp.send"
}`;

const READ_AS_0_2 = [
  {
    message: '(#130429) Rate limit hit',
    errorCode: 130429,
    reason: 'rate_limited',
    at: '2025-06-01T10:00:00.000Z',
  },
  {
    message: 'socket hang up',
    errorCode: 'ECONNRESET',
    reason: 'network',
    at: '2025-06-01T10:00:02.000Z',
  },
  { message: 'HTTP 503', reason: 'service_unavailable', at: '2025-06-01T10:00:06.000Z' },
];

deadLetterContract('memory', async ({ onEvent }) => {
  const clock = createManualClock(Date.parse('2026-01-02T00:00:00Z'));
  const dlq = createMemoryDeadLetterQueue<{ n: number; text?: string }>({
    clock,
    ...(onEvent === undefined ? {} : { onEvent }),
  });
  return {
    dlq,
    expireLeases: () => clock.advance(LEASE_MS),
    passTime: (ms) => clock.advance(ms),
  };
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

  it('keeps a failed entry from every redrive for exactly its backoff delay', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.double({ min: 1, max: 4, noNaN: true }),
        fc.integer({ min: 1, max: 100_000_000 }),
        fc.integer({ min: 1, max: 6 }),
        async (initialDelayMs, multiplier, maxDelayMs, failures) => {
          const clock = createManualClock(0);
          const dlq = createMemoryDeadLetterQueue<{ n: number }>({ clock });
          await dlq.add(letter(0));
          const backoff = { initialDelayMs, multiplier, maxDelayMs, jitter: 'none' } as const;
          const fail = (): never => {
            throw new Error('down');
          };
          for (let k = 0; k < failures; k++) {
            expect((await dlq.redrive({}, fail, { backoff })).failed).toEqual(['m-0']);
            const delay = Math.ceil(computeDelay(k, backoff));
            const entry = await dlq.get('m-0');
            expect(entry?.redriveFailures).toBe(k + 1);
            expect(Date.parse(entry?.notBefore ?? '')).toBe(clock.now() + delay);
            if (delay > 1) {
              await clock.advance(delay - 1);
              expect((await dlq.redrive({}, fail, { backoff })).skipped).toEqual(['m-0']);
              await clock.advance(1);
            } else {
              await clock.advance(delay);
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('uses a 1 min redrive backoff by default, doubling up to 1 h', async () => {
    const clock = createManualClock(0);
    const dlq = createMemoryDeadLetterQueue<{ n: number }>({ clock });
    await dlq.add(letter(0));
    const waits: number[] = [];
    for (let k = 0; k < 8; k++) {
      await dlq.redrive({}, () => Promise.reject(new Error('down')));
      const notBefore = Date.parse((await dlq.get('m-0'))?.notBefore ?? '');
      waits.push(notBefore - clock.now());
      await clock.advance(notBefore - clock.now());
    }
    expect(waits).toEqual([
      60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000, 3_600_000,
    ]);
    expect(DEAD_LETTER_DEFAULTS.backoff).toEqual({
      initialDelayMs: 60_000,
      multiplier: 2,
      maxDelayMs: 3_600_000,
      jitter: 'none',
    });
  });

  it('keeps the not-before time of an entry added with one', async () => {
    const clock = createManualClock(Date.parse('2026-01-02T00:00:00Z'));
    const dlq = createMemoryDeadLetterQueue<{ n: number }>({ clock });
    await dlq.add(letter(0, 'timeout', { notBefore: '2026-01-02T00:00:10.000Z' }));
    expect((await dlq.redrive({}, () => {})).skipped).toEqual(['m-0']);
    await clock.advance(10_000);
    expect((await dlq.redrive({}, () => {})).redriven).toEqual(['m-0']);
  });

  it("reads a 0.1 entry's attempt `code` as `errorCode` (a replayed fallback file)", async () => {
    const dlq = createMemoryDeadLetterQueue();
    const stored = await dlq.add(JSON.parse(WRITTEN_BY_0_1));
    expect(stored.attempts).toEqual(READ_AS_0_2);
    expect((await dlq.get('wamid.old'))?.attempts).toEqual(READ_AS_0_2);
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
    const prefix = uniquePrefix('dlq');
    const dlq = createRedisDeadLetterQueue<{ n: number; text?: string }>(redis, {
      prefix,
      ...(onEvent === undefined ? {} : { onEvent }),
    });
    return {
      dlq,
      expireLeases: () => new Promise((resolve) => setTimeout(resolve, LEASE_MS + 10)),
      passTime: (ms) => passRedisTime(redis, prefix, ms),
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

  it('runs each always-failing entry once per round with 4 consumers on separate connections', async () => {
    const prefix = uniquePrefix('dlq-rounds');
    const workers = [0, 1, 2, 3].map(() => createRedisDeadLetterQueue(connectRedis(), { prefix }));
    for (let n = 0; n < 80; n++) await workers[0]?.add(letter(n));
    const backoff = { initialDelayMs: 5_000, jitter: 'none' } as const;
    const round = async (): Promise<number[]> => {
      const runs = new Map<string, number>();
      await Promise.all(
        workers.map((dlq) =>
          dlq.redrive(
            {},
            async (entry) => {
              runs.set(entry.id, (runs.get(entry.id) ?? 0) + 1);
              await new Promise((resolve) => setImmediate(resolve));
              throw new Error('still down');
            },
            { backoff },
          ),
        ),
      );
      return [...runs.values()];
    };
    for (let r = 0; r < 3; r++) {
      const counts = await round();
      expect(counts).toHaveLength(80);
      expect(counts.every((count) => count === 1)).toBe(true);
      expect(await round()).toEqual([]);
      await passRedisTime(redis, prefix, backoff.initialDelayMs * 2 ** r);
    }
    const entry = await workers[2]?.get('m-7');
    expect(entry?.redriveFailures).toBe(3);
    expect(entry?.attempts).toHaveLength(4);
  });

  it("reads a 0.1 entry's attempt `code` as `errorCode`, and writes it back as `errorCode`", async () => {
    const prefix = uniquePrefix('dlq-0-1');
    const dlq = createRedisDeadLetterQueue(redis, { prefix });
    const entries = `{${prefix}:dead-letters}:entries`;
    await dlq.add({ ...JSON.parse(WRITTEN_BY_0_1), attempts: [] });
    await redis.hset(entries, 'wamid.old', WRITTEN_BY_0_1);
    expect((await dlq.get('wamid.old'))?.attempts).toEqual(READ_AS_0_2);
    expect((await dlq.list()).entries[0]?.attempts).toEqual(READ_AS_0_2);
    expect(await dlq.add(JSON.parse(WRITTEN_BY_0_1))).toMatchObject({ attempts: READ_AS_0_2 });
    let redriven: unknown;
    const report = await dlq.redrive({ ids: ['wamid.old'] }, (entry) => {
      redriven = entry.attempts;
      throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    });
    expect(report.failed).toEqual(['wamid.old']);
    expect(redriven).toEqual(READ_AS_0_2);
    const rewritten = JSON.parse((await redis.hget(entries, 'wamid.old')) ?? 'null');
    expect(rewritten.attempts).toEqual([
      ...READ_AS_0_2,
      expect.objectContaining({ errorCode: 'ECONNRESET', reason: 'network' }),
    ]);
    for (const attempt of rewritten.attempts) expect(attempt).not.toHaveProperty('code');
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
    expect(() => createRedisDeadLetterQueue(redis, { prefix: 'p', commandTimeoutMs: -1 })).toThrow(
      'commandTimeoutMs must be a finite number >= 0, got -1',
    );
    expect(() =>
      createRedisDeadLetterQueue(redis, { prefix: 'p', timeoutMs: 500 } as never),
    ).toThrow('timeoutMs was renamed in retrykit 0.2: use commandTimeoutMs');
  });
});

describeOwnRedis('createRedisDeadLetterQueue with Redis down', () => {
  it('rejects with StoreUnavailableError, never a wrong answer', async () => {
    const server = await ownRedisServer();
    const redis = connectRedis(server.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
    redis.on('error', () => {});
    await ready(redis);
    const dlq = createRedisDeadLetterQueue(redis, { prefix: 'down', commandTimeoutMs: 500 });
    await dlq.add(letter(1));
    await server.stop();
    await expect(dlq.add(letter(2))).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(dlq.size()).rejects.toMatchObject({ operation: 'deadLetter.size' });
    await expect(dlq.redrive({}, () => {})).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});
