/**
 * `npm run soak -- [options]`: the chaos soak. Starts redis-server, the fake Cloud API, a
 * webhook receiver and worker processes, drives sends through them while a seeded schedule of
 * faults runs, audits every message and writes a report. Prints the verdict line
 * `lost N, doubled M` last; exits 1 when the audit fails.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chaosSchedule, formatSchedule } from './chaos.js';
import { soakChart, soakMarkdown } from './report.js';
import { runSoak } from './run.js';

const HELP = `Usage: npm run soak -- [options]

  --minutes <n>      how long the load runs (default 5)
  --seconds <n>      the same in seconds, for short local runs (overrides --minutes)
  --seed <n>         seed of the chaos schedule and the load (default 1)
  --workers <n>      worker processes (default 2)
  --concurrency <n>  BullMQ concurrency per worker (default 8)
  --rate <n>         logical messages per second (default 8)
  --every <n>        seconds between faults, about (default 7)
  --out <dir>        where the report goes (default soak-report)
  --keep             keep the run's logs, AOF and dead-letter files (in <out>/run)
  -h, --help`;

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    seconds: { type: 'string' },
    seed: { type: 'string', default: '1' },
    workers: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '8' },
    rate: { type: 'string', default: '8' },
    every: { type: 'string', default: '7' },
    out: { type: 'string', default: 'soak-report' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}

function positive(name: string, raw: string, integer: boolean): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new RangeError(
      `--${name} must be a positive ${integer ? 'integer' : 'number'}, got ${raw}`,
    );
  }
  return n;
}
const loadMs =
  values.seconds !== undefined
    ? positive('seconds', values.seconds, false) * 1000
    : positive('minutes', values.minutes, false) * 60_000;
const seed = Number(values.seed);
if (!Number.isInteger(seed)) throw new RangeError(`--seed must be an integer, got ${values.seed}`);
const workers = positive('workers', values.workers, true);
const concurrency = positive('concurrency', values.concurrency, true);
const rate = positive('rate', values.rate, false);
const spacingMs = positive('every', values.every, false) * 1000;

mkdirSync(values.out, { recursive: true });
const dir = values.keep ? join(values.out, 'run') : mkdtempSync(join(tmpdir(), 'retrykit-soak-'));
if (values.keep) rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });

console.log(
  `chaos schedule (seed ${seed}):\n${formatSchedule(chaosSchedule(seed, loadMs, workers, spacingMs))}`,
);
const stop = (): void => process.exit(130);
process.once('SIGINT', stop);
process.once('SIGTERM', stop);

const run = await runSoak({ loadMs, seed, workers, concurrency, rate, spacingMs, dir });
writeFileSync(join(values.out, 'soak.svg'), soakChart(run));
writeFileSync(join(values.out, 'report.md'), soakMarkdown(run, 'soak.svg'));
if (!values.keep) rmSync(dir, { recursive: true, force: true });
const a = run.audit;
console.log(
  `\n${a.messages} messages: ${a.outcomes.delivered} delivered, ${a.outcomes.dead_lettered} dead-lettered, ${a.outcomes.pending} still queued, ${a.doubledJustified} doubled in a documented window (${a.justified.held} held, ${a.justified.killed} killed)`,
);
console.log(
  `closed loop: ${a.resends.afterFailed} re-sent after failed, ${a.resends.unconfirmed} after a held timeout; stuck alerts ${a.stuck.alerted}/${a.stuck.expected} (${a.stuck.unexpected} unexpected)`,
);
console.log(
  `updates: ${a.updates.queuedOnce}/${a.updates.expected} queued once; statuses: ${a.statuses.regressed} off; rate excess: ${a.rate.numberExcess}; findings: ${a.findings.length}`,
);
console.log(`report: ${join(values.out, 'report.md')}`);
console.log(a.verdict);
process.exit(a.ok ? 0 : 1);
