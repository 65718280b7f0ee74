import { type Clock, systemClock } from '../clock.js';
import { assertNoRenamedOptions, assertNumber } from '../validate.js';

/** Options of {@link createRetryBudget} (Finagle's `RetryBudget` semantics). */
export interface RetryBudgetOptions {
  /**
   * The sliding window deposits (first attempts) and withdrawals (retries) are counted over,
   * in milliseconds: a deposit leaves the budget this long after it was made.
   * @default 10_000
   */
  readonly windowMs?: number;
  /**
   * Retries per second allowed regardless of traffic, so that low-volume callers can still
   * retry. Over `windowMs` this grants `minRetriesPerSecond · windowMs / 1000` retries.
   * @default 10
   */
  readonly minRetriesPerSecond?: number;
  /**
   * Retries allowed per first attempt in the last `windowMs` (a ratio, in [0, 1000]: above 1
   * a call may retry more than once). 0.2 means at most one retry per five calls, on top of the
   * minimum.
   * @default 0.2
   */
  readonly retryRatio?: number;
  /** Time source. @default systemClock */
  readonly clock?: Pick<Clock, 'now'>;
}

/**
 * A shared allowance of retries: each first attempt deposits `retryRatio` of a retry,
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
  windowMs: 10_000,
  minRetriesPerSecond: 10,
  retryRatio: 0.2,
});

const SLOTS = 10;

/**
 * Creates a {@link RetryBudget}: deposits and withdrawals are counted in ten time slots over
 * `windowMs`, so memory is constant and old traffic ages out. Share one budget across every call
 * to the same dependency.
 *
 * @example
 * const budget = createRetryBudget();
 * const send = createRetry({ budget });
 */
export function createRetryBudget(options: RetryBudgetOptions = {}): RetryBudget {
  assertNoRenamedOptions(options, { ttlMs: 'windowMs', percentCanRetry: 'retryRatio' });
  const windowMs = assertNumber('windowMs', options.windowMs ?? RETRY_BUDGET_DEFAULTS.windowMs, 1);
  const minPerSecond = assertNumber(
    'minRetriesPerSecond',
    options.minRetriesPerSecond ?? RETRY_BUDGET_DEFAULTS.minRetriesPerSecond,
    0,
  );
  const ratio = assertNumber(
    'retryRatio',
    options.retryRatio ?? RETRY_BUDGET_DEFAULTS.retryRatio,
    0,
    1000,
  );
  const clock = options.clock ?? systemClock;
  const slotMs = windowMs / SLOTS;
  const reserve = (minPerSecond * windowMs) / 1000;
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
    return Math.max(0, Math.floor(reserve + depositSum * ratio - withdrawalSum + 1e-9));
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
