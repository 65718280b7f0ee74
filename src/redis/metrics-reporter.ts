import { randomUUID } from 'node:crypto';
import { backgroundClock, type Clock } from '../core/clock.js';
import type { AnyEvent, EventListener } from '../core/events.js';
import {
  HEALTH_DEFAULTS,
  type HealthReport,
  type HealthThresholds,
  resolveThresholds,
} from '../core/metrics/health.js';
import { checkSections, METRICS_DEFAULTS } from '../core/metrics/metrics.js';
import type { MetricsSection, SectionSnapshots } from '../core/metrics/metrics-section.js';
import {
  healthOfRaw,
  MetricsRecorder,
  mergeRaw,
  type RawMetrics,
  snapshotOfRaw,
} from '../core/metrics/raw.js';
import type { BreakerSummary, MetricsSnapshot, QueueSummary } from '../core/metrics/snapshot.js';
import {
  assertFunction,
  assertKey,
  assertNoRenamedOptions,
  assertNumber,
} from '../core/validate.js';
import type { RedisClientLike } from './client.js';
import { defineScript, hashTag, runScript } from './script.js';
import flushSource from './scripts/metrics-flush.lua';
import readSource from './scripts/metrics-read.lua';

const scripts = {
  flush: defineScript('metrics-flush', flushSource),
  read: defineScript('metrics-read', readSource),
};

/** Options shared by {@link createRedisMetricsReporter} and {@link readFleetMetrics}. */
export interface FleetMetricsKeyOptions {
  /**
   * Namespace of the fleet's keys. Every bucket carries the hash tag `{<prefix>:metrics}`, so a
   * fleet's metrics live on one Redis Cluster slot and are read in one script.
   * @default 'retrykit'
   */
  readonly prefix?: string;
  /**
   * Length of one bucket, in milliseconds: each reporter writes its delta once per interval,
   * and readers add up whole intervals. Reporters and readers of one fleet must agree on it
   * (it is part of the key, so a mismatch reads nothing rather than wrong numbers).
   * @default 10_000
   */
  readonly intervalMs?: number;
  /**
   * Fail with `StoreUnavailableError` (a reader) or count the interval as lost (a reporter)
   * when Redis hasn't answered within this many milliseconds. 0 waits as long as the client
   * does.
   * @default 2_000
   */
  readonly commandTimeoutMs?: number;
}

/** Options of {@link createRedisMetricsReporter}. */
export interface RedisMetricsReporterOptions extends FleetMetricsKeyOptions {
  /**
   * How long an interval's bucket is kept, in milliseconds: the longest window
   * {@link readFleetMetrics} can read. Keys are bounded by `bucketTtlMs / intervalMs`.
   * @default 3_600_000 (1 hour)
   */
  readonly bucketTtlMs?: number;
  /** Names this process among the fleet's (counted in `instances`). @default a random UUID */
  readonly instanceId?: string;
  /**
   * Dates events and paces the flushes. The default's timers never keep the process alive.
   * @default the system clock
   */
  readonly clock?: Clock;
  /**
   * Called when an interval's delta could not be written (Redis down or too slow): that
   * delta is lost, counting goes on. Must not throw (a throw is ignored).
   *
   * @example
   * { onFlushError: (error) => log.warn({ err: error }, 'fleet metrics interval lost') }
   */
  readonly onFlushError?: (error: unknown) => void;
  /**
   * Sections to report, as `createMetrics` takes them (e.g. `whatsappDeliveryMetrics()` from
   * `retrykit/whatsapp`); pass the same list to {@link readFleetMetrics}. Each reporter keeps
   * its own instance of each.
   * @default []
   */
  readonly sections?: readonly MetricsSection[];
}

/** The defaults of {@link RedisMetricsReporterOptions} and {@link ReadFleetMetricsOptions}. */
export const FLEET_METRICS_DEFAULTS = Object.freeze({
  prefix: 'retrykit',
  intervalMs: 10_000,
  bucketTtlMs: 3_600_000,
  commandTimeoutMs: 2_000,
  windowMs: METRICS_DEFAULTS.windowMs,
});

