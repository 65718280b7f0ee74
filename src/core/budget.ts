import { type Clock, systemClock } from './clock.js';
import { assertNumber } from './validate.js';

/** Options of {@link createRetryBudget} (Finagle's `RetryBudget` semantics). */
export interface RetryBudgetOptions {
  /**
   * How long a deposit (a first attempt) stays in the budget, in milliseconds.
   * @default 10_000
   */
  readonly ttlMs?: number;
  /**
   * Retries per second allowed regardless of traffic, so that low-volume callers can still
   * retry. Over `ttlMs` this grants `minRetriesPerSecond · ttlMs / 1000` retries.
   * @default 10
   */
  readonly minRetriesPerSecond?: number;
  /**
   * Retries allowed as a share of first attempts in the last `ttlMs`, in [0, 1000].
   * 0.2 means at most one retry per five calls, on top of the minimum.
   * @default 0.2
   */
  readonly percentCanRetry?: number;
  /** Time source. @default systemClock */
  readonly clock?: Pick<Clock, 'now'>;
}

/**
 * A shared allowance of retries: each first attempt deposits `percentCanRetry` of a retry,
 * each retry withdraws one. When it is spent, retries are refused and calls fail fast instead
 * of piling onto a struggling server.
 */
export interface RetryBudget {
  /** Records a first attempt (a deposit). */
  deposit(): void;
  /** Takes one retry from the budget; `false` when none is left. */
  tryWithdraw(): boolean;
  /** Retries that could be withdrawn right now. */
  balance(): number;
}

/** The defaults of {@link RetryBudgetOptions}. */
export const RETRY_BUDGET_DEFAULTS = Object.freeze({
  ttlMs: 10_000,
  minRetriesPerSecond: 10,
  percentCanRetry: 0.2,
});

const SLOTS = 10;

/**
 * Creates a {@link RetryBudget}: deposits and withdrawals are counted in ten time slots over
 * `ttlMs`, so memory is constant and old traffic ages out. Share one budget across every call
 * to the same dependency.
 *
 * @example
 * const budget = createRetryBudget();
 * const send = createRetry({ budget });
 */
export function createRetryBudget(options: RetryBudgetOptions = {}): RetryBudget {
  const ttlMs = assertNumber('ttlMs', options.ttlMs ?? RETRY_BUDGET_DEFAULTS.ttlMs, 1);
  const minPerSecond = assertNumber(
    'minRetriesPerSecond',
    options.minRetriesPerSecond ?? RETRY_BUDGET_DEFAULTS.minRetriesPerSecond,
    0,
  );
  const percent = assertNumber(
    'percentCanRetry',
    options.percentCanRetry ?? RETRY_BUDGET_DEFAULTS.percentCanRetry,
    0,
    1000,
  );
  const clock = options.clock ?? systemClock;
  const slotMs = ttlMs / SLOTS;
  const reserve = (minPerSecond * ttlMs) / 1000;
  const deposits = new Float64Array(SLOTS);
  const withdrawals = new Float64Array(SLOTS);
  let currentSlot = Math.floor(clock.now() / slotMs);
  let depositSum = 0;
  let withdrawalSum = 0;

  const advance = (): number => {
    const slot = Math.floor(clock.now() / slotMs);
    if (slot !== currentSlot) {
      const steps = Math.min(slot - currentSlot, SLOTS);
      for (let i = 1; i <= steps; i++) {
        const index = (((currentSlot + i) % SLOTS) + SLOTS) % SLOTS;
        depositSum -= deposits[index]!;
        withdrawalSum -= withdrawals[index]!;
        deposits[index] = 0;
        withdrawals[index] = 0;
      }
      currentSlot = slot;
    }
    return ((slot % SLOTS) + SLOTS) % SLOTS;
  };

  const balance = (): number => {
    advance();
    return Math.max(0, Math.floor(reserve + depositSum * percent - withdrawalSum + 1e-9));
  };

  return {
    deposit() {
      const index = advance();
      deposits[index]! += 1;
      depositSum += 1;
    },
    tryWithdraw() {
      if (balance() < 1) return false;
      withdrawals[advance()]! += 1;
      withdrawalSum += 1;
      return true;
    },
    balance,
  };
}
