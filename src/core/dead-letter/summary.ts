import type { DeadLetterEntry } from './dead-letter-types.js';

/** A group of dead letters in a {@link DeadLetterSummary}. */
export interface DeadLetterGroup {
  readonly count: number;
  /** ISO 8601 `deadAt` of the group's oldest and newest entry. */
  readonly firstDeadAt: string;
  readonly lastDeadAt: string;
}

/** One recurring failure pattern: a reason with a platform code. */
export interface DeadLetterPattern extends DeadLetterGroup {
  readonly reason: string;
  /** As {@link deadLetterCode} gives it: `-` when the last failure had no code. */
  readonly code: string;
}

/** What {@link summarizeDeadLetters} returns. Maps are ordered by count, largest first. */
export interface DeadLetterSummary {
  readonly total: number;
  readonly byReason: Readonly<Record<string, number>>;
  readonly byCode: Readonly<Record<string, number>>;
  /** By UTC day of `deadAt` (`YYYY-MM-DD`), oldest day first. */
  readonly byDay: Readonly<Record<string, number>>;
  /** By reason and code together: the recurring patterns, largest first. */
  readonly patterns: readonly DeadLetterPattern[];
}

/** The fields of a dead letter that {@link summarizeDeadLetters} reads. */
export type SummarizedDeadLetter = Pick<DeadLetterEntry, 'reason' | 'deadAt' | 'attempts'>;

/**
 * The platform's (or the OS's) error code of an entry's last failure, as text (`'131026'`,
 * `'ECONNRESET'`); `'-'` when it had none.
 */
export function deadLetterCode(entry: SummarizedDeadLetter): string {
  const code = entry.attempts.at(-1)?.errorCode;
  return code === undefined ? '-' : String(code);
}

interface Mutable {
  count: number;
  firstDeadAt: string;
  lastDeadAt: string;
}

function add(map: Map<string, Mutable>, key: string, at: string): void {
  const g = map.get(key);
  if (g === undefined) {
    map.set(key, { count: 1, firstDeadAt: at, lastDeadAt: at });
    return;
  }
  g.count++;
  if (at < g.firstDeadAt) g.firstDeadAt = at;
  if (at > g.lastDeadAt) g.lastDeadAt = at;
}

function sorted(map: Map<string, Mutable>): [string, Mutable][] {
  return [...map].sort(([a, x], [b, y]) => y.count - x.count || a.localeCompare(b));
}

/**
 * Groups dead letters by reason, by platform code, by day and by reason with code (the
 * recurring patterns an on-call engineer looks for). Reads `entries` once; memory grows with
 * the number of distinct groups, not of entries. Only `reason`, `deadAt` and the last attempt
 * are read: keep just those (`{ reason, deadAt, attempts: attempts.slice(-1) }`) when
 * collecting many entries.
 *
 * @example
 * const all = [];
 * let cursor;
 * do {
 *   const page = await dlq.list({ cursor });
 *   all.push(...page.entries);
 *   cursor = page.cursor;
 * } while (cursor !== undefined);
 * const { patterns } = summarizeDeadLetters(all);
 */
export function summarizeDeadLetters(entries: Iterable<SummarizedDeadLetter>): DeadLetterSummary {
  const byReason = new Map<string, Mutable>();
  const byCode = new Map<string, Mutable>();
  const byDay = new Map<string, Mutable>();
  const patterns = new Map<string, Mutable>();
  let total = 0;
  for (const e of entries) {
    total++;
    const code = deadLetterCode(e);
    add(byReason, e.reason, e.deadAt);
    add(byCode, code, e.deadAt);
    add(byDay, e.deadAt.slice(0, 10), e.deadAt);
    add(patterns, `${e.reason}\u0000${code}`, e.deadAt);
  }
  const counts = (map: Map<string, Mutable>) =>
    Object.fromEntries(sorted(map).map(([k, g]) => [k, g.count]));
  return {
    total,
    byReason: counts(byReason),
    byCode: counts(byCode),
    byDay: Object.fromEntries(
      [...byDay].sort(([a], [b]) => a.localeCompare(b)).map(([k, g]) => [k, g.count]),
    ),
    patterns: sorted(patterns).map(([k, g]) => {
      const [reason = '', code = ''] = k.split('\u0000');
      return { reason, code, ...g };
    }),
  };
}
