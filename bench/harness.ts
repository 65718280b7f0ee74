import { Bench } from 'tinybench';

/** One measured case. */
export interface Measured {
  readonly name: string;
  /** Operations per second (mean of the samples). */
  readonly hz: number;
  /** Mean time per operation, in nanoseconds. */
  readonly meanNs: number;
  /** Relative margin of error, in percent. */
  readonly rme: number;
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
    const ratio = base && base.hz > 0 ? (r.hz / base.hz).toFixed(2) : 'n/a';
    return `| ${r.name} | ${formatHz(r.hz)} ops/s | ±${r.rme.toFixed(1)} % | ${ratio}× |`;
  });
  return [`| case | throughput | margin | vs ${baseline} |`, '|---|---:|---:|---:|', ...rows].join(
    '\n',
  );
}
