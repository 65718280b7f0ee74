import { createBackgroundRetries } from '../core/background-retries.js';
import type { Classification } from '../core/classify-types.js';
import { type Clock, setLongTimeout, systemClock } from '../core/clock.js';
import { toDeadLetter } from '../core/dead-letter/dead-letter.js';
import type { DeadLetterQueue } from '../core/dead-letter/dead-letter-types.js';
import { StoreUnavailableError } from '../core/errors.js';
import { emit } from '../core/events.js';
import type { ClaimResult, IdempotencyStore } from '../core/idempotency/idempotency-types.js';
import {
  assertFunction,
  assertInteger,
  assertKey,
  assertNoRenamedOptions,
  assertNumber,
} from '../core/validate.js';
import {
  type AppliedStatus,
  applyStatusReports,
  deadLetterFailedSends,
  type WhatsAppDeliveryStore,
} from './delivery/delivery.js';
import { isWebhookPayloadError } from './errors.js';
import type { WhatsAppEventListener } from './events.js';
import {
  bodyBytes,
  type HeadersLike,
  headerValue,
  type RawBody,
  signWebhookBody,
  verifyWebhookSignature,
  type WebhookResponse,
} from './signature.js';
import {
  type MalformedWebhookItem,
  PARSE_WEBHOOK_DEFAULTS,
  parseWebhook,
  type StatusUpdate,
  type WebhookUpdate,
} from './webhook.js';

/**
 * How long after its payload time a tagged status whose wamid no record has is answered 503:
 * its send's wamid may not be stored yet. In milliseconds.
 */
const TAGGED_UNKNOWN_WINDOW_MS = 60_000;

/** A webhook POST as any framework hands it over. */
export interface WebhookRequest {
  /** The raw body, exactly as received (signatures are over these bytes). */
  readonly body: RawBody;
  readonly headers: HeadersLike;
  /** Aborts `enqueue` when the client goes away. */
  readonly signal?: AbortSignal;
}

/** What {@link WebhookHandler} answered, and why. */
export interface WebhookResult extends WebhookResponse {
  /**
   * - `enqueued`: new updates were handed to `enqueue` (200)
   * - `duplicate`: every update was queued before (200, `enqueue` not called)
   * - `in_progress`: some updates are claimed by another delivery still at work, or by one that
   *   failed without an answer (503 with `Retry-After`): the sender delivers them again; the
   *   new updates of the body were queued all the same
   * - `empty`: the body held no updates, e.g. a change with empty arrays (200)
   * - `unauthorized`: signature missing (401) or wrong (403)
   * - `too_large`: body over `maxBodyBytes` (413)
   * - `invalid`: the body, or every item in it, does not fit the schema; dead-lettered (200)
   *   or refused (400)
   * - `failed`: the store or `enqueue` failed (500): the sender will deliver it again
   */
  readonly outcome:
    | 'enqueued'
    | 'duplicate'
    | 'empty'
    | 'unauthorized'
    | 'too_large'
    | 'invalid'
    | 'in_progress'
    | 'failed';
  /** Updates handed to `enqueue`. */
  readonly enqueued: number;
  /** Updates dropped as queued before, or repeated within the body. */
  readonly duplicates: number;
  /** Updates not queued because another delivery holds their claim (outcome `in_progress`). */
  readonly inProgress: number;
  /**
   * Headers to send with the answer: `Retry-After` (seconds, until the claims in the way run
   * out) for `in_progress`.
   */
  readonly headers?: Readonly<Record<string, string>>;
  /** What went wrong, for `failed` and `invalid`. */
  readonly error?: unknown;
}

/** A framework-neutral webhook endpoint: request in, response out. */
export type WebhookHandler = (request: WebhookRequest) => Promise<WebhookResult>;

