import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../testing/index.js';
import { createMemoryDeliveryStore, MEMORY_DELIVERY_STORE_DEFAULTS } from './delivery-store.js';

type Op =
  | { kind: 'send'; key: number; attempt: number }
  | { kind: 'status'; key: number; attempt: number }
  | { kind: 'read'; key: number }
  | { kind: 'advance'; ms: number };

const key = fc.integer({ min: 0, max: 20 });
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('send' as const), key, attempt: fc.nat(2) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('status' as const), key, attempt: fc.nat(2) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('read' as const), key }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.nat(3_000) }) },
);

describe('createMemoryDeliveryStore', () => {
  it('never holds more than maxEntries, and an external id outlives no record', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 5_000 }),
        fc.array(op, { maxLength: 200 }),
        async (maxEntries, recordTtlMs, ops) => {
          const clock = createManualClock(1_000_000);
          const store = createMemoryDeliveryStore({ maxEntries, recordTtlMs, clock });
          for (const o of ops) {
            if (o.kind === 'advance') await clock.advance(o.ms);
            else if (o.kind === 'read') await store.get(`k${o.key}`);
            else if (o.kind === 'send') {
              await store.begin(`k${o.key}`, o.key);
              await store.recordAttempt(`k${o.key}`, {
                attemptId: `a${o.attempt}`,
                externalId: `w${o.key}.${o.attempt}`,
                at: clock.now(),
              });
            } else {
              await store.applyStatus(`w${o.key}.${o.attempt}`, {
                status: 'sent',
                rank: 1,
                timestampMs: clock.now(),
              });
            }
            expect(store.size).toBeLessThanOrEqual(maxEntries);
          }
          for (let k = 0; k <= 20; k++) {
            const record = await store.get(`k${k}`);
            for (let a = 0; a <= 2; a++) {
              const found = await store.findKey(`w${k}.${a}`);
              const held = record?.attempts.some((x) => x.externalId === `w${k}.${a}`) ?? false;
              expect(found).toBe(held ? `k${k}` : undefined);
            }
          }
        },
      ),
    );
  });

  it('evicts the least recently used record first', async () => {
    const store = createMemoryDeliveryStore({ maxEntries: 2, clock: createManualClock() });
    await store.begin('a', 1);
    await store.begin('b', 2);
    await store.get('a');
    await store.begin('c', 3);
    expect(await store.get('b')).toBeUndefined();
    expect((await store.get('a'))?.payload).toBe(1);
    expect(store.size).toBe(2);
    store.clear();
    expect(store.size).toBe(0);
  });

  it('hands out frozen records', async () => {
    const store = createMemoryDeliveryStore();
    const { record } = await store.begin('a', { to: '1' });
    expect(Object.isFrozen(record)).toBe(true);
    expect(Object.isFrozen(record.attempts)).toBe(true);
  });

  it('validates its options, naming the option and the value', () => {
    expect(MEMORY_DELIVERY_STORE_DEFAULTS).toEqual({
      maxEntries: 100_000,
      recordTtlMs: 7 * 24 * 60 * 60 * 1000,
    });
    expect(() => createMemoryDeliveryStore({ maxEntries: 0 })).toThrow(
      /maxEntries must be .*, got 0/,
    );
    expect(() => createMemoryDeliveryStore({ maxEntries: 1.5 })).toThrow(
      /maxEntries must be an integer, got 1.5/,
    );
    expect(() => createMemoryDeliveryStore({ recordTtlMs: 0 })).toThrow(
      /recordTtlMs must be .*, got 0/,
    );
    expect(() => createMemoryDeliveryStore(null as never)).toThrow(/options must be an object/);
  });
});
