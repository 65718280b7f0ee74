import { createRetryBudget, type RetryBudgetOptions } from '../../src/index.js';
import { seededRandom } from '../../src/testing/index.js';
import { EventQueue } from './heap.js';
import { delayFunction, type Growth, networkDelay, type Strategy } from './strategies.js';

/**
 * Scenario 2: clients each deliver one webhook to a server that is down for `outageMs` and then
 * serves `capacityPerSecond` requests a second. A request the server cannot serve fails at once
 * (503) and the client retries with its strategy until the webhook is delivered, or until the
 * retry budget refuses a retry (the webhook then goes to the dead-letter queue).
 */
export interface OutageOptions {
  readonly strategy: Strategy;
  readonly seed: number;
  /** Clients, each with one webhook to deliver. @default 1000 */
  readonly clients?: number;
  /** How long the server is down, in milliseconds. @default 30_000 */
  readonly outageMs?: number;
  /** Requests per second the server serves once it is back. @default 100 */
  readonly capacityPerSecond?: number;
  /** First attempts are spread uniformly over this many milliseconds. @default 1000 */
  readonly startSpreadMs?: number;
  /** Backoff growth. @default OUTAGE_GROWTH */
  readonly growth?: Growth;
  /**
   * One retry budget shared by all clients (as in one dispatcher process), with these options.
   * Unset: no budget, clients retry until delivered.
   */
  readonly budget?: Omit<RetryBudgetOptions, 'clock'>;
  /** Mean one-way network delay in milliseconds. @default 20 */
  readonly netMeanMs?: number;
  /** Standard deviation of the one-way network delay in milliseconds. @default 5 */
  readonly netSdMs?: number;
  /** Simulated time after which the run stops, in milliseconds. @default 1_800_000 */
  readonly horizonMs?: number;
}

/** What one run of scenario 2 measured. */
export interface OutageResult {
  /** Requests arriving at the server in each 100 ms bin, from time 0. */
  readonly arrivals: readonly number[];
  /** Requests the server received in all. */
  readonly calls: number;
  readonly delivered: number;
  /** Webhooks given up because the budget refused a retry. */
  readonly deadLettered: number;
  /** Webhooks still retrying when the horizon was reached. */
  readonly pending: number;
  /** Highest arrival rate after the server came back, in requests per second (per 100 ms × 10). */
  readonly peakAfterRecoveryPerSecond: number;
  /** When the last webhook was delivered or dead-lettered, in milliseconds from the start. */
  readonly settledAtMs: number;
  /**
   * Milliseconds from the server's recovery until every webhook is delivered or dead-lettered
   * (0 if that happened during the outage); `Infinity` if some were still pending at the horizon.
   */
  readonly drainMs: number;
}

/** A 1 s first retry delay doubling to a 30 s cap; retrykit's defaults but for the cap. */
export const OUTAGE_GROWTH: Growth = Object.freeze({
  initialDelayMs: 1000,
  multiplier: 2,
  maxDelayMs: 30_000,
});

/** The defaults of {@link OutageOptions}. */
export const OUTAGE_DEFAULTS = Object.freeze({
  clients: 1000,
  outageMs: 30_000,
  capacityPerSecond: 100,
  startSpreadMs: 1000,
  netMeanMs: 20,
  netSdMs: 5,
  horizonMs: 1_800_000,
});

/** Width of an arrival bin, in milliseconds. */
export const BIN_MS = 100;

const SEND = 0;
const ARRIVE = 1;
const REPLY = 2;

interface Message {
  readonly kind: typeof SEND | typeof ARRIVE | typeof REPLY;
  readonly client: number;
  /** REPLY: 1 if the server served the request, 0 if it failed. */
  readonly ok: number;
}

/** Runs scenario 2 once. */
export function runOutage(options: OutageOptions): OutageResult {
  const clients = options.clients ?? OUTAGE_DEFAULTS.clients;
  const outageMs = options.outageMs ?? OUTAGE_DEFAULTS.outageMs;
  const capacity = options.capacityPerSecond ?? OUTAGE_DEFAULTS.capacityPerSecond;
  const spread = options.startSpreadMs ?? OUTAGE_DEFAULTS.startSpreadMs;
  const mean = options.netMeanMs ?? OUTAGE_DEFAULTS.netMeanMs;
  const sd = options.netSdMs ?? OUTAGE_DEFAULTS.netSdMs;
  const horizon = options.horizonMs ?? OUTAGE_DEFAULTS.horizonMs;
  const random = seededRandom(options.seed);
  const backoff = delayFunction(options.strategy, options.growth ?? OUTAGE_GROWTH, random);
  const net = (): number => networkDelay(random, mean, sd);
  let now = 0;
  const budget =
    options.budget === undefined
      ? undefined
      : createRetryBudget({ ...options.budget, clock: { now: () => now } });

  // The server: a token bucket holding at most 100 ms of capacity, full when it comes back.
  const burst = Math.max(1, capacity / 10);
  let tokens = burst;
  let refilledAt = outageMs;
  const serve = (): boolean => {
    if (now < outageMs) return false;
    tokens = Math.min(burst, tokens + ((now - refilledAt) * capacity) / 1000);
    refilledAt = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };

  const attempts = new Int32Array(clients);
  const previousDelay = new Float64Array(clients);
  const arrivals: number[] = [];
  const queue = new EventQueue<Message>();
  let calls = 0;
  let delivered = 0;
  let deadLettered = 0;
  let lastDoneAt = 0;

  for (let client = 0; client < clients; client++) {
    queue.push(spread * random(), { kind: SEND, client, ok: 0 });
  }
  while (queue.peekTime() <= horizon) {
    now = queue.peekTime();
    const message = queue.pop()!;
    const { client } = message;
    switch (message.kind) {
      case SEND:
        if (attempts[client] === 0) budget?.deposit();
        queue.push(now + net(), { kind: ARRIVE, client, ok: 0 });
        break;
      case ARRIVE: {
        calls++;
        const bin = Math.floor(now / BIN_MS);
        while (arrivals.length <= bin) arrivals.push(0);
        arrivals[bin]!++;
        queue.push(now + net(), { kind: REPLY, client, ok: serve() ? 1 : 0 });
        break;
      }
      case REPLY: {
        if (message.ok === 1) {
          delivered++;
          lastDoneAt = now;
          break;
        }
        // As `retry` does: compute the delay, then ask the budget before sleeping.
        const attempt = attempts[client]!;
        const delay = backoff(attempt, attempt === 0 ? undefined : previousDelay[client]);
        if (budget !== undefined && !budget.tryWithdraw()) {
          deadLettered++;
          lastDoneAt = now;
          break;
        }
        attempts[client] = attempt + 1;
        previousDelay[client] = delay;
        queue.push(now + delay, { kind: SEND, client, ok: 0 });
        break;
      }
    }
  }
  const pending = clients - delivered - deadLettered;
  let peak = 0;
  for (let bin = Math.floor(outageMs / BIN_MS); bin < arrivals.length; bin++) {
    peak = Math.max(peak, arrivals[bin]!);
  }
  return {
    arrivals,
    calls,
    delivered,
    deadLettered,
    pending,
    peakAfterRecoveryPerSecond: (peak * 1000) / BIN_MS,
    settledAtMs: lastDoneAt,
    drainMs: pending > 0 ? Number.POSITIVE_INFINITY : Math.max(0, lastDoneAt - outageMs),
  };
}
