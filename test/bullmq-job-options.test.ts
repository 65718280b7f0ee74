import { type Job, type JobsOptions, Queue, QueueEvents, Worker } from 'bullmq';
import { afterEach, expect, it } from 'vitest';
import {
  createBackoffStrategy,
  RETRYKIT_BACKOFF,
  RETRYKIT_JOB_OPTIONS,
  wrapProcessor,
} from '../src/bullmq/index.js';
import { createMemoryDeadLetterQueue } from '../src/index.js';
import { connectRedis, describeRedis, redisUrl, uniquePrefix } from './support/redis.js';

// What the docs' snippets queue: jobs added with RETRYKIT_JOB_OPTIONS are retried through a real
// worker on a real Redis; jobs added with BullMQ's default (one attempt) are dead-lettered on
// their first transient failure, and `wrapProcessor` says so, once.

const closers: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

function httpError(status: number): Error {
  return Object.assign(new Error(`HTTP ${status}`), { status });
}

/** A queue (with `defaultJobOptions`), its events and a wrapped worker that fails `failures` times per job. */
async function setup(defaultJobOptions: JobsOptions | undefined, failures: number) {
  const name = 'sends';
  const prefix = uniquePrefix('bull-options').replaceAll(':', '-');
  const connection = () => connectRedis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue<{ to: string }>(name, {
    connection: connection(),
    prefix,
    ...(defaultJobOptions === undefined ? {} : { defaultJobOptions }),
  });
  const events = new QueueEvents(name, { connection: connection(), prefix });
  await events.waitUntilReady();
  const dlq = createMemoryDeadLetterQueue<{ to: string }>();
  const warnings: (Error & { code: string })[] = [];
  const runs = new Map<string, number>();
  const strategy = createBackoffStrategy({ backoff: { initialDelayMs: 10, maxDelayMs: 20 } });
  const worker = new Worker<{ to: string }>(
    name,
    wrapProcessor(
      async (job) => {
        const run = (runs.get(job.data.to) ?? 0) + 1;
        runs.set(job.data.to, run);
        if (run <= failures) throw httpError(503);
        return 'sent';
      },
      { dlq, strategy, onWarning: (warning) => warnings.push(warning) },
    ),
    { connection: connection(), prefix, settings: { backoffStrategy: strategy } },
  );
  closers.push(
    () => worker.close(),
    () => events.close(),
    () => queue.close(),
  );
  const settle = (jobs: Job[]) =>
    Promise.all(jobs.map((job) => job.waitUntilFinished(events).catch(() => undefined)));
  return { queue, dlq, warnings, runs, settle };
}

describeRedis('RETRYKIT_JOB_OPTIONS on a real BullMQ worker', () => {
  it('is six attempts through the retrykit backoff strategy', () => {
    expect(RETRYKIT_JOB_OPTIONS).toEqual({ attempts: 6, backoff: RETRYKIT_BACKOFF });
    expect(Object.isFrozen(RETRYKIT_JOB_OPTIONS)).toBe(true);
  });

  it('as defaultJobOptions: a job that fails twice with 503 is retried and completes', async () => {
    const { queue, dlq, warnings, runs, settle } = await setup(RETRYKIT_JOB_OPTIONS, 2);
    const jobs = [await queue.add('send', { to: 'a' }), await queue.add('send', { to: 'b' })];
    await settle(jobs);
    for (const job of jobs) {
      expect(await queue.getJobState(job.id as string)).toBe('completed');
    }
    expect(Object.fromEntries(runs)).toEqual({ a: 3, b: 3 });
    expect(await dlq.size()).toBe(0);
    expect(warnings).toEqual([]);
  });

  it('spread into add, with more attempts than failures', async () => {
    const { queue, dlq, settle } = await setup(undefined, 4);
    const job = await queue.add('send', { to: 'a' }, { ...RETRYKIT_JOB_OPTIONS, jobId: 'a-1' });
    await settle([job]);
    expect(await queue.getJobState('a-1')).toBe('completed');
    expect(await dlq.size()).toBe(0);
  });

  it('without it: dead-lettered as exhausted on the first 503, with one warning per processor', async () => {
    const { queue, dlq, warnings, runs, settle } = await setup(undefined, 1);
    const jobs = [await queue.add('send', { to: 'a' }), await queue.add('send', { to: 'b' })];
    await settle(jobs);
    expect(Object.fromEntries(runs)).toEqual({ a: 1, b: 1 });
    const { entries } = await dlq.list();
    expect(entries.map((e) => [e.payload.to, e.disposition, e.reason])).toEqual([
      ['a', 'exhausted', 'service_unavailable'],
      ['b', 'exhausted', 'service_unavailable'],
    ]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ name: 'RetrykitWarning', code: 'RETRYKIT_SINGLE_ATTEMPT' });
    expect(warnings[0]?.message).toMatch(
      /^job sends:1 failed with a retryable error \(service_unavailable\) but was added with attempts 0, so BullMQ runs it once and it is dead-lettered as exhausted\. Add jobs with RETRYKIT_JOB_OPTIONS/,
    );
  });
});
