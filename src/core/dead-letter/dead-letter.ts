import type { Classification } from '../classify-types.js';
import { type Clock, systemClock } from '../clock.js';
import { hasDerivedClassification, PermanentError, RetryError } from '../errors.js';
import { classify as defaultClassify } from '../retry/classify.js';
import type {
  DeadLetterAttempt,
  DeadLetterEntry,
  DeadLetterOrigin,
  NewDeadLetter,
} from './dead-letter-types.js';
import { attemptOf } from './failure.js';
import {
  expectAttempts,
  expectIsoTime,
  expectObject,
  expectReason,
  expectString,
  InvalidRecordError,
} from './retry-record.js';

/** Anything dead letters (or other records) can be written to: a `DeadLetterQueue`, a file sink. */
export interface Sink<T> {
  add(entry: T): Promise<unknown>;
}

/** Options of {@link toDeadLetter}. */
export interface ToDeadLetterOptions<P> {
  /** The whole payload, enough to redo the work. */
  readonly payload: P;
  /** The entry's id; the queue makes one up when absent. Use a stable id (a message id) to make adding twice harmless. */
  readonly id?: string;
  /** Where it came from, as a label (a queue name, `whatsapp.send`). */
  readonly source?: string;
  /** Where it came from, as structured data: what a redrive needs to run it again. */
  readonly origin?: DeadLetterOrigin;
  /**
   * Earlier failures the error itself doesn't carry (e.g. kept on a queue job), oldest first.
   * They come before the error's own.
   */
  readonly history?: readonly DeadLetterAttempt[];
  /** Classifies an error that is neither a `RetryError` nor a `PermanentError` with a verdict. @default classify */
  readonly classify?: (error: unknown) => Classification;
  /** Dates the failure when the error doesn't. @default systemClock */
  readonly clock?: Pick<Clock, 'now'>;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * Builds the dead letter for a failure, ready for `dlq.add()`:
 * - `RetryError` (retries ran out): disposition `exhausted`, one attempt per failure it kept;
 * - `PermanentError` (not worth retrying): disposition `permanent`, the reason it was given,
 *   after the transient failures `retry` saw before it;
 * - anything else is classified: permanent when not retryable, otherwise exhausted.
 *
 * @example
 * try {
 *   await retry(() => send(message), options);
 * } catch (error) {
 *   await dlq.add(toDeadLetter(error, { payload: message, id: message.id, source: 'send' }));
 * }
 */
export function toDeadLetter<P>(error: unknown, options: ToDeadLetterOptions<P>): NewDeadLetter<P> {
  const clock = options.clock ?? systemClock;
  const classify = options.classify ?? defaultClassify;
  const history = options.history ?? [];
  let own: DeadLetterAttempt[];
  let disposition: 'permanent' | 'exhausted';
  let reason: DeadLetterAttempt['reason'];
  if (error instanceof RetryError) {
    disposition = 'exhausted';
    reason = error.reason;
    own = error.errors.map((f) =>
      attemptOf(f.error, { retryable: true, reason: f.reason }, iso(f.time)),
    );
    if (own.length === 0) own = [attemptOf(error, { retryable: true, reason }, iso(clock.now()))];
  } else {
    const c =
      error instanceof PermanentError
        ? hasDerivedClassification(error) || error.classification === undefined
          ? { ...classify(error.cause), retryable: false }
          : error.classification
        : classify(error);
    disposition = c.retryable ? 'exhausted' : 'permanent';
    reason = c.reason;
    const earlier = error instanceof PermanentError ? (error.errors?.slice(0, -1) ?? []) : [];
    const last = error instanceof PermanentError ? error.errors?.at(-1) : undefined;
    const cause =
      error instanceof PermanentError && error.cause !== undefined ? error.cause : error;
    own = [
      ...earlier.map((f) => attemptOf(f.error, { retryable: true, reason: f.reason }, iso(f.time))),
      attemptOf(cause, c, iso(last?.time ?? clock.now())),
    ];
  }
  const attempts = [...history, ...own];
  const first = attempts[0] as DeadLetterAttempt;
  const last = attempts[attempts.length - 1] as DeadLetterAttempt;
  return {
    ...(options.id === undefined ? {} : { id: options.id }),
    payload: options.payload,
    reason,
    disposition,
    attempts,
    firstAttemptAt: first.at,
    lastAttemptAt: last.at,
    ...(options.source === undefined ? {} : { source: options.source }),
    ...(options.origin === undefined ? {} : { origin: options.origin }),
  };
}

const ORIGIN_FIELDS: Readonly<Record<DeadLetterOrigin['kind'], Readonly<Record<string, boolean>>>> =
  {
    bullmq: { queue: true, jobId: true, jobName: false },
    send: { key: false },
    webhook: { webhookId: true, path: false },
    status: { key: true },
  };

/** Checks `entry.origin`: a known kind with its fields, each a non-empty string. */
function expectOrigin(value: unknown): DeadLetterOrigin {
  const o = expectObject('entry.origin', value);
  const kind = o.kind;
  const fields =
    typeof kind === 'string' ? ORIGIN_FIELDS[kind as DeadLetterOrigin['kind']] : undefined;
  if (fields === undefined) {
    throw new InvalidRecordError(
      'entry.origin.kind',
      `entry.origin.kind must be one of ${Object.keys(ORIGIN_FIELDS).join(', ')}, got ${JSON.stringify(kind)}`,
    );
  }
  const origin: Record<string, string> = { kind: kind as string };
  for (const [field, required] of Object.entries(fields)) {
    const v = o[field];
    if (v === undefined && !required) continue;
    origin[field] = expectString(`entry.origin.${field}`, v);
  }
  return origin as DeadLetterOrigin;
}

/**
 * @internal A stored dead letter as this version reads it: attempts written by retrykit 0.1
 * carry their error code as `code`, read as `errorCode`. Anything else is returned as stored.
 */
export function upgradeDeadLetter<P>(entry: DeadLetterEntry<P>): DeadLetterEntry<P> {
  const attempts: readonly unknown[] = Array.isArray(entry?.attempts) ? entry.attempts : [];
  if (!attempts.some((a) => typeof a === 'object' && a !== null && 'code' in a)) return entry;
  return {
    ...entry,
    attempts: attempts.map((a) => {
      if (typeof a !== 'object' || a === null || !('code' in a)) return a as DeadLetterAttempt;
      const { code, ...rest } = a as DeadLetterAttempt & { code?: string | number | null };
      return rest.errorCode !== undefined || code === undefined || code === null
        ? rest
        : { ...rest, errorCode: code };
    }),
  };
}

/** A random unique id (a UUID where the runtime has `crypto.randomUUID`). */
export function newId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (typeof c?.randomUUID === 'function') return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
}