/** What {@link createRedisMetricsReporter} returns. */
export interface RedisMetricsReporter {
  /**
   * Pass it as `onEvent` beside `createMetrics()`'s (`combineListeners(metrics.onEvent,
   * reporter.onEvent)`). Counts in memory only: it never waits for Redis and never throws.
   */
  readonly onEvent: EventListener<AnyEvent>;
  /**
   * Writes what was counted since the last flush now (the timer does it once per interval).
   * Resolves `true` when written, `false` when there was nothing to write or the write failed
   * (then `onFlushError` was called); never rejects.
   */
  flush(): Promise<boolean>;
  /** Stops the timer and flushes what is left. Calling it again is harmless. */
  close(): Promise<void>;
}

interface Checked {
  readonly base: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

function checkKeys(options: FleetMetricsKeyOptions): Checked {
  const prefix = assertKey('prefix', options.prefix ?? FLEET_METRICS_DEFAULTS.prefix);
  if (/[{}]/.test(prefix)) {
    throw new TypeError(`prefix must not contain '{' or '}', got ${JSON.stringify(prefix)}`);
  }
  const intervalMs = assertNumber(
    'intervalMs',
    options.intervalMs ?? FLEET_METRICS_DEFAULTS.intervalMs,
    1,
  );
  if (!Number.isInteger(intervalMs)) {
    throw new RangeError(`intervalMs must be an integer, got ${intervalMs}`);
  }
  const timeoutMs = assertNumber(
    'commandTimeoutMs',
    options.commandTimeoutMs ?? FLEET_METRICS_DEFAULTS.commandTimeoutMs,
    0,
  );
  return { base: `${hashTag(prefix, 'metrics')}:${intervalMs}:`, intervalMs, timeoutMs };
}

function callHook(hook: ((error: unknown) => void) | undefined, error: unknown): void {
  try {
    hook?.(error);
  } catch {
    // A broken hook must not stop the reporting.
  }
}

/** The flush script's arguments for one delta. */
function flushArgs(raw: RawMetrics, bucketTtlMs: number, instanceId: string): (string | number)[] {
  const increments: (string | number)[] = [];
  for (const [name, v] of Object.entries(raw.counters)) increments.push(`c:${name}`, v);
  for (const [bucket, n] of Object.entries(raw.latency)) increments.push(`h:${bucket}`, n);
  for (const [key, v] of Object.entries(raw.sectionCounters ?? {})) increments.push(`c:${key}`, v);
  const maxima: (string | number)[] = [];
  if (raw.latencyMaxMs !== null) maxima.push('max', raw.latencyMaxMs);
  for (const [key, h] of Object.entries(raw.sectionLatencies ?? {})) {
    for (const [bucket, n] of Object.entries(h.buckets)) increments.push(`sh:${key}|${bucket}`, n);
    if (h.maxMs !== null) maxima.push(`smax:${key}`, h.maxMs);
  }
  const sets: string[] = [`i:${instanceId}`, '1'];
  for (const [name, q] of Object.entries(raw.queues)) sets.push(`q:${name}`, JSON.stringify(q));
  for (const [key, b] of Object.entries(raw.breakers)) sets.push(`b:${key}`, JSON.stringify(b));
  return [bucketTtlMs, increments.length / 2, ...increments, maxima.length / 2, ...maxima, ...sets];
}

/**
 * Reports this process's core metrics to Redis so that {@link readFleetMetrics} sees the
 * whole fleet: it counts the events it is given in memory (the same counters and latency
 * histogram as `createMetrics`) and, once per `intervalMs`, adds what it counted since the
 * last time to that interval's bucket in one script call (one round trip), with a TTL of
 * `bucketTtlMs`. The send path only ever touches memory: a Redis that is down or slow costs at most
 * the interval whose write failed (reported to `onFlushError`), never an exception or a wait
 * in the caller. Memory is fixed; keys are one hash per interval, bounded by `bucketTtlMs /
 * intervalMs`, each holding at most the core counters, 768 histogram buckets, one mark per
 * instance, and the queues and open circuits the instances report.
 *
 * Sections of `createMetrics` (e.g. WhatsApp delivery) are not reported.
 *
 * @example
 * import { Redis } from 'ioredis';
 * import { combineListeners, createMetrics } from 'retrykit';
 * import { createRedisMetricsReporter } from 'retrykit/redis';
 *
 * const metrics = createMetrics();
 * const reporter = createRedisMetricsReporter(new Redis(), { prefix: 'myapp' });
 * const onEvent = combineListeners(metrics.onEvent, reporter.onEvent);
 * // …on shutdown:
 * await reporter.close();
 */
export function createRedisMetricsReporter(
  client: RedisClientLike,
  options: RedisMetricsReporterOptions = {},
): RedisMetricsReporter {
  if (typeof client?.evalsha !== 'function') {
    throw new TypeError('client must be a Redis client (ioredis, or node-redis via fromNodeRedis)');
  }
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`options must be an object, got ${String(options)}`);
  }
  assertNoRenamedOptions(options, {
    timeoutMs: 'commandTimeoutMs',
    flushIntervalMs: 'intervalMs',
    ttlMs: 'bucketTtlMs',
  });
  const { base, intervalMs, timeoutMs } = checkKeys(options);
  const bucketTtlMs = assertNumber(
    'bucketTtlMs',
    options.bucketTtlMs ?? FLEET_METRICS_DEFAULTS.bucketTtlMs,
    intervalMs,
  );
  const instanceId = assertKey('instanceId', options.instanceId ?? randomUUID());
  if (options.onFlushError !== undefined) assertFunction('onFlushError', options.onFlushError);
  const clock = options.clock ?? backgroundClock;
  const recorder = new MetricsRecorder(checkSections(options.sections ?? []));
  /** The interval the counts since the last flush belong to (that of their first event). */
  let bucket = 0;
  /**
   * The counts of an interval that ended before they were flushed (events of the next one came
   * first): written to their own bucket by the next flush. At most one: if flushes stall for
   * longer, later intervals are added to it (counted, in an earlier bucket).
   */
  let sealed: { readonly bucket: number; readonly raw: RawMetrics } | undefined;
  let inFlight: Promise<boolean> | undefined;
  let closed = false;

  const onEvent: EventListener<AnyEvent> = (event) => {
    try {
      const now = clock.now();
      const at = Math.floor(now / intervalMs);
      if (!recorder.empty && at !== bucket) {
        const raw = recorder.take();
        sealed =
          sealed === undefined
            ? { bucket, raw }
            : { bucket: sealed.bucket, raw: mergeRaw([sealed.raw, raw]) };
      }
      if (recorder.empty) bucket = at;
      recorder.record(event, now);
    } catch {
      // Counting never throws into the caller (a clock that throws, say).
    }
  };

  /** Adds one delta to its bucket; `false` (and `onFlushError`) when Redis failed. */
  const send = async (at: number, raw: RawMetrics): Promise<boolean> => {
    try {
      await runScript(client, scripts.flush, [base + at], flushArgs(raw, bucketTtlMs, instanceId), {
        operation: 'metrics.flush',
        timeoutMs,
      });
      return true;
    } catch (error) {
      callHook(options.onFlushError, error);
      return false;
    }
  };

  const write = async (): Promise<boolean> => {
    const ended = sealed;
    sealed = undefined;
    const hadCounts = !recorder.empty;
    const at = hadCounts ? bucket : Math.floor(clock.now() / intervalMs);
    const raw = recorder.take();
    const hasState = Object.keys(raw.queues).length > 0 || Object.keys(raw.breakers).length > 0;
    const earlier = ended === undefined ? true : await send(ended.bucket, ended.raw);
    if (!hadCounts && !hasState) return ended !== undefined && earlier;
    return (await send(at, raw)) && earlier;
  };

  const flush = (): Promise<boolean> => {
    if (inFlight !== undefined) return inFlight.then(flush);
    inFlight = write()
      .catch((error: unknown) => {
        callHook(options.onFlushError, error); // a clock that throws, say
        return false;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };

  const stopper = new AbortController();
  const loop = async (): Promise<void> => {
    try {
      while (!stopper.signal.aborted) {
        const now = clock.now();
        await clock.sleep(intervalMs - (now % intervalMs), stopper.signal);
        await flush();
      }
    } catch {
      // Stopped while waiting.
    }
  };
  const running = loop();

  return {
    onEvent,
    flush,
    async close() {
      if (closed) return running;
      closed = true;
      stopper.abort();
      await running;
      await flush();
    },
  };
}

/** Options of {@link readFleetMetrics}. */
export interface ReadFleetMetricsOptions<
  L extends readonly MetricsSection[] = readonly MetricsSection[],
> extends FleetMetricsKeyOptions {
  /**
   * The sections the reporters report (the same list): each adds its part to `snapshot` under
   * its name, and its checks to `health`. A section's per-process state (e.g. the messages
   * WhatsApp delivery is following right now) reads as empty.
   * @default []
   */
  readonly sections?: L;
  /**
   * Length of the window read, in milliseconds, rounded up to whole intervals; at most the
   * reporters' `bucketTtlMs` (older buckets are gone).
   * @default 300_000 (5 minutes, as `createMetrics`)
   */
  readonly windowMs?: number;
  /** Limits for `health`, over the defaults of `createMetrics`' thresholds. */
  readonly thresholds?: HealthThresholds;
  /** Time source that says which intervals are in the window. @default the system clock */
  readonly clock?: Pick<Clock, 'now'>;
  /**
   * Also return the window interval by interval (`series`), for charts over time.
   * @default false
   */
  readonly series?: boolean;
}

/** One interval of {@link FleetMetrics.series}; `S` holds the sections' parts. */
export interface FleetInterval<S = unknown> {
  /** Start of the interval, in epoch milliseconds of the reporters' clocks. */
  readonly start: number;
  /** The fleet's snapshot over this interval alone (`windowMs` = `coveredMs` = the interval). */
  readonly snapshot: MetricsSnapshot & S;
  /** Reporters that wrote to this interval. */
  readonly instances: number;
}

/** What {@link readFleetMetrics} returns; `S` holds the sections' parts. */
export interface FleetMetrics<S = unknown> {
  /** The fleet's counts and rates over the window, as `createMetrics().snapshot()` gives them for one process. */
  readonly snapshot: MetricsSnapshot & S;
  /** The window against the thresholds, as `createMetrics().checkHealth()` reports it. */
  readonly health: HealthReport;
  /** Distinct reporters that wrote to the window. */
  readonly instances: number;
  /** Oldest first; present when `series: true` was asked for. */
  readonly series?: readonly FleetInterval<S>[];
}

interface Bucket {
  readonly raw: RawMetrics;
  readonly instances: ReadonlySet<string>;
}

function parseBucket(reply: unknown): Bucket {
  const counters: Record<string, number> = {};
  const sectionCounters: Record<string, number> = {};
  const sectionLatencies: Record<
    string,
    { buckets: Record<number, number>; maxMs: number | null }
  > = {};
  const histogram = (key: string) => {
    const h = sectionLatencies[key] ?? { buckets: {}, maxMs: null };
    sectionLatencies[key] = h;
    return h;
  };
  const latency: Record<number, number> = {};
  const queues: Record<string, QueueSummary> = {};
  const breakers: Record<string, BreakerSummary> = {};
  const instances = new Set<string>();
  let latencyMaxMs: number | null = null;
  const flat = Array.isArray(reply) ? (reply as unknown[]) : [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const field = String(flat[i]);
    const value = String(flat[i + 1]);
    const colon = field.indexOf(':');
    const kind = colon < 0 ? field : field.slice(0, colon);
    const name = field.slice(colon + 1);
    try {
      if (kind === 'c') {
        // A section's instrument key is `<section>.<n>.<name>`; core counter names have no dot.
        if (name.includes('.')) sectionCounters[name] = Number(value);
        else counters[name] = Number(value);
      } else if (kind === 'sh') {
        const bar = name.lastIndexOf('|');
        histogram(name.slice(0, bar)).buckets[Number(name.slice(bar + 1))] = Number(value);
      } else if (kind === 'smax') histogram(name).maxMs = Number(value);
      else if (kind === 'h') latency[Number(name)] = Number(value);
      else if (kind === 'max') latencyMaxMs = Number(value);
      else if (kind === 'i') instances.add(name);
      else if (kind === 'q') queues[name] = JSON.parse(value) as QueueSummary;
      else if (kind === 'b') breakers[name] = JSON.parse(value) as BreakerSummary;
    } catch {
      // A field this version can't read (a torn or foreign write) is left out.
    }
  }
  return {
    raw: { counters, latency, latencyMaxMs, queues, breakers, sectionCounters, sectionLatencies },
    instances,
  };
}

/**
 * The fleet's metrics over the last `windowMs`, from what every
 * {@link createRedisMetricsReporter} of `prefix` wrote: the same snapshot and health report as
 * `createMetrics()` gives for one process, with counts added up and latency percentiles taken
 * from the merged histograms. The newest interval fills in as reporters flush it (at its
 * end), so the window lags by up to one interval. Queue depths are each queue's latest
 * sample; a circuit is not closed when an instance reported it so in the last two intervals.
 * One script call; rejects with `StoreUnavailableError` when Redis can't answer.
 *
 * @example
 * const { snapshot, health } = await readFleetMetrics(redis, { prefix: 'myapp' });
 * console.log(snapshot.ratios.retry, health.healthy);
 */
export async function readFleetMetrics<const L extends readonly MetricsSection[] = []>(
  client: RedisClientLike,
  options: ReadFleetMetricsOptions<L> = {},
): Promise<FleetMetrics<SectionSnapshots<L>>> {
  type S = SectionSnapshots<L>;
  if (typeof client?.evalsha !== 'function') {
    throw new TypeError('client must be a Redis client (ioredis, or node-redis via fromNodeRedis)');
  }
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`options must be an object, got ${String(options)}`);
  }
  const { base, intervalMs, timeoutMs } = checkKeys(options);
  const windowMs = assertNumber(
    'windowMs',
    options.windowMs ?? FLEET_METRICS_DEFAULTS.windowMs,
    intervalMs,
    intervalMs * 10_000,
  );
  resolveThresholds(HEALTH_DEFAULTS, options.thresholds, 'thresholds');
  const sections = checkSections(options.sections ?? []);
  const clock = options.clock ?? backgroundClock;
  const now = clock.now();
  const count = Math.ceil(windowMs / intervalMs);
  const last = Math.floor(now / intervalMs);
  const first = last - count + 1;
  const keys: string[] = [];
  for (let b = first; b <= last; b++) keys.push(base + b);
  const reply = (await runScript(client, scripts.read, keys, [], {
    operation: 'metrics.read',
    timeoutMs,
  })) as unknown[];
  const buckets = keys.map((_, i) => parseBucket(reply[i]));
  const instances = new Set<string>();
  for (const b of buckets) for (const id of b.instances) instances.add(id);
  // Circuits are state: only the last two intervals say which are open now.
  const parts = buckets.map((b, i) =>
    i >= buckets.length - 2 ? b.raw : { ...b.raw, breakers: {} },
  );
  const raw = mergeRaw(parts);
  const coveredMs = (count - 1) * intervalMs + (now - last * intervalMs);
  const snapshot = snapshotOfRaw(
    raw,
    { time: now, windowMs: count * intervalMs, coveredMs },
    sections,
  ) as MetricsSnapshot & S;
  const health = healthOfRaw(raw, options.thresholds, now, sections);
  const result: FleetMetrics<S> = { snapshot, health, instances: instances.size };
  if (options.series !== true) return result;
  const series = buckets.map((b, i) => {
    const start = (first + i) * intervalMs;
    return {
      start,
      snapshot: snapshotOfRaw(
        b.raw,
        { time: start + intervalMs, windowMs: intervalMs, coveredMs: intervalMs },
        sections,
      ) as MetricsSnapshot & S,
      instances: b.instances.size,
    };
  });
  return { ...result, series };
}
