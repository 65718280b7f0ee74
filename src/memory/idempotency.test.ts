import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../testing/index.js';
import { createMemoryIdempotencyStore, MEMORY_IDEMPOTENCY_DEFAULTS } from './idempotency.js';

type Op = { kind: 'mark'; key: number; ttlMs: number } | { kind: 'advance'; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('mark' as const),
      key: fc.integer({ min: 0, max: 30 }),
      ttlMs: fc.integer({ min: 1, max: 5000 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.nat(3000) }) },
);

describe('createMemoryIdempotencyStore', () => {
  it('never holds more than maxEntries, whatever the mix of keys, TTLs and time', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        fc.array(op, { maxLength: 200 }),
        async (maxEntries, ops) => {
          const clock = createManualClock();
          const store = createMemoryIdempotencyStore({ maxEntries, clock });
          for (const o of ops) {
            if (o.kind === 'advance') await clock.advance(o.ms);
            else {
              await store.markOnce(`k${o.key}`, o.ttlMs);
              const claim = await store.claim(`c${o.key}`, { leaseMs: o.ttlMs });
              if (claim.status === 'claimed' && o.key % 2 === 0) {
                await store.complete(`c${o.key}`, claim.token, o.key, { resultTtlMs: o.ttlMs });
              }
            }
            expect(store.size).toBeLessThanOrEqual(maxEntries);
          }
        },
      ),
    );
  });

  it('answers markOnce as an LRU with TTL would: exact when the key is expired, new or recently used', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 8 }),
        fc.array(op, { maxLength: 300 }),
        async (maxEntries, ops) => {
          const clock = createManualClock();
          const store = createMemoryIdempotencyStore({ maxEntries, clock });
          // Model: when each key was marked (expiry) and last used (sequence of uses).
          const expiry = new Map<number, number>();
          const uses: number[] = [];
          for (const o of ops) {
            if (o.kind === 'advance') {
              await clock.advance(o.ms);
              continue;
            }
            const first = await store.markOnce(`k${o.key}`, o.ttlMs);
            const expiresAt = expiry.get(o.key);
            const live = expiresAt !== undefined && expiresAt > clock.now();
            const lastUse = uses.lastIndexOf(o.key);
            const othersSince = new Set(uses.slice(lastUse + 1)).size;
            if (!live) {
              // Never seen, or its TTL ran out: must be new.
              expect(first).toBe(true);
            } else if (othersSince < maxEntries) {
              // Live and fewer than maxEntries other keys used since: LRU must have kept it.
              expect(first).toBe(false);
            }
            if (first) expiry.set(o.key, clock.now() + o.ttlMs);
            uses.push(o.key);
          }
        },
      ),
    );
  });

  it('expires a mark exactly at ttlMs and a lease exactly at leaseMs', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 10_000_000 }), async (ms) => {
        const clock = createManualClock(5_000);
        const store = createMemoryIdempotencyStore({ maxEntries: 10, clock });
        expect(await store.markOnce('m', ms)).toBe(true);
        const claim = await store.claim('c', { leaseMs: ms });
        await clock.advance(ms - 1);
        expect(await store.markOnce('m', ms)).toBe(false);
        expect(await store.claim('c', { leaseMs: ms })).toEqual({
          status: 'in_progress',
          retryAfterMs: 1,
        });
        await clock.advance(1);
        expect(await store.markOnce('m', ms)).toBe(true);
        const next = await store.claim('c', { leaseMs: ms });
        expect(next.status).toBe('claimed');
        if (claim.status === 'claimed') {
          expect(await store.complete('c', claim.token, 'late', { resultTtlMs: ms })).toBe(false);
        }
      }),
    );
  });

  it('evicts expired entries before live ones', async () => {
    const clock = createManualClock();
    const store = createMemoryIdempotencyStore({ maxEntries: 3, clock });
    await store.markOnce('short', 10);
    await store.markOnce('long-1', 10_000);
    await store.markOnce('long-2', 10_000);
    await clock.advance(20);
    expect(store.size).toBe(3);
    await store.markOnce('long-3', 10_000);
    expect(store.size).toBe(3);
    expect(await store.markOnce('long-1', 10_000)).toBe(false);
    expect(await store.markOnce('long-2', 10_000)).toBe(false);
  });

  it('keeps a recently read key over an older untouched one', async () => {
    const store = createMemoryIdempotencyStore({ maxEntries: 2, clock: createManualClock() });
    await store.markOnce('a', 1000);
    await store.markOnce('b', 1000);
    expect(await store.markOnce('a', 1000)).toBe(false);
    await store.markOnce('c', 1000);
    expect(await store.markOnce('a', 1000)).toBe(false);
    expect(await store.markOnce('b', 1000)).toBe(true);
  });

  it('emits idempotency_hit for completed, in-progress and duplicate keys', async () => {
    const clock = createManualClock(7);
    const events: unknown[] = [];
    const store = createMemoryIdempotencyStore({
      maxEntries: 10,
      clock,
      onEvent: (e) => events.push(e),
    });
    const claim = await store.claim('k', { leaseMs: 100 });
    await store.claim('k', { leaseMs: 100 });
    if (claim.status === 'claimed') await store.complete('k', claim.token, 1, { resultTtlMs: 100 });
    await store.claim('k', { leaseMs: 100 });
    await store.markOnce('m', 100);
    await store.markOnce('m', 100);
    expect(events).toEqual([
      { type: 'idempotency_hit', time: 7, key: 'k', status: 'in_progress' },
      { type: 'idempotency_hit', time: 7, key: 'k', status: 'completed' },
      { type: 'idempotency_hit', time: 7, key: 'm', status: 'duplicate' },
    ]);
  });

  it('rejects bad options naming the option and the value', () => {
    expect(() => createMemoryIdempotencyStore({ maxEntries: 0 })).toThrow(/maxEntries.*0/);
    expect(() => createMemoryIdempotencyStore({ maxEntries: 1.5 })).toThrow(/maxEntries.*1\.5/);
    expect(() => createMemoryIdempotencyStore({ maxEntries: Number.NaN })).toThrow(
      /maxEntries.*NaN/,
    );
    expect(() => createMemoryIdempotencyStore({ maxEntries: 10, onEvent: 'log' as never })).toThrow(
      /onEvent.*"log"/,
    );
    expect(() => createMemoryIdempotencyStore(null as never)).toThrow(
      'options must be an object, got null',
    );
  });

  it('works without options, holding MEMORY_IDEMPOTENCY_DEFAULTS.maxEntries keys', async () => {
    expect(MEMORY_IDEMPOTENCY_DEFAULTS.maxEntries).toBe(100_000);
    const store = createMemoryIdempotencyStore();
    for (let key = 0; key <= 100_000; key++) await store.markOnce(`k${key}`, 60_000);
    expect(store.size).toBe(100_000);
    expect(await store.markOnce('k100000', 60_000)).toBe(false);
    expect(await store.markOnce('k0', 60_000)).toBe(true);
  });
});
