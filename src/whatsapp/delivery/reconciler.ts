import type { BackoffOptions } from '../../core/backoff-types.js';
import type { Classification } from '../../core/classify-types.js';
import { type Clock, type RandomSource, setLongTimeout, systemClock } from '../../core/clock.js';
import { toDeadLetter } from '../../core/dead-letter/dead-letter.js';
import type { DeadLetterQueue } from '../../core/dead-letter/dead-letter-types.js';
import type { DeliveryRecord } from '../../core/delivery/delivery-types.js';
import { isRetrykitError, PermanentError, shouldHold } from '../../core/errors.js';
import { emit } from '../../core/events.js';
import { delayFor, resolveBackoff } from '../../core/retry/backoff.js';
import {
  assertFunction,
  assertInteger,
  assertKey,
  assertNumber,
  showValue,
} from '../../core/validate.js';
import type { WhatsAppClient } from '../client.js';
import type { WhatsAppEventListener } from '../events.js';
import type { WebhookErrorDetail } from '../webhook.js';
import {
  classifyDetail,
  historyOf,
  isPermanentFailure,
  reachedPhone,
  type WhatsAppDeliveryStore,
} from './delivery.js';

/** Options of {@link createDeliveryReconciler}. */
export interface DeliveryReconcilerOptions {
  /**
   * The delivery store the client (`deliveries`) and the webhook handler write: the reconciler
   * leases due records from it (`claimDue`), so any number of reconcilers, in any process,
   * share the work and never act on one message at once.
   */
  readonly deliveries: Pick<WhatsAppDeliveryStore, 'claimDue' | 'reschedule'>;
  /**
   * Sends messages again (`resendMessage`): a client made with the same `deliveries`, so the
   * re-send passes the same limiters, breaker and retries and its wamid joins the record. Give
   * this or `clients`, not both. With a `phoneNumberId` (a client from `createWhatsAppClient`
   * has one), a message another number sent (its record's `sender`) is not re-sent from it: it
   * is left for a later round and reported to `onError`. Records without a sender go to it.
   */
  readonly client?: Pick<WhatsAppClient<unknown>, 'resendMessage'> & {
    readonly phoneNumberId?: string;
  };
  /**
   * Several clients, one per phone number, for a delivery store that several numbers share:
   * each message is re-sent by the client whose `phoneNumberId` is its record's `sender` (the
   * number that sent it first). A message whose number has no client here is left for a later
   * round (counted `failed`, never dead-lettered) and reported to `onError` once per round per
   * number. A record without a sender (written before senders were recorded) goes to the only
   * client when there is exactly one, else it waits the same way. Give this or `client`.
   *
   * @example
   * createDeliveryReconciler({ deliveries, clients: [fromSales, fromSupport], dlq });
   */
  readonly clients?: readonly Pick<WhatsAppClient<unknown>, 'resendMessage' | 'phoneNumberId'>[];
  /**
   * Messages that can't be delivered land here: a re-send that failed for good, or a message
   * whose sends ran out (`maxAttempts`), with every send's history. The entry's id is the
   * message's key (one entry however often it is decided), its payload the original payload as
   * JSON text, its source `whatsapp.reconciler`. Without it such a message is only closed.
   */
  readonly dlq?: Pick<DeadLetterQueue<string>, 'add'>;
  /**
   * Most sends of one message, the first included: a message that failed (transiently) or
   * went unconfirmed this many times is dead-lettered instead of sent again.
   * @default 3
   */
  readonly maxAttempts?: number;
  /**
   * The wait before a re-send after a transient `failed` status, from the status's time; the
   * n-th re-send waits the backoff of attempt n − 1.
   * @default { initialDelayMs: 30_000, multiplier: 2, maxDelayMs: 600_000, jitter: 'equal' }
   */
  readonly backoff?: BackoffOptions;
  /**
   * How long a send with no wamid and no status (a held timeout, or a send whose process died
   * midway) is left alone after it was made, in milliseconds, before it is sent again. Use the
   * client's `timeoutGraceMs`.
   * @default 60_000
   */
  readonly timeoutGraceMs?: number;
  /**
   * A message still `accepted` or `sent` this long after its send, in milliseconds, is stuck:
   * a `message_stuck` event, once per send (whatever the number of reconcilers).
   * @default 600_000 (10 minutes)
   */
  readonly stuckAfterMs?: number;
  /**
   * How long a claimed record is this reconciler's, in milliseconds: keep it above the time a
   * re-send can take (the client's retries and limiter waits). A reconciler that dies hands
   * its records back when this runs out.
   * @default 120_000
   */
  readonly leaseMs?: number;
  /**
   * Records claimed per round, worked on concurrently (the client's limiters pace the sends).
   * @default 50
   */
  readonly batchSize?: number;
  /**
   * The pause between rounds of `start()` when the last round found fewer than `batchSize`
   * due records, in milliseconds.
   * @default 5_000
   */
  readonly intervalMs?: number;
  /** Receives `message_resent` and `message_stuck`; give it the metrics' `onEvent`. */
  readonly onEvent?: WhatsAppEventListener;
  /**
   * Receives what made a round of `start()` fail (the store unreachable; the loop goes on
   * after `intervalMs`), and, from any round, one `Error` per sender whose messages had no
   * client to re-send them (its message names the sender and how many waited).
   */
  readonly onError?: (error: unknown) => void;
  /** Time source for ages, waits and dead-letter times. @default systemClock */
  readonly clock?: Clock;
  /** Random source for backoff jitter. @default Math.random */
  readonly random?: RandomSource;
  /** Stops `start()`'s loop and aborts the re-sends in flight. */
  readonly signal?: AbortSignal;
}

