import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Backoffs } from 'bullmq';
import { createBackoffStrategy } from '../src/bullmq/index.js';
import { createMemoryDeadLetterQueue, type NewDeadLetter } from '../src/index.js';
import { createFileSink } from '../src/node/index.js';
import { type BenchSuite, measure, ratioTable } from './harness.js';

const AT = '2026-01-01T00:00:00.000Z';
const entry = (id: string): NewDeadLetter<{ text: string }> => ({
  id,
  payload: { text: 'Order update request' },
  reason: 'service_unavailable',
  disposition: 'exhausted',
  attempts: [{ message: 'HTTP 503', errorCode: 503, reason: 'service_unavailable', at: AT }],
  firstAttemptAt: AT,
  lastAttemptAt: AT,
});

const BURST = 100;

export const deadLetterSuite: BenchSuite = {
  name: 'dead-letter',
  async run({ timeMs }) {
    const error = Object.assign(new Error('HTTP 503'), { status: 503 });
    const strategy = createBackoffStrategy({ backoff: { initialDelayMs: 1000 } });
    const builtin = Backoffs.builtinStrategies.exponential?.(1000, 1) as (n: number) => number;
    let n = 0;
    const backoff = await measure(
      {
        'BullMQ built-in exponential (jitter 1)': () => builtin((n++ & 7) + 1),
        'retrykit createBackoffStrategy': () => strategy((n++ & 7) + 1, 'retrykit', error),
      },
      { timeMs },
    );

    const dir = mkdtempSync(join(tmpdir(), 'retrykit-bench-'));
    let file = 0;
    const sink = createFileSink(join(dir, 'sink.jsonl'));
    const letter = entry('m');
    const files = await measure(
      {
        [`${BURST} × (appendFile + fsync), one at a time`]: async () => {
          const handle = await open(join(dir, `naive-${file++ % 4}.jsonl`), 'a');
          try {
            for (let i = 0; i < BURST; i++) {
              await handle.appendFile(`${JSON.stringify(letter)}\n`);
              await handle.sync();
            }
          } finally {
            await handle.close();
          }
        },
        [`createFileSink: ${BURST} concurrent adds`]: () =>
          Promise.all(Array.from({ length: BURST }, () => sink.add(letter))),
      },
      { timeMs },
    );
    rmSync(dir, { recursive: true, force: true });

    const dlq = createMemoryDeadLetterQueue({ maxEntries: 1_000_000 });
    const map = new Map<string, unknown>();
    let id = 0;
    const memory = await measure(
      {
        'Map set + delete (floor)': () => {
          const key = `m-${id++}`;
          map.set(key, letter);
          map.delete(key);
        },
        'memory DLQ add + remove': async () => {
          const key = `m-${id++}`;
          await dlq.add({ ...letter, id: key });
          await dlq.remove(key);
        },
      },
      { timeMs },
    );

    return [
      '## Dead letters: BullMQ backoff strategy',
      '',
      'One delay computation per call: the classification, per-reason backoff and Retry-After',
      'handling cost against BullMQ’s built-in exponential strategy.',
      '',
      ratioTable(backoff, 'BullMQ built-in exponential (jitter 1)'),
      '',
      '## Dead letters: file fallback',
      '',
      `A burst of ${BURST} dead letters while Redis is down, each acknowledged only once on disk.`,
      'Group commit shares one fsync among the concurrent adds.',
      '',
      ratioTable(files, `${BURST} × (appendFile + fsync), one at a time`),
      '',
      '## Dead letters: memory queue',
      '',
      'Validation and bookkeeping of `add` (plus `remove`) against a bare Map.',
      '',
      ratioTable(memory, 'Map set + delete (floor)'),
    ].join('\n');
  },
};
