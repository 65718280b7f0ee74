/**
 * THE WIRING: how the soak's processes use retrykit. Everything the soak tests is set up in
 * this one file, the way docs/durable-retries.md and docs/whatsapp.md recommend for production:
 *
 * - sends are BullMQ jobs (`RETRYKIT_JOB_OPTIONS`, `wrapProcessor` with one backoff strategy),
 *   each job one logical message whose job ID is its idempotency key;
 * - the WhatsApp client inside the job: a Redis token bucket per phone number (every attempt
 *   takes a token), Redis idempotency, Redis delivery records; no `dlq` of its own (inside a
 *   job the dead-letter queue is the job's);
 * - `wrapProcessor` holds the pair limiter (per recipient) and defers a job it refuses;
 * - one Redis dead-letter queue behind `withFallback` and an fsynced file per process;
 * - the webhook receiver: `createWebhookHandler` with Redis claims, the delivery records and
 *   the dead-letter queue, enqueueing every update to a BullMQ queue;
 * - `createMetrics` with the WhatsApp delivery section, fed by every component's `onEvent`;
 * - closed-loop delivery (docs/whatsapp.md, "Delivery lifecycle"): the clients hold an
 *   ambiguous timeout (`timeoutGraceMs`) instead of retrying it, the receiver applies statuses
 *   to the shared Redis delivery records and dead-letters permanent `failed` ones, and every
 *   worker process runs a `createDeliveryReconciler` on the same records (leased: several run
 *   at once) that re-sends after a transient `failed` or an unconfirmed send, dead-letters a
 *   message whose sends ran out and reports stuck ones. Timings are `CLOSED_LOOP`'s, scaled
 *   down so that the loop acts within a short run.
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Job, type Processor, Queue, type WorkerOptions } from 'bullmq';
import { Redis } from 'ioredis';
import {
  combineListeners,
  composeClassifiers,
  createMetrics,
  type DeadLetterQueue,
  type MetricsHandle,
} from 'retrykit';
import { createBackoffStrategy, RETRYKIT_JOB_OPTIONS, wrapProcessor } from 'retrykit/bullmq';
import { createFileSink, withFallback } from 'retrykit/node';
import {
  createRedisDeadLetterQueue,
  createRedisDeliveryStore,
  createRedisIdempotencyStore,
  createRedisTokenBucket,
} from 'retrykit/redis';
import {
  type CloudMessage,
  classifyWhatsAppError,
  createDeliveryReconciler,
  createWebhookHandler,
  createWhatsAppClient,
  throughputLimits,
  type WebhookHandler,
  type WebhookUpdate,
  type WhatsAppClient,
  type WhatsAppDeliveryStore,
  type WhatsAppEvent,
  whatsAppDedupeKey,
  whatsappDeliveryMetrics,
} from 'retrykit/whatsapp';
import {
  CLOSED_LOOP,
  type LoopEvent,
  messageText,
  NAMES,
  SENT_HEADER,
  type SendJob,
  type SoakProcessConfig,
  WORKER_HEADER,
} from './config.js';

/** BullMQ settings of the soak's queues and workers. */
export const BULL = Object.freeze({
  /** A killed worker's job is back in the wait list within about this (ms). */
  lockDuration: 10_000,
  stalledInterval: 5_000,
});

/** ioredis options of a BullMQ connection (BullMQ requires `maxRetriesPerRequest: null`). */
export function bullConnection(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null });
}

/** A store client: fails fast while Redis is away, so retrykit's own timeouts decide. */
function storeConnection(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: 1 });
}

/** The delivery records, shared by the workers, the receiver and the audit. */
export function deliveryStore(redis: Redis): WhatsAppDeliveryStore {
  return createRedisDeliveryStore(redis, { prefix: NAMES.deliveries });
}

/** The dead-letter file of one process slot (a restarted process writes the same file). */
export function fallbackFile(config: SoakProcessConfig, slot: string): string {
  return join(config.fallbackDir, `${slot}.jsonl`);
}

/** The sends queue as the producer uses it. */
export function sendsQueue(connection: Redis): Queue<SendJob> {
  return new Queue<SendJob>(NAMES.sends, {
    connection,
    prefix: NAMES.bullPrefix,
    defaultJobOptions: RETRYKIT_JOB_OPTIONS,
  });
}

