import { assertInteger, assertKey, showValue } from '../validate.js';
import type {
  DeliveryAttempt,
  DeliveryAttemptInput,
  DeliveryStatusReport,
} from './delivery-types.js';
import { foldByRank } from './status-rank.js';

/** The defaults shared by every delivery store. */
export const DELIVERY_STORE_DEFAULTS = Object.freeze({
  /** Seven days, in milliseconds. */
  recordTtlMs: 7 * 24 * 60 * 60 * 1000,
});

/** Checks `recordAttempt`'s arguments; returns the attempt with only known fields. */
export function checkAttempt(key: string, attempt: DeliveryAttemptInput): DeliveryAttemptInput {
  assertKey('key', key);
  if (typeof attempt !== 'object' || attempt === null) {
    throw new TypeError(`attempt must be an object, got ${showValue(attempt)}`);
  }
  const attemptId = assertKey('attemptId', attempt.attemptId);
  const at = assertInteger('at', attempt.at);
  if (attempt.externalId === undefined) return { attemptId, at };
  return { attemptId, externalId: assertKey('externalId', attempt.externalId), at };
}

/** Checks `applyStatus`'s arguments. */
export function checkReport<E>(
  externalId: string,
  report: DeliveryStatusReport<E>,
): DeliveryStatusReport<E> {
  assertKey('externalId', externalId);
  if (typeof report !== 'object' || report === null) {
    throw new TypeError(`report must be an object, got ${showValue(report)}`);
  }
  const status = assertKey('status', report.status);
  const rank = assertInteger('rank', report.rank, 1);
  const timestampMs = assertInteger('timestampMs', report.timestampMs);
  if (report.errors !== undefined && !Array.isArray(report.errors)) {
    throw new TypeError(`errors must be an array, got ${showValue(report.errors)}`);
  }
  return { status, rank, timestampMs, errors: report.errors ?? [] };
}

/** A new attempt, before any status. */
export function newAttempt<E>(input: DeliveryAttemptInput): DeliveryAttempt<E> {
  return {
    attemptId: input.attemptId,
    externalId: input.externalId,
    at: input.at,
    status: undefined,
    rank: 0,
    statusAt: undefined,
    statusTimes: {},
    errors: [],
  };
}

/**
 * Folds `report` into `attempt` by {@link foldByRank}; `changed` tells whether the status
 * moved. `statusTimes` keeps each status's earliest payload time whatever the rank.
 */
export function applyReport<E>(
  attempt: DeliveryAttempt<E>,
  report: DeliveryStatusReport<E>,
): { readonly attempt: DeliveryAttempt<E>; readonly changed: boolean } {
  const known = attempt.statusTimes[report.status];
  const statusTimes =
    known === undefined || report.timestampMs < known
      ? { ...attempt.statusTimes, [report.status]: report.timestampMs }
      : attempt.statusTimes;
  const current =
    attempt.status === undefined || attempt.statusAt === undefined
      ? undefined
      : { rank: attempt.rank, timestampMs: attempt.statusAt };
  const next = foldByRank(current, report);
  if (next === current) return { attempt: { ...attempt, statusTimes }, changed: false };
  return {
    attempt: {
      ...attempt,
      status: report.status,
      rank: report.rank,
      statusAt: report.timestampMs,
      statusTimes,
      errors: report.errors ?? [],
    },
    changed: true,
  };
}
