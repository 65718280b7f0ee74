import { spawn } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runBreakerScenario } from '../tools/simulate/breaker.js';
import { runContention, summarizeContention } from '../tools/simulate/contention.js';
import { EventQueue } from '../tools/simulate/heap.js';
import { BIN_MS, runOutage } from '../tools/simulate/outage.js';
import {
  contentionCharts,
  contentionTable,
  formatContention,
  outageCharts,
  outageTable,
} from '../tools/simulate/report.js';
import { STRATEGIES } from '../tools/simulate/strategies.js';
import { barChartSvg, ticks } from '../tools/simulate/svg.js';

describe('EventQueue', () => {
  it('pops events by time, and events at the same time in the order they were pushed', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 200 }), (times) => {
        const queue = new EventQueue<number>();
        times.forEach((time, index) => {
          queue.push(time, index);
        });
        const popped: number[] = [];
        for (let index = queue.pop(); index !== undefined; index = queue.pop()) popped.push(index);
        const expected = times
          .map((time, index) => ({ time, index }))
          .sort((a, b) => a.time - b.time || a.index - b.index)
          .map((e) => e.index);
        expect(popped).toEqual(expected);
        expect(queue.peekTime()).toBe(Number.POSITIVE_INFINITY);
      }),
    );
  });
});

describe('scenario 1: contention', () => {
  it('prints the same table twice for the same seeds, and a different one for other seeds', () => {
    const a = formatContention(contentionTable([10, 50], STRATEGIES, 3));
    const b = formatContention(contentionTable([10, 50], STRATEGIES, 3));
    expect(a).toBe(b);
    expect(runContention({ clients: 50, strategy: 'full', seed: 1 })).not.toEqual(
      runContention({ clients: 50, strategy: 'full', seed: 2 }),
    );
  });

  it('lets every client write exactly once: one winning call per client, at least', () => {
    for (const strategy of STRATEGIES) {
      const run = runContention({ clients: 40, strategy, seed: 3 });
      expect(run.calls).toBeGreaterThanOrEqual(40);
      expect(Number.isFinite(run.completionMs)).toBe(true);
    }
    // A lone client never conflicts: one read and one write, four one-way trips of ~10 ms.
    const alone = runContention({ clients: 1, strategy: 'none', seed: 1 });
    expect(alone.calls).toBe(1);
    expect(alone.completionMs).toBeGreaterThan(20);
    expect(alone.completionMs).toBeLessThan(60);
  });

  it("orders the strategies at N = 100 as Brooker's analysis predicts", () => {
    const at100 = (strategy: (typeof STRATEGIES)[number]) => summarizeContention(100, strategy, 20);
    const none = at100('none');
    const full = at100('full');
    const equal = at100('equal');
    const decorrelated = at100('decorrelated');
    // Backoff without jitter is by far the slowest and does more work than full jitter.
    expect(none.completionMs).toBeGreaterThan(5 * full.completionMs);
    expect(full.calls).toBeLessThan(none.calls);
    // Full jitter beats equal jitter on both counts.
    expect(full.calls).toBeLessThan(equal.calls);
    expect(full.completionMs).toBeLessThan(equal.completionMs);
    // Decorrelated finishes soonest of the three jittered kinds.
    expect(decorrelated.completionMs).toBeLessThan(full.completionMs);
    expect(decorrelated.completionMs).toBeLessThan(equal.completionMs);
  });
});

describe('scenario 2: outage and recovery', () => {
  const base = { clients: 500, outageMs: 10_000, capacityPerSecond: 100, seed: 1 } as const;

  it('is deterministic for a seed', () => {
    expect(runOutage({ ...base, strategy: 'decorrelated' })).toEqual(
      runOutage({ ...base, strategy: 'decorrelated' }),
    );
  });

  it('delivers every webhook without a budget; no jitter comes back as a herd, full jitter not', () => {
    const none = runOutage({ ...base, strategy: 'none' });
    const full = runOutage({ ...base, strategy: 'full' });
    for (const run of [none, full]) {
      expect(run.delivered).toBe(500);
      expect(run.deadLettered + run.pending).toBe(0);
      expect(run.arrivals.reduce((sum, n) => sum + n, 0)).toBe(run.calls);
      // Nothing is served during the outage: every call before it fails and is retried.
      expect(run.calls).toBeGreaterThan(500);
    }
    expect(none.peakAfterRecoveryPerSecond).toBeGreaterThan(5 * 100);
    expect(full.peakAfterRecoveryPerSecond).toBeLessThan(3 * 100);
    expect(full.drainMs).toBeLessThan(none.drainMs);
  });

  it('grants exactly the retries the budget allows in its window', () => {
    // Default budget over 10 s: 10 retries a second plus 20 % of first attempts.
    const run = runOutage({ ...base, clients: 1000, strategy: 'full', budget: {} });
    expect(run.calls).toBe(1000 + 100 + 200);
    expect(run.deadLettered).toBe(1000);
    expect(run.peakAfterRecoveryPerSecond).toBe(0);
  });

  it('ages budget withdrawals out in simulated time', () => {
    // 10 retries per 1 s window and no share of traffic: of 100 clients failing together, 10 get
    // their first retry and the rest are dead-lettered. The 10 retry at about 1, 3 and 7 s, and
    // are granted each time because their withdrawals age out after 1 s of simulated time; the
    // third retry lands after the 5 s outage and is delivered.
    const run = runOutage({
      ...base,
      clients: 100,
      outageMs: 5000,
      startSpreadMs: 1,
      strategy: 'none',
      budget: { windowMs: 1000, minRetriesPerSecond: 10, retryRatio: 0 },
    });
    expect(run.deadLettered).toBe(90);
    expect(run.delivered).toBe(10);
    expect(run.calls).toBe(100 + 10 * 3);
  });

  it('counts arrivals in 100 ms bins', () => {
    const run = runOutage({ ...base, clients: 200, strategy: 'none', startSpreadMs: 1 });
    // All first attempts start within 1 ms and land ~20 ms later: in the first bin.
    expect(BIN_MS).toBe(100);
    expect(run.arrivals[0]).toBe(200);
  });
});