/** The defaults of {@link DeliveryReconcilerOptions}. */
export const DELIVERY_RECONCILER_DEFAULTS = Object.freeze({
  maxAttempts: 3,
  backoff: Object.freeze({
    initialDelayMs: 30_000,
    multiplier: 2,
    maxDelayMs: 600_000,
    jitter: 'equal',
  } satisfies BackoffOptions),
  timeoutGraceMs: 60_000,
  stuckAfterMs: 600_000,
  leaseMs: 120_000,
  batchSize: 50,
  intervalMs: 5_000,
});

/** What one round of {@link DeliveryReconciler.runOnce} did, by claimed record. */
export interface ReconcileSummary {
  /** Records claimed this round. */
  readonly claimed: number;
  /** Sent again (after a transient `failed` status, or unconfirmed past the grace window). */
  readonly resent: number;
  /** Re-sends whose own outcome is unknown (held again for the grace window). */
  readonly held: number;
  /** Settled: delivered or read, or failed for good. Nothing left to do. */
  readonly closed: number;
  /** Newly stuck at `accepted` or `sent` (a `message_stuck` event each). */
  readonly stuck: number;
  /** Dead-lettered: a re-send failed for good, or the attempts ran out. */
  readonly deadLettered: number;
  /** Looked at too early (backoff or grace still running, not stuck yet): due again later. */
  readonly waiting: number;
  /** Left to another writer: its attempt was added first, or its lease token moved on. */
  readonly skipped: number;
  /**
   * Left for a later round: the store or the API failed, the send is held (`shouldHold`), or
   * no client sends for the message's number (`clients`).
   */
  readonly failed: number;
}

/** A leased worker that closes the delivery loop of WhatsApp sends. */
export interface DeliveryReconciler {
  /** Claims one batch of due records, acts on each, and resolves with what it did. */
  runOnce(): Promise<ReconcileSummary>;
  /**
   * Runs rounds until `stop()` (or the `signal`): the next one at once when a round was full,
   * else after `intervalMs` (an unref'd timer: it never keeps a process alive).
   */
  start(): void;
  /** Stops the loop; resolves once the round in flight is done. */
  stop(): Promise<void>;
}

type Outcome = Exclude<keyof ReconcileSummary, 'claimed'>;

type Record_ = DeliveryRecord<unknown, WebhookErrorDetail>;

type Resender = Pick<WhatsAppClient<unknown>, 'resendMessage'>;

/** The records of one round that no client could re-send, counted by sender. */
type Unrouted = Map<string | undefined, number>;

/**
 * Picks the client that re-sends a record, by its sender; `undefined` when none does. Checks
 * `client`/`clients` as {@link DeliveryReconcilerOptions} describes them.
 */