/** Options of {@link createWebhookHandler}. */
export interface WebhookHandlerOptions<U = WebhookUpdate> {
  /**
   * Meta app secret, for `X-Hub-Signature-256`. Required unless `verify` is given.
   */
  readonly appSecret?: string;
  /**
   * Custom authentication instead of Meta's signature (e.g. WASenderApi's
   * `X-Webhook-Signature`). Answer `false` to refuse with 403.
   *
   * @example
   * { verify: ({ headers }) => verifyWasenderSignature(headerValue(headers, 'x-webhook-signature'), secret) }
   */
  readonly verify?: (request: WebhookRequest) => boolean | Promise<boolean>;
  /**
   * Dedupe store: each update is claimed under its key, the claim completed once `enqueue`
   * succeeds and released if it fails, so a redelivery of a failed batch is not swallowed. A
   * `complete` that fails after a successful `enqueue` is tried again in the background (backoff
   * from 100 ms to 5 s, unref'd timers, up to 10,000 pending, until the lease would have run
   * out).
   */
  readonly store: Pick<IdempotencyStore, 'claim' | 'complete' | 'release'>;
  /**
   * Delivery store shared with the sending client's `deliveries`: the `status` updates of every
   * verified delivery are applied to it (`applyDeliveryStatuses`, in payload-timestamp order)
   * before anything is claimed or queued, duplicates included (applying a status again changes
   * nothing). When it fails the handler answers 500 (outcome `failed`) and Meta delivers again.
   * A status whose wamid no record has but whose correlation tag names a record is given to
   * that record's latest send without a wamid (a send that timed out, or whose wamid is not
   * stored yet) and applied. A status of a message's latest send closes the loop in the store:
   * `delivered`/`read`/`played` and a permanent `failed` settle it, any other `failed` wakes
   * it for the delivery reconciler to send again. Other statuses of unknown wamids are skipped,
   * except one whose tag no record has yet and is less than a minute old (by its payload time):
   * the delivery is answered 503 (`in_progress`, `Retry-After: 1`) before anything is queued,
   * and Meta delivers it again.
   */
  readonly deliveries?: Pick<WhatsAppDeliveryStore, 'applyStatus'>;
  /**
   * Receives the updates not seen before, in payload order; resolve once they are safe
   * (queued, stored). A rejection answers 500 so that the sender redelivers.
   *
   * @example
   * // a BullMQ queue made with `defaultJobOptions: RETRYKIT_JOB_OPTIONS`, so jobs are retried
   * { enqueue: (updates) => queue.addBulk(updates.map((u) => ({ name: u.kind, data: u }))) }
   */
  readonly enqueue: (updates: readonly U[], context: { readonly signal?: AbortSignal }) => unknown;
  /**
   * Turns the raw body into updates, and optionally the items that don't fit (each is
   * dead-lettered on its own while the rest is processed). Throw `WebhookPayloadError` for a
   * body that doesn't fit at all.
   * @default the Cloud API format: `parseWebhook`, every update and every malformed item
   */
  readonly parse?: (body: RawBody, options: { readonly maxBytes: number }) => ParsedDelivery<U>;
  /**
   * The dedupe key of an update, or `undefined` to never dedupe it.
   * @default {@link whatsAppDedupeKey}: `message:<wamid>`, `status:<wamid>:<status>` (plus the participant for a group message), `echo:<wamid>`; other kinds are not deduped
   */
  readonly dedupeKey?: (update: U) => string | undefined;
  /**
   * Malformed items go here, one dead letter each (reason `schema_mismatch`, payload a webhook
   * body holding only that item, id stable across redeliveries), and the rest of the delivery
   * is processed; a body that is not a webhook at all goes here whole. Without a `dlq`, the
   * well-formed updates of a delivery holding anything malformed are enqueued and the delivery
   * is answered 400, so the sender keeps it (and its redeliveries find those updates queued).
   * With `deliveries`, a `failed` status of a send's latest attempt whose error
   * `classifyWhatsAppError` finds permanent (not account-wide) dead-letters that message here:
   * id the message's key (one entry however often the status comes), payload the send's
   * payload as JSON text, source `whatsapp.status`, the earlier attempts before the webhook's
   * error. Not when an earlier send of the message reached the phone (`delivered`, `read`,
   * `played`, also later in the same delivery): that message is closed, as the reconciler
   * closes it. When it fails the delivery is answered 500 and nothing is queued.
   */
  readonly dlq?: DeadLetterQueue<string>;
  /**
   * How long a delivered key is remembered, in milliseconds. Must outlive the sender's
   * redelivery window (Meta: 7 days).
   * @default 691_200_000 (8 days)
   */
  readonly resultTtlMs?: number;
  /**
   * How long a claim holds while `enqueue` runs, in milliseconds; a crashed handler's claims
   * free up after it. Until then a redelivery of its updates is answered 503.
   * @default 30_000
   */
  readonly leaseMs?: number;
  /**
   * How long one store call (`claim`, `complete`, `release`) may take, in milliseconds, before
   * it counts as failed: a store that never answers gets 500, never a request that hangs. A
   * claim that answers `claimed` after its time ran out is released. Keep it above the store's
   * own timeout (the Redis store's `commandTimeoutMs`, 2 s by default) and below the time the sender
   * waits for an answer.
   * @default 10_000
   */
  readonly storeTimeoutMs?: number;
  /**
   * Prefix of every dedupe key in the store.
   * @default 'whatsapp:webhook:'
   */
  readonly keyPrefix?: string;
  /**
   * Largest body accepted, in bytes; larger ones are answered 413.
   * @default 3_145_728 (3 MB, Meta's maximum)
   */
  readonly maxBodyBytes?: number;
  /**
   * Receives `message_status` events. Duplicates are reported by `store` (`idempotency_hit`)
   * and malformed items by `dlq` (`dead_letter`): give them the same listener.
   */
  readonly onEvent?: WhatsAppEventListener;
  /** Time source for events and dead letters. @default systemClock */
  readonly clock?: Pick<Clock, 'now'>;
}

