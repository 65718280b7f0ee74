import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Job, type Processor, Queue, Worker, type WorkerOptions } from 'bullmq';
import { afterEach, expect, it } from 'vitest';
import {
  BULLMQ_STALLED_REASONS,
  createBackoffStrategy,
  HISTORY_FIELD,
  RETRYKIT_BACKOFF,
  sweepStalledJobs,
  wrapProcessor,
} from '../../src/bullmq/index.js';
import {
  type Classification,
  composeClassifiers,
  createMemoryDeadLetterQueue,
  type DeadLetterEntry,
  StoreUnavailableError,
} from '../../src/index.js';
import { connectRedis, describeRedis, redisUrl, uniquePrefix } from '../support/redis.js';

class SchemaError extends Error {
  override readonly name = 'SchemaError';
  readonly status = 400;
}

const classify = composeClassifiers((error): Classification | undefined =>
  error instanceof SchemaError ? { retryable: false, reason: 'schema_mismatch' } : undefined,
);

function httpError(status: number): Error {
  return Object.assign(new Error(`HTTP ${status}`), { status });
}

const closers: (() => Promise<unknown>)[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await Promise.all(closers.splice(0).map((close) => close()));
});

/**
 * A client for a Queue or Worker, of the ioredis major under test: bullmq 6 has no ioredis of
 * its own, and would make one from options with whichever `ioredis` it finds.
 */
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
      stalledInterval: 300,
      lockDuration: 1000,
      ...opts,
    });
    closers.unshift(() => worker.close(true));
    return worker;
  };
  return { queue, prefix, startWorker };
}

function spawnStallingWorker(prefix: string, name: string): ChildProcess {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      fileURLToPath(new URL('../fixtures/stalling-worker.ts', import.meta.url)),
      redisUrl,
      prefix,
      name,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(child);
  return child;
}

function effectStarted(child: ChildProcess, jobId: string | undefined): Promise<void> {
  return new Promise<void>((resolve) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes(`effect ${jobId}`)) resolve();
    });
  });
}

async function kill(child: ChildProcess): Promise<void> {
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
}

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

