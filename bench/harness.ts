import { Bench } from 'tinybench';
import { seededRandom } from '../src/testing/index.js';
import { startRedisServer } from '../test/support/redis-server.js';

/** One measured case. */
export interface Measured {
  readonly name: string;
  /** Operations per second (mean of the samples). */
  readonly hz: number;
  /** Mean time per operation, in nanoseconds. */
  readonly meanNs: number;
  /** Relative margin of error, in percent. */
  readonly rme: number;
  /**
   * From {@link interleaved} only: the speed relative to its first case, as the mean of the
   * per-batch ratios. Pairing each batch's numbers removes the load swings they share.
   */
  readonly paired?: { readonly baseline: string; readonly ratio: number };
  /** From {@link loops} only: the rate of each round, in operations per second. */
  readonly rounds?: readonly number[];
}

/** A benchmark suite: returns a Markdown section (a `##` heading and its tables). */
export interface BenchSuite {
  readonly name: string;
  run(options: { readonly timeMs: number }): Promise<string>;
}

/** Runs the cases one after another with tinybench and returns their throughput. */
export async function measure(
  cases: Record<string, () => unknown>,
  options: { readonly timeMs: number },
): Promise<Measured[]> {
  const bench = new Bench({
    time: options.timeMs,
    warmup: true,
    warmupTime: Math.min(250, options.timeMs / 2),
  });
  for (const [name, fn] of Object.entries(cases)) bench.add(name, fn);
  await bench.run();
  return bench.tasks.map((task) => {
    const result = task.result as unknown as
      | {
          throughput?: { mean: number };
          latency?: { mean: number; rme: number };
          hz?: number;
          mean?: number;
          rme?: number;
        }
      | undefined;
    const hz = result?.throughput?.mean ?? result?.hz ?? 0;
    const meanMs = result?.latency?.mean ?? result?.mean ?? 0;
    const rme = result?.latency?.rme ?? result?.rme ?? 0;
    return { name: task.name, hz, meanNs: meanMs * 1e6, rme };
  });
}

function formatHz(hz: number): string {
  if (hz >= 1e6) return `${(hz / 1e6).toFixed(2)} M`;
  if (hz >= 1e3) return `${(hz / 1e3).toFixed(1)} k`;
  return hz.toFixed(0);
}

/**
 * A Markdown table of `results` with each case's speed as a ratio to `baseline` (the case
 * named so): above 1 is faster than the baseline.
 */
export function ratioTable(results: readonly Measured[], baseline: string): string {
  const base = results.find((r) => r.name === baseline);
  const rows = results.map((r) => {
    const ratio =
      r.paired?.baseline === baseline
        ? r.paired.ratio.toFixed(2)
        : base && base.hz > 0
          ? (r.hz / base.hz).toFixed(2)
          : 'n/a';
    return `| ${r.name} | ${formatHz(r.hz)} ops/s | ±${r.rme.toFixed(1)} % | ${ratio}× |`;
  });
  return [`| case | throughput | margin | vs ${baseline} |`, '|---|---:|---:|---:|', ...rows].join(
    '\n',
  );
}

/** REDIS_URL, or a throwaway `redis-server` of our own. */
export async function redisForBench(): Promise<{ url: string; stop: () => Promise<void> }> {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, stop: async () => {} };
  const server = await startRedisServer();
  return { url: server.url, stop: () => server.stop() };
}

/**
 * Runs the cases in turn, one operation at a time, for `timeMs` in all: each case sees the
 * same load on a busy machine, which sequential tinybench runs don't give latency-bound Redis
 * calls. Each turn takes the cases in a new random order, since a fixed order measurably
 * favours some positions (about 1.5 % here). The margin is the 95 % interval of the
 * per-batch rates (20 batches); the ratios to the first case are paired batch by batch.
 */
