import asyncRetry from 'async-retry';
import { retry as cockatielRetry, ExponentialBackoff, handleAll } from 'cockatiel';
import { backOff } from 'exponential-backoff';
import pRetry from 'p-retry';
import { resolveBackoff } from '../src/core/retry/backoff.js';
import { computeDelay, createRetry } from '../src/index.js';
import { type BenchSuite, measure, ratioTable } from './harness.js';

const succeed = async (): Promise<number> => 42;

export const retrySuite: BenchSuite = {
  name: 'retry',
  async run({ timeMs }) {
    const retrykit = createRetry({ maxAttempts: 5 });
    const cockatiel = cockatielRetry(handleAll, {
      maxAttempts: 4,
      backoff: new ExponentialBackoff(),
    });
    const happy = await measure(
      {
        'bare await fn()': () => succeed(),
        'retrykit createRetry': () => retrykit(succeed),
        'p-retry': () => pRetry(succeed, { retries: 4 }),
        cockatiel: () => cockatiel.execute(succeed),
        'exponential-backoff': () => backOff(succeed, { numOfAttempts: 5 }),
        'async-retry': () => asyncRetry(succeed, { retries: 4 }),
      },
      { timeMs },
    );

    const options = { initialDelayMs: 100, multiplier: 2, maxDelayMs: 30_000 } as const;
    const decorrelated = { ...options, jitter: 'decorrelated' } as const;
    resolveBackoff(options);
    resolveBackoff(decorrelated);
    let attempt = 0;
    const delays = await measure(
      {
        "computeDelay 'full'": () => computeDelay(attempt++ & 15, options),
        "computeDelay 'decorrelated'": () =>
          computeDelay(
            attempt++ & 15,
            { ...options, jitter: 'decorrelated' },
            { previousDelayMs: 400 },
          ),
        'Math.random() * 2 ** n (inline)': () =>
          Math.min(30_000, 100 * 2 ** (attempt++ & 15) * Math.random()),
      },
      { timeMs },
    );

    return [
      '## Retry: the happy path',
      '',
      'A function that succeeds at once, wrapped by each library with five attempts allowed.',
      'Target: retrykit within 2× of the bare call (ratio ≥ 0.5) and faster than every peer.',
      '',
      ratioTable(happy, 'bare await fn()'),
      '',
      '## computeDelay',
      '',
      'The inline expression is the floor: what a hand-written `Math.random() * 2 ** n` costs.',
      '',
      ratioTable(delays, 'Math.random() * 2 ** n (inline)'),
    ].join('\n');
  },
};