describeRedis('BullMQ with retrykit', () => {
  it('retries a job failing with 503 twice after the strategy delays, then completes', async () => {
    const { queue, startWorker } = setup('flaky');
    const dlq = createMemoryDeadLetterQueue();
    const delays: number[] = [];
    const starts: number[] = [];
    const worker = startWorker(
      wrapProcessor(
        async (job) => {
          starts.push(Date.now());
          if (job.attemptsMade < 2) throw httpError(503);
          return 'sent';
        },
        { dlq, classify, maxAttempts: 5 },
      ),
      {
        settings: {
          backoffStrategy: createBackoffStrategy({
            classify,
            backoff: { initialDelayMs: 60, multiplier: 2, jitter: 'none' },
            onEvent: (e) => {
              if (e.type === 'job_retry_scheduled') delays.push(e.delayMs);
            },
          }),
        },
      },
    );
    const done = settled(worker);
    const added = await queue.add(
      'webhook',
      { id: 'wamid.1' },
      { attempts: 5, backoff: RETRYKIT_BACKOFF },
    );
    await done;
    const job = (await Job.fromId(queue, added.id as string)) as Job;
    expect(await job.getState()).toBe('completed');
    expect(job.returnvalue).toBe('sent');
    expect(job.attemptsMade).toBe(3);
    expect(delays).toEqual([60, 120]);
    expect(starts).toHaveLength(3);
    expect((starts[1] as number) - (starts[0] as number)).toBeGreaterThanOrEqual(60);
    expect((starts[2] as number) - (starts[1] as number)).toBeGreaterThanOrEqual(120);
    expect(job.data[HISTORY_FIELD]).toMatchObject([
      { reason: 'service_unavailable', message: 'HTTP 503' },
      { reason: 'service_unavailable', message: 'HTTP 503' },
    ]);
    expect(await dlq.size()).toBe(0);
  });

  it('dead-letters a 400 schema error after exactly one attempt', async () => {
    const { queue, startWorker } = setup('schema');
    const dlq = createMemoryDeadLetterQueue();
    let calls = 0;
    const worker = startWorker(
      wrapProcessor(
        async (): Promise<void> => {
          calls++;
          throw new SchemaError('entry[0].changes[0].value.messages is missing');
        },
        { dlq, classify, maxAttempts: 5 },
      ),
      { settings: { backoffStrategy: createBackoffStrategy({ classify }) } },
    );
    const done = settled(worker);
    const added = await queue.add(
      'webhook',
      { object: 'whatsapp_business_account' },
      {
        attempts: 5,
        backoff: RETRYKIT_BACKOFF,
      },
    );
    await done;
    const job = (await Job.fromId(queue, added.id as string)) as Job;
    expect(await job.getState()).toBe('failed');
    expect(calls).toBe(1);
    expect(job.attemptsMade).toBe(1);
    const entry = (await dlq.get(`schema:${added.id}`)) as DeadLetterEntry;
    expect(entry).toMatchObject({
      payload: { object: 'whatsapp_business_account' },
      reason: 'schema_mismatch',
      disposition: 'permanent',
      source: 'schema',
      attempts: [
        { message: 'entry[0].changes[0].value.messages is missing', reason: 'schema_mismatch' },
      ],
    });
  });

  it('dead-letters a job that always fails after maxAttempts, with its history', async () => {
    const { queue, startWorker } = setup('always');
    const dlq = createMemoryDeadLetterQueue();
    let calls = 0;
    const worker = startWorker(
      wrapProcessor(
        async (): Promise<void> => {
          calls++;
          throw httpError(calls === 2 ? 500 : 503);
        },
        { dlq, classify, maxAttempts: 3 },
      ),
      {
        settings: {
          backoffStrategy: createBackoffStrategy({ classify, backoff: { initialDelayMs: 10 } }),
        },
      },
    );
    const done = settled(worker);
    const added = await queue.add(
      'webhook',
      { id: 'wamid.2' },
      {
        attempts: 10,
        backoff: RETRYKIT_BACKOFF,
      },
    );
    await done;
    const job = (await Job.fromId(queue, added.id as string)) as Job;
    expect(await job.getState()).toBe('failed');
    expect(calls).toBe(3);
    const entry = (await dlq.get(`always:${added.id}`)) as DeadLetterEntry;
    expect(entry).toMatchObject({
      payload: { id: 'wamid.2' },
      reason: 'service_unavailable',
      disposition: 'exhausted',
    });
    expect(entry.payload).not.toHaveProperty(HISTORY_FIELD);
    expect(entry.attempts.map((a) => a.reason)).toEqual([
      'service_unavailable',
      'server_error',
      'service_unavailable',
    ]);
    expect(entry.firstAttemptAt).toBe(entry.attempts[0]?.at);
    expect(entry.lastAttemptAt).toBe(entry.attempts[2]?.at);
  });

  it('keeps a job BullMQ-side, failed with the cause, when the dead-letter queue is down', async () => {
    const { queue, startWorker } = setup('dlqdown');
    const down = new StoreUnavailableError('deadLetter.add', new Error('ECONNREFUSED'));
    const worker = startWorker(
      wrapProcessor(
        async (): Promise<void> => {
          throw new SchemaError('bad payload');
        },
        { dlq: { add: () => Promise.reject(down) }, classify },
      ),
    );
    const done = settled(worker);
    const added = await queue.add('webhook', { id: 'wamid.4' }, { attempts: 1 });
    await done;
    const job = (await Job.fromId(queue, added.id as string)) as Job;
    expect(await job.getState()).toBe('failed');
    expect(job.failedReason).toBe(down.message);
    expect(job.data).toEqual({ id: 'wamid.4' });
  });

  it('loses nothing when a worker is killed mid-job: another finishes it, the effect happens once', async () => {
    const { queue, prefix, startWorker } = setup('stall');
    const redis = connectRedis();
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(new URL('../fixtures/stalling-worker.ts', import.meta.url)),
        redisUrl,
        prefix,
        'stall',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(child);
    const added = await queue.add('webhook', { id: 'wamid.3' }, { attempts: 3 });
    await new Promise<void>((resolve) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes(`effect ${added.id}`)) resolve();
      });
    });
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));

    const runs: string[] = [];
    const worker = startWorker(async (job) => {
      runs.push(job.id as string);
      if ((await redis.set(`${prefix}:effect:${job.id}`, 'parent', 'NX')) === 'OK') {
        await redis.incr(`${prefix}:effects`);
      }
      return 'done';
    });
    await settled(worker);
    const job = (await Job.fromId(queue, added.id as string)) as Job;
    expect(await job.getState()).toBe('completed');
    expect(job.stalledCounter).toBe(1);
    expect(runs).toEqual([added.id]);
    expect(await redis.get(`${prefix}:effects`)).toBe('1');
    expect(await redis.get(`${prefix}:effect:${added.id}`)).toBe('child');
  });

  it('sweeps a job BullMQ failed as stalled into the dead-letter queue, once', async () => {
    const { queue, prefix, startWorker } = setup('swept');
    const child = spawnStallingWorker(prefix, 'swept');
    const added = await queue.add('webhook', { id: 'wamid.5' }, { attempts: 3 });
    await effectStarted(child, added.id);
    await kill(child);

    const dlq = createMemoryDeadLetterQueue();
    const runs: string[] = [];
    const worker = startWorker(
      wrapProcessor(
        async (job) => {
          runs.push(job.id as string);
        },
        { dlq },
      ),
      { maxStalledCount: 0 },
    );
    const [failed] = await settled(worker);
    expect(failed?.failedReason).toBe(BULLMQ_STALLED_REASONS[0]);
    expect(runs).toEqual([]);
    expect(await dlq.size()).toBe(0);
    await worker.close();

    const crash = new Error('process died after the add');
    const crashing = {
      add: (e: Parameters<typeof dlq.add>[0]) => dlq.add(e).then(() => Promise.reject(crash)),
    };
    await expect(sweepStalledJobs(queue, { dlq: crashing })).rejects.toBe(crash);
    expect(await queue.getFailedCount()).toBe(1);
    expect(await dlq.size()).toBe(1);

    const other = new Queue('swept', { connection: connection(), prefix });
    closers.push(() => other.close());
    const reports = await Promise.all([
      sweepStalledJobs(queue, { dlq }),
      sweepStalledJobs(other, { dlq }),
    ]);
    expect(reports.flatMap((r) => r.moved)).toEqual([added.id]);
    expect(await dlq.size()).toBe(1);
    const entry = (await dlq.get(`swept:${added.id}`)) as DeadLetterEntry;
    expect(entry).toMatchObject({
      payload: { id: 'wamid.5' },
      reason: 'timeout',
      disposition: 'exhausted',
      source: 'swept',
      origin: { kind: 'bullmq', queue: 'swept', jobId: added.id, jobName: added.name },
      attempts: [{ message: 'job stalled more than allowable limit', reason: 'timeout' }],
    });
    expect(entry.lastAttemptAt).toBe(new Date(failed?.finishedOn as number).toISOString());
    expect(await queue.getFailedCount()).toBe(0);
    expect(await sweepStalledJobs(queue, { dlq })).toEqual({ moved: [] });
    expect(await dlq.size()).toBe(1);
  });

  it('leaves other failures alone, and keeps the job when the dead-letter queue is down', async () => {
    const { queue, startWorker } = setup('sweepother');
    const worker = startWorker(async () => {
      throw new Error('HTTP 400');
    });
    const done = settled(worker, 2);
    const kept = await queue.add('webhook', { id: 'wamid.6' });
    const stalled = await queue.add('webhook', { id: 'wamid.7' });
    await done;
    const job = (await Job.fromId(queue, stalled.id as string)) as Job;
    await job.updateData({ id: 'wamid.7', [HISTORY_FIELD]: [] });
    await connectRedis().hset(queue.toKey(stalled.id as string), {
      failedReason: BULLMQ_STALLED_REASONS[1] as string,
    });
    const down = new StoreUnavailableError('deadLetter.add', new Error('ECONNREFUSED'));
    await expect(
      sweepStalledJobs(queue, { dlq: { add: () => Promise.reject(down) } }),
    ).rejects.toBe(down);
    expect(await queue.getFailedCount()).toBe(2);
    const dlq = createMemoryDeadLetterQueue();
    expect(await sweepStalledJobs(queue, { dlq, batchSize: 1 })).toEqual({ moved: [stalled.id] });
    expect((await dlq.get(`sweepother:${stalled.id}`))?.payload).toEqual({ id: 'wamid.7' });
    expect((await queue.getFailed()).map((j) => j.id)).toEqual([kept.id]);
  });

  it('dead-letters at once a job whose server asks to wait past the budget (a year-9999 Retry-After)', async () => {
    const { queue, startWorker } = setup('farfuture');
    const dlq = createMemoryDeadLetterQueue();
    const strategy = createBackoffStrategy({ classify });
    let calls = 0;
    const worker = startWorker(
      wrapProcessor(
        async (): Promise<void> => {
          calls++;
          throw Object.assign(httpError(429), {
            headers: { 'retry-after': 'Fri, 31 Dec 9999 23:59:59 GMT' },
          });
        },
        { dlq, classify, strategy },
      ),
      { settings: { backoffStrategy: strategy } },
    );
    const done = settled(worker);
    const added = await queue.add(
      'send',
      { id: 'wamid.far' },
      { attempts: 5, backoff: RETRYKIT_BACKOFF },
    );
    // Not parked as a delayed job for a day: failed and dead-lettered after one attempt.
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 5000))]);
    const job = (await Job.fromId(queue, added.id as string)) as Job;
    expect(await job.getState()).toBe('failed');
    expect(calls).toBe(1);
    expect(await dlq.get(`farfuture:${added.id}`)).toMatchObject({
      payload: { id: 'wamid.far' },
      reason: 'rate_limited',
      disposition: 'exhausted',
    });
  });

  it('validates the sweep options', async () => {
    const { queue } = setup('sweepbad');
    const dlq = createMemoryDeadLetterQueue();
    await expect(sweepStalledJobs(queue, { dlq: {} as never })).rejects.toThrow(
      'dlq must have an add(entry) method',
    );
    await expect(sweepStalledJobs(queue, { dlq, batchSize: 0 })).rejects.toThrow(
      /^batchSize must be a finite number between 1 and 10000, got 0$/,
    );
    await expect(sweepStalledJobs(queue, { dlq, reasons: 'x' as never })).rejects.toThrow(
      'reasons must be an array of strings, got "x"',
    );
  });
});
