import { type Classification, REASONS, type Reason } from '../classify-types.js';
import { type Clock, systemClock } from '../clock.js';
import { brandCheck, RetrykitError } from '../errors.js';
import { classify as defaultClassify } from '../retry/classify.js';
import { showValue } from '../validate.js';
import type { DeadLetterAttempt } from './dead-letter-types.js';
import { attemptOf } from './failure.js';

/**
 * The state a retry carries between attempts, e.g. in a queue job or a database row:
 * which message, how many retries so far, when the last one ran, the whole payload to redo
 * the work, and why each attempt failed. Field names follow the common webhook-retry layout.
 *
 * @example
 * {
 *   "message_id": "wamid.HBgLMTIzNDU2Nzg5MFVVAAYP",
 *   "retry_count": 1,
 *   "last_attempt": "2024-10-15T14:30:00.000Z",
 *   "original_payload": { "object": "whatsapp_business_account", "entry": [] },
 *   "failures": [{ "reason": "service_unavailable", "message": "503", "at": "2024-10-15T14:30:00.000Z" }]
 * }
 */
export interface RetryRecord<P = unknown> {
  /** The message this work is about (a WhatsApp `wamid`, a webhook delivery id). */
  readonly message_id: string;
  /** Retries made so far: 0 before the first retry. */
  readonly retry_count: number;
  /** ISO 8601 time of the last attempt. */
  readonly last_attempt: string;
  /** The whole webhook or send payload, enough to redo the work. */
  readonly original_payload: P;
  /** Every failed attempt, oldest first, with its classified reason. */
  readonly failures: readonly DeadLetterAttempt[];
}

/**
 * A record or dead letter that doesn't have the expected shape. `field` names the offending
 * field as a path (`failures[2].at`).
 */
export class InvalidRecordError extends RetrykitError {
  override readonly name = 'InvalidRecordError' as const;

  /** Makes `instanceof` recognise this error made by any copy of retrykit. */
  static override [Symbol.hasInstance] = brandCheck('InvalidRecordError', 'INVALID_RECORD');

  /** Path of the wrong field, e.g. `retry_count` or `failures[0].reason`. */
  readonly field: string;

  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super('INVALID_RECORD', message, options);
    this.field = field;
  }
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

function fail(field: string, expected: string, value: unknown): never {
  throw new InvalidRecordError(field, `${field} must be ${expected}, got ${showValue(value)}`);
}

/** @internal Checks a value is an object (not an array) and returns it as a record. */
export function expectObject(field: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(field, 'an object', value);
  }
  return value as Record<string, unknown>;
}

/** @internal */
export function expectString(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) fail(field, 'a non-empty string', value);
  return value;
}

/** @internal */
export function expectIsoTime(field: string, value: unknown): string {
  if (typeof value !== 'string' || !ISO_TIME.test(value) || Number.isNaN(Date.parse(value))) {
    fail(field, 'an ISO 8601 time', value);
  }
  return value;
}

/** @internal */
export function expectReason(field: string, value: unknown): Reason {
  if (typeof value !== 'string' || !(REASONS as readonly string[]).includes(value)) {
    fail(field, `one of ${REASONS.join(', ')}`, value);
  }
  return value as Reason;
}

/**
 * @internal Validates one failed attempt; extra fields are dropped. An attempt written by
 * retrykit 0.1 carries its error code as `code`: it is read as `errorCode`.
 */
export function expectAttempt(field: string, value: unknown): DeadLetterAttempt {
  const o = expectObject(field, value);
  const reason = expectReason(`${field}.reason`, o.reason);
  if (typeof o.message !== 'string') fail(`${field}.message`, 'a string', o.message);
  const at = expectIsoTime(`${field}.at`, o.at);
  const deferredMs = o.deferredMs;
  if (
    deferredMs !== undefined &&
    !(typeof deferredMs === 'number' && Number.isFinite(deferredMs) && deferredMs >= 0)
  ) {
    fail(`${field}.deferredMs`, 'a finite number >= 0', deferredMs);
  }
  if (o.held !== undefined && o.held !== true) fail(`${field}.held`, 'true or absent', o.held);
  const deferred = {
    ...(deferredMs === undefined ? {} : { deferredMs }),
    ...(o.held === true ? { held: true as const } : {}),
  };
  const legacy = o.errorCode === undefined || o.errorCode === null;
  const errorCode = legacy ? o.code : o.errorCode;
  if (errorCode === undefined || errorCode === null) {
    return { message: o.message, reason, at, ...deferred };
  }
  if (
    typeof errorCode !== 'string' &&
    !(typeof errorCode === 'number' && Number.isFinite(errorCode))
  ) {
    fail(`${field}.${legacy ? 'code' : 'errorCode'}`, 'a string or a finite number', errorCode);
  }
  return { message: o.message, errorCode, reason, at, ...deferred };
}