/** The queue the webhook receiver fills with updates. */
export function updatesQueue(connection: Redis): Queue<WebhookUpdate> {
  return new Queue<WebhookUpdate>(NAMES.updates, {
    connection,
    prefix: NAMES.bullPrefix,
    defaultJobOptions: RETRYKIT_JOB_OPTIONS,
  });
}

/** A worker process's retrykit pieces. */
export interface SendWiring {
  readonly processor: Processor<SendJob>;
  readonly workerOptions: WorkerOptions;
  readonly metrics: MetricsHandle;
  /** Dead letters that went to the file because Redis was away. */
  fallbackWrites(): number;
  close(): Promise<void>;
}

/** Builds a send worker's processor and options. `slot` names the process (`worker-1`). */
export function createSendWiring(config: SoakProcessConfig, slot: string): SendWiring {
  const metrics = createMetrics({
    windowMs: 3_600_000,
    sections: [whatsappDeliveryMetrics()],
  });
  const { onEvent } = metrics;
  const redis = storeConnection(config.redisUrl);
  const classify = composeClassifiers(classifyWhatsAppError);
  let fallbackWrites = 0;
  const dlq = withFallback(
    createRedisDeadLetterQueue<SendJob>(redis, { prefix: NAMES.dlq, onEvent }),
    createFileSink(fallbackFile(config, slot)),
    {
      onFallback: () => {
        fallbackWrites++;
      },
    },
  );
  const numberLimiter = createRedisTokenBucket(redis, {
    prefix: NAMES.numberBucket,
    ...throughputLimits(config.perNumberLimit),
    onEvent,
  });
  const pairLimiter = createRedisTokenBucket(redis, {
    prefix: NAMES.pairBucket,
    ...config.pair,
    onEvent,
  });
  const store = createRedisIdempotencyStore(redis, { prefix: NAMES.sendStore, onEvent });
  const deliveries = deliveryStore(redis);
  // Stamps each request with who sent it and when it left: the audit reads both back from the
  // fake API's log (rate limits are checked on departures, after the limiters granted them).
  const stampedFetch: typeof fetch = (input, init) => {
    const headers = new Headers(init?.headers);
    headers.set(WORKER_HEADER, `${slot}/${process.pid}`);
    headers.set(SENT_HEADER, String(Date.now()));
    return fetch(input, { ...init, headers });
  };
  const clients = new Map<string, WhatsAppClient>();
  for (const phoneNumberId of config.phoneNumbers) {
    clients.set(
      phoneNumberId,
      createWhatsAppClient({
        accessToken: config.accessToken,
        phoneNumberId,
        baseUrl: config.apiUrl,
        fetch: stampedFetch,
        limiter: numberLimiter,
        store,
        deliveries,
        timeoutGraceMs: CLOSED_LOOP.graceMs,
        // A hung request is given up after 4 s; a request that runs longer than the lease
        // could be sent twice, so the lease is well above a whole call (3 attempts + waits).
        requestTimeoutMs: 4_000,
        leaseMs: 30_000,
        retry: { maxAttempts: 3, backoff: { initialDelayMs: 200, maxDelayMs: 2_000 } },
        onEvent,
      }),
    );
  }
  const strategy = createBackoffStrategy({
    classify,
    backoff: { initialDelayMs: 500, maxDelayMs: 5_000 },
    onEvent,
  });
  const processor = wrapProcessor<SendJob>(
    async (job: Job<SendJob>) => {
      const client = clients.get(job.data.phoneNumberId);
      if (client === undefined) throw new Error(`unknown phone number ${job.data.phoneNumberId}`);
      const payload: CloudMessage = {
        to: job.data.to,
        type: 'text',
        text: { body: messageText(job.data.key) },
      };
      const result = await client.sendMessage(payload, { idempotencyKey: job.data.key });
      return result.messageId;
    },
    {
      dlq: dlq as DeadLetterQueue<SendJob>,
      classify,
      strategy,
      limiter: pairLimiter,
      limiterKey: (job: Job<SendJob>) => `${job.data.phoneNumberId}:${job.data.to}`,
      onEvent,
    },
  );
  // The closed loop: a reconciler in every worker process, all on the same records. It re-sends
  // any number's messages, each through the client of the number that sent it (its sender).
  const reconcilerDlq = withFallback(
    createRedisDeadLetterQueue<string>(redis, { prefix: NAMES.dlq, onEvent }),
    createFileSink(fallbackFile(config, `${slot}-reconciler`)),
    {
      onFallback: () => {
        fallbackWrites++;
      },
    },
  );
  // Stuck alerts and re-sends, written synchronously: a SIGKILL right after loses none.
  const eventLog = join(config.eventsDir, `${slot}.jsonl`);
  const by = `${slot}/${process.pid}`;
  const logLoop = (event: WhatsAppEvent): void => {
    if (event.type !== 'message_stuck' && event.type !== 'message_resent') return;
    const line: LoopEvent = {
      type: event.type,
      key: event.key,
      ...(event.messageId === undefined ? {} : { messageId: event.messageId }),
      ...(event.type === 'message_resent'
        ? { cause: event.cause, attemptId: event.attemptId }
        : {}),
      at: Date.now(),
      by,
    };
    appendFileSync(eventLog, `${JSON.stringify(line)}\n`);
  };
  const reconciler = createDeliveryReconciler({
    deliveries,
    clients: [...clients.values()],
    dlq: reconcilerDlq as DeadLetterQueue<string>,
    maxAttempts: CLOSED_LOOP.maxAttempts,
    backoff: CLOSED_LOOP.backoff,
    timeoutGraceMs: CLOSED_LOOP.graceMs,
    stuckAfterMs: CLOSED_LOOP.stuckAfterMs,
    leaseMs: CLOSED_LOOP.leaseMs,
    intervalMs: CLOSED_LOOP.intervalMs,
    onEvent: combineListeners<WhatsAppEvent>(onEvent, logLoop),
    // A round fails while Redis is away; the next one runs after intervalMs. Every number has
    // its client here, so no message waits for one.
    onError: () => {},
  });
  reconciler.start();
  return {
    processor,
    workerOptions: {
      connection: bullConnection(config.redisUrl),
      prefix: NAMES.bullPrefix,
      concurrency: config.concurrency,
      lockDuration: BULL.lockDuration,
      stalledInterval: BULL.stalledInterval,
      settings: { backoffStrategy: strategy },
    },
    metrics,
    fallbackWrites: () => fallbackWrites,
    close: async () => {
      await reconciler.stop();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** The webhook receiver's handler and what it holds open. */
export interface ReceiverWiring {
  readonly handle: WebhookHandler;
  close(): Promise<void>;
}

/** Builds the receiver: verify, dedupe, apply statuses to the delivery records, enqueue. */
export function createReceiverWiring(config: SoakProcessConfig, slot: string): ReceiverWiring {
  const redis = storeConnection(config.redisUrl);
  const connection = bullConnection(config.redisUrl);
  const queue = updatesQueue(connection);
  const dlq = withFallback(
    createRedisDeadLetterQueue<string>(redis, { prefix: NAMES.dlq }),
    createFileSink(fallbackFile(config, slot)),
  );
  const handle = createWebhookHandler({
    appSecret: config.appSecret,
    store: createRedisIdempotencyStore(redis, { prefix: NAMES.webhookStore }),
    deliveries: deliveryStore(redis),
    dlq: dlq as DeadLetterQueue<string>,
    // The job ID repeats the dedupe key, so an add ioredis re-sends after a lost reply is one
    // job (docs/whatsapp.md; the soak found the double without it).
    enqueue: (updates) =>
      queue.addBulk(
        updates.map((u) => {
          const key = whatsAppDedupeKey(u);
          return {
            name: u.kind,
            data: u,
            opts: key === undefined ? {} : { jobId: key.replaceAll(':', '-') },
          };
        }),
      ),
  });
  return {
    handle,
    close: async () => {
      await queue.close().catch(() => undefined);
      await redis.quit().catch(() => redis.disconnect());
      connection.disconnect();
    },
  };
}
