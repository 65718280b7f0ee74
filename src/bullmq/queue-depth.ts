import type { JobType, Queue } from 'bullmq';
import { watchAbort } from '../core/abort-watch.js';
import { backgroundClock, type Clock } from '../core/clock.js';
import { describe } from '../core/errors.js';
import { type EventListener, emit } from '../core/events.js';
import { assertFunction, assertNumber, showValue } from '../core/validate.js';

/** The defaults of {@link SampleQueueDepthOptions}. */
const QUEUE_DEPTH_DEFAULTS = Object.freeze({
  /** One sample per slot of `createMetrics`' default window (5 minutes in 30 slots). */
  intervalMs: 10_000,
  /** Jobs not started yet: waiting, prioritized and delayed (retries waiting out a backoff). */
  states: Object.freeze(['waiting', 'prioritized', 'delayed'] as const),
});

/** What {@link sampleQueueDepth} reads of a BullMQ `Queue`. */
export type SampledQueue = Pick<Queue, 'name' | 'getJobCounts'> & {
  /** Set by BullMQ once `close()` was called; the sampler stops then. */
  readonly closing?: Promise<void> | undefined;
};

/** Options of {@link sampleQueueDepth}. */
export interface SampleQueueDepthOptions {
  /** Receives a `queue_depth` event per sample (`queue`: the queue's name). Pass the metrics' `onEvent`. */
  readonly onEvent: EventListener;
  /**
   * Milliseconds between the end of one sample and the start of the next. The first sample
   * is taken at once.
   * @default 10_000 (one slot of the default `createMetrics` window)
   */
  readonly intervalMs?: number;
  /**
   * The job states whose counts add up to the depth. Add `'paused'` on BullMQ 5 to count the
   * jobs of a paused queue.
   * @default ['waiting', 'prioritized', 'delayed']
   */
  readonly states?: readonly JobType[];
  /**
   * Called with the error of a sample that failed (Redis unreachable, a command timeout);
   * sampling goes on at the next interval. Must not throw (a throw is ignored).
   * @default ignored
   *
   * @example
   * { onError: (error) => log.warn({ error }, 'queue depth sample failed') }
   */
  readonly onError?: (error: unknown) => void;
  /** Stops sampling when aborted, as `stop()` does. */
  readonly signal?: AbortSignal;
  /**
   * Dates the events and waits between samples.
   * @default the system clock, with timers that never keep the process alive
   */
  readonly clock?: Clock;
}

/** What {@link sampleQueueDepth} returns. */
export interface QueueDepthSampler {
  /**
   * Samples now (or joins the sample already running), reports it and resolves with the
   * depth; rejects with the queue's error, which then also goes to `onError`.
   */
  sample(): Promise<number>;
  /** Stops sampling; resolves once a sample in flight has settled. Calling it again is harmless. */
  stop(): Promise<void>;
}

/**
 * Samples a BullMQ queue's depth (by default its waiting, prioritized and delayed jobs, from
 * `queue.getJobCounts`) every `intervalMs`, and reports each as a `queue_depth` event: the
 * depths `createMetrics` follows in `snapshot().queues` and alerts on when one keeps rising
 * (`queueRisingSamples`). One sample runs at a time: a slow Redis delays the next instead of
 * stacking them. A failed sample goes to `onError` and is never thrown from the timer. It stops
 * on `stop()`, on `signal`, or once the queue is closing; its timers never keep the process
 * alive.
 *
 * @example
 * const metrics = createMetrics();
 * const sampler = sampleQueueDepth(queue, { onEvent: metrics.onEvent, intervalMs: 10_000 });
 * // …on shutdown:
 * await sampler.stop();
 */
export function sampleQueueDepth(
  queue: SampledQueue,
  options: SampleQueueDepthOptions,
): QueueDepthSampler {
  if (typeof queue?.getJobCounts !== 'function') {
    throw new TypeError(`queue must be a BullMQ Queue, got ${describe(queue)}`);
  }
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`options must be an object, got ${showValue(options)}`);
  }
  assertFunction('onEvent', options.onEvent);
  if (options.onError !== undefined) assertFunction('onError', options.onError);
  const intervalMs = assertNumber(
    'intervalMs',
    options.intervalMs ?? QUEUE_DEPTH_DEFAULTS.intervalMs,
    1,
  );
  const states = options.states ?? QUEUE_DEPTH_DEFAULTS.states;
  if (
    !Array.isArray(states) ||
    states.length === 0 ||
    states.some((s) => typeof s !== 'string' || s === '')
  ) {
    throw new TypeError(
      `states must be a non-empty array of job states, got ${showValue(options.states)}`,
    );
  }
  const clock = options.clock ?? backgroundClock;
  const { onEvent, onError, signal } = options;
  const stopper = new AbortController();
  if (signal?.aborted) stopper.abort();
  const unwatch = signal === undefined ? undefined : watchAbort(signal, () => stopper.abort());

  const report = (error: unknown): void => {
    if (onError === undefined) return;
    try {
      onError(error);
    } catch {
      // A broken hook must not stop the sampling.
    }
  };

  let inFlight: Promise<number> | undefined;
  const take = async (): Promise<number> => {
    const counts = await queue.getJobCounts(...(states as JobType[]));
    let depth = 0;
    for (const state of states) depth += counts[state] ?? 0;
    emit(onEvent, { type: 'queue_depth', time: clock.now(), queue: queue.name, depth });
    return depth;
  };
  const sample = (): Promise<number> => {
    inFlight ??= take()
      .catch((error: unknown) => {
        report(error);
        throw error;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };

  const run = async (): Promise<void> => {
    try {
      while (!stopper.signal.aborted && queue.closing === undefined) {
        await sample().catch(() => {});
        if (stopper.signal.aborted) break;
        await clock.sleep(intervalMs, stopper.signal);
      }
    } catch {
      // Stopped while waiting.
    } finally {
      unwatch?.();
    }
  };
  const running = run();

  return {
    sample,
    async stop() {
      stopper.abort();
      await running;
      await inFlight?.catch(() => {});
    },
  };
}
