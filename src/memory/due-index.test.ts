import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../testing/index.js';
import { createMemoryDeliveryStore } from './delivery-store.js';
import { createDueIndex } from './due-index.js';

type Op =
  | { kind: 'set'; key: number; at: number }
  | { kind: 'delete'; key: number }
  | { kind: 'pop'; now: number };

const key = fc.integer({ min: 0, max: 15 });
const time = fc.integer({ min: 0, max: 50 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('set' as const), key, at: time }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), key }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('pop' as const), now: time }) },
);

/** The simple version: a map, filtered and sorted on every pop (by due time, then set order). */
function simpleIndex() {
  const due = new Map<string, { at: number; seq: number }>();
  let seq = 0;
  return {
    set: (k: string, at: number) => void due.set(k, { at, seq: seq++ }),
    delete: (k: string) => void due.delete(k),
    pop(now: number): string | undefined {
      const [first] = [...due]
        .filter(([, d]) => d.at <= now)
        .sort(([, a], [, b]) => a.at - b.at || a.seq - b.seq);
      if (first === undefined) return undefined;
      due.delete(first[0]);
      return first[0];
    },
    get: (k: string) => due.get(k)?.at,
    get size() {
      return due.size;
    },
  };
}

describe('createDueIndex', () => {
  it('pops what the simple sorted version pops, in the same order', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const index = createDueIndex();
        const model = simpleIndex();
        for (const o of ops) {
          if (o.kind === 'set') {
            index.set(`k${o.key}`, o.at);
            model.set(`k${o.key}`, o.at);
          } else if (o.kind === 'delete') {
            index.delete(`k${o.key}`);
            model.delete(`k${o.key}`);
          } else {
            expect(index.pop(o.now)).toBe(model.pop(o.now));
          }
          expect(index.size).toBe(model.size);
          // Stale nodes never pile up: at most twice the live keys, plus the slack.
          expect(index.nodes).toBeLessThanOrEqual(2 * index.size + 65);
        }
        for (let k = 0; k <= 15; k++) expect(index.get(`k${k}`)).toBe(model.get(`k${k}`));
        const drained: (string | undefined)[] = [];
        for (let k = 0; k <= 16; k++) drained.push(index.pop(Number.MAX_SAFE_INTEGER));
        const expected: (string | undefined)[] = [];
        for (let k = 0; k <= 16; k++) expected.push(model.pop(Number.MAX_SAFE_INTEGER));
        expect(drained).toEqual(expected);
      }),
    );
  });

  it('keeps its heap bounded when one key is rescheduled many times', () => {
    const index = createDueIndex();
    for (let i = 0; i < 10_000; i++) index.set('a', i);
    expect(index.nodes).toBeLessThanOrEqual(2 + 64 + 1);
    expect(index.pop(9_998)).toBeUndefined();
    expect(index.pop(9_999)).toBe('a');
    expect(index.size).toBe(0);
  });
});

describe('createMemoryDeliveryStore: claimDue', () => {
  it('claims the due records earliest first, up to the limit, as the simple version would', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant('due' as const), key, inMs: fc.nat(40) }),
            fc.record({ kind: fc.constant('close' as const), key }),
            fc.record({
              kind: fc.constant('claim' as const),
              limit: fc.integer({ min: 1, max: 5 }),
              leaseMs: fc.integer({ min: 1, max: 40 }),
            }),
            fc.record({ kind: fc.constant('advance' as const), ms: fc.nat(20) }),
          ),
          { maxLength: 120 },
        ),
        async (ops) => {
          const clock = createManualClock(1_000);
          const store = createMemoryDeliveryStore({ clock });
          const model = simpleIndex();
          for (const o of ops) {
            const k = o.kind === 'due' || o.kind === 'close' ? `k${o.key}` : '';
            if (o.kind === 'advance') {
              await clock.advance(o.ms);
            } else if (o.kind === 'due') {
              await store.begin(k, 0);
              await store.recordAttempt(
                k,
                { attemptId: `${k}#1`, at: clock.now() },
                { dueInMs: o.inMs },
              );
              model.set(k, clock.now() + o.inMs);
            } else if (o.kind === 'close') {
              const claimed = await store.recordAttempt(
                k,
                { attemptId: `${k}#1`, at: clock.now() },
                { dueInMs: null },
              );
              if (claimed.outcome !== 'missing') model.delete(k);
            } else {
              const claimed = await store.claimDue({ limit: o.limit, leaseMs: o.leaseMs });
              const expected: string[] = [];
              for (let i = 0; i < o.limit; i++) {
                const next = model.pop(clock.now());
                if (next === undefined) break;
                expected.push(next);
              }
              for (const e of expected) model.set(e, clock.now() + o.leaseMs);
              expect(claimed.map((c) => c.record.key)).toEqual(expected);
              for (const c of claimed) expect(c.record.dueAt).toBe(clock.now() + o.leaseMs);
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
