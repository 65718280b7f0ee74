import { describe, expectTypeOf, it } from 'vitest';
import {
  type AcquireResult,
  type AdjustableRateLimiter,
  type CircuitBreakerStore,
  type CircuitPermission,
  type CircuitState,
  type ClaimResult,
  type Classification,
  computeDelay,
  createBulkhead,
  createMemoryDeadLetterQueue,
  createRetry,
  type DeadLetterEntry,
  isRetrykitError,
  type ListOptions,
  type MemoryCircuitStore,
  type MemoryTokenBucket,
  type PermanentError,
  permanent,
  type Reason,
  type RetrykitError,
  retry,
  type StopReason,
} from '../index.js';

describe('public types', () => {
  it('retry resolves to what the function returns', () => {
    expectTypeOf(retry(async () => 42)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(retry(() => 'sync')).toEqualTypeOf<Promise<string>>();
    const run = createRetry();
    expectTypeOf(run(async ({ attempt, signal }) => ({ attempt, signal }))).toEqualTypeOf<
      Promise<{ attempt: number; signal: AbortSignal }>
    >();
  });

  it('computeDelay returns milliseconds as a number', () => {
    expectTypeOf(computeDelay).returns.toEqualTypeOf<number>();
  });

  it('outcomes are discriminated unions', () => {
    const acquire = {} as AcquireResult;
    if (acquire.ok) expectTypeOf(acquire.remaining).toEqualTypeOf<number>();
    else expectTypeOf(acquire.retryAfterMs).toEqualTypeOf<number>();
    const claim = {} as ClaimResult<{ wamid: string }>;
    if (claim.status === 'completed') expectTypeOf(claim.result).toEqualTypeOf<{ wamid: string }>();
    if (claim.status === 'claimed') expectTypeOf(claim.token).toEqualTypeOf<string>();
  });

  it('a PermanentError always has its classification', () => {
    expectTypeOf<PermanentError['classification']>().toEqualTypeOf<Classification>();
    expectTypeOf(permanent(new Error('x')).classification.reason).toEqualTypeOf<Reason>();
  });

  it('isRetrykitError narrows unknown', () => {
    const e: unknown = new Error('x');
    if (isRetrykitError(e)) expectTypeOf(e).toEqualTypeOf<RetrykitError>();
  });

  it('reasons are a closed set of literals', () => {
    expectTypeOf<'rate_limited'>().toExtend<Reason>();
    expectTypeOf<'teapot'>().not.toExtend<Reason>();
    expectTypeOf<Classification['retryAfterMs']>().toEqualTypeOf<number | undefined>();
  });

  it('the memory token bucket changes a key’s rate synchronously', () => {
    expectTypeOf<MemoryTokenBucket>().toExtend<AdjustableRateLimiter>();
    expectTypeOf<MemoryTokenBucket['setRate']>().returns.toEqualTypeOf<void>();
    expectTypeOf<'retry_after_exceeds_elapsed'>().toExtend<StopReason>();
    expectTypeOf<'max_deferrals'>().toExtend<StopReason>();
  });

  it("a bulkhead's run resolves to what the function returns", () => {
    const bulkhead = createBulkhead({ maxConcurrent: 1 });
    expectTypeOf(bulkhead.run('k', async () => 42)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(bulkhead.run('k', () => 'sync')).toEqualTypeOf<Promise<string>>();
  });

  it('a paging loop passes the last cursor and its filters back to list', async () => {
    const dlq = createMemoryDeadLetterQueue<{ to: string }>();
    const reason: Reason | undefined = undefined as Reason | undefined;
    const limit: number | undefined = undefined as number | undefined;
    let cursor: string | undefined;
    do {
      const page = await dlq.list({ cursor, reason, limit });
      expectTypeOf(page.entries).toEqualTypeOf<readonly DeadLetterEntry<{ to: string }>[]>();
      cursor = page.cursor;
    } while (cursor !== undefined);
    expectTypeOf<ListOptions['cursor']>().toEqualTypeOf<string | undefined>();
  });

  it('a circuit permission is a discriminated union; the memory circuit store is synchronous', () => {
    const permission = {} as CircuitPermission;
    if (permission.ok) expectTypeOf(permission.permit.probe).toEqualTypeOf<boolean>();
    else {
      expectTypeOf(permission.retryAfterMs).toEqualTypeOf<number>();
      expectTypeOf(permission.state).toEqualTypeOf<CircuitState>();
    }
    expectTypeOf<MemoryCircuitStore>().toExtend<CircuitBreakerStore>();
    expectTypeOf<ReturnType<MemoryCircuitStore['admit']>>().not.toExtend<Promise<unknown>>();
    expectTypeOf<'circuit_open' | 'held'>().toExtend<StopReason>();
    expectTypeOf<Classification['scope']>().toEqualTypeOf<'message' | 'account' | undefined>();
  });
});