describe('charts', () => {
  it('picks round tick steps that cover the maximum', () => {
    fc.assert(
      fc.property(fc.double({ min: 0.01, max: 1e7, noNaN: true }), (max) => {
        const t = ticks(max);
        expect(t[0]).toBe(0);
        expect(t[t.length - 1]!).toBeGreaterThanOrEqual(max * (1 - 1e-9));
        expect(t.length).toBeLessThanOrEqual(12);
        for (let i = 1; i < t.length; i++) expect(t[i]!).toBeGreaterThan(t[i - 1]!);
      }),
      { examples: [[300.0000003]] },
    );
  });

  it('draws one bar per strategy and client count, with labels and a legend, escaping text', () => {
    const svg = barChartSvg({
      title: 'A < B & C',
      xLabel: 'clients',
      yLabel: 'calls',
      categories: ['10', '20'],
      series: [
        { label: 'one', color: '#000', values: [1, 2] },
        { label: 'two', color: '#111', values: [3, 4] },
      ],
    });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toContain('A &lt; B &amp; C');
    expect(svg.match(/<rect x=/g)).toHaveLength(4);
    expect(svg).toContain('>clients</text>');
    expect(svg).toContain('>two</text>');
  });

  it('writes every chart the docs show', () => {
    const settings = { clients: 100, outageMs: 5000, capacityPerSecond: 50, maxDelayMs: 30_000 };
    const charts = {
      ...contentionCharts(contentionTable([10], ['none', 'full'], 2)),
      ...outageCharts(outageTable(['none', 'full'], 1, settings), settings),
    };
    expect(Object.keys(charts).sort()).toEqual([
      'contention-calls.svg',
      'contention-time.svg',
      'outage-budget.svg',
      'outage-herd.svg',
      'outage.svg',
    ]);
    for (const svg of Object.values(charts)) expect(svg).toMatch(/<\/svg>\n$/);
    expect(charts['outage.svg']).toContain('<polyline');
  });
});

describe('scenario 3: a down API with and without the circuit breaker', () => {
  it('holds instead of dead-lettering, and keeps requests off the down API', () => {
    const [off, on] = [false, true].map((breaker) =>
      runBreakerScenario({ breaker, seed: 3, durationMs: 40_000, outageMs: 20_000 }),
    );
    if (off === undefined || on === undefined) throw new Error('no run');
    expect(off.deadLettered).toBeGreaterThan(0);
    expect(off.delivered + off.deadLettered).toBe(off.messages);
    expect(on.deadLettered).toBe(0);
    expect(on.delivered).toBe(on.messages);
    expect(on.holds).toBeGreaterThan(0);
    expect(on.callsDuringOutage * 20).toBeLessThan(off.callsDuringOutage);
    expect(
      runBreakerScenario({ breaker: true, seed: 3, durationMs: 40_000, outageMs: 20_000 }),
    ).toEqual(on);
  });
});

describe('npm run simulate', () => {
  const cli = (...args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'tools/simulate/cli.ts', ...args]);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });

  it('prints the tables for the options given', async () => {
    const run = await cli('--scenario', 'contention', '--clients', '10,20', '--seeds', '2');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('| write calls');
    expect(run.stdout).toContain('N = 20');
    expect(run.stdout).toContain('decorrelated jitter');
    expect(run.stdout).not.toContain('Scenario 2');
  });

  it('prints the breaker scenario on its own', async () => {
    const run = await cli('--scenario', 'breaker', '--outage-ms', '20000');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('## Scenario 3');
    expect(run.stdout).toMatch(/\| on +\| +\d+ \|.*\| +0 \| +\d+\.\d \|/);
    expect(run.stdout).not.toContain('Scenario 1');
  });

  it('rejects a bad option naming it and the value', async () => {
    const [capacity, strategy, unknown] = await Promise.all([
      cli('--capacity=-5'),
      cli('--strategy', 'linear'),
      cli('--clinets', '10'),
    ]);
    expect(capacity.code).toBe(2);
    expect(capacity.stderr).toContain('--capacity must be a positive number, got "-5"');
    expect(strategy.code).toBe(2);
    expect(strategy.stderr).toContain('--strategy must be among none, full, equal');
    expect(strategy.stderr).toContain('got "linear"');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("'--clinets'");
  });
});
