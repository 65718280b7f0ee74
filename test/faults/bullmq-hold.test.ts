import { Job, type Processor, Queue, Worker } from 'bullmq';
import { afterEach, expect, it } from 'vitest';
import { startFakeWhatsApp } from '../../examples/support/fake-whatsapp.js';
import {
  createBackoffStrategy,
  HISTORY_FIELD,
  RETRYKIT_BACKOFF,
  wrapProcessor,
} from '../../src/bullmq/index.js';
import {
  CircuitOpenError,
  createBulkhead,
  createCircuitBreaker,
  createMemoryCircuitStore,
  createMemoryDeadLetterQueue,
  createMemoryTokenBucket,
  type DeadLetterAttempt,
  type RetrykitEvent,
  shouldHold,
} from '../../src/index.js';
import { type CloudMessage, createWhatsAppClient } from '../../src/whatsapp/index.js';
import { connectRedis, describeRedis, redisUrl, uniquePrefix } from '../support/redis.js';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

function connection() {
  return connectRedis(redisUrl, { maxRetriesPerRequest: null });
}

function setup(name: string) {
  const prefix = uniquePrefix(`bull-${name}`).replaceAll(':', '-');
  const queue = new Queue(name, { connection: connection(), prefix });
  closers.push(() => queue.close());
  const startWorker = (processor: Processor, concurrency = 4) => {
    const worker = new Worker(name, processor, { connection: connection(), prefix, concurrency });
    closers.unshift(() => worker.close(true));
    return worker;
  };
  return { queue, startWorker };
}

/** Resolves with the first `count` jobs that complete or fail for good. */
function settled(worker: Worker, count: number): Promise<Job[]> {
  const done: Job[] = [];
  return new Promise((resolve) => {
    const on = (job: Job | undefined): void => {
      if (job === undefined) return;
      done.push(job);
      if (done.length === count) resolve(done);
    };
    worker.on('completed', on);
    worker.on('failed', (job) => {
      if (job !== undefined && job.finishedOn !== undefined) on(job);
    });
  });
}

/**
 * A WhatsApp client with a breaker against the real fake Cloud API, whose token is expired
 * (190, HTTP 401) while `expired()` says so.
 */
async function expiringClient(expired: () => boolean) {
  const fake = await startFakeWhatsApp({ rateLimitPerSecond: 10_000 });
  closers.push(() => fake.close());
  const breaker = createCircuitBreaker({
    store: createMemoryCircuitStore(),
    consecutiveFailures: 2,
    breakDurationMs: 150,
    breakMultiplier: 1,
    halfOpenSuccesses: 1,
  });
  const clientDlq = createMemoryDeadLetterQueue<CloudMessage>();
  const client = createWhatsAppClient({
    phoneNumberId: '1616',
    accessToken: fake.accessToken,
    baseUrl: fake.url,
    fetch: (url, init) =>
      fetch(url, {
        ...init,
        headers: {
          ...(init?.headers as Record<string, string>),
          ...(expired() ? { authorization: 'Bearer expired' } : {}),
        },
      }),
    breaker,
    dlq: clientDlq,
    retry: { backoff: { initialDelayMs: 5, maxDelayMs: 20 } },
  });
  return { fake, client, clientDlq };
}

/** Holds at least 20 ms apart (and at the circuit's break while it is open). */
function quickStrategy(options: Parameters<typeof createBackoffStrategy>[0] = {}) {
  return createBackoffStrategy({
    backoff: { initialDelayMs: 20, multiplier: 1, jitter: 'none' },
    ...options,
  });
}

