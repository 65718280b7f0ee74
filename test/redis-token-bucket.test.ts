import { spawn } from 'node:child_process';
import { describe, expect, it, vi } from 'vitest';
import { RateLimitAbortedError, RateLimitTimeoutError, type RetrykitEvent } from '../src/index.js';
import { createRedisTokenBucket } from '../src/redis/index.js';
import { createManualClock } from '../src/testing/index.js';
import { until } from './support/rate-limiter-contract.js';
import { connectRedis, describeRedis, redisUrl, uniquePrefix } from './support/redis.js';

const root = new URL('..', import.meta.url).pathname;

/** A limiter worker process, started and ready to go (its modules and Redis connection loaded). */
interface Worker {
  /** Tells it the window to run in (epoch ms); resolves with its grants inside the window. */
  run(startAt: number, endAt: number): Promise<{ granted: number }>;
}

function startWorker(args: string[]): Promise<Worker> {
  return new Promise((ready, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--import',
        './tools/lua-loader.mjs',
        'test/fixtures/limiter-worker.ts',
        ...args,
      ],
      { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    const exited = new Promise<{ granted: number }>((resolve, fail) => {
      child.on('exit', (code) => {
        if (code === 0) resolve(JSON.parse(out.trim().split('\n').pop() as string));
        else fail(new Error(`worker exited with ${code}: ${err}`));
      });
    });
    exited.catch(reject);
    child.stdout.on('data', (d) => {
      out += d;
      if (out.startsWith('ready\n')) {
        out = out.slice('ready\n'.length);
        ready({
          run: (startAt, endAt) => {
            child.stdin.end(`${startAt} ${endAt}\n`);
            return exited;
          },
        });
      }
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
  });
}

describeRedis('createRedisTokenBucket', () => {
  it('keeps several processes sharing one bucket within capacity + rate·t, and near it', async () => {
    const prefix = uniquePrefix('multi');
    const workers = await Promise.all([1, 2, 3].map(() => startWorker([redisUrl, prefix, '4'])));
    const start = Date.now() + 200;
    const durationMs = 3_000;
    const results = await Promise.all(workers.map((w) => w.run(start, start + durationMs)));
    const total = results.reduce((sum, r) => sum + r.granted, 0);
    const bound = 20 + 100 * (durationMs / 1000);
    expect(total).toBeLessThanOrEqual(bound);
    expect(total).toBeGreaterThanOrEqual(0.95 * bound);
    for (const r of results) expect(r.granted).toBeGreaterThan(0);
  });

  it('uses Redis TIME by default, names keys with a hash tag and lets them expire once full', async () => {
    const redis = connectRedis();
    const prefix = uniquePrefix('keys');
    const limiter = createRedisTokenBucket(redis, {
      prefix,
      capacity: 10,
      refillPerSecond: 5,
      dedupe: false,
    });
    expect(await limiter.tryAcquire('+4915112345678', 4)).toEqual({ ok: true, remaining: 6 });
    const key = `{${prefix}:+4915112345678}`;
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(700);
    expect(ttl).toBeLessThanOrEqual(800);
    const [tokens, at] = ((await redis.get(key)) ?? '').split(' ').map(Number);
    expect(tokens).toBe(6);
    const [seconds] = await redis.time();
    expect(Math.abs((at as number) - Number(seconds) * 1000)).toBeLessThan(5_000);
    expect(await redis.keys(`*${prefix}*`)).toEqual([key]);
  });

  it('charges a re-sent call once: the script remembers the request id', async () => {
    const redis = connectRedis();
    const prefix = uniquePrefix('dedupe');
    const limiter = createRedisTokenBucket(redis, { prefix, capacity: 5, refillPerSecond: 0.001 });
    expect(await limiter.tryAcquire('k', 2)).toEqual({ ok: true, remaining: 3 });
    const [ridKey] = await redis.keys(`{${prefix}:k}:r:*`);
    expect(ridKey).toBeDefined();
    expect(await redis.pttl(ridKey as string)).toBeGreaterThan(1000);
    // Replay the very same EVALSHA, as a reconnecting client would.
    const { SCRIPT: script } = await import('../src/redis/token-bucket.js');
    const replay = await redis.evalsha(
      script.sha,
      3,
      `{${prefix}:k}`,
      `{${prefix}:k}:limits`,
      ridKey as string,
      5,
      0.000001,
      2,
      '',
      2000,
    );
    expect(replay).toBe(3);
    expect(await limiter.tryAcquire('k', 3)).toEqual({ ok: true, remaining: 0 });
  });

  describe('RateLimitTimeoutError.retryAfterMs: the wait left when the caller gives up', () => {
    const setup = () => {
      const clock = createManualClock(1_700_000_000_000);
      const limiter = createRedisTokenBucket(connectRedis(), {
        prefix: uniquePrefix('timeout-estimate'),
        capacity: 1,
        refillPerSecond: 1,
        timeSource: 'client',
        clock,
      });
      return { clock, limiter };
    };
    const failure = (promise: Promise<unknown>) =>
      promise.then(
        () => undefined,
        (error: unknown) => error,
      );

    it('after its own refusal: the wait Redis reported, not the time since the call', async () => {
      const { clock, limiter } = setup();
      expect(await limiter.acquire('k')).toBe(0);
      const first = limiter.acquire('k');
      await until(() => clock.pending().length > 0);
      const second = failure(limiter.acquire('k', 1, { maxWaitMs: 1500 }));
      await clock.advance(1000);
      expect(await first).toBe(1000);
      // Asked at 1000 ms, told 1000 ms more: past its deadline at 1500 ms.
      const error = await second;
      expect(error).toBeInstanceOf(RateLimitTimeoutError);
      expect(error).toMatchObject({ maxWaitMs: 1500, retryAfterMs: 1000 });
    });

    it('while queued behind a caller of its own process: until that caller asks again', async () => {
      const { clock, limiter } = setup();
      expect(await limiter.acquire('k')).toBe(0);
      const first = limiter.acquire('k');
      await until(() => clock.pending().length > 0);
      const second = failure(limiter.acquire('k', 1, { maxWaitMs: 300 }));
      await clock.advance(300);
      const error = await second;
      expect(error).toBeInstanceOf(RateLimitTimeoutError);
      // The first asks Redis again at 1000 ms: 700 ms after the second gave up.
      expect(error).toMatchObject({ maxWaitMs: 300, retryAfterMs: 700 });
      await clock.advance(700);
      expect(await first).toBe(1000);
    });
  });

  describe('rate_limit_wait: only a wait for tokens, as the memory bucket reports', () => {
    it('reports nothing for grants from tokens on hand, however long Redis takes to answer', async () => {
      const clock = createManualClock(1_700_000_000_000);
      const redis = connectRedis();
      // Every script call costs 3 ms of the limiter's clock: the round trip.
      for (const method of ['evalsha', 'eval'] as const) {
        const original = redis[method].bind(redis) as (...args: unknown[]) => Promise<unknown>;
        vi.spyOn(redis, method).mockImplementation((async (...args: unknown[]) => {
          await clock.advance(3);
          return original(...args);
        }) as never);
      }
      const events: RetrykitEvent[] = [];
      const limiter = createRedisTokenBucket(redis, {
        prefix: uniquePrefix('round-trip'),
        capacity: 3,
        refillPerSecond: 1,
        timeSource: 'client',
        clock,
        onEvent: (e) => events.push(e),
      });
      for (let i = 0; i < 3; i++) expect(await limiter.acquire('k')).toBeGreaterThanOrEqual(3);
      expect(events).toEqual([]);
      const fourth = limiter.acquire('k');
      await until(() => clock.pending().some((at) => at > clock.now() + 100));
      await clock.advance(1000);
      const waitedMs = await fourth;
      expect(waitedMs).toBeGreaterThan(900);
      expect(events).toEqual([
        { type: 'rate_limit_wait', time: clock.now(), key: 'k', waitMs: waitedMs, granted: true },
      ]);
    });

    it('reports a caller queued behind one waiting for tokens, even when its own ask is granted', async () => {
      // Redis's clock refills the bucket; the manual clock only decides when the sleeper wakes.
      const clock = createManualClock(1_700_000_000_000);
      const events: RetrykitEvent[] = [];
      const limiter = createRedisTokenBucket(connectRedis(), {
        prefix: uniquePrefix('behind'),
        capacity: 2,
        refillPerSecond: 10,
        clock,
        onEvent: (e) => events.push(e),
      });
      expect(await limiter.acquire('k', 2)).toBe(0);
      const first = limiter.acquire('k');
      await until(() => clock.pending().length > 0);
      const second = limiter.acquire('k');
      // Both tokens are back (on Redis's clock) before the first asks again: the second's own
      // ask is then granted at once, after waiting in line for tokens.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await clock.next();
      const waited = [await first, await second];
      expect(waited[0]).toBeGreaterThan(0);
      expect(events.map((e) => e.type === 'rate_limit_wait' && [e.waitMs, e.granted])).toEqual([
        [waited[0], true],
        [waited[1], true],
      ]);
    });
  });

  it('waits past 2^31 − 1 ms as told: no early timeout, no busy loop (real clock)', async () => {
    const redis = connectRedis();
    const evalsha = vi.spyOn(redis, 'evalsha');
    // One token per 10^7 s: the next one is 10^10 ms away, past setTimeout's limit.
    const limiter = createRedisTokenBucket(redis, {
      prefix: uniquePrefix('long-wait'),
      capacity: 1,
      refillPerSecond: 1e-7,
    });
    expect((await limiter.tryAcquire('k')).ok).toBe(true);
    const controller = new AbortController();
    const signal = controller.signal;
    const outcomes: unknown[] = [];
    const first = limiter.acquire('k', 1, { maxWaitMs: 1e11, signal }).then(
      (v) => outcomes.push(v),
      (e: unknown) => outcomes.push(e),
    );
    // The second waits for the first's turn, with its deadline 10^10 ms away.
    const second = limiter.acquire('k', 1, { maxWaitMs: 1e10, signal }).then(
      (v) => outcomes.push(v),
      (e: unknown) => outcomes.push(e),
    );
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(outcomes).toEqual([]);
    // The grant, then one refused take by the first waiter: it sleeps instead of asking again.
    expect(evalsha).toHaveBeenCalledTimes(2);
    controller.abort();
    await Promise.all([first, second]);
    expect(outcomes).toHaveLength(2);
    for (const outcome of outcomes) expect(outcome).toBeInstanceOf(RateLimitAbortedError);
  });

  it('keeps a key’s own rate in one key beside its bucket, removed by resetRate', async () => {
    const redis = connectRedis();
    const prefix = uniquePrefix('own-rate');
    const limiter = createRedisTokenBucket(redis, { prefix, capacity: 2, refillPerSecond: 1 });
    await limiter.setRate('k', { refillPerSecond: 4, capacity: 3 });
    expect(await redis.get(`{${prefix}:k}:limits`)).toBe('3 0.004');
    expect(await redis.pttl(`{${prefix}:k}:limits`)).toBe(-1);
    // Another process on the same prefix sees it, requests above its own capacity included.
    const other = createRedisTokenBucket(connectRedis(), {
      prefix,
      capacity: 2,
      refillPerSecond: 1,
    });
    expect(await other.tryAcquire('k', 3)).toEqual({ ok: true, remaining: 0 });
    await expect(other.acquire('k', 4)).rejects.toThrow(/capacity 3.*got 4/);
    await limiter.resetRate('k');
    expect(await redis.exists(`{${prefix}:k}:limits`)).toBe(0);
    await expect(other.tryAcquire('k', 3)).rejects.toThrow(/capacity 2.*got 3/);
  });

  it('rejects bad options, naming the value', () => {
    const redis = connectRedis();
    expect(() => createRedisTokenBucket(redis, { capacity: 0.5, refillPerSecond: 1 })).toThrow(
      /capacity must be a finite number >= 1, got 0.5/,
    );
    expect(() =>
      createRedisTokenBucket(redis, { capacity: 1, refillPerSecond: Number.NaN }),
    ).toThrow(/NaN/);
    expect(() =>
      createRedisTokenBucket(redis, { capacity: 1, refillPerSecond: 1, prefix: '' }),
    ).toThrow(/prefix/);
    expect(() =>
      createRedisTokenBucket(redis, {
        capacity: 1,
        refillPerSecond: 1,
        onStoreError: 'ignore' as 'proceed',
      }),
    ).toThrow(/onStoreError.*"ignore"/);
    for (const [old, now] of [
      ['reject', 'fail'],
      ['allow', 'proceed'],
    ] as const) {
      expect(() =>
        createRedisTokenBucket(redis, {
          capacity: 1,
          refillPerSecond: 1,
          onStoreError: old as never,
        }),
      ).toThrow(`onStoreError: '${old}' was renamed in retrykit 0.2: use onStoreError: '${now}'`);
    }
    expect(() =>
      createRedisTokenBucket(redis, {
        capacity: 1,
        refillPerSecond: 1,
        timeSource: 'local' as 'client',
      }),
    ).toThrow(/timeSource.*"local"/);
    expect(() => createRedisTokenBucket({} as never, { capacity: 1, refillPerSecond: 1 })).toThrow(
      /client/,
    );
  });
});
