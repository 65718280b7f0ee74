import { type Job, UnrecoverableError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { RetryError } from '../core/errors.js';
import { combineListeners, type RetrykitEvent } from '../core/events.js';
import { createMetrics } from '../core/metrics/metrics.js';
import { classify } from '../core/retry/classify.js';
import { retry } from '../core/retry/retry.js';
import { createMemoryDeadLetterQueue } from '../memory/dead-letter.js';
import { createManualClock, seededRandom } from '../testing/index.js';
import { createBackoffStrategy, RETRYKIT_BACKOFF } from './backoff.js';
import { wrapProcessor } from './processor.js';

describe('wrapProcessor options', () => {
  const dlq = createMemoryDeadLetterQueue();
  const processor = async (): Promise<void> => {};

  it('names the option and the value it refuses', () => {
    expect(() => wrapProcessor(processor, { dlq: undefined as never })).toThrow(
      'dlq must have an add(entry) method, got undefined',
    );
    expect(() => wrapProcessor(processor, { dlq, maxAttempts: 0 })).toThrow(
      /^maxAttempts must be a finite number between 1 and \d+, got 0$/,
    );
    expect(() => wrapProcessor(processor, { dlq, maxAttempts: 1.5 })).toThrow(
      'maxAttempts must be an integer, got 1.5',
    );
    expect(() => wrapProcessor('x' as never, { dlq })).toThrow(
      'processor must be a function, got "x"',
    );
    expect(() => wrapProcessor(processor, { dlq, classify: 3 as never })).toThrow(
      'classify must be a function, got 3',
    );
  });
});

function httpError(status: number, headers: Record<string, string> = {}): Error {
  return Object.assign(new Error(`HTTP ${status}`), { status, headers });
}

describe('wrapProcessor with the retrykit strategy', () => {
  function fakeJob(timestamp: number, attemptsMade = 0) {
    const job = {
      id: '7',
      queueName: 'sends',
      timestamp,
      attemptsMade,
      data: { to: '4915' } as Record<string, unknown>,
      opts: { attempts: 5, backoff: RETRYKIT_BACKOFF },
      async updateData(data: Record<string, unknown>) {
        job.data = data;
      },
    };
    return job as typeof job & Job;
  }

  it('dead-letters at once a job whose server asks to wait past the budget', async () => {
    const clock = createManualClock(Date.now());
    const dlq = createMemoryDeadLetterQueue();
    const events: RetrykitEvent[] = [];
    const strategy = createBackoffStrategy({ clock, maxElapsedMs: 60_000 });
    const error = httpError(429, { 'retry-after': '120' });
    const wrapped = wrapProcessor(
      async (): Promise<void> => {
        throw error;
      },
      { dlq, strategy, clock, onEvent: (e) => events.push(e) },
    );
    const failure = await wrapped(fakeJob(clock.now()), 'token').catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(UnrecoverableError);
    expect(await dlq.get('sends:7')).toMatchObject({
      payload: { to: '4915' },
      reason: 'rate_limited',
      disposition: 'exhausted',
    });
    expect(events.map((e) => e.type)).toEqual(['job_attempt_start', 'job_attempt_failure']);
    expect(events.at(-1)).toMatchObject({
      queue: 'sends',
      jobId: '7',
      attempt: 0,
      next: 'dead_letter',
      stopReason: 'retry_after_exceeds_elapsed',
    });
  });

  it('leaves a retry within the budget to BullMQ, with the delay decided once', async () => {
    const clock = createManualClock(Date.now());
    const dlq = createMemoryDeadLetterQueue();
    const strategy = createBackoffStrategy({ clock, random: seededRandom(3) });
    const error = httpError(503);
    const wrapped = wrapProcessor(
      async (): Promise<void> => {
        throw error;
      },
      { dlq, strategy, clock },
    );
    const job = fakeJob(clock.now());
    await expect(wrapped(job, 'token')).rejects.toBe(error);
    expect(await dlq.size()).toBe(0);
    // What the worker's strategy then returns for this failure is what wrapProcessor decided,
    // not a second draw of the jitter.
    const twin = createBackoffStrategy({ clock, random: seededRandom(3) });
    const expected = twin(1, 'retrykit', httpError(503), job);
    expect(strategy(1, 'retrykit', error, job)).toBe(expected);
    expect(strategy(1, 'retrykit', httpError(503), job)).not.toBe(expected);
  });
});

describe('wrapProcessor: job attempts are their own level', () => {
  function fakeJob(id: string, attemptsMade: number, timestamp: number) {
    const job = {
      id,
      queueName: 'sends',
      timestamp,
      attemptsMade,
      data: { to: '4915' } as Record<string, unknown>,
      opts: { attempts: 2, backoff: RETRYKIT_BACKOFF },
      async updateData(data: Record<string, unknown>) {
        job.data = data;
      },
    };
    return job as typeof job & Job;
  }

  it('reports start, success and failure per attempt, counted in snapshot().jobs only', async () => {
    const clock = createManualClock(1_700_000_000_000);
    const metrics = createMetrics({ clock });
    const events: RetrykitEvent[] = [];
    const onEvent = combineListeners<RetrykitEvent>(metrics.onEvent, (e) => events.push(e));
    const dlq = createMemoryDeadLetterQueue({ clock, onEvent });
    const strategy = createBackoffStrategy({
      clock,
      onEvent,
      backoff: { initialDelayMs: 1000, jitter: 'none' },
    });
    const outcomes: Record<string, Array<'ok' | number>> = {
      a: ['ok'],
      b: [503, 'ok'],
      c: [503, 503],
      d: [400],
    };
    // Inside the job, one `retry` call per attempt: the call level, reported by `retry`.
    const wrapped = wrapProcessor(
      async (job) => {
        const next = outcomes[String(job.id)]?.[job.attemptsMade];
        await clock.advance(200);
        return retry(
          () => {
            if (next !== 'ok') throw httpError(next as number);
            return 'done';
          },
          { clock, onEvent, maxAttempts: 1 },
        );
      },
      // A `RetryError` is the job's failure; classify the failure under it.
      {
        dlq,
        strategy,
        clock,
        onEvent,
        classify: (e) => classify(e instanceof RetryError ? e.cause : e),
      },
    );
    const t0 = clock.now();
    const run = async (id: string, attemptsMade: number) => {
      const job = fakeJob(id, attemptsMade, t0);
      try {
        await wrapped(job, 'token');
      } catch (error) {
        if (!(error instanceof UnrecoverableError) && attemptsMade + 1 < 2) {
          strategy(attemptsMade + 1, 'retrykit', error as Error, job);
        }
      }
    };
    for (const id of ['a', 'b', 'c', 'd']) await run(id, 0);
    for (const id of ['b', 'c']) await run(id, 1);

    const s = metrics.snapshot();
    expect(s.jobs).toEqual({
      started: 4,
      attempts: 6,
      succeeded: 2,
      firstAttemptSucceeded: 1,
      failed: 4,
      failedByReason: { service_unavailable: 3, client_error: 1 },
      retries: { scheduled: 2, meanDelayMs: 1000 },
      gaveUp: 2,
      gaveUpByStopReason: { max_attempts: 1, permanent: 1 },
      ratios: { firstAttemptSuccess: 0.25, retry: 2 / 6, error: 0.5 },
    });
    // The calls `retry` made inside the jobs: one per job attempt, none retried.
    expect(s.calls).toMatchObject({
      started: 6,
      succeeded: 2,
      firstAttemptSucceeded: 2,
      gaveUp: 4,
    });
    expect(s.retries.scheduled).toBe(0);
    expect(s.deadLetters.total).toBe(2);
    const failures = events.flatMap((e) =>
      e.type === 'job_attempt_failure' ? [`${e.jobId}/${e.attempt}:${e.next}`] : [],
    );
    expect(failures).toEqual(['b/0:retry', 'c/0:retry', 'd/0:dead_letter', 'c/1:dead_letter']);
    const success = events.find((e) => e.type === 'job_attempt_success');
    expect(success).toMatchObject({ queue: 'sends', jobId: 'a', attempt: 0, durationMs: 200 });
  });
});

describe('wrapProcessor when the dead-letter queue fails', () => {
  it('reports a retry while the job has attempts left, a stop without an entry after', async () => {
    const clock = createManualClock(1_700_000_000_000);
    const events: RetrykitEvent[] = [];
    const down = Object.assign(new Error('dlq down'), { code: 'ECONNREFUSED' });
    const wrapped = wrapProcessor(
      async (): Promise<void> => {
        throw httpError(400);
      },
      {
        dlq: {
          add: async () => {
            throw down;
          },
        },
        clock,
        onEvent: (e) => events.push(e),
      },
    );
    const job = (attemptsMade: number) =>
      ({
        id: '9',
        queueName: 'sends',
        timestamp: clock.now(),
        attemptsMade,
        data: {},
        opts: { attempts: 2 },
        updateData: async () => {},
      }) as unknown as Job;
    await expect(wrapped(job(0), 'token')).rejects.toBe(down);
    await expect(wrapped(job(1), 'token')).rejects.toBe(down);
    const failures = events.flatMap((e) =>
      e.type === 'job_attempt_failure' ? [[e.attempt, e.next, e.stopReason]] : [],
    );
    expect(failures).toEqual([
      [0, 'retry', undefined],
      [1, 'dead_letter', 'permanent'],
    ]);
  });
});
