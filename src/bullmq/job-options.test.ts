import type { Job } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryDeadLetterQueue } from '../memory/dead-letter.js';
import { RETRYKIT_JOB_OPTIONS, SINGLE_ATTEMPT_WARNING } from './job-options.js';
import { wrapProcessor } from './processor.js';

function fakeJob(id: string, attempts: number | undefined) {
  return {
    id,
    queueName: 'sends',
    timestamp: Date.now(),
    attemptsMade: 0,
    data: { to: id },
    opts: attempts === undefined ? {} : { attempts },
    async updateData() {},
  } as unknown as Job;
}

function failingWith(error: unknown) {
  return async (): Promise<void> => {
    throw error;
  };
}

const transient = Object.assign(new Error('HTTP 503'), { status: 503 });
const permanent = Object.assign(new Error('HTTP 400'), { status: 400 });

describe('wrapProcessor on a job allowed one attempt', () => {
  const seen: Error[] = [];
  const listen = (warning: Error) => seen.push(warning);
  afterEach(() => {
    process.off('warning', listen);
    seen.length = 0;
  });

  it('emits one process warning per wrapped processor by default', async () => {
    process.on('warning', listen);
    const wrapped = wrapProcessor(failingWith(transient), { dlq: createMemoryDeadLetterQueue() });
    for (const id of ['1', '2', '3']) {
      await wrapped(fakeJob(id, id === '3' ? 1 : undefined), 'token').catch(() => undefined);
    }
    const other = wrapProcessor(failingWith(transient), { dlq: createMemoryDeadLetterQueue() });
    await other(fakeJob('4', 0), 'token').catch(() => undefined);
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen.map((w) => [w.name, (w as { code?: string }).code])).toEqual([
      ['RetrykitWarning', SINGLE_ATTEMPT_WARNING],
      ['RetrykitWarning', SINGLE_ATTEMPT_WARNING],
    ]);
    expect(seen[0]?.message).toContain('job sends:1 failed with a retryable error');
    expect(seen[1]?.message).toContain('job sends:4 failed');
  });

  it('says nothing for a permanent failure or a job with retries left', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    const dlq = createMemoryDeadLetterQueue();
    const permanently = wrapProcessor(failingWith(permanent), { dlq, onWarning });
    await permanently(fakeJob('1', 1), 'token').catch(() => undefined);
    const retried = wrapProcessor(failingWith(transient), { dlq, onWarning });
    await retried(fakeJob('2', RETRYKIT_JOB_OPTIONS.attempts), 'token').catch(() => undefined);
    expect(warnings).toEqual([]);
  });

  it('refuses an onWarning that is not a function', () => {
    expect(() =>
      wrapProcessor(failingWith(transient), {
        dlq: createMemoryDeadLetterQueue(),
        onWarning: 'log' as never,
      }),
    ).toThrow('onWarning must be a function, got "log"');
  });
});
