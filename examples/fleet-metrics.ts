/**
 * Fleet metrics: three workers each count their own calls and report them to Redis; one read
 * gives the whole fleet's snapshot and health, as `createMetrics()` gives them for one process.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 npx tsx --import ./tools/lua-loader.mjs examples/fleet-metrics.ts
 *
 * Each worker sends 40 messages through `createRetry` against a stand-in for the platform:
 * every 8th message fails once with a 503 and is retried, every 20th is refused for good (a
 * 400). The workers run in one process here for the example's sake; in production each is its
 * own process with its own reporter, and `npx retrykit stats` reads the same numbers.
 */
import { Redis } from 'ioredis';
import { combineListeners, createMetrics, createRetry, permanent } from 'retrykit';
import { createRedisMetricsReporter, readFleetMetrics } from 'retrykit/redis';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const prefix = `example:fleet:${process.pid}`;

/** The platform: 503 on the first try of every 8th message, 400 for every 20th. */
const tries = new Map<string, number>();
async function platform(id: string, n: number): Promise<void> {
  const attempt = (tries.get(id) ?? 0) + 1;
  tries.set(id, attempt);
  await new Promise((resolve) => setTimeout(resolve, 2 + (n % 5)));
  if (n % 20 === 0) throw permanent(Object.assign(new Error('HTTP 400'), { status: 400 }));
  if (n % 8 === 0 && attempt === 1) throw Object.assign(new Error('HTTP 503'), { status: 503 });
}

async function worker(name: string): Promise<void> {
  const local = createMetrics();
  const reporter = createRedisMetricsReporter(redis, { prefix, instanceId: name });
  const send = createRetry({
    maxAttempts: 3,
    backoff: { initialDelayMs: 5, maxDelayMs: 20 },
    onEvent: combineListeners(local.onEvent, reporter.onEvent),
  });
  for (let n = 1; n <= 40; n++) {
    const id = `${name}-${n}`;
    await send(() => platform(id, n)).catch(() => {});
  }
  console.log(`${name}: ${local.snapshot().calls.succeeded} sent on its own`);
  await reporter.close(); // flushes what is left
}

await Promise.all(['worker-a', 'worker-b', 'worker-c'].map(worker));

const { snapshot, health, instances } = await readFleetMetrics(redis, { prefix });
const pct = (r: number | null): string => (r === null ? '-' : `${(r * 100).toFixed(1)} %`);
console.log(`fleet: ${instances} instances`);
console.log(
  `calls: ${snapshot.calls.started} started, ${snapshot.calls.succeeded} succeeded, ${snapshot.calls.gaveUp} gave up`,
);
console.log(`first-attempt success: ${pct(snapshot.ratios.firstAttemptSuccess)}`);
console.log(`retry rate: ${pct(snapshot.ratios.retry)}, error rate: ${pct(snapshot.ratios.error)}`);
console.log(`latency p50 ${snapshot.latency.p50Ms} ms, p99 ${snapshot.latency.p99Ms} ms`);
console.log(
  `health: ${health.healthy ? 'ok' : health.breaches.map((b) => `${b.check} ${b.value.toFixed(3)} > ${b.threshold}`).join(', ')}`,
);

const keys = await redis.keys(`{${prefix}:metrics}:*`);
if (keys.length > 0) await redis.del(...keys);
await redis.quit();
