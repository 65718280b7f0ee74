// `retrykit stats`: the fleet's metrics, as every `createRedisMetricsReporter` wrote them.
import type { Redis } from 'ioredis';
import { type FleetMetrics, readFleetMetrics } from '../redis/index.js';
import type { DeliverySnapshot } from '../whatsapp/index.js';
import { whatsappDeliveryMetrics } from '../whatsapp/index.js';
import { type Io, out, parseDuration, percent, table, UsageError } from './io.js';

export interface StatsFlags {
  readonly window?: string | undefined;
  readonly interval?: string | undefined;
  readonly whatsapp?: boolean | undefined;
}

function ms(v: number | null): string {
  return v === null ? '-' : `${Math.round(v)} ms`;
}

function counts(map: Readonly<Record<string, number | undefined>>): string {
  const parts = Object.entries(map).map(([k, n]) => `${k} ${n}`);
  return parts.length === 0 ? '-' : parts.join(', ');
}

export async function stats(
  io: Io,
  redis: Redis,
  prefix: string,
  flags: StatsFlags,
  json: boolean,
): Promise<number> {
  const windowMs = flags.window === undefined ? undefined : parseDuration('window', flags.window);
  const intervalMs =
    flags.interval === undefined ? undefined : parseDuration('interval', flags.interval);
  let fleet: FleetMetrics<{ readonly messages?: DeliverySnapshot }>;
  try {
    const options = {
      prefix,
      ...(windowMs === undefined ? {} : { windowMs }),
      ...(intervalMs === undefined ? {} : { intervalMs }),
    };
    fleet =
      flags.whatsapp === true
        ? await readFleetMetrics(redis, { ...options, sections: [whatsappDeliveryMetrics()] })
        : await readFleetMetrics(redis, options);
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) {
      throw new UsageError(error.message);
    }
    throw error;
  }
  if (json) {
    out(io, JSON.stringify(fleet));
    return 0;
  }
  const { snapshot: s, health, instances } = fleet;
  out(
    io,
    `fleet "${prefix}": ${instances} reporting instance${instances === 1 ? '' : 's'}, last ${Math.round(s.windowMs / 1000)} s`,
  );
  out(io);
  out(
    io,
    table([
      [
        'calls',
        `${s.calls.started} started, ${s.calls.succeeded} succeeded, ${s.calls.gaveUp} gave up`,
      ],
      [
        'first-attempt success',
        `${s.calls.firstAttemptSucceeded} (${percent(s.ratios.firstAttemptSuccess)})`,
      ],
      ['retries', `${s.retries.scheduled} (retry rate ${percent(s.ratios.retry)}, healthy ≤ 2 %)`],
      ['error rate', `${percent(s.ratios.error)} (healthy ≤ 2 %)`],
      [
        'latency',
        `p50 ${ms(s.latency.p50Ms)} · p95 ${ms(s.latency.p95Ms)} · p99 ${ms(s.latency.p99Ms)} · max ${ms(s.latency.maxMs)}`,
      ],
      ['failures by reason', counts(s.attempts.failedByReason)],
      ['rate limits', `${s.rateLimit.waits} waits, ${s.rateLimit.refused} refused`],
      ['dead letters', `${s.deadLetters.total} (${counts(s.deadLetters.byReason)})`],
      [
        'jobs',
        `${s.jobs.started} started, ${s.jobs.succeeded} done, ${s.jobs.deferred} deferred, ${s.jobs.gaveUp} gave up`,
      ],
      [
        'queues',
        counts(Object.fromEntries(Object.entries(s.queues).map(([k, q]) => [k, q.depth]))),
      ],
      ['open circuits', Object.keys(s.breakers.notClosed).join(', ') || '-'],
      ...(s.messages === undefined
        ? []
        : [
            [
              'whatsapp delivery',
              `${s.messages.delivered} delivered, ${s.messages.failed} failed (${percent(s.messages.deliveryRate)})`,
            ],
            [
              'send → delivered',
              `p50 ${ms(s.messages.deliveryLatency.p50Ms)} · p95 ${ms(s.messages.deliveryLatency.p95Ms)} · p99 ${ms(s.messages.deliveryLatency.p99Ms)}`,
            ],
          ]),
    ]),
  );
  out(io);
  if (health.healthy) {
    out(io, 'health: ok');
  } else {
    out(io, 'health: BREACHED');
    for (const b of health.breaches) {
      out(io, `  ${b.check}: ${b.value} > ${b.threshold}`);
    }
  }
  return 0;
}