/** A malformed webhook item: trying it again can't help. */
const SCHEMA_MISMATCH: Classification = Object.freeze({
  retryable: false,
  reason: 'schema_mismatch',
});

/** Completions tried again in the background, at most, per handler. */
const MAX_PENDING_COMPLETIONS = 10_000;

/** The defaults of {@link WebhookHandlerOptions}. */
export const WEBHOOK_HANDLER_DEFAULTS = Object.freeze({
  resultTtlMs: 8 * 24 * 60 * 60 * 1000,
  leaseMs: 30_000,
  storeTimeoutMs: 10_000,
  keyPrefix: 'whatsapp:webhook:',
  maxBodyBytes: PARSE_WEBHOOK_DEFAULTS.maxBytes,
});

/**
 * The default dedupe key of a Cloud API update: `message:<wamid>`, `status:<wamid>:<status>`
 * (`status:<wamid>:<status>:<participant>` for a group message's `delivered` and `read`, which
 * Meta reports once per participant), `echo:<wamid>`; `undefined` (never deduped) for the other
 * kinds.
 */
export function whatsAppDedupeKey(update: WebhookUpdate): string | undefined {
  if (update.kind === 'message') return `message:${update.id}`;
  if (update.kind === 'status') {
    const participant = update.recipientParticipantId ?? update.recipientParticipantUserId;
    const key = `status:${update.id}:${update.status}`;
    return participant === undefined ? key : `${key}:${participant}`;
  }
  if (update.kind === 'echo') return `echo:${update.id}`;
  return undefined;
}

/** What a webhook `parse` returns: the updates, or the updates and the items that don't fit. */
export type ParsedDelivery<U> =
  | readonly U[]
  | { readonly updates: readonly U[]; readonly malformed: readonly MalformedWebhookItem[] };

