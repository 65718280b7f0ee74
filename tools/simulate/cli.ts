/**
 * `npm run simulate -- [options]`: the thundering-herd simulator. Prints Markdown tables;
 * with `--svg DIR` also writes the charts. Everything runs in simulated time from fixed seeds,
 * so the same options always print the same tables.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BREAKER_SCENARIO_DEFAULTS } from './breaker.js';
import { OUTAGE_DEFAULTS, OUTAGE_GROWTH } from './outage.js';
import {
  breakerTable,
  contentionCharts,
  contentionTable,
  formatBreaker,
  formatContention,
  formatOutage,
  outageCharts,
  outageTable,
} from './report.js';
import { STRATEGIES, type Strategy } from './strategies.js';

const HELP = `Usage: npm run simulate -- [options]

  --scenario <contention|outage|breaker|all>  which scenario to run (default all)
  --clients <list>          scenario 1 client counts, comma-separated (default 10,25,50,100,200)
  --outage-clients <n>      scenario 2 clients, one webhook each (default ${OUTAGE_DEFAULTS.clients})
  --seeds <n>               seeds to average over (default 100 for scenario 1, 5 for scenario 2)
  --strategy <list>         comma-separated subset of ${STRATEGIES.join(', ')} (default all)
  --outage-ms <ms>          scenario 2 outage length in milliseconds (default ${OUTAGE_DEFAULTS.outageMs})
  --capacity <n>            scenario 2 requests per second served after recovery (default ${OUTAGE_DEFAULTS.capacityPerSecond})
  --max-delay-ms <ms>       scenario 2 cap on one retry delay in milliseconds (default ${OUTAGE_GROWTH.maxDelayMs})
  --svg <dir>               also write the charts as SVG files into <dir>
  --help                    show this help
`;

function fail(message: string): never {
  process.stderr.write(`simulate: ${message}\n\n${HELP}`);
  process.exit(2);
}

function positiveInteger(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) fail(`--${name} must be a positive integer, got "${value}"`);
  return n;
}

function positiveNumber(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) fail(`--${name} must be a positive number, got "${value}"`);
  return n;
}

function parse() {
  try {
    return parseArgs({ options: OPTIONS, strict: true });
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error));
  }
}

const OPTIONS = {
  scenario: { type: 'string', default: 'all' },
  clients: { type: 'string' },
  'outage-clients': { type: 'string' },
  seeds: { type: 'string' },
  strategy: { type: 'string' },
  'outage-ms': { type: 'string' },
  capacity: { type: 'string' },
  'max-delay-ms': { type: 'string' },
  svg: { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

const { values } = parse();

if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const scenario = values.scenario;
if (!['all', 'contention', 'outage', 'breaker'].includes(scenario)) {
  fail(`--scenario must be contention, outage, breaker or all, got "${scenario}"`);
}
const clientCounts = (values.clients ?? '10,25,50,100,200')
  .split(',')
  .map((part) => positiveInteger('clients', part.trim(), 0));
const strategies = (values.strategy?.split(',') ?? [...STRATEGIES]).map((part) => {
  const name = part.trim();
  if (!(STRATEGIES as readonly string[]).includes(name)) {
    fail(`--strategy must be among ${STRATEGIES.join(', ')}, got "${name}"`);
  }
  return name as Strategy;
});
const settings = {
  clients: positiveInteger('outage-clients', values['outage-clients'], OUTAGE_DEFAULTS.clients),
  outageMs: positiveNumber('outage-ms', values['outage-ms'], OUTAGE_DEFAULTS.outageMs),
  capacityPerSecond: positiveNumber('capacity', values.capacity, OUTAGE_DEFAULTS.capacityPerSecond),
  maxDelayMs: positiveNumber('max-delay-ms', values['max-delay-ms'], OUTAGE_GROWTH.maxDelayMs),
};
const charts: Record<string, string> = {};

if (scenario === 'all' || scenario === 'contention') {
  const seeds = positiveInteger('seeds', values.seeds, 100);
  const rows = contentionTable(clientCounts, strategies, seeds);
  process.stdout.write(
    `## Scenario 1: contention (one row, optimistic concurrency; mean of ${seeds} seeds)\n\n${formatContention(rows)}\n\n`,
  );
  Object.assign(charts, contentionCharts(rows));
}

if (scenario === 'all' || scenario === 'outage') {
  const seeds = positiveInteger('seeds', values.seeds, 5);
  const rows = outageTable(strategies, seeds, settings);
  process.stdout.write(
    `## Scenario 2: outage and recovery (${settings.clients} clients, ${settings.outageMs / 1000} s down, then ${settings.capacityPerSecond} req/s, ${settings.maxDelayMs / 1000} s delay cap; mean of ${seeds} seeds)\n\n${formatOutage(rows)}\n`,
  );
  Object.assign(charts, outageCharts(rows, settings));
}

if (scenario === 'all' || scenario === 'breaker') {
  const b = BREAKER_SCENARIO_DEFAULTS;
  const rows = breakerTable(1, { outageMs: settings.outageMs });
  process.stdout.write(
    `\n## Scenario 3: a down API with and without the circuit breaker (${b.ratePerSecond} messages/s for ${b.durationMs / 1000} s, down ${settings.outageMs / 1000} s from ${b.outageStartMs / 1000} s, ${b.maxAttempts} attempts, full jitter; breaker defaults with a ${b.breakDurationMs / 1000} s break)\n\n${formatBreaker(rows)}\n`,
  );
}

if (values.svg !== undefined) {
  mkdirSync(values.svg, { recursive: true });
  for (const [name, svg] of Object.entries(charts)) {
    writeFileSync(join(values.svg, name), svg);
    process.stdout.write(`\nwrote ${join(values.svg, name)}`);
  }
  process.stdout.write('\n');
}