/**
 * @internal Checks a new dead letter and completes it (`id`, `deadAt`): what every adapter
 * stores. Throws {@link InvalidRecordError} naming the wrong field.
 */
export function completeDeadLetter<P>(entry: NewDeadLetter<P>, nowMs: number): DeadLetterEntry<P> {
  const o = expectObject('entry', entry);
  const id = o.id === undefined ? newId() : expectString('entry.id', o.id);
  if (!('payload' in o) || o.payload === undefined) {
    throw new InvalidRecordError('entry.payload', 'entry.payload must be present, got undefined');
  }
  const reason = expectReason('entry.reason', o.reason);
  if (o.disposition !== 'permanent' && o.disposition !== 'exhausted') {
    throw new InvalidRecordError(
      'entry.disposition',
      `entry.disposition must be 'permanent' or 'exhausted', got ${JSON.stringify(o.disposition)}`,
    );
  }
  const attempts = expectAttempts('entry.attempts', o.attempts);
  const firstAttemptAt = expectIsoTime('entry.firstAttemptAt', o.firstAttemptAt);
  const lastAttemptAt = expectIsoTime('entry.lastAttemptAt', o.lastAttemptAt);
  const deadAt = o.deadAt === undefined ? iso(nowMs) : expectIsoTime('entry.deadAt', o.deadAt);
  const source = o.source === undefined ? undefined : expectString('entry.source', o.source);
  const origin = o.origin === undefined ? undefined : expectOrigin(o.origin);
  const redriveFailures = o.redriveFailures;
  if (
    redriveFailures !== undefined &&
    (typeof redriveFailures !== 'number' ||
      !Number.isSafeInteger(redriveFailures) ||
      redriveFailures < 0)
  ) {
    throw new InvalidRecordError(
      'entry.redriveFailures',
      `entry.redriveFailures must be a non-negative integer, got ${JSON.stringify(redriveFailures)}`,
    );
  }
  const notBefore =
    o.notBefore === undefined ? undefined : expectIsoTime('entry.notBefore', o.notBefore);
  return {
    id,
    payload: entry.payload,
    reason,
    disposition: o.disposition,
    attempts,
    firstAttemptAt,
    lastAttemptAt,
    deadAt,
    ...(source === undefined ? {} : { source }),
    ...(origin === undefined ? {} : { origin }),
    ...(redriveFailures === undefined ? {} : { redriveFailures }),
    ...(notBefore === undefined ? {} : { notBefore }),
  };
}
