import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Job, type Processor, Queue, Worker, type WorkerOptions } from 'bullmq';
import { afterEach, expect, it, vi } from 'vitest';
import {
  createBackoffStrategy,
  HISTORY_FIELD,
  RETRYKIT_BACKOFF,
  wrapProcessor,
} from '../../src/bullmq/index.js';
import {
  createMemoryDeadLetterQueue,
  createMemoryTokenBucket,
  type DeadLetterEntry,
  type RetrykitEvent,
} from '../../src/index.js';
import { connectRedis, describeRedis, redisUrl, uniquePrefix } from '../support/redis.js';

function httpError(status: number, headers: Record<string, string> = {}): Error {
  return Object.assign(new Error(`HTTP ${status}`), { status, headers });
}

const closers: (() => Promise<unknown>)[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await Promise.all(closers.splice(0).map((close) => close()));
});

/** A client of the ioredis major under test (bullmq 6 brings no ioredis of its own). */
function connection() {
  return connectRedis(redisUrl, { maxRetriesPerRequest: null });
}

function setup(name: string) {
  const prefix = uniquePrefix(`bull-${name}`).replaceAll(':', '-');
  const queue = new Queue(name, { connection: connection(), prefix });
  closers.push(() => queue.close());
  const startWorker = <R>(processor: Processor<unknown, R>, opts: WorkerOptions | object = {}) => {
    const worker = new Worker<unknown, R>(name, processor, {
      connection: connection(),
      prefix,
      ...opts,
    });
    closers.unshift(() => worker.close(true));
    return worker;
  };
  return { queue, prefix, startWorker };
}

