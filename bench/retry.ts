import asyncRetry from 'async-retry';
import { retry as cockatielRetry, ExponentialBackoff, handleAll } from 'cockatiel';
import { backOff } from 'exponential-backoff';
import pRetry from 'p-retry';
import { resolveBackoff } from '../src/core/retry/backoff.js';
import { computeDelay, createRetry } from '../src/index.js';
import {
  type BenchSuite,
  loops,
  type Measured,
  measure,
  pairedCost,
  ratioTable,
} from './harness.js';

const succeed = async (): Promise<number> => 42;

/** Where the floor wrapper would go on after a failure; never reached here. */
function floorFailure(error: unknown, start: number): never {
  throw Object.assign(new Error('failed', { cause: error }), { start });
}

const FLOOR_CONTEXT = Object.freeze({ attempt: 0 });

/**
 * The least an executor that must know when the first attempt started can do: one clock
 * read, and a failure handler that keeps the start. No context of its own per call.
 */
function floor<T>(fn: (ctx: typeof FLOOR_CONTEXT) => Promise<T>): Promise<T> {
  const start = performance.now();
  return fn(FLOOR_CONTEXT).then(undefined, (error: unknown) => floorFailure(error, start));
}

/** The floor wrapper, plus a fresh context object per call. */
function floorWithContext<T>(fn: (ctx: { attempt: number }) => Promise<T>): Promise<T> {
  const start = performance.now();
  return fn({ attempt: 0 }).then(undefined, (error: unknown) => floorFailure(error, start));
}

const BARE = 'bare await fn()';
const FLOOR = 'floor wrapper (one clock read, .then(undefined, onFailure))';
const FLOOR_CTX = 'floor wrapper + a context object per call';
const RETRYKIT = 'retrykit createRetry';

/** `cost` as "1.23× (1.20–1.27)": median and interquartile range of the per-round ratios. */
function cost(results: readonly Measured[], a: string, b: string): string {
  const { median, q1, q3 } = pairedCost(results, a, b);
  return `${median.toFixed(2)}× (${q1.toFixed(2)}–${q3.toFixed(2)})`;
}

function costTable(results: readonly Measured[]): string {
  const rows = results.map(
    (r) =>
      `| ${r.name} | ${r.meanNs.toFixed(0)} ns | ±${r.rme.toFixed(1)} % | ${cost(results, r.name, BARE)} | ${cost(results, r.name, FLOOR)} |`,
  );
  return [
    '| case | time per call | margin | cost vs bare | cost vs floor |',
    '|---|---:|---:|---:|---:|',
    ...rows,
  ].join('\n');
}

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

    const plain = await loops(
      {
        [BARE]: {
          iterations: 10_000,
          async run(n) {
            for (let i = 0; i < n; i++) await succeed();
          },
        },
        [FLOOR]: {
          iterations: 10_000,
          async run(n) {
            for (let i = 0; i < n; i++) await floor(succeed);
          },
        },
        [FLOOR_CTX]: {
          iterations: 10_000,
          async run(n) {
            for (let i = 0; i < n; i++) await floorWithContext(succeed);
          },
        },
        [RETRYKIT]: {
          iterations: 10_000,
          async run(n) {
            for (let i = 0; i < n; i++) await retrykit(succeed);
          },
        },
        cockatiel: {
          iterations: 10_000,
          async run(n) {
            for (let i = 0; i < n; i++) await cockatiel.execute(succeed);
          },
        },
        'p-retry': {
          iterations: 200,
          async run(n) {
            for (let i = 0; i < n; i++) await pRetry(succeed, { retries: 4 });
          },
        },
      },
      timeMs * 3,
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
      '### In a plain loop',
      '',
      "tinybench's own work per task is about what a cheap `await` costs, so it hides most of an",
      "executor's overhead. Here each case is a plain `for` loop of `await`s, timed as a whole; the",
      'loops take turns in a new random order each round, and each cost is the median of the',
      'per-round ratios (interquartile range in brackets), so that all cases see the same load. The',
      'floor is what any executor that must know when its first attempt started pays: a wrapper that',
      'reads the clock once and returns `fn(ctx).then(undefined, onFailure)`.',
      'Target: retrykit at most 1.2× the floor, and cheaper than cockatiel.',
      '',
      costTable(plain),
      '',
      `retrykit vs the floor: ${cost(plain, RETRYKIT, FLOOR)}; cockatiel vs retrykit: ${cost(plain, 'cockatiel', RETRYKIT)}.`,
      '',
      '## computeDelay',
      '',
      'The inline expression is the floor: what a hand-written `Math.random() * 2 ** n` costs.',
      '',
      ratioTable(delays, 'Math.random() * 2 ** n (inline)'),
    ].join('\n');
  },
};
