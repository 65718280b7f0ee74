import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isRetrykitError } from '../errors.js';
import { BulkheadRejectedError, createBulkhead } from './bulkhead.js';

/** A promise with its resolve and reject in hand. */
function deferred<T = string>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every settled promise's callbacks run. */
const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('createBulkhead', () => {
  it('names the option and the value it refuses', async () => {
    expect(() => createBulkhead(undefined as never)).toThrow(
      'options must be an object, got undefined',
    );
    expect(() => createBulkhead({ maxConcurrent: 0 })).toThrow(
      /^maxConcurrent must be a finite number between 1 and \d+, got 0$/,
    );
    expect(() => createBulkhead({ maxConcurrent: 1.5 })).toThrow(
      'maxConcurrent must be an integer, got 1.5',
    );
    expect(() => createBulkhead({ maxConcurrent: 'x' as never })).toThrow(
      'maxConcurrent must be a number, got "x"',
    );
    expect(() => createBulkhead({ maxConcurrent: 1, maxQueued: -1 })).toThrow(
      /^maxQueued must be a finite number between 0 and \d+, got -1$/,
    );
    const bulkhead = createBulkhead({ maxConcurrent: 1 });
    await expect(bulkhead.run('', async () => 1)).rejects.toThrow('key must not be empty');
    await expect(bulkhead.run(7 as never, async () => 1)).rejects.toThrow(
      'key must be a string, got 7',
    );
    await expect(bulkhead.run('a', 3 as never)).rejects.toThrow('fn must be a function, got 3');
    expect(bulkhead.size).toBe(0);
  });

  it('runs up to maxConcurrent per key, queues maxQueued, rejects the next with a typed error', async () => {
    const bulkhead = createBulkhead({ maxConcurrent: 2, maxQueued: 1 });
    const gates = [deferred(), deferred(), deferred()];
    const runs = gates.map((g) => bulkhead.run('A', () => g.promise));
    expect(bulkhead.stats('A')).toEqual({ running: 2, queued: 1 });
    const other = bulkhead.run('B', async () => 'b');
    const rejected = await bulkhead.run('A', async () => 'never').catch((e: unknown) => e);
    expect(rejected).toBeInstanceOf(BulkheadRejectedError);
    expect(isRetrykitError(rejected)).toBe(true);
    expect(rejected).toMatchObject({
      name: 'BulkheadRejectedError',
      code: 'BULKHEAD_REJECTED',
      key: 'A',
      maxConcurrent: 2,
      maxQueued: 1,
      message: 'Bulkhead for "A" is full: 2 running, 1 queued',
    });
    expect(await other).toBe('b');
    gates[0]?.resolve('first');
    expect(await runs[0]).toBe('first');
    expect(bulkhead.stats('A')).toEqual({ running: 2, queued: 0 });
    gates[1]?.reject(new Error('boom'));
    await expect(runs[1]).rejects.toThrow('boom');
    gates[2]?.resolve('third');
    expect(await runs[2]).toBe('third');
    expect(bulkhead.size).toBe(0);
    expect(bulkhead.stats('A')).toEqual({ running: 0, queued: 0 });
  });

  it('frees the slot of a function that throws synchronously', async () => {
    const bulkhead = createBulkhead({ maxConcurrent: 1 });
    await expect(
      bulkhead.run('A', () => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    expect(await bulkhead.run('A', () => 'next')).toBe('next');
    expect(bulkhead.size).toBe(0);
  });

  it('takes an aborted wait out of the queue, rejecting with the reason; the function never runs', async () => {
    const bulkhead = createBulkhead({ maxConcurrent: 1, maxQueued: 2 });
    const gate = deferred();
    const running = bulkhead.run('A', () => gate.promise);
    const controller = new AbortController();
    let ran = false;
    const queued = bulkhead.run(
      'A',
      () => {
        ran = true;
      },
      { signal: controller.signal },
    );
    const behind = bulkhead.run('A', async () => 'behind');
    expect(bulkhead.stats('A')).toEqual({ running: 1, queued: 2 });
    const reason = new Error('shutting down');
    controller.abort(reason);
    await expect(queued).rejects.toBe(reason);
    expect(bulkhead.stats('A')).toEqual({ running: 1, queued: 1 });
    gate.resolve('done');
    expect(await running).toBe('done');
    expect(await behind).toBe('behind');
    expect(ran).toBe(false);
    expect(bulkhead.size).toBe(0);
    await expect(bulkhead.run('A', async () => 'x', { signal: controller.signal })).rejects.toBe(
      reason,
    );
    expect(bulkhead.size).toBe(0);
  });

  it('lets a running call finish when its signal aborts', async () => {
    const bulkhead = createBulkhead({ maxConcurrent: 1 });
    const controller = new AbortController();
    const gate = deferred();
    const running = bulkhead.run('A', () => gate.promise, { signal: controller.signal });
    controller.abort();
    gate.resolve('finished');
    expect(await running).toBe('finished');
  });

  it('keeps per key: never more than maxConcurrent running or maxQueued waiting; each accepted call runs once, FIFO, or is aborted once', async () => {
    type Op =
      | { kind: 'call'; key: 'a' | 'b'; abortable: boolean }
      | { kind: 'finish' | 'fail' | 'abort'; pick: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({
        kind: fc.constant('call' as const),
        key: fc.constantFrom('a' as const, 'b' as const),
        abortable: fc.boolean(),
      }),
      fc.record({
        kind: fc.constantFrom('finish' as const, 'fail' as const, 'abort' as const),
        pick: fc.nat(),
      }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 3 }),
        fc.array(op, { maxLength: 40 }),
        async (maxConcurrent, maxQueued, ops) => {
          const bulkhead = createBulkhead({ maxConcurrent, maxQueued });
          interface Call {
            readonly key: 'a' | 'b';
            readonly gate: ReturnType<typeof deferred>;
            readonly controller: AbortController | undefined;
            runs: number;
            done: boolean;
            outcome?: 'ok' | 'failed' | 'rejected' | 'aborted';
          }
          const calls: Call[] = [];
          const started: Call[] = [];
          const check = () => {
            for (const key of ['a', 'b'] as const) {
              const running = calls.filter((c) => c.key === key && c.runs > 0 && !c.done).length;
              const { running: r, queued } = bulkhead.stats(key);
              expect(running).toBeLessThanOrEqual(maxConcurrent);
              expect(r).toBe(running);
              expect(queued).toBeLessThanOrEqual(maxQueued);
            }
          };
          for (const o of ops) {
            if (o.kind === 'call') {
              const controller = o.abortable ? new AbortController() : undefined;
              const call: Call = { key: o.key, gate: deferred(), controller, runs: 0, done: false };
              calls.push(call);
              bulkhead
                .run(
                  o.key,
                  () => {
                    call.runs++;
                    started.push(call);
                    return call.gate.promise.finally(() => {
                      call.done = true;
                    });
                  },
                  controller === undefined ? {} : { signal: controller.signal },
                )
                .then(
                  () => {
                    call.outcome = 'ok';
                  },
                  (e: unknown) => {
                    call.outcome =
                      e instanceof BulkheadRejectedError
                        ? 'rejected'
                        : e === 'aborted'
                          ? 'aborted'
                          : 'failed';
                  },
                );
            } else {
              const running = calls.filter((c) => c.runs > 0 && !c.done);
              const waiting = calls.filter(
                (c) => c.runs === 0 && c.outcome === undefined && c.controller !== undefined,
              );
              const pool = o.kind === 'abort' ? waiting : running;
              const target = pool[o.pick % Math.max(1, pool.length)];
              if (o.kind === 'finish') target?.gate.resolve('ok');
              if (o.kind === 'fail') target?.gate.reject(new Error('fail'));
              if (o.kind === 'abort') target?.controller?.abort('aborted');
            }
            await flush();
            check();
          }
          // Drain: finish whatever runs until nothing is left.
          for (let guard = 0; guard < 200; guard++) {
            const running = calls.filter((c) => c.runs > 0 && !c.done);
            if (running.length === 0) break;
            for (const c of running) c.gate.resolve('ok');
            await flush();
            check();
          }
          await flush();
          for (const c of calls) {
            if (c.outcome === 'rejected' || c.outcome === 'aborted') expect(c.runs).toBe(0);
            else {
              expect(c.runs).toBe(1);
              expect(c.outcome).toMatch(/^(ok|failed)$/);
            }
          }
          // First come, first served within a key.
          for (const key of ['a', 'b'] as const) {
            const accepted = calls.filter((c) => c.key === key && c.runs === 1);
            expect(started.filter((c) => c.key === key)).toEqual(accepted);
          }
          expect(bulkhead.size).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
  });
});
