import type { Classification } from '../../core/classify-types.js';
import type { Clock } from '../../core/clock.js';
import { toDeadLetter } from '../../core/dead-letter/dead-letter.js';
import type {
  DeadLetterAttempt,
  DeadLetterQueue,
} from '../../core/dead-letter/dead-letter-types.js';
import { attemptOf } from '../../core/dead-letter/failure.js';
import type {
  ApplyStatusResult,
  DeliveryAttempt,
  DeliveryStore,
} from '../../core/delivery/delivery-types.js';
import { assertKey } from '../../core/validate.js';
import { classifyWhatsAppError } from '../classify.js';
import {
  type MessageStatus,
  type ParsedWebhook,
  STATUS_RANK,
  type StatusUpdate,
  type WebhookErrorDetail,
  type WebhookUpdate,
} from '../webhook.js';

/**
 * A delivery store holding WhatsApp sends: `createMemoryDeliveryStore()` from `retrykit`, or
 * `createRedisDeliveryStore()` from `retrykit/redis` or `createPostgresDeliveryStore()` from
 * `retrykit/postgres` to share it between the process that sends and the one that receives
 * webhooks. Attempts' external ids are wamids; their errors
 * are the `errors` of `failed` statuses.
 */
export type WhatsAppDeliveryStore<P = unknown> = DeliveryStore<P, WebhookErrorDetail>;

/**
 * Where a send stands: `pending` before the Cloud API gave it a wamid (not sent yet, or a
 * send whose answer was lost), `accepted` once it did and before any status webhook, then
 * the highest status Meta reported (`failed` is final).
 */
export type WhatsAppDeliveryStatus = 'pending' | 'accepted' | MessageStatus;

/** One physical send of a message. */
export interface WhatsAppDeliveryAttempt {
  readonly attemptId: string;
  /** The wamid the Cloud API answered with, `undefined` while unknown. */
  readonly wamid: string | undefined;
  /** When the send was made, in milliseconds since the epoch. */
  readonly at: number;
  readonly status: WhatsAppDeliveryStatus;
  /** The payload time each status was first reported at, in milliseconds since the epoch. */
  readonly timestamps: Readonly<Partial<Record<MessageStatus, number>>>;
  /** Why the send failed (the `failed` status's errors); empty otherwise. */
  readonly errors: readonly WebhookErrorDetail[];
}

/** Everything known about one logical message: what support staff read. */
export interface WhatsAppDelivery<P = unknown> {
  /** The message's key (its idempotency key). */
  readonly key: string;
  /** The payload as first sent. */
  readonly payload: P;
  /** When the record was made, in milliseconds since the epoch (the store's clock). */
  readonly createdAt: number;
  /**
   * The phone number id that sends the message (the client's `phoneNumberId`, recorded as the
   * record's `sender`); `undefined` for a record written without one.
   */
  readonly phoneNumberId: string | undefined;
  /** The status of the latest attempt. */
  readonly status: WhatsAppDeliveryStatus;
  /** The latest attempt's status times, in milliseconds since the epoch. */
  readonly timestamps: Readonly<Partial<Record<MessageStatus, number>>>;
  /** Every send, oldest first. */
  readonly attempts: readonly WhatsAppDeliveryAttempt[];
  /** The wamid of every attempt that has one, oldest first. */
  readonly wamids: readonly string[];
  /** The errors of every attempt, oldest first. */
  readonly errors: readonly WebhookErrorDetail[];
}

/** What {@link applyDeliveryStatuses} did with one status update. */
export interface DeliveryStatusOutcome {
  /** The wamid the status is about. */
  readonly wamid: string;
  readonly status: MessageStatus;
  /**
   * `applied`: the send's status moved up. `stale`: a duplicate or out-of-order status that
   * changed nothing (but an earlier time for its status). `unknown`: no record has this wamid
   * (a message sent without the store, expired, or whose send is not recorded yet), and its
   * correlation tag names no record whose latest send still lacks a wamid (one whose answer
   * was lost, or not stored yet: the wamid is then given to that send and the status applied).
   */
  readonly outcome: 'applied' | 'stale' | 'unknown';
  /** The message's key, when known. */
  readonly key: string | undefined;
}

const STATUS_NAMES: ReadonlySet<string> = new Set(Object.keys(STATUS_RANK));

/** A stored error with every field of {@link WebhookErrorDetail} (a JSON store drops `undefined`). */
function errorDetail(e: WebhookErrorDetail): WebhookErrorDetail {
  return {
    errorCode: e.errorCode,
    title: e.title,
    message: e.message,
    details: e.details,
  };
}

