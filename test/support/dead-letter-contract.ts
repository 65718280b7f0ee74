import fc from 'fast-check';
import type { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import {
  type DeadLetterEntry,
  type DeadLetterOrigin,
  type DeadLetterQueue,
  type EventListener,
  InvalidRecordError,
  type NewDeadLetter,
  type Reason,
  type RetrykitEvent,
} from '../../src/index.js';

/** What a contract run needs from an adapter. */
export interface ContractSubject {
  readonly dlq: DeadLetterQueue<{ n: number; text?: string }>;
  /** Makes every lease taken with `leaseMs: LEASE_MS` run out. */
  expireLeases(): Promise<void>;
  /** Moves every claim and not-before time `ms` milliseconds closer, as if that much time passed. */
  passTime(ms: number): Promise<void>;
}

/** The lease used by the takeover tests, in milliseconds. */
export const LEASE_MS = 20;

export type SubjectFactory = (options: { onEvent?: EventListener }) => Promise<ContractSubject>;

const AT = '2026-01-02T03:04:05.000Z';

export function letter(
  n: number,
  reason: Reason = 'server_error',
  extra: Partial<NewDeadLetter<{ n: number; text?: string }>> = {},
): NewDeadLetter<{ n: number; text?: string }> {
  return {
    id: `m-${n}`,
    payload: { n },
    reason,
    disposition: reason === 'schema_mismatch' ? 'permanent' : 'exhausted',
    attempts: [{ message: `HTTP ${n}`, errorCode: 503, reason, at: AT }],
    firstAttemptAt: AT,
    lastAttemptAt: AT,
    ...extra,
  };
}

async function listAll<P>(
  dlq: DeadLetterQueue<P>,
  options: { limit?: number; reason?: Reason } = {},
): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await dlq.list({ ...options, ...(cursor === undefined ? {} : { cursor }) });
    pages++;
    ids.push(...page.entries.map((e) => e.id));
    cursor = page.cursor;
  } while (cursor !== undefined);
  return { ids, pages };
}

function httpError(status: number): Error & { status: number } {
  return Object.assign(new Error(`HTTP ${status}`), { status });
}

