import { createCircuitBreaker, createMemoryCircuitStore } from '../../src/index.js';
import { seededRandom } from '../../src/testing/index.js';
import { EventQueue } from './heap.js';
import { delayFunction, networkDelay } from './strategies.js';

/**
 * Scenario 3: one phone number sends `ratePerSecond` messages for `durationMs` to an API that
 * fails every request (an expired token, a 5xx storm) for `outageMs` from `outageStartMs`.
 * Each message is retried with full jitter (1 s doubling to 30 s) up to `maxAttempts`, then
 * dead-lettered. With the breaker (retrykit's memory circuit store, the state machine every
 * store runs), an attempt the circuit refuses, or a failure that opens it, holds the message
 * until the break ends instead of spending an attempt: it is sent again then.
 */
export interface BreakerScenarioOptions {
  readonly breaker: boolean;
  readonly seed: number;
  /** Messages per second. @default 50 */
  readonly ratePerSecond?: number;
  /** How long messages keep coming, in milliseconds. @default 120_000 */
  readonly durationMs?: number;
  /** When the API goes down, in milliseconds from the start. @default 10_000 */
  readonly outageStartMs?: number;
  /** How long it stays down, in milliseconds. @default 30_000 */
  readonly outageMs?: number;
  /** Attempts per message before it is dead-lettered. @default 5 */
  readonly maxAttempts?: number;
  /** The breaker's first break, in milliseconds. @default 5_000 */
  readonly breakDurationMs?: number;
}

/** The defaults of {@link BreakerScenarioOptions}. */
export const BREAKER_SCENARIO_DEFAULTS = Object.freeze({
  ratePerSecond: 50,
  durationMs: 120_000,
  outageStartMs: 10_000,
  outageMs: 30_000,
  maxAttempts: 5,
  breakDurationMs: 5_000,
});

/** What one run of scenario 3 measured. */
export interface BreakerScenarioResult {
  readonly messages: number;
  /** Requests that reached the API in all. */
  readonly calls: number;
  /** Requests that reached it while it was down. */
  readonly callsDuringOutage: number;
  readonly delivered: number;
  readonly deadLettered: number;
  /** Times a message was held (refused by the circuit, or its failure opened it). */
  readonly holds: number;
  /**
   * Milliseconds from the API's recovery until every message created before it was delivered
   * or dead-lettered.
   */
  readonly drainMs: number;
}

const SEND = 0;
const REPLY = 1;

interface Event {
  readonly kind: typeof SEND | typeof REPLY;
  readonly message: number;
  readonly ok: boolean;
  readonly epoch: number;
  readonly probe: boolean;
}

const KEY = 'phone-number';

/** Runs scenario 3 once. */
export function runBreakerScenario(options: BreakerScenarioOptions): BreakerScenarioResult {
  const d = BREAKER_SCENARIO_DEFAULTS;
  const rate = options.ratePerSecond ?? d.ratePerSecond;
  const duration = options.durationMs ?? d.durationMs;
  const downFrom = options.outageStartMs ?? d.outageStartMs;
  const downUntil = downFrom + (options.outageMs ?? d.outageMs);
  const maxAttempts = options.maxAttempts ?? d.maxAttempts;
  const random = seededRandom(options.seed);
  const backoff = delayFunction(
    'full',
    { initialDelayMs: 1_000, multiplier: 2, maxDelayMs: 30_000 },
    random,
  );
  const store = createMemoryCircuitStore();
  const { policy } = createCircuitBreaker({
    store,
    breakDurationMs: options.breakDurationMs ?? d.breakDurationMs,
  });

  const messages = Math.floor((duration / 1000) * rate);
  const attempts = new Int32Array(messages);
  const previousDelay = new Float64Array(messages);
  const queue = new EventQueue<Event>();
  const send = (at: number, message: number): void =>
    queue.push(at, { kind: SEND, message, ok: false, epoch: 0, probe: false });
  for (let m = 0; m < messages; m++) send((m * 1000) / rate, m);

  let calls = 0;
  let callsDuringOutage = 0;
  let delivered = 0;
  let deadLettered = 0;
  let holds = 0;
  let lastSettled = 0;
  const settle = (message: number, now: number): void => {
    if ((message * 1000) / rate < downUntil) lastSettled = Math.max(lastSettled, now);
  };
  while (queue.peekTime() < Number.POSITIVE_INFINITY) {
    const now = queue.peekTime();
    const e = queue.pop()!;
    if (e.kind === SEND) {
      let epoch = 0;
      let probe = false;
      if (options.breaker) {
        const admission = store.admit(KEY, policy, now);
        if (!admission.ok) {
          holds++;
          send(now + Math.max(1, admission.retryAfterMs), e.message);
          continue;
        }
        ({ epoch, probe } = admission.ticket);
      }
      const arrive = now + networkDelay(random, 20, 5);
      calls++;
      const down = arrive >= downFrom && arrive < downUntil;
      if (down) callsDuringOutage++;
      queue.push(arrive + networkDelay(random, 20, 5), {
        kind: REPLY,
        message: e.message,
        ok: !down,
        epoch,
        probe,
      });
      continue;
    }
    const ticket = { epoch: e.epoch, probe: e.probe };
    if (e.ok) {
      if (options.breaker) store.record(KEY, policy, ticket, 'success', now);
      delivered++;
      settle(e.message, now);
      continue;
    }
    if (options.breaker) {
      const after = store.record(KEY, policy, ticket, 'failure', now);
      if (after.state === 'open' && after.openUntil !== undefined) {
        holds++;
        send(after.openUntil, e.message);
        continue;
      }
    }
    const attempt = attempts[e.message]!;
    if (attempt + 1 >= maxAttempts) {
      deadLettered++;
      settle(e.message, now);
      continue;
    }
    const delay = backoff(attempt, attempt === 0 ? undefined : previousDelay[e.message]);
    attempts[e.message] = attempt + 1;
    previousDelay[e.message] = delay;
    send(now + delay, e.message);
  }
  return {
    messages,
    calls,
    callsDuringOutage,
    delivered,
    deadLettered,
    holds,
    drainMs: Math.max(0, lastSettled - downUntil),
  };
}
