import { writeFileSync } from 'node:fs';
import { arch, cpus, platform } from 'node:os';
import { deadLetterSuite } from './dead-letter.js';
import type { BenchSuite } from './harness.js';
import { idempotencySuite } from './idempotency.js';
import { limiterSuite } from './limiter.js';
import { metricsSuite } from './metrics.js';
import { postgresSuite } from './postgres.js';
import { retrySuite } from './retry.js';
import { whatsappSuite } from './whatsapp.js';

const suites: BenchSuite[] = [
  retrySuite,
  limiterSuite,
  idempotencySuite,
  postgresSuite,
  deadLetterSuite,
  metricsSuite,
  whatsappSuite,
];

const args = process.argv.slice(2);
const write = args.includes('--write');
const quick = args.includes('--quick');
const only = args.filter((a) => !a.startsWith('--'));
const timeMs = quick ? 200 : 1000;

const sections: string[] = [];
for (const suite of suites) {
  if (only.length > 0 && !only.includes(suite.name)) continue;
  console.error(`running ${suite.name}…`);
  const section = await suite.run({ timeMs });
  console.log(`${section}\n`);
  sections.push(section);
}

if (write) {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const header = [
    '# Benchmarks',
    '',
    'Produced by `npm run bench -- --write` in one run, every library measured side by side on the',
    'same machine; numbers are throughput, and ratios compare against the named baseline (above 1',
    'is faster). Absolute numbers vary by machine, the ratios much less.',
    '',
    `Machine: ${cpus().length} × ${cpu}, ${platform()} ${arch()}, Node ${process.version}.`,
    '',
  ].join('\n');
  writeFileSync(
    new URL('../docs/benchmarks.md', import.meta.url),
    `${header}\n${sections.join('\n\n')}\n`,
  );
  console.error('wrote docs/benchmarks.md');
}