function toAttempt(a: DeliveryAttempt<WebhookErrorDetail>): WhatsAppDeliveryAttempt {
  const timestamps: Partial<Record<MessageStatus, number>> = {};
  for (const [status, at] of Object.entries(a.statusTimes)) {
    if (STATUS_NAMES.has(status)) timestamps[status as MessageStatus] = at;
  }
  const status: WhatsAppDeliveryStatus =
    a.status !== undefined && STATUS_NAMES.has(a.status)
      ? (a.status as MessageStatus)
      : a.externalId === undefined
        ? 'pending'
        : 'accepted';
  return {
    attemptId: a.attemptId,
    wamid: a.externalId,
    at: a.at,
    status,
    timestamps: Object.freeze(timestamps),
    errors: Object.freeze(a.errors.map(errorDetail)),
  };
}

/**
 * The record of one message, as support staff need it when a customer says "I never got it":
 * its status, when each status came, every send with its wamid, and why sends failed.
 * `undefined` when the store has no record of `key` (never recorded, or expired).
 *
 * @example
 * const delivery = await getDelivery(deliveries, `order-${orderId}`);
 * if (delivery?.status === 'failed') console.log(delivery.errors);
 */
export async function getDelivery<P>(
  store: WhatsAppDeliveryStore<P>,
  key: string,
): Promise<WhatsAppDelivery<P> | undefined> {
  assertKey('key', key);
  const record = await store.get(key);
  if (record === undefined) return undefined;
  const attempts = record.attempts.map(toAttempt);
  const latest = attempts[attempts.length - 1];
  return Object.freeze({
    key: record.key,
    payload: record.payload,
    createdAt: record.createdAt,
    phoneNumberId: record.sender,
    status: latest?.status ?? 'pending',
    timestamps: latest?.timestamps ?? Object.freeze({}),
    attempts: Object.freeze(attempts),
    wamids: Object.freeze(attempts.flatMap((a) => (a.wamid === undefined ? [] : [a.wamid]))),
    errors: Object.freeze(attempts.flatMap((a) => a.errors)),
  });
}

/**
 * Applies the `status` updates of a parsed webhook to the delivery store, each to the send
 * whose wamid it names. Statuses are applied by rank (sent < delivered < read ≤ played;
 * `failed` is final; the earlier payload time wins within a rank, as `reduceStatus` folds
 * them), so webhooks that arrive twice or out of order never move a send back. Other updates
 * are ignored. A status for a wamid the store doesn't know is reported `unknown` and writes
 * nothing. A status of a message's latest send also moves it in the store's due index, which
 * the delivery reconciler works from: `delivered`, `read`, `played` and a `failed` status with a
 * permanent error (by `classifyWhatsAppError`) take it out; any other `failed` status makes it
 * due now, to be sent again. Rejects with `StoreUnavailableError` when the store can't be reached, possibly after
 * applying the first statuses: running it again on the same delivery is safe (those come back
 * `stale`), so answer the webhook with an error and let Meta send it again.
 *
 * @example
 * const parsed = parseWebhook(rawBody);
 * for (const o of await applyDeliveryStatuses(deliveries, parsed)) {
 *   if (o.outcome === 'unknown') log.warn('status for a send not recorded', o.wamid);
 * }
 */
export async function applyDeliveryStatuses(
  store: WhatsAppDeliveryStore,
  updates: ParsedWebhook | readonly WebhookUpdate[],
): Promise<DeliveryStatusOutcome[]> {
  const list: readonly WebhookUpdate[] = Array.isArray(updates)
    ? updates
    : (updates as ParsedWebhook).statuses;
  const statuses = list.filter((u): u is StatusUpdate => u.kind === 'status');
  return (await applyStatusReports(store, statuses)).map((a) => a.outcome);
}

/** @internal One status applied: the public outcome and what the store answered. */
export interface AppliedStatus {
  readonly update: StatusUpdate;
  readonly outcome: DeliveryStatusOutcome;
  readonly result: ApplyStatusResult<unknown, WebhookErrorDetail>;
}

/** @internal {@link applyDeliveryStatuses}, keeping each record the store answered with. */
export async function applyStatusReports(
  store: WhatsAppDeliveryStore,
  statuses: readonly StatusUpdate[],
): Promise<AppliedStatus[]> {
  const applied: AppliedStatus[] = [];
  for (const update of statuses) {
    const schedule = scheduleOf(update);
    const result = await store.applyStatus(update.id, {
      status: update.status,
      rank: STATUS_RANK[update.status],
      timestampMs: update.timestampMs,
      errors: update.errors,
      ...(update.deliveryTag === undefined ? {} : { alias: update.deliveryTag }),
      ...(schedule === undefined ? {} : { schedule }),
    });
    applied.push({
      update,
      result,
      outcome: {
        wamid: update.id,
        status: update.status,
        outcome: result.outcome,
        key: result.outcome === 'unknown' ? undefined : result.key,
      },
    });
  }
  return applied;
}

