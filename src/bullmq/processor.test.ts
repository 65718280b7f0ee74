import { type Job, UnrecoverableError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import type { RetrykitEvent } from '../core/events.js';
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

describe('wrapProcessor with the retrykit strategy', () => {
  function httpError(status: number, headers: Record<string, string> = {}): Error {
    return Object.assign(new Error(`HTTP ${status}`), { status, headers });
  }

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
    expect(events.at(-1)).toMatchObject({
      type: 'give_up',
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
