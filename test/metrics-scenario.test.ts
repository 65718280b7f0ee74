import { type Job, Queue, Worker } from 'bullmq';
import { afterEach, expect, it } from 'vitest';
import {
  createBackoffStrategy,
  RETRYKIT_BACKOFF,
  sampleQueueDepth,
  wrapProcessor,
} from '../src/bullmq/index.js';
import {
  type Classification,
  composeClassifiers,
  createMetrics,
  PermanentError,
} from '../src/index.js';
import {
  createRedisDeadLetterQueue,
  createRedisIdempotencyStore,
  createRedisTokenBucket,
} from '../src/redis/index.js';
import { seededRandom } from '../src/testing/index.js';
import {
  type CloudMessage,
  createWebhookHandler,
  createWhatsAppClient,
  signWebhookBody,
  type WebhookUpdate,
  whatsappDeliveryMetrics,
} from '../src/whatsapp/index.js';
import { until } from './support/rate-limiter-contract.js';
import { connectRedis, describeRedis, redisUrl, uniquePrefix } from './support/redis.js';
import { type ScriptedAnswer, startScriptedCloudApi } from './support/scripted-cloud-api.js';

// The user's scenario from issue 15: a sender (the WhatsApp client on a fake Cloud API), a
// webhook receiver and a BullMQ worker, every component wired to ONE `createMetrics` as
// docs/observability.md says, on a real Redis and a real BullMQ. Faults: 503s, 130429s, a
// 131026, duplicate sends, duplicate webhooks, statuses in shuffled order, worker failures.
// The test keeps its own counts (the fake API's log, its own bookkeeping) and every figure of
// the snapshot it can check must equal them exactly.

const APP_SECRET = 'test-app-secret';
const PHONE = '1055';
const T0_S = 1_767_225_600;

class SchemaError extends Error {
  override readonly name = 'SchemaError';
}

const classify = composeClassifiers((error): Classification | undefined =>
  error instanceof SchemaError ? { retryable: false, reason: 'schema_mismatch' } : undefined,
);

function httpError(status: number): Error {
  return Object.assign(new Error(`HTTP ${status}`), { status });
}

function statusWebhook(wamid: string, status: string, timestampS: number): string {
  return JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [
      {
        id: '880011223344556',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550001111', phone_number_id: PHONE },
              statuses: [
                {
                  id: wamid,
                  status,
                  timestamp: String(timestampS),
                  recipient_id: '4915',
                  ...(status === 'failed'
                    ? { errors: [{ code: 131026, title: 'Message undeliverable' }] }
                    : {}),
                },
              ],
            },
          },
        ],
      },
    ],
  });
}

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