const UNCLASSIFIED: Classification = Object.freeze({ retryable: false, reason: 'unknown' });
/** @internal The verdict on a `failed` status's error, as on an API error with its code. */
export const classifyDetail = (error: unknown): Classification =>
  classifyWhatsAppError(error) ?? UNCLASSIFIED;

/**
 * @internal Whether a `failed` status's error is the message's for good (dead-letter it) rather
 * than worth a re-send: not retryable and not account-wide. A `failed` status without an error
 * is worth a re-send.
 */
export function isPermanentFailure(error: WebhookErrorDetail | undefined): boolean {
  if (error === undefined) return false;
  const verdict = classifyDetail(error);
  return !verdict.retryable && verdict.scope !== 'account';
}

/**
 * What a status does to its message's place in the reconciler's due index (when it is about
 * the latest attempt): reached the phone, or failed for good → `close`; failed otherwise →
 * `wake` (send it again); `sent` changes nothing (the reconciler watches for a stuck one).
 */
function scheduleOf(update: StatusUpdate): 'close' | 'wake' | undefined {
  if (update.status === 'sent') return undefined;
  if (update.status !== 'failed') return 'close';
  return isPermanentFailure(update.errors[0]) ? 'close' : 'wake';
}

const REACHED: ReadonlySet<string> = new Set(['delivered', 'read', 'played']);

/**
 * @internal Whether any send of the message reached the phone (`delivered`, `read`, `played`):
 * an earlier one whose statuses came late, after a re-send, counts. Such a message is closed,
 * never sent again nor dead-lettered.
 */
export function reachedPhone(record: {
  readonly attempts: readonly Pick<DeliveryAttempt<unknown>, 'status'>[];
}): boolean {
  return record.attempts.some((a) => a.status !== undefined && REACHED.has(a.status));
}

/** @internal An earlier send as a dead letter's history: its failure, or where it stood. */
export function historyOf(a: DeliveryAttempt<WebhookErrorDetail>): DeadLetterAttempt {
  const error = a.errors[0];
  const at = new Date(a.statusAt ?? a.at).toISOString();
  if (error !== undefined) return attemptOf(error, classifyDetail(error), at);
  const status = a.status ?? (a.externalId === undefined ? 'pending' : 'accepted');
  return { message: `attempt ${a.attemptId} ${status}`, reason: 'unknown', at };
}

/**
 * @internal Dead-letters each send a `failed` status reports a permanent error for (by
 * `classifyWhatsAppError`, not an account-wide one), once: the entry's id is the message's key,
 * its payload the record's payload as JSON text, its history the earlier sends. A `failed`
 * status of an attempt that is not the record's latest (a re-send was made), a transient
 * error, and a message one of whose sends reached the phone (a held send that was in fact
 * delivered, then re-sent: the re-send fails as a duplicate; also when that `delivered` comes
 * later in the same batch) are left to the record. Resolves with how many were added (or
 * already there).
 */
export async function deadLetterFailedSends(
  dlq: Pick<DeadLetterQueue<string>, 'add'>,
  applied: readonly AppliedStatus[],
  clock: Pick<Clock, 'now'>,
): Promise<number> {
  // The last record of each message in the batch: a status after the `failed` one counts.
  const last = new Map<string, { readonly attempts: readonly DeliveryAttempt<unknown>[] }>();
  for (const { result } of applied) {
    if (result.outcome !== 'unknown') last.set(result.key, result.record);
  }
  const letters = applied.flatMap(({ update, result }) => {
    if (update.status !== 'failed' || result.outcome === 'unknown') return [];
    const { record } = result;
    if (record.attempts.at(-1)?.attemptId !== result.attemptId) return [];
    if (reachedPhone(record) || reachedPhone(last.get(record.key) ?? record)) return [];
    const error = update.errors[0];
    if (error === undefined) return [];
    const verdict = classifyDetail(error);
    if (verdict.retryable || verdict.scope === 'account') return [];
    const at = Number.isFinite(update.timestampMs) ? update.timestampMs : clock.now();
    return [
      toDeadLetter(error, {
        payload: JSON.stringify(record.payload),
        id: record.key,
        source: 'whatsapp.status',
        origin: { kind: 'status', key: record.key },
        history: record.attempts.slice(0, -1).map(historyOf),
        classify: () => verdict,
        clock: { now: () => at },
      }),
    ];
  });
  // The same status twice in one body is one dead letter, added once.
  const once = [...new Map(letters.map((letter) => [letter.id, letter])).values()];
  await Promise.all(once.map((letter) => dlq.add(letter)));
  return once.length;
}
