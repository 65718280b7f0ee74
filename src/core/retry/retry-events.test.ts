import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../testing/index.js';
import { PermanentError, RetryError } from '../errors.js';
import type { RetrykitEvent } from '../events.js';
import { combineListeners, scopeListener } from '../events.js';
import { createMetrics } from '../metrics/metrics.js';
import { createRetryBudget } from './budget.js';
import { retry } from './retry.js';

function httpError(status: number): Error {
  return Object.assign(new Error(`HTTP ${status}`), { status });
}

/** Records events without the `error` payloads (checked separately). */
function recorder() {
  const events: RetrykitEvent[] = [];
  const shapes = (): Array<Record<string, unknown>> =>
    events.map((e) => {
      const { error: _error, ...rest } = e as RetrykitEvent & { error?: unknown };
      if (rest.type === 'attempt_failure') {
        const { classification, ...others } = rest as typeof rest & {
          classification: { retryable: boolean; reason: string };
        };
        return {
          ...others,
          classification: { retryable: classification.retryable, reason: classification.reason },
        };
      }
      return rest;
    });
  return { events, onEvent: (e: RetrykitEvent) => events.push(e), shapes };
}

const backoff = { initialDelayMs: 100, multiplier: 2, jitter: 'none' } as const;

describe('retry events', () => {
  it('success on the first try: attempt_start then attempt_success with its duration', async () => {
    const clock = createManualClock(1_000);
    const { onEvent, shapes } = recorder();
    const done = retry(
      async () => {
        await clock.sleep(30);
        return 'ok';
      },
      { clock, onEvent, backoff },
    );
    await clock.advance(30);
    await expect(done).resolves.toBe('ok');
    expect(shapes()).toEqual([
      { type: 'attempt_start', time: 1_000, attempt: 0, elapsedMs: 0 },
      { type: 'attempt_success', time: 1_030, attempt: 0, durationMs: 30, elapsedMs: 30 },
    ]);
  });

  it('a retry then success: failure, retry_scheduled with the delay, attempt 1 succeeds', async () => {
    const clock = createManualClock();
    const { onEvent, shapes, events } = recorder();
    const failure = httpError(503);
    let calls = 0;
    const done = retry(
      () => {
        calls++;
        if (calls === 1) throw failure;
        return 'ok';
      },
      { clock, onEvent, backoff },
    );
    await clock.advance(100);
    await expect(done).resolves.toBe('ok');
    expect(shapes()).toEqual([
      { type: 'attempt_start', time: 0, attempt: 0, elapsedMs: 0 },
      {
        type: 'attempt_failure',
        time: 0,
        attempt: 0,
        durationMs: 0,
        classification: { retryable: true, reason: 'service_unavailable' },
      },
      {
        type: 'retry_scheduled',
        time: 0,
        attempt: 1,
        delayMs: 100,
        reason: 'service_unavailable',
      },
      { type: 'attempt_start', time: 100, attempt: 1, elapsedMs: 100 },
      { type: 'attempt_success', time: 100, attempt: 1, durationMs: 0, elapsedMs: 100 },
    ]);
    expect((events[1] as { error: unknown }).error).toBe(failure);
  });

  it('a permanent failure: one attempt, then give_up with stopReason permanent', async () => {
    const clock = createManualClock();
    const { onEvent, shapes, events } = recorder();
    const done = retry(
      () => {
        throw httpError(400);
      },
      { clock, onEvent, backoff },
    );
    await expect(done).rejects.toBeInstanceOf(PermanentError);
    expect(shapes()).toEqual([
      { type: 'attempt_start', time: 0, attempt: 0, elapsedMs: 0 },
      {
        type: 'attempt_failure',
        time: 0,
        attempt: 0,
        durationMs: 0,
        classification: { retryable: false, reason: 'client_error' },
      },
      {
        type: 'give_up',
        time: 0,
        attempts: 1,
        reason: 'client_error',
        stopReason: 'permanent',
        elapsedMs: 0,
      },
    ]);
    expect((events[2] as { error: unknown }).error).toBeInstanceOf(PermanentError);
  });

  it('attempts exhausted: every failure and delay in order, then give_up max_attempts', async () => {
    const clock = createManualClock();
    const { onEvent, shapes } = recorder();
    const done = retry(
      () => {
        throw httpError(500);
      },
      { clock, onEvent, backoff, maxAttempts: 3 },
    );
    const settled = done.catch((e: unknown) => e);
    await clock.runAll();
    expect(await settled).toBeInstanceOf(RetryError);
    const failure = (time: number, attempt: number) => ({
      type: 'attempt_failure',
      time,
      attempt,
      durationMs: 0,
      classification: { retryable: true, reason: 'server_error' },
    });
    expect(shapes()).toEqual([
      { type: 'attempt_start', time: 0, attempt: 0, elapsedMs: 0 },
      failure(0, 0),
      { type: 'retry_scheduled', time: 0, attempt: 1, delayMs: 100, reason: 'server_error' },
      { type: 'attempt_start', time: 100, attempt: 1, elapsedMs: 100 },
      failure(100, 1),
      { type: 'retry_scheduled', time: 100, attempt: 2, delayMs: 200, reason: 'server_error' },
      { type: 'attempt_start', time: 300, attempt: 2, elapsedMs: 300 },
      failure(300, 2),
      {
        type: 'give_up',
        time: 300,
        attempts: 3,
        reason: 'server_error',
        stopReason: 'max_attempts',
        elapsedMs: 300,
      },
    ]);
  });

  it('aborted while waiting: give_up with stopReason aborted and the signal reason', async () => {
    const clock = createManualClock();
    const { onEvent, shapes, events } = recorder();
    const controller = new AbortController();
    const done = retry(
      () => {
        throw httpError(503);
      },
      { clock, onEvent, backoff, signal: controller.signal },
    );
    const settled = done.catch((e: unknown) => e);
    await clock.advance(40);
    const reason = new Error('shutting down');
    controller.abort(reason);
    expect(await settled).toBe(reason);
    expect(shapes().map((e) => e.type)).toEqual([
      'attempt_start',
      'attempt_failure',
      'retry_scheduled',
      'give_up',
    ]);
    expect(shapes()[3]).toEqual({
      type: 'give_up',
      time: 40,
      attempts: 1,
      reason: 'aborted',
      stopReason: 'aborted',
      elapsedMs: 40,
    });
    expect((events[3] as { error: unknown }).error).toBe(reason);
  });

  it('aborted before the first attempt: a lone give_up with zero attempts', async () => {
    const clock = createManualClock(5);
    const { onEvent, shapes } = recorder();
    const done = retry(() => 'never', {
      clock,
      onEvent,
      signal: AbortSignal.abort(new Error('too late')),
    });
    await expect(done).rejects.toThrow('too late');
    expect(shapes()).toEqual([
      {
        type: 'give_up',
        time: 5,
        attempts: 0,
        reason: 'aborted',
        stopReason: 'aborted',
        elapsedMs: 0,
      },
    ]);
  });

  it('budget exhausted: the failure, then give_up without a retry_scheduled', async () => {
    const clock = createManualClock();
    const { onEvent, shapes } = recorder();
    const budget = createRetryBudget({ clock, minRetriesPerSecond: 0, retryRatio: 0 });
    const done = retry(
      () => {
        throw httpError(503);
      },
      { clock, onEvent, backoff, budget },
    );
    await expect(done).rejects.toMatchObject({
      name: 'RetryError',
      stopReason: 'budget_exhausted',
      reason: 'service_unavailable',
    });
    expect(shapes().map((e) => e.type)).toEqual(['attempt_start', 'attempt_failure', 'give_up']);
    expect(shapes()[2]).toMatchObject({
      stopReason: 'budget_exhausted',
      reason: 'service_unavailable',
      attempts: 1,
    });
  });

  it('a throwing listener changes nothing; combineListeners still reaches the others', async () => {
    const clock = createManualClock();
    const { onEvent, events } = recorder();
    const broken = () => {
      throw new Error('listener bug');
    };
    const done = retry(() => 'ok', {
      clock,
      onEvent: combineListeners(broken, undefined, onEvent),
    });
    await expect(done).resolves.toBe('ok');
    expect(events.map((e) => e.type)).toEqual(['attempt_start', 'attempt_success']);
  });

  it('scopeListener stamps attributes on every event; the event own attributes win', async () => {
    const clock = createManualClock();
    const { onEvent, events } = recorder();
    const scoped = scopeListener(onEvent, { 'whatsapp.phone_number_id': '1055', region: 'eu' });
    await retry(() => 'ok', { clock, onEvent: scoped });
    expect(events.map((e) => e.attributes)).toEqual([
      { 'whatsapp.phone_number_id': '1055', region: 'eu' },
      { 'whatsapp.phone_number_id': '1055', region: 'eu' },
    ]);
    scoped({ type: 'queue_depth', time: 0, depth: 1, attributes: { region: 'us', queue: 'q' } });
    expect(events.at(-1)?.attributes).toEqual({
      'whatsapp.phone_number_id': '1055',
      region: 'us',
      queue: 'q',
    });
    expect(() => scopeListener(onEvent, null as never)).toThrow(/attributes must be an object/);
    expect(() => scopeListener(onEvent, { n: 1 as never })).toThrow(
      /attributes.n must be a string, got 1/,
    );
  });

  it('feeds metrics: each path lands in the right counter', async () => {
    const clock = createManualClock();
    const metrics = createMetrics({ clock, windowMs: 60_000 });
    const run = (fn: () => unknown, extra: object = {}) =>
      retry(fn, { clock, onEvent: metrics.onEvent, backoff, maxAttempts: 3, ...extra }).catch(
        () => undefined,
      );
    await run(() => 'ok');
    let n = 0;
    const flaky = run(() => {
      if (n++ === 0) throw httpError(429);
      return 'ok';
    });
    await clock.runAll();
    await flaky;
    await run(() => {
      throw httpError(400);
    });
    const exhausted = run(() => {
      throw httpError(500);
    });
    await clock.runAll();
    await exhausted;
    const s = metrics.snapshot();
    expect(s.calls).toMatchObject({
      started: 4,
      succeeded: 2,
      firstAttemptSucceeded: 1,
      gaveUp: 2,
    });
    expect(s.attempts).toEqual({
      started: 7,
      failed: 5,
      failedByReason: { rate_limited: 1, client_error: 1, server_error: 3 },
    });
    expect(s.retries).toEqual({
      scheduled: 3,
      byReason: { rate_limited: 1, server_error: 2 },
      meanDelayMs: (100 + 100 + 200) / 3,
    });
    expect(s.giveUps.byStopReason).toEqual({ permanent: 1, max_attempts: 1 });
    expect(s.ratios).toEqual({ firstAttemptSuccess: 1 / 4, retry: 3 / 7, error: 2 / 4 });
  });
});
