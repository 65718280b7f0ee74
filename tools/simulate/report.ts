import { type BreakerScenarioResult, runBreakerScenario } from './breaker.js';
import { type ContentionSummary, summarizeContention } from './contention.js';
import { BIN_MS, OUTAGE_GROWTH, type OutageResult, runOutage } from './outage.js';
import { STRATEGY_COLORS, STRATEGY_LABELS, type Strategy } from './strategies.js';
import { barChartSvg, formatNumber, type LinePanel, lineChartSvg } from './svg.js';

/** Scenario 2 averaged over seeds, for one strategy with or without the budget. */
export interface OutageSummary {
  readonly strategy: Strategy;
  readonly budget: boolean;
  readonly seeds: number;
  /** Mean requests the server received per run. */
  readonly calls: number;
  readonly delivered: number;
  readonly deadLettered: number;
  readonly pending: number;
  /** Mean of each run's peak arrival rate after recovery, in requests per second. */
  readonly peakAfterRecoveryPerSecond: number;
  /** Mean drain time after recovery in milliseconds; `Infinity` if a run did not drain. */
  readonly drainMs: number;
  /** The first seed's run, for the charts. */
  readonly sample: OutageResult;
}

/** Settings of a scenario 2 run from the command line. */
export interface OutageSettings {
  readonly clients: number;
  readonly outageMs: number;
  readonly capacityPerSecond: number;
  /** Cap on a single retry delay, in milliseconds. */
  readonly maxDelayMs: number;
}

/** Runs scenario 1 for every client count and strategy. */
export function contentionTable(
  clientCounts: readonly number[],
  strategies: readonly Strategy[],
  seeds: number,
): ContentionSummary[] {
  const rows: ContentionSummary[] = [];
  for (const clients of clientCounts) {
    for (const strategy of strategies) rows.push(summarizeContention(clients, strategy, seeds));
  }
  return rows;
}

/** Runs scenario 2 for every strategy, without and with the retry budget. */
export function outageTable(
  strategies: readonly Strategy[],
  seeds: number,
  settings: OutageSettings,
): OutageSummary[] {
  const rows: OutageSummary[] = [];
  for (const budget of [false, true]) {
    for (const strategy of strategies) {
      let sample: OutageResult | undefined;
      let calls = 0;
      let delivered = 0;
      let deadLettered = 0;
      let pending = 0;
      let peak = 0;
      let drain = 0;
      for (let seed = 1; seed <= seeds; seed++) {
        const run = runOutage({
          strategy,
          seed,
          clients: settings.clients,
          outageMs: settings.outageMs,
          capacityPerSecond: settings.capacityPerSecond,
          growth: { ...OUTAGE_GROWTH, maxDelayMs: settings.maxDelayMs },
          ...(budget ? { budget: {} } : {}),
        });
        sample ??= run;
        calls += run.calls;
        delivered += run.delivered;
        deadLettered += run.deadLettered;
        pending += run.pending;
        peak += run.peakAfterRecoveryPerSecond;
        drain += run.drainMs;
      }
      rows.push({
        strategy,
        budget,
        seeds,
        calls: calls / seeds,
        delivered: delivered / seeds,
        deadLettered: deadLettered / seeds,
        pending: pending / seeds,
        peakAfterRecoveryPerSecond: peak / seeds,
        drainMs: drain / seeds,
        sample: sample!,
      });
    }
  }
  return rows;
}

function markdownTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (i === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`;
  return [line(head), rule, ...rows.map(line)].join('\n');
}

/** Scenario 1 as a Markdown table: one row per strategy, calls and time per client count. */
export function formatContention(rows: readonly ContentionSummary[]): string {
  const counts = [...new Set(rows.map((r) => r.clients))];
  const strategies = [...new Set(rows.map((r) => r.strategy))];
  const find = (clients: number, strategy: Strategy): ContentionSummary =>
    rows.find((r) => r.clients === clients && r.strategy === strategy)!;
  const calls = markdownTable(
    ['write calls', ...counts.map((n) => `N = ${n}`)],
    strategies.map((s) => [
      STRATEGY_LABELS[s],
      ...counts.map((n) => formatNumber(find(n, s).calls)),
    ]),
  );
  const time = markdownTable(
    ['completion time (ms)', ...counts.map((n) => `N = ${n}`)],
    strategies.map((s) => [
      STRATEGY_LABELS[s],
      ...counts.map((n) => formatNumber(find(n, s).completionMs)),
    ]),
  );
  return `${calls}\n\n${time}`;
}

function seconds(ms: number): string {
  return Number.isFinite(ms) ? (ms / 1000).toFixed(1) : 'not drained';
}

/** Scenario 2 as a Markdown table. */
export function formatOutage(rows: readonly OutageSummary[]): string {
  return markdownTable(
    [
      'strategy',
      'budget',
      'peak after recovery (req/s)',
      'drain after recovery (s)',
      'requests',
      'delivered',
      'dead-lettered',
    ],
    rows.map((r) => [
      STRATEGY_LABELS[r.strategy],
      r.budget ? 'on' : 'off',
      formatNumber(r.peakAfterRecoveryPerSecond),
      seconds(r.drainMs),
      formatNumber(r.calls),
      formatNumber(r.delivered),
      formatNumber(r.deadLettered),
    ]),
  );
}

/** Scenario 1 charts: calls and completion time per client count. */
export function contentionCharts(rows: readonly ContentionSummary[]): Record<string, string> {
  const counts = [...new Set(rows.map((r) => r.clients))];
  const strategies = [...new Set(rows.map((r) => r.strategy))];
  const seeds = rows[0]?.seeds ?? 0;
  const series = (pick: (r: ContentionSummary) => number) =>
    strategies.map((s) => ({
      label: STRATEGY_LABELS[s],
      color: STRATEGY_COLORS[s],
      values: counts.map((n) => pick(rows.find((r) => r.clients === n && r.strategy === s)!)),
    }));
  const categories = counts.map((n) => `${n} clients`);
  const subtitle = `One row, optimistic concurrency, 10 ± 2 ms network; retrykit computeDelay with a 10 ms first delay, ×2, 2 s cap. Mean of ${seeds} seeds.`;
  return {
    'contention-calls.svg': barChartSvg({
      title: 'Scenario 1: write calls per client until every client has written (lower is better)',
      subtitle,
      xLabel: 'clients contending',
      yLabel: 'write calls per client',
      categories,
      series: series((r) => r.calls / r.clients),
    }),
    'contention-time.svg': barChartSvg({
      title: 'Scenario 1: time until every client has written (lower is better)',
      subtitle,
      xLabel: 'clients contending',
      yLabel: 'milliseconds',
      categories,
      series: series((r) => r.completionMs),
    }),
  };
}

/** Scenario 2 charts: arrivals per 100 ms, one panel per strategy, without and with budget. */
export function outageCharts(
  rows: readonly OutageSummary[],
  settings: OutageSettings,
): Record<string, string> {
  const perBin = settings.capacityPerSecond / (1000 / BIN_MS);
  const reference = { label: `capacity (${formatNumber(perBin)} per 100 ms)`, value: perBin };
  const shade = { label: 'server down', from: 0, to: settings.outageMs / 1000 };
  const jittered = rows.filter((r) => !r.budget);
  const xMaxFor = (budget: boolean): number => {
    if (!budget) return (settings.outageMs * 4) / 1000;
    const ends = rows.filter((r) => r.budget).map((r) => r.sample.arrivals.length * BIN_MS);
    return Math.max(settings.outageMs * 1.2, ...ends) / 1000;
  };
  const xMax = xMaxFor(false);
  const beyond = (r: OutageSummary): string => {
    const endS = (r.sample.arrivals.length * BIN_MS) / 1000;
    return endS > xMax ? ` (continues to ${formatNumber(endS)} s)` : '';
  };
  const subtitle = (budget: boolean) =>
    `${formatNumber(settings.clients)} clients, one webhook each; server down ${formatNumber(settings.outageMs / 1000)} s, then ${formatNumber(settings.capacityPerSecond)} req/s. 1 s first delay, ×2, ${formatNumber(settings.maxDelayMs / 1000)} s cap; seed 1. ${budget ? 'Retry budget on (defaults, shared).' : 'No retry budget.'} Each panel has its own y scale.`;
  const panels = (budget: boolean): LinePanel[] =>
    rows
      .filter((r) => r.budget === budget)
      .map((r) => ({
        title:
          r.sample.delivered === 0
            ? `${STRATEGY_LABELS[r.strategy]}: all ${formatNumber(r.sample.deadLettered)} dead-lettered by ${seconds(r.sample.settledAtMs)} s, nothing left to retry after recovery`
            : `${STRATEGY_LABELS[r.strategy]}: peak ${formatNumber(r.sample.peakAfterRecoveryPerSecond)} req/s after recovery, drained ${seconds(r.sample.drainMs)} s after it${beyond(r)}`,
        series: [
          {
            label: 'requests arriving per 100 ms',
            color: STRATEGY_COLORS[r.strategy],
            values: r.sample.arrivals,
          },
        ],
        reference,
        shade,
      }));
  const chart = (budget: boolean) =>
    lineChartSvg({
      title: `Scenario 2: arrivals at the server over time${budget ? ', retry budget on' : ''}`,
      subtitle: subtitle(budget),
      xLabel: 'seconds',
      yLabel: 'requests arriving per 100 ms',
      xStep: BIN_MS / 1000,
      xMax: xMaxFor(budget),
      panels: panels(budget),
      panelHeight: 110,
    });
  const herd = jittered.filter((r) => r.strategy === 'none' || r.strategy === 'full');
  const out: Record<string, string> = {
    'outage.svg': chart(false),
    'outage-budget.svg': chart(true),
  };
  if (herd.length > 0) {
    out['outage-herd.svg'] = lineChartSvg({
      title: `Retries after a ${formatNumber(settings.outageMs / 1000)} s outage: no jitter versus full jitter`,
      subtitle: subtitle(false).replace(' Each panel has its own y scale.', ''),
      xLabel: 'seconds',
      yLabel: 'requests arriving per 100 ms',
      xStep: BIN_MS / 1000,
      xMax,
      panels: [
        {
          title: 'Requests arriving at the server per 100 ms',
          series: herd.map((r) => ({
            label: `${STRATEGY_LABELS[r.strategy]}${beyond(r)}`,
            color: STRATEGY_COLORS[r.strategy],
            values: r.sample.arrivals,
          })),
          reference,
          shade,
        },
      ],
      panelHeight: 260,
    });
  }
  return out;
}

/** Scenario 3, without and with the breaker, for one seed each. */
export function breakerTable(
  seed: number,
  settings: { readonly outageMs: number },
): { breaker: boolean; result: BreakerScenarioResult }[] {
  return [false, true].map((breaker) => ({
    breaker,
    result: runBreakerScenario({ breaker, seed, outageMs: settings.outageMs }),
  }));
}

/** Scenario 3 as a Markdown table. */
export function formatBreaker(
  rows: readonly { breaker: boolean; result: BreakerScenarioResult }[],
): string {
  return markdownTable(
    [
      'circuit breaker',
      'requests during the outage',
      'requests',
      'held',
      'delivered',
      'dead-lettered',
      'drain after recovery (s)',
    ],
    rows.map(({ breaker, result: r }) => [
      breaker ? 'on' : 'off',
      formatNumber(r.callsDuringOutage),
      formatNumber(r.calls),
      formatNumber(r.holds),
      formatNumber(r.delivered),
      formatNumber(r.deadLettered),
      seconds(r.drainMs),
    ]),
  );
}