/** Resolves with the first `count` jobs that complete or fail for good. */
function settled<R>(worker: Worker<unknown, R>, count = 1): Promise<Job<unknown, R>[]> {
  const done: Job<unknown, R>[] = [];
  return new Promise((resolve) => {
    const on = (job: Job<unknown, R> | undefined): void => {
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

/** A strategy whose throttle deferrals are short and exact: 20 ms each. */
function quickStrategy(options: Parameters<typeof createBackoffStrategy>[0] = {}) {
  return createBackoffStrategy({
    backoff: { initialDelayMs: 20, multiplier: 1, jitter: 'none' },
    ...options,
  });
}

describeRedis('BullMQ: a throttle spends no attempt', () => {
  it('completes a job throttled 5 times with attempts: 2, attemptsMade counting only real failures', async () => {
    const { queue, startWorker } = setup('throttled');
    const dlq = createMemoryDeadLetterQueue();
    const events: RetrykitEvent[] = [];
    const strategy = quickStrategy({ onEvent: (e) => events.push(e) });
    const seen: number[] = [];
    let runs = 0;
    const worker = startWorker(
      wrapProcessor(
        async (job) => {
          seen.push(job.attemptsMade);
          runs++;
          if (runs <= 3) throw httpError(429);
          if (runs === 4) throw httpError(503);
          if (runs <= 6) throw httpError(429);
          return 'sent';
        },
        { dlq, strategy },
      ),
      { settings: { backoffStrategy: strategy } },
    );
    const done = settled(worker);
    const added = await queue.add('send', { to: 'A' }, { attempts: 2, backoff: RETRYKIT_BACKOFF });
    await done;
    const job = (await Job.fromId(queue, added.id as string)) as Job;
    expect(await job.getState()).toBe('completed');
    expect(job.returnvalue).toBe('sent');
    expect(runs).toBe(7);
    // Three throttles on the first attempt, the 503 spends it, two throttles on the second.
    expect(seen).toEqual([0, 0, 0, 0, 1, 1, 1]);
    expect(job.attemptsMade).toBe(2);
    expect(job.data[HISTORY_FIELD]).toMatchObject([
      { reason: 'rate_limited', deferredMs: 20 },
      { reason: 'rate_limited', deferredMs: 20 },
      { reason: 'rate_limited', deferredMs: 20 },
      { reason: 'service_unavailable', message: 'HTTP 503' },
      { reason: 'rate_limited', deferredMs: 20 },
      { reason: 'rate_limited', deferredMs: 20 },
    ]);
    expect(job.data[HISTORY_FIELD][3]).not.toHaveProperty('deferredMs');
    expect(events.filter((e) => e.type === 'job_retry_scheduled')).toHaveLength(6);
    expect(await dlq.size()).toBe(0);
  });

  it('dead-letters a job throttled past maxDeferrals, the deferrals in its dead letter', async () => {
    const { queue, startWorker } = setup('maxdeferrals');
    const dlq = createMemoryDeadLetterQueue();
    const events: RetrykitEvent[] = [];
    const strategy = quickStrategy({ maxDeferrals: 3 });
    let runs = 0;
    const worker = startWorker(
      wrapProcessor(
        async (): Promise<void> => {
          runs++;
          throw Object.assign(httpError(400), { errorCode: 130429 });
        },
        {
          dlq,
          strategy,
          classify: () => ({ retryable: true, reason: 'rate_limited', errorCode: 130429 }),
          onEvent: (e) => events.push(e),
        },
      ),
    );
    const done = settled(worker);
    const added = await queue.add('send', { to: 'A' }, { attempts: 5 });
    await done;
    const job = (await Job.fromId(queue, added.id as string)) as Job;
    expect(await job.getState()).toBe('failed');
    expect(runs).toBe(4);
    expect(job.attemptsMade).toBe(1);
    const entry = (await dlq.get(`maxdeferrals:${added.id}`)) as DeadLetterEntry;
    expect(entry).toMatchObject({ payload: { to: 'A' }, reason: 'rate_limited' });
    expect(entry.attempts.map((a) => a.deferredMs)).toEqual([20, 20, 20, undefined]);
    expect(entry.attempts.every((a) => a.errorCode === 130429)).toBe(true);
    expect(events.at(-1)).toMatchObject({
      type: 'job_attempt_failure',
      next: 'dead_letter',
      stopReason: 'max_deferrals',
    });
  });

  it("dead-letters a job whose next deferral would end past the strategy's maxElapsedMs", async () => {
    const { queue, startWorker } = setup('maxelapsed');
    const dlq = createMemoryDeadLetterQueue();
    const events: RetrykitEvent[] = [];
    const strategy = quickStrategy({ maxElapsedMs: 250 });
    const worker = startWorker(
      wrapProcessor(
        async (): Promise<void> => {
          throw httpError(429, { 'retry-after': '0.1' });
        },
        { dlq, strategy, onEvent: (e) => events.push(e) },
      ),
    );
    const done = settled(worker);
    const added = await queue.add('send', { to: 'A' }, { attempts: 5 });
    const started = Date.now();
    await done;
    const job = (await Job.fromId(queue, added.id as string)) as Job;
    expect(await job.getState()).toBe('failed');
    expect(job.attemptsMade).toBe(1);
    // Deferrals of at least 100 ms each, until the next would end past 250 ms.
    const entry = (await dlq.get(`maxelapsed:${added.id}`)) as DeadLetterEntry;
    const deferrals = entry.attempts.filter((a) => a.deferredMs !== undefined);
    expect(deferrals.length).toBeGreaterThanOrEqual(1);
    expect(deferrals.length).toBeLessThanOrEqual(2);
    expect(deferrals.every((a) => (a.deferredMs as number) >= 100)).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(events.at(-1)).toMatchObject({
      type: 'job_attempt_failure',
      next: 'dead_letter',
      stopReason: 'retry_after_exceeds_elapsed',
    });
  });

  it('loses nothing when the worker is SIGKILLed mid-deferral: the job waits in delayed', async () => {
    const { queue, prefix, startWorker } = setup('killed');
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(new URL('../fixtures/deferring-worker.ts', import.meta.url)),
        redisUrl,
        prefix,
        'killed',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(child);
    const added = await queue.add('send', { to: 'A' }, { attempts: 1 });
    await new Promise<void>((resolve) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('deferred 60000')) resolve();
      });
    });
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));

    const parked = (await Job.fromId(queue, added.id as string)) as Job;
    expect(await parked.getState()).toBe('delayed');
    expect(parked.attemptsMade).toBe(0);
    expect(parked.data[HISTORY_FIELD]).toMatchObject([
      { reason: 'rate_limited', deferredMs: 60_000 },
    ]);
    await parked.promote();
    const dlq = createMemoryDeadLetterQueue();
    const worker = startWorker(wrapProcessor(async () => 'sent', { dlq }));
    await settled(worker);
    const job = (await Job.fromId(queue, added.id as string)) as Job;
    expect(await job.getState()).toBe('completed');
    expect(job.attemptsMade).toBe(1);
  });

  it('keeps a deferred job in delayed across a worker close, for the next worker', async () => {
    const { queue, startWorker } = setup('closed');
    const dlq = createMemoryDeadLetterQueue();
    const deferred = vi.fn();
    const strategy = createBackoffStrategy({
      backoff: { initialDelayMs: 60_000, jitter: 'none' },
      onEvent: (e) => {
        if (e.type === 'job_retry_scheduled') deferred();
      },
    });
    let runs = 0;
    const first = startWorker(
      wrapProcessor(
        async () => {
          runs++;
          throw httpError(429);
        },
        { dlq, strategy },
      ),
    );
    const added = await queue.add('send', { to: 'A' }, { attempts: 1 });
    await vi.waitFor(() => expect(deferred).toHaveBeenCalledOnce());
    await first.close();
    expect(await queue.getJobState(added.id as string)).toBe('delayed');
    // Its deferral would last a minute: brought forward, for the next worker to take.
    await ((await Job.fromId(queue, added.id as string)) as Job).promote();
    const second = startWorker(wrapProcessor(async () => 'sent', { dlq, strategy }));
    await settled(second);
    const job = (await Job.fromId(queue, added.id as string)) as Job;
    expect(await job.getState()).toBe('completed');
    expect(runs).toBe(1);
    expect(job.attemptsMade).toBe(1);
    expect(await dlq.size()).toBe(0);
  });
});