export async function interleaved(
  cases: Record<string, () => Promise<unknown>>,
  timeMs: number,
): Promise<Measured[]> {
  const names = Object.keys(cases);
  const batches = 20;
  const random = seededRandom(1);
  const rates = new Map<string, number[]>(names.map((name) => [name, []]));
  for (const name of names) await cases[name]?.(); // warm up: load scripts, open sockets
  for (let batch = 0; batch < batches; batch++) {
    const spent = new Map<string, { ms: number; ops: number }>(
      names.map((name) => [name, { ms: 0, ops: 0 }]),
    );
    const end = performance.now() + timeMs / batches;
    let order: string[] = [];
    for (let i = 0; performance.now() < end; i++) {
      if (i % names.length === 0) order = shuffled(names, random);
      const name = order[i % names.length] as string;
      const start = performance.now();
      await cases[name]?.();
      const entry = spent.get(name);
      if (entry !== undefined) {
        entry.ms += performance.now() - start;
        entry.ops++;
      }
    }
    for (const [name, { ms, ops }] of spent) rates.get(name)?.push((ops / ms) * 1000);
  }
  return summarise(names, rates);
}

/** `items` in a random order (Fisher–Yates). */
function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/**
 * Runs each case as a plain `for` loop of `iterations` awaits, the cases taking turns in a new
 * random order each round, for `timeMs` in all. A loop is timed once, so no timer read or
 * harness call sits between two operations: what tinybench adds per task (about as much as a
 * cheap `await` costs) would otherwise hide most of the differences. Each loop is timed in CPU
 * time of this process, not wall time, so that the time other processes on a shared machine
 * take the core from us is not counted. The ratios to the first case are paired round by
 * round, which removes the swings the cases of one round share. The margin is the 95 %
 * interval of the per-round rates.
 */
export async function loops(
  cases: Record<string, { readonly iterations: number; run(iterations: number): Promise<unknown> }>,
  timeMs: number,
): Promise<Measured[]> {
  const names = Object.keys(cases);
  const random = seededRandom(2);
  const rates = new Map<string, number[]>(names.map((name) => [name, []]));
  // Warm up each loop until the JIT has compiled it.
  for (let i = 0; i < 20; i++) {
    for (const name of names) await cases[name]?.run(cases[name].iterations);
  }
  const end = performance.now() + timeMs;
  while (performance.now() < end || (rates.get(names[0] as string)?.length ?? 0) < 5) {
    for (const name of shuffled(names, random)) {
      const c = cases[name];
      if (c === undefined) continue;
      const started = cpuMicroseconds();
      await c.run(c.iterations);
      rates.get(name)?.push((c.iterations / (cpuMicroseconds() - started)) * 1e6);
    }
  }
  return summarise(names, rates).map((m) => ({ ...m, rounds: rates.get(m.name) ?? [] }));
}

/** The CPU time this process has used, user and system, in microseconds. */
function cpuMicroseconds(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/**
 * What one operation of case `a` costs in operations of case `b`, from results of
 * {@link loops}: the median of the per-round ratios and their interquartile range. The
 * median, because a neighbour's burst of work on a shared machine skews single rounds.
 */
export function pairedCost(
  results: readonly Measured[],
  a: string,
  b: string,
): { readonly median: number; readonly q1: number; readonly q3: number } {
  const x = results.find((r) => r.name === a)?.rounds ?? [];
  const y = results.find((r) => r.name === b)?.rounds ?? [];
  const costs = x.map((rate, i) => (y[i] as number) / rate).sort((p, q) => p - q);
  const at = (q: number): number => costs[Math.round(q * (costs.length - 1))] ?? Number.NaN;
  return { median: at(0.5), q1: at(0.25), q3: at(0.75) };
}

/** Mean rate, margin and the mean of the per-round ratios to the first case. */
function summarise(names: readonly string[], rates: Map<string, number[]>): Measured[] {
  const baseline = names[0] as string;
  const base = rates.get(baseline) ?? [];
  return names.map((name) => {
    const r = rates.get(name) ?? [];
    const mean = r.reduce((a, b) => a + b, 0) / r.length;
    const sd = Math.sqrt(r.reduce((a, b) => a + (b - mean) ** 2, 0) / (r.length - 1));
    const ratio = r.reduce((sum, rate, i) => sum + rate / (base[i] as number), 0) / r.length;
    return {
      name,
      hz: mean,
      meanNs: 1e9 / mean,
      rme: ((1.96 * sd) / Math.sqrt(r.length) / mean) * 100,
      paired: { baseline, ratio },
    };
  });
}