const defaultParse = (
  body: RawBody,
  options: { readonly maxBytes: number },
): ParsedDelivery<WebhookUpdate> => {
  const { updates, malformed } = parseWebhook(body, options);
  return { updates, malformed };
};

/** The request body as text, the payload of a dead letter for the whole body. */
function bodyText(request: WebhookRequest): string {
  return typeof request.body === 'string'
    ? request.body
    : new TextDecoder().decode(bodyBytes(request.body));
}

/** A malformed item's envelope as JSON; `undefined` when it can't be written (nested too deep). */
function envelopeText(item: MalformedWebhookItem): string | undefined {
  try {
    return JSON.stringify(item.envelope);
  } catch {
    return undefined;
  }
}

/** The key of dead-letter ids: the same delivery redelivered makes the same ids. */
const DEAD_LETTER_KEY = 'retrykit.whatsapp.webhook.dead-letter';

const ok = (
  outcome: WebhookResult['outcome'],
  enqueued: number,
  duplicates: number,
): WebhookResult => ({ status: 200, body: 'OK', outcome, enqueued, duplicates, inProgress: 0 });

const refuse = (
  status: number,
  outcome: WebhookResult['outcome'],
  body: string,
  error?: unknown,
): WebhookResult => ({
  status,
  body,
  outcome,
  enqueued: 0,
  duplicates: 0,
  inProgress: 0,
  ...(error === undefined ? {} : { error }),
});

/**
 * A webhook endpoint that works with any framework: give it the raw body and the headers, send
 * back its `status`, `headers` and `body`. It verifies the signature, parses the body,
 * dead-letters each malformed item on its own (`dlq`), drops updates queued before (by wamid for
 * messages and echoes, by wamid + status for statuses), hands the new ones — every kind,
 * `unknown` included — to `enqueue` and answers 200 as soon as `enqueue` resolves, so keep that
 * a queue write. It answers 200 only when every update of the body is known to be queued. When
 * the store or `enqueue` fails it answers 500 and forgets its claims; when another delivery
 * holds the claim of an update it answers 503 (after queueing the body's new updates): either
 * way the sender delivers again, and nothing is lost.
 *
 * @example
 * const handle = createWebhookHandler({ appSecret, store, enqueue: (u) => queue.addBulk(...) });
 * app.post('/webhook', express.raw({ type: '*\/*' }), async (req, res) => {
 *   const { status, body } = await handle({ body: req.body, headers: req.headers });
 *   res.status(status).send(body);
 * });
 */
