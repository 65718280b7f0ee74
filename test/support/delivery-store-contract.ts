import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DeliveryStatusReport, DeliveryStore } from '../../src/index.js';

/** A store under test and a way to move its time forward. */
export interface DeliveryContractHarness {
  readonly store: DeliveryStore<unknown, { readonly errorCode: number }>;
  /** Moves the store's time forward by `ms` milliseconds (records run out). */
  advance(ms: number): Promise<void>;
  /** The store's `recordTtlMs`. */
  readonly recordTtlMs: number;
}

const T = 1_700_000_000_000;
const report = (
  status: string,
  rank: number,
  timestampMs: number,
  errors: readonly { readonly errorCode: number }[] = [],
): DeliveryStatusReport<{ readonly errorCode: number }> => ({ status, rank, timestampMs, errors });
const SENT = report('sent', 1, T + 1_000);
const DELIVERED = report('delivered', 2, T + 2_000);
const READ = report('read', 3, T + 3_000);
const FAILED = report('failed', 5, T + 4_000, [{ errorCode: 131026 }]);

/**
 * The behaviour every {@link DeliveryStore} adapter must show. Time only moves through
 * `advance`, by margins far above the milliseconds a real store's own clock adds meanwhile.
 */
export function deliveryStoreContract(
  name: string,
  setup: () => Promise<DeliveryContractHarness>,
): void {
  describe(`DeliveryStore contract: ${name}`, () => {
    it('begins a record once: the same key returns the first record and keeps its payload', async () => {
      const { store } = await setup();
      const payload = { to: '15550001', text: { body: 'hi' }, tags: [], n: 1.5 };
      const first = await store.begin('order-1', payload);
      expect(first.created).toBe(true);
      expect(first.record).toMatchObject({ key: 'order-1', payload, attempts: [] });
      expect(typeof first.record.createdAt).toBe('number');
      const second = await store.begin('order-1', { other: true });
      expect(second).toEqual({ created: false, record: first.record });
      expect(await store.get('order-1')).toEqual(first.record);
      expect(await store.get('order-2')).toBeUndefined();
    });

    it('records each physical send as its own attempt, with its external id', async () => {
      const { store } = await setup();
      await store.begin('k', { a: 1 });
      await store.recordAttempt('k', { attemptId: 'k#1', at: T });
      const filled = await store.recordAttempt('k', {
        attemptId: 'k#1',
        externalId: 'wamid.1',
        at: T + 5,
      });
      expect(filled.outcome).toBe('recorded');
      await store.recordAttempt('k', { attemptId: 'k#2', externalId: 'wamid.2', at: T + 10 });
      // An attempt recorded again keeps its first external id and time.
      await store.recordAttempt('k', { attemptId: 'k#2', externalId: 'wamid.X', at: T + 99 });
      const record = await store.get('k');
      expect(record?.attempts).toEqual([
        {
          attemptId: 'k#1',
          externalId: 'wamid.1',
          at: T,
          status: undefined,
          rank: 0,
          statusAt: undefined,
          statusTimes: {},
          errors: [],
        },
        {
          attemptId: 'k#2',
          externalId: 'wamid.2',
          at: T + 10,
          status: undefined,
          rank: 0,
          statusAt: undefined,
          statusTimes: {},
          errors: [],
        },
      ]);
      expect(await store.findKey('wamid.1')).toBe('k');
      expect(await store.findKey('wamid.2')).toBe('k');
      expect(await store.findKey('wamid.X')).toBeUndefined();
    });

    it('answers missing for an attempt of a key never begun, and writes nothing', async () => {
      const { store } = await setup();
      expect(
        await store.recordAttempt('nope', { attemptId: 'a', externalId: 'wamid.n', at: T }),
      ).toEqual({ outcome: 'missing' });
      expect(await store.get('nope')).toBeUndefined();
      expect(await store.findKey('wamid.n')).toBeUndefined();
    });

    it('applies statuses by rank: a late lower status is stale but its time is kept', async () => {
      const { store } = await setup();
      await store.begin('k', 'p');
      await store.recordAttempt('k', { attemptId: 'k#1', externalId: 'wamid.1', at: T });
      expect(await store.applyStatus('wamid.1', READ)).toMatchObject({
        outcome: 'applied',
        key: 'k',
        attemptId: 'k#1',
      });
      const late = await store.applyStatus('wamid.1', DELIVERED);
      expect(late.outcome).toBe('stale');
      expect((await store.applyStatus('wamid.1', READ)).outcome).toBe('stale');
      const attempt = (await store.get('k'))?.attempts[0];
      expect(attempt).toMatchObject({
        status: 'read',
        rank: 3,
        statusAt: READ.timestampMs,
        statusTimes: { read: READ.timestampMs, delivered: DELIVERED.timestampMs },
        errors: [],
      });
      if (late.outcome !== 'unknown') expect(late.record.attempts[0]).toEqual(attempt);
    });

    it('keeps the earliest report of one rank, and a failed status with its errors is final', async () => {
      const { store } = await setup();
      await store.begin('k', 'p');
      await store.recordAttempt('k', { attemptId: 'k#1', externalId: 'wamid.1', at: T });
      await store.applyStatus('wamid.1', report('delivered', 2, T + 9_000));
      expect((await store.applyStatus('wamid.1', DELIVERED)).outcome).toBe('applied');
      expect((await store.get('k'))?.attempts[0]?.statusAt).toBe(DELIVERED.timestampMs);
      expect((await store.applyStatus('wamid.1', FAILED)).outcome).toBe('applied');
      expect((await store.applyStatus('wamid.1', READ)).outcome).toBe('stale');
      expect((await store.get('k'))?.attempts[0]).toMatchObject({
        status: 'failed',
        statusAt: FAILED.timestampMs,
        errors: [{ errorCode: 131026 }],
      });
    });

    it("keeps each attempt's status apart: a re-send is not the failed first send", async () => {
      const { store } = await setup();
      await store.begin('k', 'p');
      await store.recordAttempt('k', { attemptId: 'k#1', externalId: 'wamid.1', at: T });
      await store.applyStatus('wamid.1', FAILED);
      await store.recordAttempt('k', { attemptId: 'k#2', externalId: 'wamid.2', at: T + 5_000 });
      await store.applyStatus('wamid.2', report('delivered', 2, T + 6_000));
      const attempts = (await store.get('k'))?.attempts ?? [];
      expect(attempts.map((a) => [a.externalId, a.status])).toEqual([
        ['wamid.1', 'failed'],
        ['wamid.2', 'delivered'],
      ]);
    });

    it('keeps every whole-millisecond time exactly, up to Number.MAX_SAFE_INTEGER', async () => {
      const { store } = await setup();
      const big = Number.MAX_SAFE_INTEGER;
      await store.begin('k', 'p');
      await store.recordAttempt('k', { attemptId: 'k#1', externalId: 'wamid.1', at: big - 7 });
      await store.applyStatus('wamid.1', report('sent', 1, big - 3));
      await store.applyStatus('wamid.1', report('sent', 1, big - 2));
      await store.applyStatus('wamid.1', report('delivered', 2, big));
      expect((await store.get('k'))?.attempts[0]).toMatchObject({
        at: big - 7,
        statusAt: big,
        statusTimes: { sent: big - 3, delivered: big },
      });
    });

    it('reports a status for an unknown external id as unknown, and creates nothing', async () => {
      const { store } = await setup();
      expect(await store.applyStatus('wamid.stranger', SENT)).toEqual({ outcome: 'unknown' });
      expect(await store.findKey('wamid.stranger')).toBeUndefined();
      await store.begin('k', 'p');
      await store.recordAttempt('k', { attemptId: 'k#1', at: T });
      expect(await store.applyStatus('wamid.stranger', SENT)).toEqual({ outcome: 'unknown' });
      expect((await store.get('k'))?.attempts[0]?.status).toBeUndefined();
    });

    it('forgets a record and its external ids recordTtlMs after its last write', async () => {
      const { store, advance, recordTtlMs } = await setup();
      await store.begin('k', 'p');
      await advance(recordTtlMs / 2);
      await store.recordAttempt('k', { attemptId: 'k#1', externalId: 'wamid.1', at: T });
      await advance(recordTtlMs / 2 + 1_000);
      expect((await store.get('k'))?.attempts).toHaveLength(1);
      await advance(recordTtlMs / 2);
      expect(await store.get('k')).toBeUndefined();
      expect(await store.findKey('wamid.1')).toBeUndefined();
      expect(await store.applyStatus('wamid.1', SENT)).toEqual({ outcome: 'unknown' });
      expect((await store.begin('k', 'again')).created).toBe(true);
    });

    it('refuses bad arguments with the name and the value', async () => {
      const { store } = await setup();
      await expect(store.begin('', 'p')).rejects.toThrow(RangeError);
      await expect(store.recordAttempt('k', { attemptId: 'a', at: Number.NaN })).rejects.toThrow(
        /at must be a number, got NaN/,
      );
      await expect(store.applyStatus('w', report('sent', 0, T))).rejects.toThrow(
        /rank must be .*, got 0/,
      );
      await expect(store.applyStatus('w', report('sent', 1.5, T))).rejects.toThrow(
        /rank must be an integer, got 1.5/,
      );
    });

    it('folds any permutation of the same statuses, with duplicates, into the same record', async () => {
      const { store } = await setup();
      const reports = [
        report('sent', 1, T + 1_000),
        report('delivered', 2, T + 2_000),
        report('delivered', 2, T + 2_500),
        report('read', 3, T + 3_000),
        report('failed', 5, T + 4_000, [{ errorCode: 131049 }]),
        report('failed', 5, T + 4_500, [{ errorCode: 131000 }]),
      ];
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.integer({ min: 0, max: reports.length - 1 }), {
            minLength: 1,
            maxLength: 12,
          }),
          async (picks) => {
            const key = `perm-${run++}`;
            const externalId = `wamid.${key}`;
            await store.begin(key, 'p');
            await store.recordAttempt(key, { attemptId: `${key}#1`, externalId, at: T });
            for (const i of picks) {
              const r = reports[i];
              if (r !== undefined) await store.applyStatus(externalId, r);
            }
            const got = (await store.get(key))?.attempts[0];
            const chosen = [...new Set(picks)].sort();
            // The same set of distinct reports, in canonical order, on a fresh record.
            const refKey = `${key}-ref`;
            await store.begin(refKey, 'p');
            await store.recordAttempt(refKey, {
              attemptId: `${key}#1`,
              externalId: `${externalId}-ref`,
              at: T,
            });
            for (const i of chosen) {
              const r = reports[i];
              if (r !== undefined) await store.applyStatus(`${externalId}-ref`, r);
            }
            const ref = (await store.get(refKey))?.attempts[0];
            expect({ ...got, externalId: undefined }).toEqual({ ...ref, externalId: undefined });
            const top = Math.max(...chosen.map((i) => reports[i]?.rank ?? 0));
            expect(got?.rank).toBe(top);
            if (chosen.includes(4)) expect(got?.errors).toEqual([{ errorCode: 131049 }]);
          },
        ),
        { numRuns: 40 },
      );
    });

    it('hands a due record to one claimer at a time, and again when its lease runs out', async () => {
      const { store, advance } = await setup();
      await store.begin('k', 'p', { dueInMs: 10_000 });
      await store.begin('never', 'p');
      expect(await store.claimDue({ limit: 10, leaseMs: 5_000 })).toEqual([]);
      await advance(11_000);
      const [first, ...rest] = await store.claimDue({ limit: 10, leaseMs: 5_000 });
      expect(rest).toEqual([]);
      expect(first?.record).toMatchObject({ key: 'k', payload: 'p', attempts: [] });
      expect(first?.record.dueAt).toEqual(expect.any(Number));
      expect(await store.claimDue({ limit: 10, leaseMs: 5_000 })).toEqual([]);
      await advance(6_000);
      const [again] = await store.claimDue({ limit: 10, leaseMs: 5_000 });
      expect(again?.record.key).toBe('k');
      expect(again?.token).not.toBe(first?.token);
      // The first claimer's lease is over: its reschedule is refused and changes nothing.
      expect(await store.reschedule('k', first?.token ?? '', null)).toBe(false);
      expect(await store.reschedule('k', again?.token ?? '', null)).toBe(true);
      expect((await store.get('k'))?.dueAt).toBeUndefined();
      await advance(60_000 - 20_000);
      expect(await store.claimDue({ limit: 10, leaseMs: 5_000 })).toEqual([]);
    });

    it('reschedules a lease by delay, and refuses a token a status or a new schedule replaced', async () => {
      const { store, advance } = await setup();
      await store.begin('k', 'p', { dueInMs: 0 });
      await store.recordAttempt('k', { attemptId: 'k#1', externalId: 'wamid.1', at: T });
      const [claim] = await store.claimDue({ limit: 1, leaseMs: 30_000 });
      expect(await store.reschedule('k', claim?.token ?? '', 2_000)).toBe(true);
      await advance(3_000);
      const [next] = await store.claimDue({ limit: 1, leaseMs: 30_000 });
      expect(next?.record.key).toBe('k');
      // A failed status of the latest attempt wakes the record: the lease holder must not
      // overwrite that wake-up.
      await store.applyStatus('wamid.1', { ...FAILED, schedule: 'wake' });
      expect(await store.reschedule('k', next?.token ?? '', 50_000)).toBe(false);
      const [woken] = await store.claimDue({ limit: 1, leaseMs: 30_000 });
      expect(woken?.record.attempts[0]?.status).toBe('failed');
      // A schedule written with an attempt replaces the token too.
      await store.recordAttempt('k', { attemptId: 'k#2', at: T }, { dueInMs: 0 });
      expect(await store.reschedule('k', woken?.token ?? '', null)).toBe(false);
      expect(await store.claimDue({ limit: 1, leaseMs: 30_000 })).toHaveLength(1);
      expect(await store.reschedule('gone', '1', null)).toBe(false);
    });

    it('closes or wakes a record only by a status of its latest attempt', async () => {
      const { store } = await setup();
      await store.begin('k', 'p', { dueInMs: 60_000 });
      await store.recordAttempt('k', { attemptId: 'k#1', externalId: 'wamid.1', at: T });
      await store.recordAttempt('k', { attemptId: 'k#2', externalId: 'wamid.2', at: T });
      await store.applyStatus('wamid.1', { ...FAILED, schedule: 'wake' });
      expect(await store.claimDue({ limit: 5, leaseMs: 1_000 })).toEqual([]);
      await store.applyStatus('wamid.2', { ...DELIVERED, schedule: 'close' });
      expect((await store.get('k'))?.dueAt).toBeUndefined();
      await store.applyStatus('wamid.2', { ...FAILED, schedule: 'wake' });
      const [woken] = await store.claimDue({ limit: 5, leaseMs: 1_000 });
      expect(woken?.record.attempts.map((a) => a.status)).toEqual(['failed', 'failed']);
    });

    it('fences attempts: only the writer that saw n attempts adds attempt n+1', async () => {
      const { store } = await setup();
      await store.begin('k', 'p');
      await store.recordAttempt('k', { attemptId: 'k#1', at: T });
      const results = await Promise.all([
        store.recordAttempt('k', { attemptId: 'k#2', at: T + 1 }, { ifAttempts: 1 }),
        store.recordAttempt('k', { attemptId: 'k#2b', at: T + 2 }, { ifAttempts: 1 }),
      ]);
      expect(results.map((r) => r.outcome).sort()).toEqual(['conflict', 'recorded']);
      const conflict = results.find((r) => r.outcome === 'conflict');
      expect(conflict?.outcome === 'conflict' && conflict.record.attempts).toHaveLength(2);
      expect((await store.get('k'))?.attempts).toHaveLength(2);
      await expect(
        store.recordAttempt('k', { attemptId: 'x', at: T }, { ifAttempts: -1 }),
      ).rejects.toThrow(/ifAttempts must be .*, got -1/);
      await expect(store.claimDue({ limit: 0, leaseMs: 1 })).rejects.toThrow(
        /limit must be .*, got 0/,
      );
      await expect(store.claimDue({ limit: 1, leaseMs: Number.NaN })).rejects.toThrow(
        /leaseMs must be a number, got NaN/,
      );
      await expect(store.reschedule('k', '1', -5)).rejects.toThrow(/dueInMs must be .*, got -5/);
      await expect(store.begin('k', 'p', { dueInMs: Infinity })).rejects.toThrow(/dueInMs/);
    });

    it('attaches an unknown external id by alias to the latest attempt without one', async () => {
      const { store } = await setup();
      await store.begin('k', 'p', { alias: 'tag-k', dueInMs: 60_000 });
      await store.recordAttempt('k', { attemptId: 'k#1', at: T });
      expect(await store.applyStatus('wamid.lost', { ...SENT, alias: 'tag-other' })).toEqual({
        outcome: 'unknown',
      });
      const applied = await store.applyStatus('wamid.lost', { ...SENT, alias: 'tag-k' });
      expect(applied).toMatchObject({
        outcome: 'applied',
        key: 'k',
        attemptId: 'k#1',
        attached: true,
      });
      expect(await store.findKey('wamid.lost')).toBe('k');
      // Known now: the next status finds it by its external id.
      expect(
        await store.applyStatus('wamid.lost', { ...DELIVERED, alias: 'tag-k', schedule: 'close' }),
      ).toMatchObject({
        outcome: 'applied',
        attached: false,
      });
      const record = await store.get('k');
      expect(record?.attempts[0]).toMatchObject({ externalId: 'wamid.lost', status: 'delivered' });
      expect(record?.dueAt).toBeUndefined();
      // No attempt left without an external id: nothing to attach to.
      expect(await store.applyStatus('wamid.third', { ...SENT, alias: 'tag-k' })).toEqual({
        outcome: 'unknown',
      });
      // The first begin's alias is kept.
      await store.begin('k', 'p', { alias: 'tag-new' });
      expect(await store.applyStatus('wamid.x', { ...SENT, alias: 'tag-new' })).toEqual({
        outcome: 'unknown',
      });
    });

    it('keeps the sender of the first begin, through every write and claim', async () => {
      const { store } = await setup();
      const made = await store.begin('k', 'p', { sender: '1555000111', dueInMs: 0 });
      expect(made.record.sender).toBe('1555000111');
      expect((await store.begin('k', 'q', { sender: '1555000222' })).record.sender).toBe(
        '1555000111',
      );
      await store.recordAttempt('k', { attemptId: 'k#1', externalId: 'wamid.s', at: T });
      await store.applyStatus('wamid.s', SENT);
      expect((await store.get('k'))?.sender).toBe('1555000111');
      const [claimed] = await store.claimDue({ limit: 5, leaseMs: 60_000 });
      expect(claimed?.record).toMatchObject({ key: 'k', sender: '1555000111' });
      // None given: none kept, and a later begin can't add one.
      expect((await store.begin('none', 'p')).record.sender).toBeUndefined();
      expect((await store.begin('none', 'p', { sender: '1555000111' })).record.sender).toBe(
        undefined,
      );
      expect((await store.get('none'))?.sender).toBeUndefined();
      await expect(store.begin('bad', 'p', { sender: '' })).rejects.toThrow(/sender/);
    });

    it('drops expired records from the due index without handing them out', async () => {
      const { store, advance, recordTtlMs } = await setup();
      await store.begin('old', 'p', { dueInMs: recordTtlMs * 2 });
      await advance(recordTtlMs / 2);
      await store.begin('young', 'p', { dueInMs: 0 });
      await advance(recordTtlMs / 2 + 1_000);
      await advance(recordTtlMs * 2);
      expect(await store.claimDue({ limit: 5, leaseMs: 1_000 })).toEqual([]);
      await store.begin('fresh', 'p', { dueInMs: 0 });
      const claimed = await store.claimDue({ limit: 5, leaseMs: 1_000 });
      expect(claimed.map((c) => c.record.key)).toEqual(['fresh']);
    });

    it('claims at most limit due records, earliest first, never one twice within its lease', async () => {
      const { store, advance } = await setup();
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.uniqueArray(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 8 }),
          fc.integer({ min: 1, max: 10 }),
          fc.integer({ min: 0, max: 25 }),
          async (steps, limit, waitSteps) => {
            run++;
            // Due times 2 s apart and the claim 1 s away from the nearest: far above what a real
            // store's own clock adds between the calls, even on a busy machine; every time stays
            // within the record TTL (60 s) of the suites.
            const delays = steps.map((n) => n * 2_000);
            const wait = waitSteps * 2_000 + 1_000;
            const keys = delays.map((_, i) => `prop-${run}-${i}`);
            for (const [i, key] of keys.entries()) {
              await store.begin(key, 'p', { dueInMs: delays[i] ?? 0 });
            }
            await advance(wait);
            const claimed = [];
            for (let round = 0; round < 3; round++) {
              const batch = await store.claimDue({ limit, leaseMs: 3_600_000 });
              expect(batch.length).toBeLessThanOrEqual(limit);
              claimed.push(...batch.map((c) => c.record.key));
            }
            expect(new Set(claimed).size).toBe(claimed.length);
            const due = keys.filter((_, i) => (delays[i] ?? 0) < wait);
            const order = [...due].sort(
              (x, y) => (delays[keys.indexOf(x)] ?? 0) - (delays[keys.indexOf(y)] ?? 0),
            );
            expect(claimed).toEqual(order.slice(0, Math.min(due.length, limit * 3)));
            // Leave nothing due for the next run (the latest due time is 40 s away).
            await advance(45_000);
            let left = await store.claimDue({ limit: 100, leaseMs: 3_600_000 });
            while (left.length > 0) {
              for (const c of left) await store.reschedule(c.record.key, c.token, null);
              left = await store.claimDue({ limit: 100, leaseMs: 3_600_000 });
            }
          },
        ),
        { numRuns: 15 },
      );
    });
  });
}