/** @internal */
export function expectAttempts(field: string, value: unknown): DeadLetterAttempt[] {
  if (!Array.isArray(value)) fail(field, 'an array', value);
  return value.map((item, i) => expectAttempt(`${field}[${i}]`, item));
}

/**
 * Checks that `value` is a well-formed {@link RetryRecord} and returns a clean copy (unknown
 * fields dropped). Throws {@link InvalidRecordError} naming the first wrong field.
 */
export function validateRetryRecord<P = unknown>(value: unknown): RetryRecord<P> {
  const o = expectObject('record', value);
  const message_id = expectString('message_id', o.message_id);
  const count = o.retry_count;
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) {
    fail('retry_count', 'a non-negative integer', count);
  }
  const last_attempt = expectIsoTime('last_attempt', o.last_attempt);
  if (!('original_payload' in o) || o.original_payload === undefined) {
    fail('original_payload', 'present', o.original_payload);
  }
  const failures = expectAttempts('failures', o.failures ?? []);
  return {
    message_id,
    retry_count: count,
    last_attempt,
    original_payload: o.original_payload as P,
    failures,
  };
}

/**
 * The record as one JSON string, after checking it (a record that wouldn't parse back is
 * refused here, not when it is read). Throws {@link InvalidRecordError}.
 */
export function serializeRetryRecord<P>(record: RetryRecord<P>): string {
  return JSON.stringify(validateRetryRecord<P>(record));
}

/**
 * Reads a record written by {@link serializeRetryRecord} (or by hand). A missing `failures`
 * reads as none. Throws {@link InvalidRecordError} naming the wrong field, e.g.
 * `retry_count must be a non-negative integer, got -1`.
 */
export function parseRetryRecord<P = unknown>(text: string): RetryRecord<P> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidRecordError('record', `record is not valid JSON: ${String(error)}`, {
      cause: error,
    });
  }
  return validateRetryRecord<P>(value);
}

/** Options of {@link createRetryRecord} and {@link recordFailure}. */
export interface RetryRecordOptions {
  /** Dates the attempt. @default systemClock */
  readonly clock?: Clock;
  /** Classifies the failure. @default classify */
  readonly classify?: (error: unknown) => Classification;
}

/** A fresh record for `payload`, before any retry: `retry_count` 0, no failures. */
export function createRetryRecord<P>(
  messageId: string,
  payload: P,
  options: RetryRecordOptions = {},
): RetryRecord<P> {
  return validateRetryRecord<P>({
    message_id: messageId,
    retry_count: 0,
    last_attempt: new Date((options.clock ?? systemClock).now()).toISOString(),
    original_payload: payload,
    failures: [],
  });
}

/**
 * The record after a failed attempt: the classified failure appended, `retry_count` up by
 * one (the retry about to be scheduled) and `last_attempt` set to now. The record passed in
 * is left as it was.
 *
 * @example
 * const next = recordFailure(record, error, { classify: composeClassifiers(classifyWhatsAppError) });
 * await queue.send(serializeRetryRecord(next), { delayMs: computeDelay(next.retry_count - 1) });
 */
export function recordFailure<P>(
  record: RetryRecord<P>,
  error: unknown,
  options: RetryRecordOptions = {},
): RetryRecord<P> {
  const at = new Date((options.clock ?? systemClock).now()).toISOString();
  const classification = (options.classify ?? defaultClassify)(error);
  const failure = attemptOf(error, classification, at);
  return {
    ...record,
    retry_count: record.retry_count + 1,
    last_attempt: at,
    failures: [...record.failures, failure],
  };
}
