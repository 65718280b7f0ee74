import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Job, type Processor, Queue, Worker, type WorkerOptions } from 'bullmq';
import { afterEach, expect, it } from 'vitest';
import {
  createBackoffStrategy,
  HISTORY_FIELD,
  RETRYKIT_BACKOFF,
  wrapProcessor,
} from '../src/bullmq/index.js';
import {
  type Classification,
  composeClassifiers,
  createMemoryDeadLetterQueue,
  type DeadLetterEntry,
  StoreUnavailableError,
} from '../src/index.js';
import { connectRedis, describeRedis, redisUrl, uniquePrefix } from './support/redis.js';

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

function connection() {
  const { hostname, port } = new URL(redisUrl);
  return { host: hostname, port: Number(port), maxRetriesPerRequest: null };
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
              if (e.type === 'retry_scheduled') delays.push(e.delayMs);
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
        fileURLToPath(new URL('./fixtures/stalling-worker.ts', import.meta.url)),
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
});