/** The behaviour every `DeadLetterQueue` adapter must have. */
export function deadLetterContract(name: string, make: SubjectFactory): void {
  describe(`DeadLetterQueue contract: ${name}`, () => {
    it('adds an entry, filling id and deadAt, and keeps the first of two with one id', async () => {
      const events: RetrykitEvent[] = [];
      const { dlq } = await make({ onEvent: (e) => events.push(e) });
      const { id: _id, ...withoutId } = letter(1);
      const added = await dlq.add(withoutId);
      expect(added.id).toMatch(/.+/);
      expect(Date.parse(added.deadAt)).not.toBeNaN();
      expect(await dlq.get(added.id)).toEqual(added);

      const first = await dlq.add(letter(2, 'timeout', { payload: { n: 2, text: 'first' } }));
      const second = await dlq.add(letter(2, 'network', { payload: { n: 2, text: 'second' } }));
      expect(second).toEqual(first);
      expect((await dlq.get('m-2'))?.payload).toEqual({ n: 2, text: 'first' });
      expect(await dlq.size()).toBe(2);
      expect(await dlq.get('absent')).toBeUndefined();
      expect(events.map((e) => e.type === 'dead_letter' && [e.id, e.reason])).toEqual([
        [added.id, 'server_error'],
        ['m-2', 'timeout'],
      ]);
    });

    it('keeps the payload, classification, attempts and times as given', async () => {
      const { dlq } = await make({});
      const entry = letter(3, 'schema_mismatch', {
        payload: { n: 3, text: 'ünïcödé "quoted" \n' },
        attempts: [
          { message: 'first', reason: 'server_error', at: '2026-01-01T00:00:00.000Z' },
          { message: 'second', errorCode: 'E_SCHEMA', reason: 'schema_mismatch', at: AT },
        ],
        firstAttemptAt: '2026-01-01T00:00:00.000Z',
        deadAt: '2026-01-03T00:00:00.000Z',
        source: 'webhooks',
      });
      const stored = await dlq.add(entry);
      expect(stored).toEqual(entry);
      expect(await dlq.get('m-3')).toEqual(entry);
    });

    it('lists oldest first, a page at a time, with and without a reason filter', async () => {
      const { dlq } = await make({});
      for (let n = 0; n < 25; n++) {
        await dlq.add(letter(n, n % 3 === 0 ? 'rate_limited' : 'server_error'));
      }
      const all = await listAll(dlq, { limit: 10 });
      expect(all.ids).toEqual(Array.from({ length: 25 }, (_, n) => `m-${n}`));
      expect(all.pages).toBe(3);
      const limited = await listAll(dlq, { limit: 3, reason: 'rate_limited' });
      expect(limited.ids).toEqual([0, 3, 6, 9, 12, 15, 18, 21, 24].map((n) => `m-${n}`));
      expect(limited.pages).toBe(3);
      expect((await dlq.list({ reason: 'auth' })).entries).toEqual([]);
      const exact = await dlq.list({ limit: 25 });
      expect(exact.entries).toHaveLength(25);
      expect(exact.cursor).toBeUndefined();
    });

    it('pages through any set of entries without losing or repeating one', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 0, max: 30 }),
          fc.integer({ min: 1, max: 12 }),
          fc.uniqueArray(fc.integer({ min: 0, max: 29 })),
          async (count, limit, removed) => {
            const { dlq } = await make({});
            for (let n = 0; n < count; n++) await dlq.add(letter(n));
            for (const n of removed) await dlq.remove(`m-${n}`);
            const expected = Array.from({ length: count }, (_, n) => n)
              .filter((n) => !removed.includes(n))
              .map((n) => `m-${n}`);
            const { ids, pages } = await listAll(dlq, { limit });
            expect(ids).toEqual(expected);
            expect(pages).toBe(Math.max(1, Math.ceil(expected.length / limit)));
          },
        ),
        { numRuns: 15 },
      );
    });

    it('removes one entry and purges all', async () => {
      const { dlq } = await make({});
      for (let n = 0; n < 5; n++) await dlq.add(letter(n, n < 2 ? 'auth' : 'timeout'));
      expect(await dlq.remove('m-1')).toBe(true);
      expect(await dlq.remove('m-1')).toBe(false);
      expect(await dlq.get('m-1')).toBeUndefined();
      expect((await dlq.list({ reason: 'auth' })).entries.map((e) => e.id)).toEqual(['m-0']);
      expect(await dlq.size()).toBe(4);
      expect(await dlq.purge()).toBe(4);
      expect(await dlq.size()).toBe(0);
      expect((await dlq.list()).entries).toEqual([]);
      expect((await dlq.list({ reason: 'timeout' })).entries).toEqual([]);
      await dlq.add(letter(1, 'auth'));
      expect((await dlq.list({ reason: 'auth' })).entries.map((e) => e.id)).toEqual(['m-1']);
    });

    it('redrives: a success removes the entry, a failure keeps it with the failure appended', async () => {
      const { dlq } = await make({});
      for (let n = 0; n < 4; n++) await dlq.add(letter(n));
      const seen: number[] = [];
      const report = await dlq.redrive({}, async (entry) => {
        seen.push(entry.payload.n);
        if (entry.payload.n % 2 === 1) throw httpError(503);
      });
      expect(seen).toEqual([0, 1, 2, 3]);
      expect(report).toEqual({ redriven: ['m-0', 'm-2'], failed: ['m-1', 'm-3'], skipped: [] });
      expect(await dlq.size()).toBe(2);
      const kept = (await dlq.get('m-1')) as DeadLetterEntry;
      expect(kept.attempts).toHaveLength(2);
      expect(kept.attempts[1]).toMatchObject({
        message: 'HTTP 503',
        reason: 'service_unavailable',
      });
      expect(kept.lastAttemptAt).toBe(kept.attempts[1]?.at);
      expect(kept.firstAttemptAt).toBe(AT);
      expect(kept.reason).toBe('server_error');
    });

    it('redrives by ids, by reason with a limit, and by predicate', async () => {
      const { dlq } = await make({});
      for (let n = 0; n < 6; n++) await dlq.add(letter(n, n < 3 ? 'timeout' : 'network'));
      const ok = async (): Promise<void> => {};
      expect(await dlq.redrive({ ids: ['m-4', 'missing'] }, ok)).toEqual({
        redriven: ['m-4'],
        failed: [],
        skipped: ['missing'],
      });
      expect((await dlq.redrive({ reason: 'timeout', limit: 2 }, ok)).redriven).toEqual([
        'm-0',
        'm-1',
      ]);
      expect((await dlq.redrive((e) => e.payload.n === 5, ok)).redriven).toEqual(['m-5']);
      expect((await listAll(dlq)).ids).toEqual(['m-2', 'm-3']);
    });

    it('leaves entries added during a redrive to the next one', async () => {
      const { dlq } = await make({});
      await dlq.add(letter(0));
      await dlq.add(letter(1));
      let next = 100;
      const report = await dlq.redrive({}, async () => {
        await dlq.add(letter(next++));
      });
      expect(report.redriven).toEqual(['m-0', 'm-1']);
      expect((await listAll(dlq)).ids).toEqual(['m-100', 'm-101']);
    });

    it('redrives each entry once when consumers redrive at the same time', async () => {
      const { dlq } = await make({});
      for (let n = 0; n < 40; n++) await dlq.add(letter(n));
      const runs = new Map<number, number>();
      const handler = async (entry: DeadLetterEntry<{ n: number }>): Promise<void> => {
        runs.set(entry.payload.n, (runs.get(entry.payload.n) ?? 0) + 1);
        await new Promise((resolve) => setImmediate(resolve));
      };
      const reports = await Promise.all([
        dlq.redrive({}, handler),
        dlq.redrive({}, handler),
        dlq.redrive({ reason: 'server_error' }, handler),
      ]);
      const redriven = reports.flatMap((r) => r.redriven);
      expect(new Set(redriven).size).toBe(40);
      expect(redriven).toHaveLength(40);
      expect([...runs.values()].every((count) => count === 1)).toBe(true);
      expect(runs.size).toBe(40);
      expect(await dlq.size()).toBe(0);
    });

    it('lets another consumer take an entry over once the lease of a stuck one runs out', async () => {
      const { dlq, expireLeases } = await make({});
      await dlq.add(letter(0));
      let unblock = (): void => {};
      let started = (): void => {};
      const running = new Promise<void>((resolve) => {
        started = resolve;
      });
      const stuck = dlq.redrive(
        {},
        () => {
          started();
          return new Promise<void>((resolve) => {
            unblock = resolve;
          });
        },
        { leaseMs: LEASE_MS, backoff: { initialDelayMs: LEASE_MS, jitter: 'none' } },
      );
      await running;
      const ok = async (): Promise<void> => {};
      expect(await dlq.redrive({ ids: ['m-0'] }, ok)).toMatchObject({ skipped: ['m-0'] });
      await expireLeases();
      expect(await dlq.redrive({ ids: ['m-0'] }, ok)).toMatchObject({ redriven: ['m-0'] });
      unblock();
      expect((await stuck).redriven).toEqual(['m-0']);
      expect(await dlq.size()).toBe(0);
    });

    it('runs a failing entry at most once per redrive backoff, however many consumers redrive', async () => {
      const { dlq, passTime } = await make({});
      for (let n = 0; n < 12; n++) await dlq.add(letter(n));
      const backoff = { initialDelayMs: 1_000, multiplier: 2, jitter: 'none' } as const;
      const round = async (): Promise<{ runs: Map<number, number>; failed: string[] }> => {
        const runs = new Map<number, number>();
        const reports = await Promise.all(
          [0, 1, 2, 3].map(() =>
            dlq.redrive(
              {},
              async (entry) => {
                runs.set(entry.payload.n, (runs.get(entry.payload.n) ?? 0) + 1);
                await new Promise((resolve) => setImmediate(resolve));
                throw httpError(503);
              },
              { backoff },
            ),
          ),
        );
        return { runs, failed: reports.flatMap((r) => r.failed) };
      };
      const everyOnce = (runs: Map<number, number>): void => {
        expect(runs.size).toBe(12);
        expect([...runs.values()].every((count) => count === 1)).toBe(true);
      };

      const first = await round();
      everyOnce(first.runs);
      expect(first.failed.sort()).toEqual(Array.from({ length: 12 }, (_, n) => `m-${n}`).sort());
      const entry = (await dlq.get('m-0')) as DeadLetterEntry;
      expect(entry.redriveFailures).toBe(1);
      expect(Date.parse(entry.notBefore as string) - Date.parse(entry.lastAttemptAt)).toBe(1_000);
      expect((await round()).runs.size).toBe(0);
      expect((await dlq.redrive({ ids: ['m-0'] }, () => {}, { backoff })).skipped).toEqual(['m-0']);

      await passTime(1_000);
      everyOnce((await round()).runs);
      expect((await dlq.get('m-0'))?.redriveFailures).toBe(2);
      await passTime(1_000);
      expect((await round()).runs.size).toBe(0);
      await passTime(1_000);
      everyOnce((await round()).runs);
      expect(await dlq.size()).toBe(12);
    });

    it('holds a claimed entry for its backoff, so a consumer that dies mid-run is not followed at once', async () => {
      const { dlq, passTime } = await make({});
      await dlq.add(letter(0));
      const backoff = { initialDelayMs: 1_000, jitter: 'none' } as const;
      let started = (): void => {};
      const running = new Promise<void>((resolve) => {
        started = resolve;
      });
      void dlq.redrive(
        {},
        () => {
          started();
          return new Promise<void>(() => {});
        },
        { leaseMs: LEASE_MS, backoff },
      );
      await running;
      const ok = async (): Promise<void> => {};
      await passTime(LEASE_MS);
      expect(await dlq.redrive({}, ok, { leaseMs: LEASE_MS, backoff })).toMatchObject({
        skipped: ['m-0'],
      });
      await passTime(1_000);
      expect(await dlq.redrive({}, ok, { backoff })).toMatchObject({ redriven: ['m-0'] });
      expect(await dlq.size()).toBe(0);
    });

    it('holds an entry redriven by id for the backoff of its own failure count', async () => {
      const { dlq, passTime } = await make({});
      await dlq.add(letter(0, 'server_error', { redriveFailures: 2 }));
      const backoff = { initialDelayMs: 1_000, multiplier: 2, jitter: 'none' } as const;
      let started = (): void => {};
      const running = new Promise<void>((resolve) => {
        started = resolve;
      });
      void dlq.redrive(
        { ids: ['m-0'] },
        () => {
          started();
          return new Promise<void>(() => {});
        },
        { leaseMs: LEASE_MS, backoff },
      );
      await running;
      const ok = async (): Promise<void> => {};
      await passTime(2_000);
      expect((await dlq.redrive({ ids: ['m-0'] }, ok, { backoff })).skipped).toEqual(['m-0']);
      await passTime(2_000);
      expect((await dlq.redrive({ ids: ['m-0'] }, ok, { backoff })).redriven).toEqual(['m-0']);
    });

    it('stops a redrive when its signal aborts', async () => {
      const { dlq } = await make({});
      for (let n = 0; n < 5; n++) await dlq.add(letter(n));
      const controller = new AbortController();
      const seen: number[] = [];
      const reason = new Error('stop');
      await expect(
        dlq.redrive(
          {},
          (entry) => {
            seen.push(entry.payload.n);
            if (entry.payload.n === 1) controller.abort(reason);
          },
          { signal: controller.signal },
        ),
      ).rejects.toBe(reason);
      expect(seen).toEqual([0, 1]);
      expect((await listAll(dlq)).ids).toEqual(['m-2', 'm-3', 'm-4']);
    });

    it('rejects malformed entries and options with errors that name them', async () => {
      const { dlq } = await make({});
      const bad = { ...letter(1), reason: 'bogus' } as unknown as NewDeadLetter<{ n: number }>;
      await expect(dlq.add(bad)).rejects.toMatchObject({
        name: 'InvalidRecordError',
        code: 'INVALID_RECORD',
        field: 'entry.reason',
      });
      await expect(
        dlq.add(
          letter(2, 'timeout', {
            attempts: [{ message: 'x', reason: 'timeout', at: 'yesterday' }],
          }),
        ),
      ).rejects.toThrow(/entry\.attempts\[0\]\.at must be an ISO 8601 time, got "yesterday"/);
      await expect(
        dlq.add(letter(3, 'timeout', { payload: undefined as never })),
      ).rejects.toBeInstanceOf(InvalidRecordError);
      await expect(dlq.list({ cursor: 'abc' })).rejects.toThrow(/cursor must be a cursor/);
      await expect(dlq.list({ limit: 0 })).rejects.toThrow(/limit/);
      await expect(dlq.list({ reason: 'nope' as Reason })).rejects.toThrow(/reason must be one of/);
      await expect(dlq.redrive({}, 'x' as never)).rejects.toThrow(/handler must be a function/);
      await expect(dlq.redrive({}, () => {}, { leaseMs: -1 })).rejects.toThrow(/leaseMs/);
      await expect(
        dlq.redrive({}, () => {}, { backoff: { initialDelayMs: Number.NaN } }),
      ).rejects.toThrow('backoff.initialDelayMs must be a number, got NaN');
      await expect(dlq.add(letter(4, 'timeout', { redriveFailures: -1 }))).rejects.toMatchObject({
        field: 'entry.redriveFailures',
      });
      await expect(dlq.add(letter(5, 'timeout', { notBefore: 'soon' }))).rejects.toMatchObject({
        field: 'entry.notBefore',
      });
      const origin = (o: unknown) => letter(6, 'timeout', { origin: o as never });
      await expect(dlq.add(origin({ kind: 'carrier-pigeon' }))).rejects.toThrow(
        /entry\.origin\.kind must be one of bullmq, send, webhook, status, got "carrier-pigeon"/,
      );
      await expect(dlq.add(origin({ kind: 'bullmq', queue: 'q' }))).rejects.toMatchObject({
        field: 'entry.origin.jobId',
      });
      await expect(dlq.add(origin('q'))).rejects.toMatchObject({ field: 'entry.origin' });
      expect(await dlq.size()).toBe(0);
    });

    it('keeps each entry’s structured origin beside its source, and reads entries without one', async () => {
      const { dlq } = await make({});
      const origins: DeadLetterOrigin[] = [
        { kind: 'bullmq', queue: 'sends', jobId: '42', jobName: 'send' },
        { kind: 'send', key: 'order-7' },
        { kind: 'send' },
        { kind: 'webhook', webhookId: 'b0dy', path: '$.entry[0]' },
        { kind: 'status', key: 'order-8' },
      ];
      for (const [i, origin] of origins.entries()) {
        await dlq.add(letter(i, 'server_error', { origin, source: `s${i}` }));
      }
      await dlq.add(letter(9));
      const { entries } = await dlq.list();
      expect(entries.map((e) => e.origin)).toEqual([...origins, undefined]);
      expect(entries.map((e) => e.source)).toEqual(['s0', 's1', 's2', 's3', 's4', undefined]);
      expect((await dlq.get('m-0'))?.origin).toEqual(origins[0]);
      // Extra fields of an origin are not stored.
      const extra = { kind: 'send', key: 'k', secret: 'x' } as unknown as DeadLetterOrigin;
      expect((await dlq.add(letter(10, 'timeout', { origin: extra }))).origin).toEqual({
        kind: 'send',
        key: 'k',
      });
    });
  });
}

/**
 * The Redis queue's `passTime`: moves every claim and not-before time of the queue at `prefix`
 * `ms` milliseconds earlier (they are kept on the Redis server's clock, which a test can't
 * advance).
 */
export async function passRedisTime(
  redis: Redis | Cluster,
  prefix: string,
  ms: number,
): Promise<void> {
  const leases = `{${prefix}:dead-letters}:leases`;
  for (const [id, value] of Object.entries(await redis.hgetall(leases))) {
    const colon = value.indexOf(':');
    await redis.hset(leases, id, `${Number(value.slice(0, colon)) - ms}${value.slice(colon)}`);
  }
}