function routeBySender(
  client: DeliveryReconcilerOptions['client'],
  clients: DeliveryReconcilerOptions['clients'],
): { pick: (sender: string | undefined) => Resender | undefined; numbers: readonly string[] } {
  if (client !== undefined && clients !== undefined) {
    throw new TypeError('give client or clients, not both');
  }
  if (client === undefined && clients === undefined) {
    throw new TypeError('client (one WhatsApp client) or clients (one per number) is required');
  }
  const checkClient = (name: string, c: unknown): Resender => {
    if (typeof (c as Resender | undefined)?.resendMessage !== 'function') {
      throw new TypeError(`${name} must be a WhatsApp client (resendMessage), got ${showValue(c)}`);
    }
    return c as Resender;
  };
  if (clients === undefined) {
    checkClient('client', client);
    const own = client?.phoneNumberId;
    if (own !== undefined) assertKey('client.phoneNumberId', own);
    return {
      pick: (sender) =>
        own === undefined || sender === undefined || sender === own ? client : undefined,
      numbers: own === undefined ? [] : [own],
    };
  }
  if (!Array.isArray(clients)) {
    throw new TypeError(`clients must be an array of WhatsApp clients, got ${showValue(clients)}`);
  }
  if (clients.length === 0) throw new RangeError('clients must hold at least one client, got []');
  const byNumber = new Map<string, Resender>();
  clients.forEach((c, i) => {
    checkClient(`clients[${i}]`, c);
    const number = assertKey(`clients[${i}].phoneNumberId`, c.phoneNumberId);
    if (byNumber.has(number)) {
      throw new TypeError(`clients[${i}].phoneNumberId ${JSON.stringify(number)} is given twice`);
    }
    byNumber.set(number, c);
  });
  const only = clients.length === 1 ? clients[0] : undefined;
  return {
    pick: (sender) => (sender === undefined ? only : byNumber.get(sender)),
    numbers: [...byNumber.keys()],
  };
}

/**
 * Closes the loop on WhatsApp sends recorded in a delivery store: every message ends delivered,
 * dead-lettered, or reported stuck, never silently lost. It leases the records that are due
 * (`claimDue`), so any number of reconcilers in any processes share the work, a crash hands
 * its records back when their lease runs out, and two never act on one message at once. For
 * each record, by its latest send:
 * - delivered, read or played, or failed for good: closed (the webhook handler dead-letters
 *   a permanent `failed` status);
 * - failed with a transient error (131000, 131049, …): sent again through the client once its
 *   backoff from the status's time has passed, up to `maxAttempts` sends, then dead-lettered
 *   with every send's history;
 * - no wamid and no status `timeoutGraceMs` after it was made (a held timeout, or a process
 *   that died mid-send): sent again, with the same bound;
 * - `accepted` or `sent` for `stuckAfterMs`: a `message_stuck` event (count it with
 *   `whatsappDeliveryMetrics`, whose health check reports it), once.
 * Re-sends are fenced by the number of attempts seen (`resendMessage`'s `afterAttempts`), and a
 * lease only ends with its token, so a status that arrives meanwhile always wins.
 *
 * With several phone numbers on one store, give `clients` (one per number): each message is
 * re-sent from the number that sent it (its record's `sender`).
 *
 * @example
 * const reconciler = createDeliveryReconciler({ deliveries, client, dlq, onEvent: metrics.onEvent });
 * reconciler.start();
 * process.on('SIGTERM', () => reconciler.stop());
 */
