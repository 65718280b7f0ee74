import { assertInteger, assertKey, assertNumber, showValue } from '../validate.js';
import type {
  BeginDeliveryOptions,
  ClaimDueOptions,
  DeliveryAttempt,
  DeliveryAttemptInput,
  DeliveryStatusReport,
  RecordAttemptOptions,
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
  const checked: DeliveryStatusReport<E> = {
    status,
    rank,
    timestampMs,
    errors: report.errors ?? [],
  };
  const alias = report.alias === undefined ? undefined : assertKey('alias', report.alias);
  const schedule = report.schedule;
  if (schedule !== undefined && schedule !== 'close' && schedule !== 'wake') {
    throw new TypeError(`schedule must be 'close' or 'wake', got ${showValue(schedule)}`);
  }
  return {
    ...checked,
    ...(alias === undefined ? {} : { alias }),
    ...(schedule === undefined ? {} : { schedule }),
  };
}

function checkObject(name: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null) {
    throw new TypeError(`${name} must be an object, got ${showValue(value)}`);
  }
  return value as Record<string, unknown>;
}

/** A delay from now, in whole milliseconds (≥ 0). */
function checkDelay(name: string, value: unknown): number {
  return Math.ceil(assertNumber(name, value, 0, Number.MAX_SAFE_INTEGER));
}

/** Checks `begin`'s options. */
export function checkBeginOptions(options: BeginDeliveryOptions | undefined): {
  readonly alias: string | undefined;
  readonly sender: string | undefined;
  readonly dueInMs: number | undefined;
} {
  const o = checkObject('options', options);
  return {
    alias: o.alias === undefined ? undefined : assertKey('alias', o.alias),
    sender: o.sender === undefined ? undefined : assertKey('sender', o.sender),
    dueInMs: o.dueInMs === undefined ? undefined : checkDelay('dueInMs', o.dueInMs),
  };
}

/** Checks `recordAttempt`'s options; `dueInMs` is `undefined` for no change, `null` to close. */
export function checkAttemptOptions(options: RecordAttemptOptions | undefined): {
  readonly ifAttempts: number | undefined;
  readonly dueInMs: number | null | undefined;
} {
  const o = checkObject('options', options);
  return {
    ifAttempts: o.ifAttempts === undefined ? undefined : assertInteger('ifAttempts', o.ifAttempts),
    dueInMs:
      o.dueInMs === undefined || o.dueInMs === null ? o.dueInMs : checkDelay('dueInMs', o.dueInMs),
  };
}

/** Checks `claimDue`'s options. */
export function checkClaimOptions(options: ClaimDueOptions): ClaimDueOptions {
  const o = checkObject('options', options);
  return {
    limit: assertInteger('limit', o.limit, 1),
    leaseMs: Math.ceil(assertNumber('leaseMs', o.leaseMs, 1, Number.MAX_SAFE_INTEGER)),
  };
}

/** Checks `reschedule`'s arguments; returns the delay (`null`: out of the due index). */
export function checkReschedule(key: string, token: string, dueInMs: number | null): number | null {
  assertKey('key', key);
  assertKey('token', token);
  return dueInMs === null ? null : checkDelay('dueInMs', dueInMs);
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