describeRedis('BullMQ: moves a processor makes itself pass through wrapProcessor', () => {
  it('lets a queue-wide pause (worker.rateLimit + Worker.RateLimitError) spend no attempt', async () => {
    const { queue, startWorker } = setup('ratelimit');
    const dlq = createMemoryDeadLetterQueue();
    const events: RetrykitEvent[] = [];
    let runs = 0;
    const worker: Worker = startWorker(
      wrapProcessor(
        async () => {
          runs++;
          if (runs === 1) {
            await worker.rateLimit(200);
            throw Worker.RateLimitError();
          }
          return 'sent';
        },
        { dlq, onEvent: (e) => events.push(e) },
      ),
    );
    const done = settled(worker);
    const added = await queue.add('send', { to: 'A' }, { attempts: 1 });
    await done;
    const job = (await Job.fromId(queue, added.id as string)) as Job;
    expect(await job.getState()).toBe('completed');
    expect(runs).toBe(2);
    expect(job.attemptsMade).toBe(1);
    expect(job.data).toEqual({ to: 'A' });
    // The pause is a run that moved, then a run that succeeded: nothing failed, nothing retried.
    expect(
      events.map((e) => (e.type === 'job_attempt_failure' ? `${e.type}:${e.next}` : e.type)),
    ).toEqual([
      'job_attempt_start',
      'job_attempt_failure:defer',
      'job_attempt_start',
      'job_attempt_success',
    ]);
    expect(await dlq.size()).toBe(0);
  });
});

describeRedis('BullMQ: per-number fairness on open-source BullMQ', () => {
  it("runs number B's jobs while number A's backlog of 500 waits on A's limit", async () => {
    const { queue, startWorker } = setup('fairness');
    const dlq = createMemoryDeadLetterQueue();
    // A is held to 2 sends a second; B is not held back.
    const limiter = createMemoryTokenBucket({ capacity: 1, refillPerSecond: 2 });
    limiter.setRate('B', { refillPerSecond: 1000, capacity: 100 });
    const completed: string[] = [];
    const worker = startWorker(
      wrapProcessor(
        async (job) => {
          completed.push((job.data as { from: string }).from);
          return 'sent';
        },
        {
          dlq,
          limiter,
          limiterKey: (job) => (job.data as { from: string }).from,
          strategy: createBackoffStrategy({ backoff: { initialDelayMs: 1000 } }),
        },
      ),
      { concurrency: 20 },
    );
    await queue.addBulk(
      Array.from({ length: 500 }, (_, i) => ({ name: 'send', data: { from: 'A', n: i } })),
    );
    const started = Date.now();
    await queue.addBulk(
      Array.from({ length: 20 }, (_, i) => ({ name: 'send', data: { from: 'B', n: i } })),
    );
    await vi.waitFor(() => expect(completed.filter((n) => n === 'B')).toHaveLength(20), {
      timeout: 8000,
      interval: 20,
    });
    const elapsedMs = Date.now() - started;
    const doneA = completed.filter((n) => n === 'A').length;
    await worker.close();
    // B finished long before A's backlog could drain at 2 a second (250 s).
    expect(elapsedMs).toBeLessThan(8000);
    expect(doneA).toBeLessThanOrEqual(1 + Math.ceil((2 * elapsedMs) / 1000));
    // A's jobs stepped aside into delayed, none failed, none lost.
    const counts = await queue.getJobCounts('completed', 'failed', 'delayed', 'waiting', 'active');
    expect(counts.failed).toBe(0);
    expect(counts.delayed).toBeGreaterThan(0);
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(520);
    expect(await dlq.size()).toBe(0);
  });
});