export function createDeliveryReconciler(options: DeliveryReconcilerOptions): DeliveryReconciler {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`options must be an object, got ${showValue(options)}`);
  }
  const { deliveries, dlq, onEvent, onError, signal } = options;
  if (typeof deliveries?.claimDue !== 'function' || typeof deliveries.reschedule !== 'function') {
    throw new TypeError(
      `deliveries must be a delivery store (claimDue, reschedule), got ${showValue(deliveries)}`,
    );
  }
  const route = routeBySender(options.client, options.clients);
  if (dlq !== undefined && typeof dlq?.add !== 'function') {
    throw new TypeError(`dlq must be a dead-letter queue (add), got ${showValue(dlq)}`);
  }
  if (onError !== undefined) assertFunction('onError', onError);
  const D = DELIVERY_RECONCILER_DEFAULTS;
  const maxAttempts = assertInteger('maxAttempts', options.maxAttempts ?? D.maxAttempts, 1);
  const backoff = resolveBackoff(options.backoff ?? D.backoff, 'backoff');
  const timeoutGraceMs = assertNumber(
    'timeoutGraceMs',
    options.timeoutGraceMs ?? D.timeoutGraceMs,
    0,
  );
  const stuckAfterMs = assertNumber('stuckAfterMs', options.stuckAfterMs ?? D.stuckAfterMs, 1);
  const leaseMs = assertNumber('leaseMs', options.leaseMs ?? D.leaseMs, 1);
  const batchSize = assertInteger('batchSize', options.batchSize ?? D.batchSize, 1);
  const intervalMs = assertNumber('intervalMs', options.intervalMs ?? D.intervalMs, 0);
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  assertFunction('random', random);

  /** `clock.sleep`, or with the system clock an unref'd timer; resolves early on `stop`. */
  const pause = (ms: number, stop: AbortSignal): Promise<void> => {
    if (options.clock !== undefined) return clock.sleep(ms, stop).catch(() => undefined);
    return new Promise((resolve) => {
      const done = (): void => {
        cancel();
        stop.removeEventListener('abort', done);
        resolve();
      };
      const cancel = setLongTimeout(done, ms, true);
      stop.addEventListener('abort', done, { once: true });
    });
  };

  /** Ends the lease: due again in `ms` (`null`: settled). */
  const later = async (key: string, token: string, ms: number | null): Promise<void> => {
    await deliveries.reschedule(key, token, ms === null ? null : Math.max(0, Math.ceil(ms)));
  };

  /** Dead-letters `record` with `error` (its last failure) after the sends in `history`. */
  const deadLetter = async (
    record: Record_,
    error: unknown,
    classify: (error: unknown) => Classification,
    history: Record_['attempts'],
  ): Promise<void> => {
    await dlq?.add(
      toDeadLetter(error, {
        payload: JSON.stringify(record.payload),
        id: record.key,
        source: 'whatsapp.reconciler',
        history: history.map(historyOf),
        classify,
        clock,
      }),
    );
  };

  /** Sends `record` again as its attempt n + 1, and ends the lease by what happened. */
  const resend = async (
    record: Record_,
    token: string,
    cause: 'failed' | 'unconfirmed',
    unrouted: Unrouted,
  ): Promise<Outcome> => {
    const n = record.attempts.length;
    const client = route.pick(record.sender);
    if (client === undefined) {
      // Never from another number: it waits for a reconciler with its number's client.
      unrouted.set(record.sender, (unrouted.get(record.sender) ?? 0) + 1);
      await later(record.key, token, delayFor(backoff, n - 1, undefined, random)).catch(
        () => undefined,
      );
      return 'failed';
    }
    try {
      const result = await client.resendMessage(record.key, {
        afterAttempts: n,
        ...(signal === undefined ? {} : { signal }),
      });
      if (result.status === 'conflict' || result.status === 'missing') return 'skipped';
      emit(onEvent, {
        type: 'message_resent',
        time: clock.now(),
        key: record.key,
        attemptId: result.attemptId,
        cause,
        messageId: result.status === 'accepted' ? result.messageId : undefined,
      });
      await later(
        record.key,
        token,
        result.status === 'accepted' ? stuckAfterMs : timeoutGraceMs,
      ).catch(() => undefined);
      return result.status === 'held' ? 'held' : 'resent';
    } catch (error) {
      if (signal?.aborted === true) return 'failed';
      if (shouldHold(error) || !isRetrykitError(error) || error.code === 'STORE_UNAVAILABLE') {
        // Not the message's failure (an open circuit, an expired token, a store down): keep it.
        await later(record.key, token, delayFor(backoff, n - 1, undefined, random)).catch(
          () => undefined,
        );
        return 'failed';
      }
      const permanent = error instanceof PermanentError;
      if (!permanent && n + 1 < maxAttempts) {
        await later(record.key, token, delayFor(backoff, n, undefined, random));
        return 'waiting';
      }
      // The re-send's own failure (a permanent API error, or its retries ran out) after every
      // earlier send.
      await deadLetter(record, error, classifyDetail, record.attempts.slice(0, -1));
      await later(record.key, token, null);
      return 'deadLettered';
    }
  };

  const reconcile = async (
    record: Record_,
    token: string,
    unrouted: Unrouted,
  ): Promise<Outcome> => {
    const latest = record.attempts.at(-1);
    const n = record.attempts.length;
    const now = clock.now();
    // Begun but never sent (its process died before the first attempt): the caller owns it.
    if (latest === undefined) {
      await later(record.key, token, null);
      return 'closed';
    }
    // Any send that reached the phone settles the message: an earlier one whose statuses came
    // late (after a re-send) is never followed by another re-send or a stuck alarm.
    if (reachedPhone(record)) {
      await later(record.key, token, null);
      return 'closed';
    }
    if (latest.status === 'failed') {
      const error = latest.errors[0];
      if (isPermanentFailure(error)) {
        await later(record.key, token, null);
        return 'closed';
      }
      if (n >= maxAttempts) {
        // Out of attempts: the last failure stays transient, so the entry reads `exhausted`.
        await deadLetter(
          record,
          error ?? new Error(`attempt ${latest.attemptId} failed`),
          (e) => ({ ...classifyDetail(e), retryable: true }),
          record.attempts.slice(0, -1),
        );
        await later(record.key, token, null);
        return 'deadLettered';
      }
      const failedAt = latest.statusTimes.failed ?? latest.statusAt ?? latest.at;
      const wait = failedAt + delayFor(backoff, n - 1, undefined, random) - now;
      if (wait > 0) {
        await later(record.key, token, wait);
        return 'waiting';
      }
      return resend(record, token, 'failed', unrouted);
    }
    if (latest.externalId === undefined && latest.status === undefined) {
      const wait = latest.at + timeoutGraceMs - now;
      if (wait > 0) {
        await later(record.key, token, wait);
        return 'waiting';
      }
      if (n >= maxAttempts) {
        const error = new Error(
          `no answer and no status for ${n} sends, the last ${latest.attemptId}`,
        );
        await deadLetter(
          record,
          error,
          () => ({ retryable: true, reason: 'timeout' }),
          record.attempts.slice(0, -1),
        );
        await later(record.key, token, null);
        return 'deadLettered';
      }
      return resend(record, token, 'unconfirmed', unrouted);
    }
    // Accepted or sent: not delivered yet.
    const age = now - latest.at;
    if (age < stuckAfterMs) {
      await later(record.key, token, stuckAfterMs - age);
      return 'waiting';
    }
    // Out of the due index: a later `failed` status wakes it, `delivered` needs nothing.
    if (await deliveries.reschedule(record.key, token, null)) {
      emit(onEvent, {
        type: 'message_stuck',
        time: now,
        key: record.key,
        messageId: latest.externalId as string,
        status: latest.status === 'sent' ? 'sent' : 'accepted',
        ageMs: age,
      });
      return 'stuck';
    }
    return 'skipped';
  };

  const runOnce = async (): Promise<ReconcileSummary> => {
    const claimed = await deliveries.claimDue({ limit: batchSize, leaseMs });
    const counts: Record<Outcome, number> = {
      resent: 0,
      held: 0,
      closed: 0,
      stuck: 0,
      deadLettered: 0,
      waiting: 0,
      skipped: 0,
      failed: 0,
    };
    const unrouted: Unrouted = new Map();
    const outcomes = await Promise.all(
      claimed.map(({ record, token }) =>
        // A record that failed here is due again once its lease runs out.
        reconcile(record, token, unrouted).catch((): Outcome => 'failed'),
      ),
    );
    for (const outcome of outcomes) counts[outcome]++;
    const served = route.numbers.map((p) => JSON.stringify(p)).join(', ') || 'none named';
    for (const [sender, count] of unrouted) {
      const whose =
        sender === undefined
          ? 'recorded without a sender (with several clients, none is chosen)'
          : `of sender ${JSON.stringify(sender)}`;
      onError?.(
        new Error(
          `no client re-sends the messages ${whose}: ${count} left for a later round ` +
            `(clients for ${served})`,
        ),
      );
    }
    return { claimed: claimed.length, ...counts };
  };

  let loop: Promise<void> | undefined;
  let stopper: AbortController | undefined;

  const run = async (stop: AbortSignal): Promise<void> => {
    while (!stop.aborted) {
      let full = false;
      try {
        full = (await runOnce()).claimed >= batchSize;
      } catch (error) {
        onError?.(error);
      }
      if (!full && !stop.aborted) await pause(intervalMs, stop);
    }
  };

  return {
    runOnce,
    start() {
      if (loop !== undefined) return;
      const controller = new AbortController();
      stopper = controller;
      if (signal !== undefined) {
        if (signal.aborted) return;
        signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
      }
      loop = run(controller.signal);
    },
    async stop() {
      stopper?.abort();
      const running = loop;
      loop = undefined;
      stopper = undefined;
      await running;
    },
  };
}
