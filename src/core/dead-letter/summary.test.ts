import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { REASONS } from '../classify-types.js';
import type { DeadLetterEntry } from './dead-letter-types.js';
import { deadLetterCode, summarizeDeadLetters } from './summary.js';

const entry = fc.record({
  id: fc.string(),
  reason: fc.constantFrom(...REASONS),
  code: fc.option(fc.constantFrom(131026, 130429, 'ECONNRESET', 500), { nil: undefined }),
  deadAt: fc
    .integer({ min: Date.UTC(2026, 0, 1), max: Date.UTC(2026, 0, 9) })
    .map((t) => new Date(t).toISOString()),
});

function toEntry(e: {
  id: string;
  reason: DeadLetterEntry['reason'];
  code: string | number | undefined;
  deadAt: string;
}): DeadLetterEntry {
  return {
    id: e.id,
    payload: null,
    reason: e.reason,
    disposition: 'exhausted',
    attempts: [
      {
        message: 'm',
        reason: e.reason,
        at: e.deadAt,
        ...(e.code === undefined ? {} : { errorCode: e.code }),
      },
    ],
    firstAttemptAt: e.deadAt,
    lastAttemptAt: e.deadAt,
    deadAt: e.deadAt,
  };
}

const sum = (counts: Readonly<Record<string, number>>): number =>
  Object.values(counts).reduce((a, b) => a + b, 0);

describe('summarizeDeadLetters', () => {
  it('every grouping adds up to the total; patterns largest first, within their time span', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 60 }), (raw) => {
        const entries = raw.map(toEntry);
        const s = summarizeDeadLetters(entries);
        expect(s.total).toBe(entries.length);
        expect(sum(s.byReason)).toBe(s.total);
        expect(sum(s.byCode)).toBe(s.total);
        expect(sum(s.byDay)).toBe(s.total);
        expect(s.patterns.reduce((a, p) => a + p.count, 0)).toBe(s.total);
        for (const [a, b] of s.patterns.slice(1).map((p, i) => [s.patterns[i], p] as const)) {
          expect(a?.count).toBeGreaterThanOrEqual(b.count);
        }
        for (const p of s.patterns) {
          const mine = entries.filter((e) => e.reason === p.reason && deadLetterCode(e) === p.code);
          expect(mine.length).toBe(p.count);
          expect(p.firstDeadAt).toBe(mine.map((e) => e.deadAt).sort()[0]);
          expect(p.lastDeadAt).toBe(
            mine
              .map((e) => e.deadAt)
              .sort()
              .at(-1),
          );
        }
        expect(Object.keys(s.byDay)).toEqual(Object.keys(s.byDay).sort());
      }),
    );
  });

  it("names a missing code '-'", () => {
    const e = toEntry({
      id: 'a',
      reason: 'network',
      code: undefined,
      deadAt: '2026-01-01T00:00:00.000Z',
    });
    expect(deadLetterCode(e)).toBe('-');
    expect(summarizeDeadLetters([e]).byCode).toEqual({ '-': 1 });
  });
});
