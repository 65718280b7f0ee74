import { type Clock, systemClock } from '../clock.js';
import type { AnyEvent, EventListener, RetrykitEvent } from '../events.js';
import { assertFunction, assertInteger, assertNumber, showValue } from '../validate.js';
import { countEvent, type WindowState } from './count.js';
import {
  AlertState,
  evaluateHealth,
  HEALTH_DEFAULTS,
  type HealthBreach,
  type HealthReport,
  type HealthResolution,
  type HealthThresholds,
  type ResolvedThresholds,
  resolveThresholds,
} from './health.js';
import { HISTOGRAM_RELATIVE_ERROR } from './histogram.js';
import type {
  AttachedSection,
  InstrumentOptions,
  MetricsSection,
  MetricsWindow,
  SectionSnapshots,
} from './metrics-section.js';
import { BreakerStates, buildSnapshot, type MetricsSnapshot, QueueDepths } from './snapshot.js';
import { CounterSlots, SlotCounter, SlotRing } from './window.js';
import { SlotLatency, WindowHistogram } from './window-histogram.js';

/** Options of {@link createMetrics}. */
export interface MetricsOptions<L extends readonly MetricsSection[] = readonly MetricsSection[]> {
  /**
   * Length of the sliding window, in milliseconds.
   * @default 300_000 (5 minutes, the usual range of a Prometheus alert rule)
   */
  readonly windowMs?: number;
  /**
   * Slots the window is divided into: it slides one slot (`windowMs / slots`) at a time, and
   * memory is proportional to it.
   * @default 30
   */
  readonly slots?: number;
  /** Time source for the window. Pass the one the components use. @default systemClock */
  readonly clock?: Clock;
  /** Limits for alerts and for `checkHealth()`; each field has its own default. */
  readonly thresholds?: HealthThresholds;
  /**
   * Called once when a threshold is first breached, and again only after it has cleared.
   * Checked each time the window slides (the first event or query of a new slot). Must not
   * throw (a throw is ignored).
   *
   * @example
   * { onAlert: (b) => pager.trigger(`retrykit ${b.check} at ${b.value}, limit ${b.threshold}`) }
   */
  readonly onAlert?: (breach: HealthBreach) => void;
  /**
   * Called once when an alerted breach has cleared. Must not throw (a throw is ignored).
   *
   * @example
   * { onResolve: ({ breach, startedAt, resolvedAt }) =>
   *     pager.resolve(`retrykit ${breach.check}`, resolvedAt - startedAt) }
   */
  readonly onResolve?: (resolution: HealthResolution) => void;
  /**
   * Distinct queue names whose depth is followed; the least recently sampled is forgotten first.
   * @default 100
   */
  readonly maxQueues?: number;
  /**
   * Parts added by layers above core (see `MetricsSection`): each sees every event, adds
   * `snapshot()[section.name]` and its checks to `checkHealth()` and `onAlert`.
   * @default []
   *
   * @example
   * import { whatsappDeliveryMetrics } from 'retrykit/whatsapp';
   * const metrics = createMetrics({ sections: [whatsappDeliveryMetrics()] });
   */
  readonly sections?: L;
}

/** The defaults of {@link MetricsOptions}. */
export const METRICS_DEFAULTS = Object.freeze({
  windowMs: 300_000,
  slots: 30,
  maxQueues: 100,
});

/**
 * What {@link createMetrics} returns; `S` holds the parts its sections add to `snapshot()`.
 */
export interface MetricsHandle<S = unknown> {
  /**
   * Pass it as `onEvent` to every component (combine several with `combineListeners`). Takes
   * events of layers above core too, for the sections.
   */
  readonly onEvent: EventListener<AnyEvent>;
  /** Counts and rates over the sliding window, with each section's part under its name. */
  snapshot(): MetricsSnapshot & S;
  /** Compares the window with `thresholds` (merged over the configured ones). */
  checkHealth(thresholds?: HealthThresholds): HealthReport;
}

/**
 * Relative error bound of the latency percentiles in {@link MetricsSnapshot} (above 64 ms).
 */
export const LATENCY_PERCENTILE_ERROR = HISTOGRAM_RELATIVE_ERROR;

/** Keys of {@link MetricsSnapshot}: a section may not take one. */
const CORE_KEYS: ReadonlySet<string> = new Set([
  'time',
  'windowMs',
  'coveredMs',
  'calls',
  'attempts',
  'retries',
  'giveUps',
  'ratios',
  'latency',
  'rateLimit',
  'idempotency',
  'deadLetters',
  'queues',
  'jobs',
  'breakers',
]);

/** @internal Checks a `sections` option: an array of sections with distinct, free names. */
export function checkSections(sections: unknown): readonly MetricsSection[] {
  if (!Array.isArray(sections)) {
    throw new TypeError(`sections must be an array, got ${showValue(sections)}`);
  }
  const names = new Set<string>();
  for (const [i, section] of sections.entries()) {
    const name: unknown = (section as Partial<MetricsSection> | null)?.name;
    if (typeof name !== 'string' || name === '' || name.includes('.') || CORE_KEYS.has(name)) {
      throw new TypeError(
        `sections[${i}].name must be a non-empty string without "." and not a core snapshot key, got ${showValue(name)}`,
      );
    }
    if (names.has(name)) throw new TypeError(`sections[${i}].name "${name}" is already taken`);
    names.add(name);
    assertFunction(`sections[${i}].attach`, (section as MetricsSection).attach);
  }
  return sections as readonly MetricsSection[];
}