describeRedis('BullMQ: a job held by an open circuit spends no attempt', () => {
  it('holds every job through a token expiry, dead-letters none, and sends each once after recovery', {
    timeout: 15_000,
  }, async () => {
    const { queue, startWorker } = setup('held');
    let recoverAt = Number.POSITIVE_INFINITY;
    const { fake, client, clientDlq } = await expiringClient(() => Date.now() < recoverAt);
    const dlq = createMemoryDeadLetterQueue();
    const strategy = quickStrategy();
    const seen: number[] = [];
    const errors: unknown[] = [];
    const worker = startWorker(
      wrapProcessor(
        async (job) => {
          seen.push(job.attemptsMade);
          try {
            return (await client.sendMessage(job.data as CloudMessage)).messageId;
          } catch (error) {
            errors.push(error);
            throw error;
          }
        },
        { dlq, strategy },
      ),
    );
    const jobs = 6;
    const done = settled(worker, jobs);
    for (let i = 0; i < jobs; i++) {
      await queue.add(
        'send',
        { to: `1555000${i}`, type: 'text', text: { body: `m${i}` } },
        { attempts: 2, backoff: RETRYKIT_BACKOFF },
      );
    }
    // Held during the outage: at least one job is waiting in delayed with no attempt spent.
    const deadline = Date.now() + 5_000;
    while ((await queue.getDelayedCount()) === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(await queue.getDelayedCount()).toBeGreaterThan(0);
    expect(await queue.getFailedCount()).toBe(0);
    recoverAt = Date.now() + 300;

    const finished = await done;
    for (const settledJob of finished) {
      const job = (await Job.fromId(queue, settledJob.id as string)) as Job;
      expect(await job.getState()).toBe('completed');
      // One attempt, the one that sent: the holds spent none.
      expect(job.attemptsMade).toBe(1);
      const history = job.data[HISTORY_FIELD] as DeadLetterAttempt[] | undefined;
      for (const entry of history ?? []) expect(entry).toMatchObject({ held: true });
    }
    expect(seen.every((attemptsMade) => attemptsMade === 0)).toBe(true);
    expect(errors.length).toBeGreaterThanOrEqual(jobs);
    expect(errors.every(shouldHold)).toBe(true);
    expect(errors.some((e) => e instanceof CircuitOpenError)).toBe(true);
    expect(await dlq.size()).toBe(0);
    expect(await clientDlq.size()).toBe(0);
    const recipients = fake.accepted.map((m) => m.to);
    expect(new Set(recipients).size).toBe(jobs);
    expect(recipients).toHaveLength(jobs);
  });

  it('dead-letters a job held past maxElapsedMs, with the stop reason and its holds', {
    timeout: 10_000,
  }, async () => {
    const { queue, startWorker } = setup('held-budget');
    const { fake, client } = await expiringClient(() => true);
    const dlq = createMemoryDeadLetterQueue();
    const events: RetrykitEvent[] = [];
    const strategy = quickStrategy({ maxElapsedMs: 350 });
    const worker = startWorker(
      wrapProcessor(async (job) => (await client.sendMessage(job.data as CloudMessage)).messageId, {
        dlq,
        strategy,
        onEvent: (e) => events.push(e),
      }),
    );
    const done = settled(worker, 1);
    const added = await queue.add(
      'send',
      { to: '15550009', type: 'text', text: { body: 'late' } },
      { attempts: 2, backoff: RETRYKIT_BACKOFF },
    );
    await done;
    const job = (await Job.fromId(queue, added.id as string)) as Job;
    expect(await job.getState()).toBe('failed');
    const giveUp = events.find((e) => e.type === 'job_attempt_failure' && e.next === 'dead_letter');
    expect(giveUp).toMatchObject({
      stopReason: expect.stringMatching(/^(max_elapsed|retry_after_exceeds_elapsed)$/),
    });
    expect(await dlq.size()).toBe(1);
    const [entry] = (await dlq.list()).entries;
    expect(entry?.disposition).toBe('exhausted');
    expect(entry?.attempts.filter((a) => a.held === true).length).toBeGreaterThanOrEqual(1);
    expect(fake.accepted).toHaveLength(0);
  });

  it('defers a job refused by a full bulkhead or a limiter’s maxWaitMs, spending no attempt', async () => {
    const { queue, startWorker } = setup('refused');
    const dlq = createMemoryDeadLetterQueue();
    const bulkhead = createBulkhead({ maxConcurrent: 1 });
    let release = (): void => {};
    const busy = bulkhead.run('1616', () => new Promise<void>((resolve) => (release = resolve)));
    const limiter = createMemoryTokenBucket({ capacity: 1, refillPerSecond: 4 });
    await limiter.acquire('1616');
    let runs = 0;
    const worker = startWorker(
      wrapProcessor(
        async () => {
          runs++;
          if (runs === 1) await limiter.acquire('1616', 1, { maxWaitMs: 0 });
          if (runs === 2) await bulkhead.run('1616', () => 'never');
          release();
          await busy;
          return bulkhead.run('1616', () => 'sent');
        },
        { dlq, strategy: quickStrategy() },
      ),
    );
    const done = settled(worker, 1);
    const added = await queue.add('send', { to: 'A' }, { attempts: 1 });
    await done;
    const job = (await Job.fromId(queue, added.id as string)) as Job;
    expect(await job.getState()).toBe('completed');
    expect(job.attemptsMade).toBe(1);
    const history = job.data[HISTORY_FIELD] as DeadLetterAttempt[];
    expect(history.map((a) => a.reason)).toEqual(['rate_limited', 'rate_limited']);
    // The limiter's refusal waits its retryAfterMs (a token in 250 ms); the bulkhead's backs off.
    expect(history[0]?.deferredMs).toBeGreaterThan(100);
    expect(history[0]?.deferredMs).toBeLessThanOrEqual(300);
    expect(history[1]?.deferredMs).toBe(20);
    expect(history.some((a) => a.held === true)).toBe(false);
    expect(await dlq.size()).toBe(0);
  });
});