export function createWebhookHandler(options: WebhookHandlerOptions<WebhookUpdate>): WebhookHandler;
export function createWebhookHandler<U>(
  options: WebhookHandlerOptions<U> & {
    readonly parse: NonNullable<WebhookHandlerOptions<U>['parse']>;
    readonly dedupeKey: NonNullable<WebhookHandlerOptions<U>['dedupeKey']>;
  },
): WebhookHandler;
export function createWebhookHandler<U>(options: WebhookHandlerOptions<U>): WebhookHandler {
  const { verify, store, enqueue, dlq, onEvent, deliveries } = options;
  if (deliveries !== undefined && typeof deliveries?.applyStatus !== 'function') {
    throw new TypeError(
      `deliveries must be a delivery store (applyStatus), got ${String(deliveries)}`,
    );
  }
  if (verify === undefined) assertKey('appSecret', options.appSecret);
  else assertFunction('verify', verify);
  assertFunction('enqueue', enqueue);
  if (typeof store !== 'object' || store === null) {
    throw new TypeError(`store must be an IdempotencyStore, got ${String(store)}`);
  }
  assertNoRenamedOptions(options, { dedupeTtlMs: 'resultTtlMs' });
  const appSecret = options.appSecret ?? '';
  const resultTtlMs = assertNumber(
    'resultTtlMs',
    options.resultTtlMs ?? WEBHOOK_HANDLER_DEFAULTS.resultTtlMs,
    1,
  );
  const leaseMs = assertNumber('leaseMs', options.leaseMs ?? WEBHOOK_HANDLER_DEFAULTS.leaseMs, 1);
  const storeTimeoutMs = assertNumber(
    'storeTimeoutMs',
    options.storeTimeoutMs ?? WEBHOOK_HANDLER_DEFAULTS.storeTimeoutMs,
    1,
  );
  const keyPrefix = options.keyPrefix ?? WEBHOOK_HANDLER_DEFAULTS.keyPrefix;
  if (typeof keyPrefix !== 'string') {
    throw new TypeError(`keyPrefix must be a string, got ${String(keyPrefix)}`);
  }
  const maxBytes = assertInteger(
    'maxBodyBytes',
    options.maxBodyBytes ?? WEBHOOK_HANDLER_DEFAULTS.maxBodyBytes,
    1,
  );
  const parse = (options.parse ?? defaultParse) as (
    body: RawBody,
    o: { readonly maxBytes: number },
  ) => ParsedDelivery<U>;
  const dedupeKey = (options.dedupeKey ?? whatsAppDedupeKey) as (update: U) => string | undefined;
  const clock = options.clock ?? systemClock;

  const authenticate = async (request: WebhookRequest): Promise<WebhookResult | undefined> => {
    if (verify !== undefined) {
      return (await verify(request)) ? undefined : refuse(403, 'unauthorized', 'Forbidden');
    }
    const signature = headerValue(request.headers, 'x-hub-signature-256');
    if (signature === undefined) return refuse(401, 'unauthorized', 'Unauthorized');
    const valid = await verifyWebhookSignature(request.body, signature, appSecret);
    return valid ? undefined : refuse(403, 'unauthorized', 'Forbidden');
  };

  /** Dead-letters each `{ payload, error }`; `undefined` once all are stored, else the answer. */
  const deadLetter = async (
    request: WebhookRequest,
    letters: readonly {
      readonly payload: string;
      readonly path: string;
      readonly error: unknown;
    }[],
  ): Promise<WebhookResult | undefined> => {
    if (dlq === undefined) return refuse(400, 'invalid', 'Bad Request', letters[0]?.error);
    try {
      const bodyKey = (await signWebhookBody(request.body, DEAD_LETTER_KEY)).slice(0, 32);
      await Promise.all(
        letters.map(({ payload, path, error }) =>
          dlq.add(
            toDeadLetter(error, {
              payload,
              id: `whatsapp.webhook:${bodyKey}:${path}`,
              source: 'whatsapp.webhook',
              origin: { kind: 'webhook', webhookId: bodyKey, path },
              classify: () => SCHEMA_MISMATCH,
              clock,
            }),
          ),
        ),
      );
      return undefined;
    } catch (dlqError) {
      return refuse(500, 'failed', 'Internal Server Error', dlqError);
    }
  };

  /**
   * Parses the body. A body that is not a webhook is dead-lettered whole; each malformed item
   * of a webhook is dead-lettered on its own and the rest goes on.
   */
  const parseDelivery = async (
    request: WebhookRequest,
  ): Promise<
    | { readonly updates: readonly U[]; readonly refusal?: WebhookResult }
    | { readonly answer: WebhookResult }
  > => {
    let parsed: ParsedDelivery<U>;
    try {
      parsed = parse(request.body, { maxBytes });
    } catch (error) {
      if (!isWebhookPayloadError(error)) {
        return { answer: refuse(500, 'failed', 'Internal Server Error', error) };
      }
      const refused = await deadLetter(request, [{ payload: bodyText(request), path: '$', error }]);
      return { answer: refused ?? { ...ok('invalid', 0, 0), error } };
    }
    if (!('updates' in parsed)) return { updates: parsed };
    const { updates, malformed } = parsed;
    if (malformed.length === 0) return { updates };
    if (dlq === undefined && updates.length > 0) {
      // Nowhere to keep the malformed items: queue the good ones, then refuse the delivery so
      // that the sender keeps it (its good updates are duplicates when it comes back).
      return { updates, refusal: refuse(400, 'invalid', 'Bad Request', malformed[0]?.error) };
    }
    const refused = await deadLetter(
      request,
      malformed.map((item) => ({
        payload: envelopeText(item) ?? bodyText(request),
        path: item.path,
        error: item.error,
      })),
    );
    if (refused !== undefined) return { answer: refused };
    if (updates.length === 0) {
      return { answer: { ...ok('invalid', 0, 0), error: malformed[0]?.error } };
    }
    return { updates };
  };

  /**
   * One store call, bounded: a synchronous throw becomes a rejection, and no answer within
   * `storeTimeoutMs` a `StoreUnavailableError`; `late` gets the value of a call that answered
   * after that.
   */
  const storeCall = <T>(
    operation: string,
    call: () => Promise<T>,
    late?: (value: T) => void,
  ): Promise<T> => {
    let pending: Promise<T>;
    try {
      pending = Promise.resolve(call());
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<T>((resolve, reject) => {
      let timedOut = false;
      const cancel = setLongTimeout(
        () => {
          timedOut = true;
          reject(
            new StoreUnavailableError(
              operation,
              new Error(`the store did not answer within ${storeTimeoutMs} ms`),
            ),
          );
        },
        storeTimeoutMs,
        true,
      );
      pending.then(
        (value) => {
          cancel();
          if (timedOut) late?.(value);
          else resolve(value);
        },
        (error: unknown) => {
          cancel();
          reject(error);
        },
      );
    });
  };

  const release = (key: string, token: string): Promise<boolean> =>
    storeCall('release', () => store.release(key, token));

  // A claim that took the key after its time ran out is nobody's: free it for the redelivery.
  const claim = (key: string): Promise<ClaimResult> =>
    storeCall(
      'claim',
      () => store.claim(key, { leaseMs }),
      (late) => {
        if (late.status === 'claimed') release(key, late.token).catch(() => false);
      },
    );

  const releaseAll = (claims: ReadonlyArray<readonly [string, string]>): Promise<unknown> =>
    Promise.allSettled(claims.map(([key, token]) => release(key, token)));

  // The updates are safe in the queue: a `complete` that failed is tried again in the
  // background, so that the sender's next redelivery is answered as a duplicate.
  const completions = createBackgroundRetries(MAX_PENDING_COMPLETIONS);
  const completeAll = async (claims: ReadonlyArray<readonly [string, string]>): Promise<void> => {
    const record = ([key, token]: readonly [string, string]) =>
      storeCall('complete', () => store.complete(key, token, 1, { resultTtlMs }));
    const outcomes = await Promise.allSettled(claims.map(record));
    outcomes.forEach((outcome, i) => {
      const claim = claims[i];
      if (outcome.status === 'rejected' && claim !== undefined) {
        completions.add(claim[0], () => record(claim), leaseMs);
      }
    });
  };

  return async (request) => {
    if (bodyBytes(request.body).byteLength > maxBytes) {
      return refuse(413, 'too_large', 'Payload Too Large');
    }
    const denied = await authenticate(request);
    if (denied !== undefined) return denied;

    const parsed = await parseDelivery(request);
    if ('answer' in parsed) return parsed.answer;
    const { updates, refusal } = parsed;

    if (updates.length === 0) return ok('empty', 0, 0);
    if (deliveries !== undefined) {
      const statuses = (updates as readonly Partial<WebhookUpdate>[])
        .filter((u): u is StatusUpdate => u.kind === 'status' && typeof u.id === 'string')
        .sort((a, b) => a.timestampMs - b.timestampMs);
      if (statuses.length > 0) {
        let applied: readonly AppliedStatus[];
        try {
          applied = await storeCall('applyStatus', () =>
            applyStatusReports(deliveries as WhatsAppDeliveryStore, statuses),
          );
          if (dlq !== undefined) {
            await storeCall('add', () => deadLetterFailedSends(dlq, applied, clock));
          }
        } catch (error) {
          return refuse(500, 'failed', 'Internal Server Error', error);
        }
        const outcomes = applied.map((a) => a.outcome);
        // A recent status of one of our sends whose wamid is not stored yet: ask again.
        const now = clock.now();
        const early = statuses.filter(
          (u, i) =>
            outcomes[i]?.outcome === 'unknown' &&
            u.deliveryTag !== undefined &&
            now - u.timestampMs < TAGGED_UNKNOWN_WINDOW_MS,
        ).length;
        if (early > 0) {
          return {
            status: 503,
            body: 'Service Unavailable',
            headers: { 'Retry-After': '1' },
            outcome: 'in_progress',
            enqueued: 0,
            duplicates: 0,
            inProgress: early,
          };
        }
      }
    }
    // One claim per key: a key repeated within the body is a duplicate of its first copy.
    const keys = updates.map((update) => {
      const key = dedupeKey(update);
      return key === undefined ? undefined : keyPrefix + key;
    });
    const unique = [...new Set(keys.filter((key) => key !== undefined))];
    const verdicts = await Promise.allSettled(unique.map(claim));
    const claimed = new Set<string>();
    const claims: (readonly [string, string])[] = [];
    let duplicates = keys.filter((key) => key !== undefined).length - unique.length;
    let inProgress = 0;
    let retryAfterMs = 0;
    let storeError: unknown;
    verdicts.forEach((verdict, i) => {
      const key = unique[i] as string;
      if (verdict.status === 'rejected') {
        storeError ??= verdict.reason;
        return;
      }
      const claim = verdict.value;
      if (claim.status === 'claimed') {
        claimed.add(key);
        claims.push([key, claim.token]);
        return;
      }
      if (claim.status === 'completed') duplicates++;
      else {
        // In progress: another delivery is at work on it, or one failed without an answer
        // (its claim is released as soon as the store answers again, or runs out).
        inProgress++;
        if (claim.status === 'in_progress')
          retryAfterMs = Math.max(retryAfterMs, claim.retryAfterMs);
      }
    });
    if (storeError !== undefined) {
      await releaseAll(claims);
      return refuse(500, 'failed', 'Internal Server Error', storeError);
    }
    // The updates to queue: those never deduped, and the first copy of each key claimed here.
    const fresh = updates.filter((_, i) => {
      const key = keys[i];
      return key === undefined || claimed.delete(key);
    });
    if (fresh.length > 0) {
      try {
        await enqueue(fresh, request.signal === undefined ? {} : { signal: request.signal });
      } catch (error) {
        await releaseAll(claims);
        return refuse(500, 'failed', 'Internal Server Error', error);
      }
      await completeAll(claims);
    }
    if (onEvent !== undefined) {
      for (const update of fresh) {
        const u = update as Partial<WebhookUpdate>;
        if (u.kind === 'status' && u.id !== undefined && u.status !== undefined) {
          emit(onEvent, {
            type: 'message_status',
            time: clock.now(),
            messageId: u.id,
            status: u.status,
            ...(u.timestampMs === undefined ? {} : { timestampMs: u.timestampMs }),
          });
        }
      }
    }
    if (inProgress > 0) {
      return {
        status: 503,
        body: 'Service Unavailable',
        headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) },
        outcome: 'in_progress',
        enqueued: fresh.length,
        duplicates,
        inProgress,
      };
    }
    if (refusal !== undefined) return { ...refusal, enqueued: fresh.length, duplicates };
    if (fresh.length === 0) return ok('duplicate', 0, duplicates);
    return ok('enqueued', fresh.length, duplicates);
  };
}