/** The instruments sections attach to: counters and latencies kept per slot of `w`. */
function sectionWindow(w: WindowState, clock: Clock): MetricsWindow {
  const slots = w.ring.slots;
  const currentSlot = (): number => w.ring.slot;
  return {
    counter: (_name: string, _options: InstrumentOptions) => {
      const c = new SlotCounter(slots, currentSlot);
      w.parts.push(c);
      return c;
    },
    latency: (_name: string, _options: InstrumentOptions) => {
      const l = new SlotLatency(slots, currentSlot);
      w.parts.push(...l.parts());
      return l;
    },
    perMinute: (count) => {
      const coveredMs = w.ring.coveredMs(clock.now());
      return coveredMs > 0 ? (count / coveredMs) * 60_000 : null;
    },
  };
}

/**
 * Keeps a sliding window of what retrykit components report: calls, first-attempt successes,
 * retries, give-ups and failures by reason, call latency percentiles, limiter waits,
 * idempotency hits, dead letters and queue depths, plus what each of `sections` adds (WhatsApp
 * delivery: `whatsappDeliveryMetrics()` from `retrykit/whatsapp`). Memory is fixed at creation
 * (plus the bounded queue map and the sections' own) and each event costs O(1).
 *
 * @example
 * const metrics = createMetrics({
 *   windowMs: 60_000,
 *   onAlert: (b) => log.error(b, 'retrykit threshold breached'),
 * });
 * const send = createRetry({ onEvent: metrics.onEvent });
 * // …later, e.g. in a /health route:
 * const { healthy, breaches } = metrics.checkHealth();
 */
export function createMetrics<const L extends readonly MetricsSection[] = []>(
  options: MetricsOptions<L> = {},
): MetricsHandle<SectionSnapshots<L>> {
  const windowMs = assertNumber('windowMs', options.windowMs ?? METRICS_DEFAULTS.windowMs, 1);
  const slots = assertInteger('slots', options.slots ?? METRICS_DEFAULTS.slots, 1, 10_000);
  const sectionList = checkSections(options.sections ?? []);
  const maxQueues = assertInteger('maxQueues', options.maxQueues ?? METRICS_DEFAULTS.maxQueues, 1);
  const thresholds = resolveThresholds(HEALTH_DEFAULTS, options.thresholds, 'thresholds');
  for (const name of ['onAlert', 'onResolve'] as const) {
    if (options[name] !== undefined) assertFunction(name, options[name]);
  }
  const alerts = new AlertState(options.onAlert, options.onResolve);
  const clock = options.clock ?? systemClock;

  const counters = new CounterSlots(slots);
  const latency = new WindowHistogram(slots);
  const w: WindowState = {
    ring: new SlotRing(windowMs, slots, clock.now()),
    counters,
    latency,
    queues: new QueueDepths(maxQueues),
    breakers: new BreakerStates(),
    parts: [counters, latency],
  };
  const window = sectionWindow(w, clock);
  const attached: ReadonlyArray<readonly [string, AttachedSection<unknown>]> = sectionList.map(
    (section) => [section.name, section.attach(window)] as const,
  );
  const evaluate = (t: ResolvedThresholds): HealthBreach[] =>
    evaluateHealth(counters, w.queues, w.breakers, attached, t);

  /** Moves the window to the clock's slot, alerting on what changed; returns the time. */
  const advance = (): number => {
    const now = clock.now();
    if (w.ring.slide(now, w.parts) && alerts.enabled) alerts.update(evaluate(thresholds), now);
    return now;
  };

  const onEvent: EventListener<AnyEvent> = (event: AnyEvent): void => {
    const now = advance();
    for (const [, section] of attached) section.observe(event);
    countEvent(w, event as RetrykitEvent, now);
  };

  const snapshot = (): MetricsSnapshot & SectionSnapshots<L> => {
    const time = advance();
    const core = buildSnapshot({
      time,
      windowMs,
      coveredMs: w.ring.coveredMs(time),
      counters,
      latency,
      queues: w.queues,
      breakers: w.breakers,
    });
    if (attached.length === 0) return core as MetricsSnapshot & SectionSnapshots<L>;
    const parts: Record<string, unknown> = { ...core };
    for (const [name, section] of attached) parts[name] = section.snapshot();
    return parts as MetricsSnapshot & SectionSnapshots<L>;
  };

  const checkHealth = (overrides?: HealthThresholds): HealthReport => {
    const t = resolveThresholds(thresholds, overrides, 'checkHealth thresholds');
    const time = advance();
    const breaches = evaluate(t);
    return { healthy: breaches.length === 0, breaches, time };
  };

  return { onEvent, snapshot, checkHealth };
}