describeRedis('the first-hour scenario, with one metrics window', () => {
  it('counts every figure as the test saw it happen', async () => {
    const random = seededRandom(15);
    const metrics = createMetrics({ sections: [whatsappDeliveryMetrics()] });
    const { onEvent } = metrics;
    const redis = connectRedis();
    const prefix = uniquePrefix('scenario');
    const store = createRedisIdempotencyStore(redis, { prefix: `${prefix}:idem`, onEvent });
    const sendDlq = createRedisDeadLetterQueue<CloudMessage>(redis, {
      prefix: `${prefix}:dlq:send`,
      onEvent,
    });
    const webhookDlq = createRedisDeadLetterQueue<string>(redis, {
      prefix: `${prefix}:dlq:webhook`,
      onEvent,
    });
    const jobDlq = createRedisDeadLetterQueue<WebhookUpdate>(redis, {
      prefix: `${prefix}:dlq:jobs`,
      onEvent,
    });
    // Room for every request: it never makes anyone wait.
    const limiter = createRedisTokenBucket(redis, {
      prefix: `${prefix}:rl`,
      capacity: 100,
      refillPerSecond: 100,
      onEvent,
    });

    // --- The sender.
    const scripts: Record<string, readonly ScriptedAnswer[]> = {
      flaky: [503],
      throttled: [130429],
      both: [503, 130429],
      gone: [131026, 131026, 131026],
    };
    const api = await startScriptedCloudApi((to, n) => scripts[to]?.[n - 1] ?? 'accept');
    closers.push(() => api.close());
    const client = createWhatsAppClient({
      phoneNumberId: PHONE,
      accessToken: 'test-token',
      baseUrl: api.url,
      limiter,
      store,
      dlq: sendDlq,
      onEvent,
      retry: { backoff: { initialDelayMs: 1, maxDelayMs: 5, jitter: 'none' } },
    });
    const recipients = [
      ...Array.from({ length: 8 }, (_, i) => `ok-${i}`),
      'flaky',
      'throttled',
      'both',
      'gone',
    ];
    const text = (to: string): CloudMessage => ({ to, type: 'text', text: { body: 'hi' } });
    const sent = await Promise.allSettled(
      recipients.map((to) => client.sendMessage(text(to), { idempotencyKey: `order-${to}` })),
    );
    // Duplicates: a double click on a sent message, a retried job of the undeliverable one.
    const again = await client.sendMessage(text('ok-0'), { idempotencyKey: 'order-ok-0' });
    expect(again.deduplicated).toBe(true);
    await expect(
      client.sendMessage(text('gone'), { idempotencyKey: 'order-gone' }),
    ).rejects.toBeInstanceOf(PermanentError);
    const duplicateSends = 2;
    expect(sent.filter((r) => r.status === 'rejected')).toHaveLength(1);

    // --- The worker: status updates queued by the receiver.
    const queuePrefix = prefix.replaceAll(':', '-');
    const connection = () => connectRedis(redisUrl, { maxRetriesPerRequest: null });
    const queue = new Queue<WebhookUpdate>('statuses', {
      connection: connection(),
      prefix: queuePrefix,
    });
    closers.push(() => queue.close());
    const strategy = createBackoffStrategy({
      classify,
      backoff: { initialDelayMs: 20, jitter: 'none' },
      onEvent,
    });
    // Jobs that fail: `delivered` of ok-1 once, `read` of ok-2 twice (503s), `sent` of ok-3
    // for good (a schema error); `delivered` of ok-4 is throttled once (a 429), which defers
    // it without spending an attempt.
    const failPlan = new Map<string, number>([
      ['wamid.ok-1:delivered', 1],
      ['wamid.ok-2:read', 2],
    ]);
    const runs = new Map<string, number>();
    let jobsDone = 0;
    let jobsFailedForGood = 0;
    const worker = new Worker<WebhookUpdate>(
      'statuses',
      wrapProcessor<WebhookUpdate>(
        async (job: Job<WebhookUpdate>) => {
          const u = job.data;
          const key = u.kind === 'status' ? `${u.id}:${u.status}` : u.kind;
          const run = (runs.get(key) ?? 0) + 1;
          runs.set(key, run);
          if (key === 'wamid.ok-3:sent') {
            jobsFailedForGood++;
            throw new SchemaError('CRM refused the record');
          }
          if (key === 'wamid.ok-4:delivered' && run === 1) throw httpError(429);
          if (run <= (failPlan.get(key) ?? 0)) throw httpError(503);
          jobsDone++;
          return 'saved';
        },
        { dlq: jobDlq, classify, strategy, onEvent },
      ),
      { connection: connection(), prefix: queuePrefix, settings: { backoffStrategy: strategy } },
    );
    closers.unshift(() => worker.close());
    const sampler = sampleQueueDepth(queue, { onEvent, intervalMs: 50 });
    closers.unshift(() => sampler.stop());

    // --- The receiver.
    let enqueued = 0;
    const handle = createWebhookHandler({
      appSecret: APP_SECRET,
      store,
      dlq: webhookDlq,
      onEvent,
      enqueue: async (updates) => {
        enqueued += updates.length;
        await queue.addBulk(
          updates.map((data) => ({
            name: 'status',
            data,
            opts: { attempts: 3, backoff: RETRYKIT_BACKOFF },
          })),
        );
      },
    });
    const post = async (body: string) => {
      const signature = await signWebhookBody(body, APP_SECRET);
      return handle({ body, headers: { 'x-hub-signature-256': `sha256=${signature}` } });
    };

    // Statuses, on Meta's clock (whole seconds): every accepted message is `sent`; ok-6 then
    // fails; ok-7 is only `read` (its `delivered` never comes); the others are delivered 1–9 s
    // after sent, and some read later.
    const accepted = api.log.filter((r) => r.answer === 'accept');
    const bodies: string[] = [];
    const latenciesMs: number[] = [];
    const statusCount = { sent: 0, delivered: 0, read: 0, failed: 0 };
    for (const [i, { wamid }] of accepted.entries()) {
      const id = wamid as string;
      const sentS = T0_S + i * 10;
      const add = (status: keyof typeof statusCount, s: number) => {
        bodies.push(statusWebhook(id, status, s));
        statusCount[status]++;
      };
      add('sent', sentS);
      if (id === 'wamid.ok-6') add('failed', sentS + 2);
      else if (id === 'wamid.ok-7') add('read', sentS + 4);
      else {
        const deliveredS = sentS + 1 + Math.floor(random() * 9);
        add('delivered', deliveredS);
        latenciesMs.push((deliveredS - sentS) * 1000);
        if (id === 'wamid.ok-2' || random() < 0.5) add('read', deliveredS + 3);
      }
    }
    // Shuffled, then some redelivered (Meta retries), then one that isn't a webhook at all.
    for (let i = bodies.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [bodies[i], bodies[j]] = [bodies[j] as string, bodies[i] as string];
    }
    const redelivered = bodies.filter(() => random() < 0.3);
    for (const body of bodies) expect((await post(body)).outcome).toBe('enqueued');
    for (const body of redelivered) expect((await post(body)).outcome).toBe('duplicate');
    expect((await post('{"not":"a webhook"}')).outcome).toBe('invalid');

    await until(
      () => jobsDone + jobsFailedForGood === bodies.length && enqueued === bodies.length,
      10_000,
    );
    // The job's dead letter lands just after its processor threw.
    while ((await jobDlq.size()) === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await sampler.sample()).toBe(0);

    // --- The test's own counts.
    const log = api.log;
    const requestsOf = (answer: ScriptedAnswer) => log.filter((r) => r.answer === answer).length;
    const calls = new Set(log.map((r) => r.to)).size;
    const firstTry = log.filter((r) => r.n === 1 && r.answer === 'accept').length;
    const retries = requestsOf(503) + requestsOf(130429);
    const gaveUp = requestsOf(131026);
    const jobRetries = [...failPlan.values()].reduce((a, b) => a + b, 0);
    const deferrals = 1;
    const jobs = bodies.length;
    // Jobs whose first run did not finish them: the two failing ones, the poison one, the
    // throttled one.
    const firstRunDone = jobs - failPlan.size - 1 - deferrals;

    const s = metrics.snapshot();
    expect(s.calls).toMatchObject({
      started: calls,
      succeeded: requestsOf('accept'),
      firstAttemptSucceeded: firstTry,
      gaveUp,
    });
    expect(s.attempts).toEqual({
      started: log.length,
      failed: retries + gaveUp,
      failedByReason: {
        service_unavailable: requestsOf(503),
        rate_limited: requestsOf(130429),
        client_error: gaveUp,
      },
    });
    expect(s.retries).toMatchObject({
      scheduled: retries,
      byReason: { service_unavailable: requestsOf(503), rate_limited: requestsOf(130429) },
    });
    expect(s.giveUps).toEqual({
      total: gaveUp,
      byReason: { client_error: gaveUp },
      byStopReason: { permanent: gaveUp },
    });
    expect(s.ratios).toEqual({
      firstAttemptSuccess: firstTry / calls,
      retry: retries / (calls + retries),
      error: gaveUp / calls,
    });
    expect(s.latency.count).toBe(calls);
    expect(s.rateLimit).toEqual({ waits: 0, refused: 0, meanWaitMs: null });
    expect(s.idempotency).toEqual({
      hits: duplicateSends + redelivered.length,
      byStatus: { completed: duplicateSends + redelivered.length },
    });
    expect(s.deadLetters).toEqual({
      total: 3,
      byReason: { client_error: 1, schema_mismatch: 2 },
    });
    expect([await sendDlq.size(), await webhookDlq.size(), await jobDlq.size()]).toEqual([1, 1, 1]);
    expect(s.queues.statuses?.depth).toBe(0);
    expect(s.jobs).toEqual({
      started: jobs,
      attempts: jobs + jobRetries + deferrals,
      succeeded: jobs - 1,
      firstAttemptSucceeded: firstRunDone,
      failed: jobRetries + 1,
      failedByReason: { service_unavailable: jobRetries, schema_mismatch: 1 },
      deferred: deferrals,
      // Backoff 20 ms doubling: ok-1's one retry after 20 ms, ok-2's two after 20 and 40 ms,
      // ok-4's deferral after 20 ms.
      retries: { scheduled: jobRetries + deferrals, meanDelayMs: (20 + 20 + 40 + 20) / 4 },
      gaveUp: 1,
      gaveUpByStopReason: { permanent: 1 },
      ratios: {
        firstAttemptSuccess: firstRunDone / jobs,
        retry: (jobRetries + deferrals) / (jobs + jobRetries + deferrals),
        error: 1 / jobs,
      },
    });
    const m = s.messages;
    expect(m).toMatchObject({
      accepted: accepted.length,
      byStatus: { accepted: accepted.length, ...statusCount },
      delivered: statusCount.delivered + 1,
      failed: statusCount.failed,
      deliveryRate: (statusCount.delivered + 1) / (statusCount.delivered + 1 + statusCount.failed),
    });
    expect(m.deliveryLatency.count).toBe(latenciesMs.length);
    expect(m.deliveryLatency.maxMs).toBe(Math.max(...latenciesMs));
    expect(m.deliveryLatency.meanMs).toBeCloseTo(
      latenciesMs.reduce((a, b) => a + b, 0) / latenciesMs.length,
      9,
    );
  }, 15_000);
});
