import { DelayedError, type Job, UnrecoverableError } from 'bullmq';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RetryError } from '../core/errors.js';
import { combineListeners, type RetrykitEvent } from '../core/events.js';
import { createMetrics } from '../core/metrics/metrics.js';
import { classify } from '../core/retry/classify.js';
import { retry } from '../core/retry/retry.js';
import { createMemoryDeadLetterQueue } from '../memory/dead-letter.js';
import { createMemoryTokenBucket } from '../memory/token-bucket.js';
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
    expect(() => wrapProcessor(processor, { dlq, deferThrottles: 'yes' as never })).toThrow(
      'deferThrottles must be a boolean, got "yes"',
    );
    expect(() =>
      wrapProcessor(processor, { dlq, limiter: {} as never, limiterKey: () => 'k' }),
    ).toThrow('limiter must have a tryAcquire(key) method, got {}');
    const limiter = createMemoryTokenBucket({ capacity: 1, refillPerSecond: 1 });
    expect(() => wrapProcessor(processor, { dlq, limiter })).toThrow(
      'limiter and limiterKey must be given together',
    );
    expect(() => wrapProcessor(processor, { dlq, limiter, limiterKey: 'k' as never })).toThrow(
      'limiterKey must be a function, got "k"',
    );
    expect(() => createBackoffStrategy({ maxDeferrals: -1 })).toThrow(
      /^maxDeferrals must be a finite number between 0 and \d+, got -1$/,
    );
    expect(() => createBackoffStrategy({ maxDeferrals: 2.5 })).toThrow(
      'maxDeferrals must be an integer, got 2.5',
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
      /** The timestamps `moveToDelayed` was called with. */
      delayedUntil: [] as number[],
      async updateData(data: Record<string, unknown>) {
        job.data = data;
      },
      async moveToDelayed(timestamp: number, token?: string) {
        if (token === undefined) throw new Error('no token');
        job.delayedUntil.push(timestamp);
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
      source: 'sends',
      origin: { kind: 'bullmq', queue: 'sends', jobId: '7' },
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

  it('defers a throttle without spending an attempt, recording it in the history', async () => {
    const clock = createManualClock(Date.now());
    const dlq = createMemoryDeadLetterQueue();
    const events: RetrykitEvent[] = [];
    const strategy = createBackoffStrategy({
      clock,
      backoff: { initialDelayMs: 100, multiplier: 2, jitter: 'none' },
      onEvent: (e) => events.push(e),
    });
    const wrapped = wrapProcessor(
      async (): Promise<void> => {
        throw httpError(429);
      },
      { dlq, strategy, clock },
    );
    const job = fakeJob(clock.now(), 1);
    for (let n = 0; n < 3; n++) {
      await expect(wrapped(job, 'token')).rejects.toBeInstanceOf(DelayedError);
    }
    expect(job.attemptsMade).toBe(1);
    expect(job.delayedUntil).toEqual([clock.now() + 100, clock.now() + 200, clock.now() + 400]);
    expect(job.data._retrykitFailures).toMatchObject([
      { reason: 'rate_limited', message: 'HTTP 429', deferredMs: 100 },
      { reason: 'rate_limited', deferredMs: 200 },
      { reason: 'rate_limited', deferredMs: 400 },
    ]);
    expect(events).toMatchObject([
      {
        type: 'job_retry_scheduled',
        queue: 'sends',
        jobId: '7',
        attempt: 1,
        deferred: true,
        delayMs: 100,
        reason: 'rate_limited',
      },
      { type: 'job_retry_scheduled', attempt: 1, deferred: true, delayMs: 200 },
      { type: 'job_retry_scheduled', attempt: 1, deferred: true, delayMs: 400 },
    ]);
    expect(await dlq.size()).toBe(0);
  });

  it('dead-letters after maxDeferrals, with every deferral in the dead letter', async () => {
    const clock = createManualClock(Date.now());
    const dlq = createMemoryDeadLetterQueue();
    const events: RetrykitEvent[] = [];
    const strategy = createBackoffStrategy({ clock, maxDeferrals: 2 });
    const wrapped = wrapProcessor(
      async (): Promise<void> => {
        throw httpError(503, { 'retry-after': '1' });
      },
      { dlq, strategy, clock, onEvent: (e) => events.push(e) },
    );
    const job = fakeJob(clock.now());
    await expect(wrapped(job, 'token')).rejects.toBeInstanceOf(DelayedError);
    await expect(wrapped(job, 'token')).rejects.toBeInstanceOf(DelayedError);
    await expect(wrapped(job, 'token')).rejects.toBeInstanceOf(UnrecoverableError);
    expect(job.delayedUntil).toHaveLength(2);
    const entry = await dlq.get('sends:7');
    expect(entry?.disposition).toBe('exhausted');
    expect(entry?.attempts.map((a) => a.deferredMs !== undefined)).toEqual([true, true, false]);
    const runs = events.flatMap((e) =>
      e.type === 'job_attempt_failure' ? [[e.attempt, e.deferrals, e.next, e.stopReason]] : [],
    );
    expect(runs).toEqual([
      [0, 0, 'defer', undefined],
      [0, 1, 'defer', undefined],
      [0, 2, 'dead_letter', 'max_deferrals'],
    ]);
  });

  it('spends an attempt on a throttle with deferThrottles: false, or without a lock token', async () => {
    const clock = createManualClock(Date.now());
    const dlq = createMemoryDeadLetterQueue();
    const error = httpError(429);
    const throwing = async (): Promise<void> => {
      throw error;
    };
    const off = wrapProcessor(throwing, { dlq, clock, deferThrottles: false });
    const job = fakeJob(clock.now());
    await expect(off(job, 'token')).rejects.toBe(error);
    const on = wrapProcessor(throwing, { dlq, clock });
    await expect(on(job)).rejects.toBe(error);
    expect(job.delayedUntil).toEqual([]);
    expect(job.data._retrykitFailures).toHaveLength(2);
  });

  it("defers a job its limiter refuses for the limiter's wait, without running it", async () => {
    const clock = createManualClock(Date.now());
    const dlq = createMemoryDeadLetterQueue();
    const events: RetrykitEvent[] = [];
    const limiter = createMemoryTokenBucket({ capacity: 1, refillPerSecond: 2, clock });
    let runs = 0;
    const wrapped = wrapProcessor(
      async () => {
        runs++;
        return 'sent';
      },
      {
        dlq,
        clock,
        limiter,
        limiterKey: (j) => String(j.data.to),
        onEvent: (e) => events.push(e),
      },
    );
    expect(await wrapped(fakeJob(clock.now()), 'token')).toBe('sent');
    const job = fakeJob(clock.now());
    await expect(wrapped(job, 'token')).rejects.toBeInstanceOf(DelayedError);
    expect(runs).toBe(1);
    expect(job.delayedUntil[0]).toBeGreaterThanOrEqual(clock.now() + 500);
    expect(job.data._retrykitFailures).toMatchObject([
      { reason: 'rate_limited', deferredMs: (job.delayedUntil[0] as number) - clock.now() },
    ]);
    // The refused run is a job run deferred, not an attempt spent.
    expect(events.map((e) => (e.type === 'job_attempt_failure' ? e.next : e.type))).toEqual([
      'job_attempt_start',
      'job_attempt_success',
      'job_attempt_start',
      'job_retry_scheduled',
      'defer',
    ]);
  });

  it('never defers sooner than the server asked, nor past the budget', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 7_200_000 }),
        fc.integer({ min: 0, max: 3_600_000 }),
        fc.integer({ min: 0, max: 30 }),
        fc.integer(),
        async (retryAfterMs, elapsedMs, deferrals, seed) => {
          const clock = createManualClock(1_700_000_000_000);
          const maxElapsedMs = 3_600_000;
          const strategy = createBackoffStrategy({
            clock,
            maxElapsedMs,
            random: seededRandom(seed),
          });
          const job = fakeJob(clock.now() - elapsedMs);
          job.data._retrykitFailures = Array.from({ length: deferrals }, () => ({
            message: 'HTTP 429',
            reason: 'rate_limited',
            at: new Date(clock.now()).toISOString(),
            deferredMs: 1,
          }));
          const wrapped = wrapProcessor(
            async (): Promise<void> => {
              throw httpError(429, { 'retry-after': String(retryAfterMs / 1000) });
            },
            { dlq: createMemoryDeadLetterQueue(), strategy, clock },
          );
          const failure = await wrapped(job, 'token').catch((e: unknown) => e);
          const left = maxElapsedMs - elapsedMs;
          if (retryAfterMs > left) {
            expect(failure).toBeInstanceOf(UnrecoverableError);
            return;
          }
          if (failure instanceof UnrecoverableError) return; // the backoff alone ran past the budget
          expect(failure).toBeInstanceOf(DelayedError);
          const delay = (job.delayedUntil[0] as number) - clock.now();
          expect(Number.isFinite(delay)).toBe(true);
          expect(delay).toBeGreaterThanOrEqual(Math.min(retryAfterMs, left));
          expect(delay).toBeLessThanOrEqual(left + 1);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("defers a RetryError whose last failure was a throttle (a client's own retries ran out)", async () => {
    const clock = createManualClock(Date.now());
    const dlq = createMemoryDeadLetterQueue();
    const failure = { attempt: 0, error: httpError(429), reason: 'rate_limited' as const, time: 0 };
    const wrapped = wrapProcessor(
      async (): Promise<void> => {
        throw new RetryError('max_attempts', [failure], failure.error);
      },
      { dlq, clock },
    );
    const job = fakeJob(clock.now());
    await expect(wrapped(job, 'token')).rejects.toBeInstanceOf(DelayedError);
    expect(job.data._retrykitFailures).toMatchObject([{ reason: 'rate_limited' }]);
    const other = { ...failure, reason: 'server_error' as const };
    const notThrottled = wrapProcessor(
      async (): Promise<void> => {
        throw new RetryError('max_attempts', [other], other.error);
      },
      { dlq, clock },
    );
    await expect(notThrottled(fakeJob(clock.now()), 'token')).rejects.toBeInstanceOf(RetryError);
  });

  it('gives no single-attempt warning for a throttle it defers, only for a failure that counts', async () => {
    const clock = createManualClock(Date.now());
    const warnings: Error[] = [];
    let status = 429;
    const wrapped = wrapProcessor(
      async (): Promise<void> => {
        throw httpError(status);
      },
      { dlq: createMemoryDeadLetterQueue(), clock, onWarning: (w) => warnings.push(w) },
    );
    const job = fakeJob(clock.now());
    job.opts = { attempts: 1 } as typeof job.opts;
    await expect(wrapped(job, 'token')).rejects.toBeInstanceOf(DelayedError);
    expect(warnings).toEqual([]);
    status = 503;
    await expect(wrapped(job, 'token')).rejects.toThrow('HTTP 503');
    expect(warnings).toHaveLength(1);
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
      deferred: 0,
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
