import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { IdempotencyInProgressError, idempotent, StoreUnavailableError } from '../src/index.js';
import { createRedisIdempotencyStore } from '../src/redis/index.js';
import { seededRandom } from '../src/testing/index.js';
import {
  connectRedis,
  describeOwnRedis,
  describeRedis,
  ownRedisServer,
  redisUrl,
  uniquePrefix,
} from './support/redis.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Starts the worker fixture with tsx and the Lua loader, as a separate Node process. */
function worker(mode: string, env: Record<string, string>): ChildProcess {
  return spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--import',
      './tools/lua-loader.mjs',
      'test/fixtures/idempotency-worker.ts',
      mode,
    ],
    { cwd: root, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] },
  );
}

/** Everything a process writes to stdout until it exits; rejects on a non-zero exit. */
async function output(child: ChildProcess): Promise<string> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`worker exited with ${code}: ${stderr}`);
  return stdout;
}

/** The first line a process prints. */
async function firstLine(child: ChildProcess): Promise<string> {
  let buffered = '';
  for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
    buffered += chunk.toString();
    const end = buffered.indexOf('\n');
    if (end >= 0) return buffered.slice(0, end);
  }
  throw new Error('worker exited without printing');
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

describeRedis('createRedisIdempotencyStore', () => {
  it('runs fn exactly once for 50 concurrent calls over 5 connections; all get its result', async () => {
    const prefix = uniquePrefix('idem-50');
    const stores = Array.from({ length: 5 }, () =>
      createRedisIdempotencyStore(connectRedis(), { prefix }),
    );
    let runs = 0;
    const fn = async () => {
      runs++;
      await new Promise((resolve) => setTimeout(resolve, 100));
      return { wamid: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI', runs };
    };
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        idempotent(stores[i % 5]!, 'send:order-42', fn, { waitForResultMs: 20_000 }),
      ),
    );
    expect(runs).toBe(1);
    expect(results).toEqual(
      Array(50).fill({ wamid: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI', runs: 1 }),
    );
  });

  it('keeps leases and TTLs in Redis under one hash-tagged key per idempotency key', async () => {
    const redis = connectRedis();
    const prefix = uniquePrefix('idem-layout');
    const store = createRedisIdempotencyStore(redis, { prefix });
    const claim = await store.claim('k', { leaseMs: 30_000 });
    const key = `{${prefix}:k}`;
    expect(await redis.pttl(key)).toBeGreaterThan(25_000);
    expect(await redis.pttl(key)).toBeLessThanOrEqual(30_000);
    if (claim.status !== 'claimed') throw new Error('expected a claim');
    await store.complete('k', claim.token, { ok: true }, { resultTtlMs: 8 * 86_400_000 });
    expect(await redis.pttl(key)).toBeGreaterThan(8 * 86_400_000 - 5000);
    expect(await redis.get(key)).toBe('c0:{"ok":true}');
    await store.markOnce('wamid.1', 691_200_000);
    expect(await redis.get(`{${prefix}:wamid.1}:once`)).toBe('1');
    expect(await redis.pttl(`{${prefix}:wamid.1}:once`)).toBeGreaterThan(691_200_000 - 5000);
  });

  it('refuses a non-serialisable result with a TypeError naming it, before writing', async () => {
    const redis = connectRedis();
    const prefix = uniquePrefix('idem-serial');
    const store = createRedisIdempotencyStore(redis, { prefix });
    const claim = await store.claim('k', { leaseMs: 30_000 });
    if (claim.status !== 'claimed') throw new Error('expected a claim');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const bad: [unknown, RegExp][] = [
      [{ message: { send: () => 1 } }, /result\.message\.send is a function/],
      [{ id: 10n }, /result\.id is a bigint \(10n\)/],
      [[1, Number.NaN], /result\[1\] is the number NaN/],
      [new Map([['a', 1]]), /result is a Map/],
      [cyclic, /result can't be stored as JSON: .*circular/i],
      [Symbol('s'), /result is a symbol/],
    ];
    for (const [value, message] of bad) {
      await expect(store.complete('k', claim.token, value, { resultTtlMs: 1000 })).rejects.toThrow(
        message,
      );
    }
    expect(await redis.get(`{${prefix}:k}`)).toBe(`p${claim.token}:`);

    let runs = 0;
    const fn = async () => ({ runs: ++runs, at: 2n });
    await expect(idempotent(store, 'wrapped', fn)).rejects.toThrow(/result\.at is a bigint/);
    await expect(idempotent(store, 'wrapped', fn)).rejects.toThrow(/result\.at is a bigint/);
    expect(runs).toBe(2);
  });

  it('sends a release that waits for its next try before a new claim of the key', async () => {
    const redis = connectRedis();
    const prefix = uniquePrefix('idem-flush');
    await createRedisIdempotencyStore(redis, { prefix }).release('warm-up', 'none');
    // The first SET runs on Redis but fails on the client (a dropped connection); so does the
    // first release, which then waits 100 ms for its next try.
    let failSet = true;
    let failRelease = true;
    const client = {
      set: (...args: Parameters<typeof redis.set>) => {
        if (!failSet) return redis.set(...args);
        failSet = false;
        return redis.set(...args).then(() => Promise.reject(new Error('Connection is closed.')));
      },
      evalsha: (sha: string, numKeys: number, ...rest: (string | number)[]) => {
        if (rest.length === 3 && failRelease) {
          failRelease = false;
          return Promise.reject(new Error('Connection is closed.'));
        }
        return redis.evalsha(sha, numKeys, ...rest);
      },
      eval: redis.eval.bind(redis),
    } as unknown as Parameters<typeof createRedisIdempotencyStore>[0];
    const store = createRedisIdempotencyStore(client, { prefix, commandTimeoutMs: 1000 });
    await expect(store.claim('k', { leaseMs: 60_000 })).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    while (failRelease) await new Promise((resolve) => setTimeout(resolve, 1));
    expect(await redis.exists(`{${prefix}:k}`)).toBe(1);
    expect((await store.claim('k', { leaseMs: 60_000 })).status).toBe('claimed');
  });

  it('emits idempotency_hit from the store', async () => {
    const events: unknown[] = [];
    const store = createRedisIdempotencyStore(connectRedis(), {
      prefix: uniquePrefix('idem-events'),
      clock: { now: () => 123, sleep: async () => {} },
      onEvent: (e) => events.push(e),
    });
    await store.markOnce('m', 1000);
    await store.markOnce('m', 1000);
    expect(events).toEqual([{ type: 'idempotency_hit', time: 123, key: 'm', status: 'duplicate' }]);
  });

  it('rejects bad options naming the option and the value', () => {
    const redis = connectRedis();
    expect(() => createRedisIdempotencyStore(redis, { prefix: '' })).toThrow(
      /prefix must not be empty/,
    );
    expect(() => createRedisIdempotencyStore(redis, { prefix: 'p', commandTimeoutMs: -1 })).toThrow(
      /commandTimeoutMs.*-1/,
    );
    expect(() =>
      createRedisIdempotencyStore(redis, { prefix: 'p', timeoutMs: 500 } as never),
    ).toThrow('timeoutMs was renamed in retrykit 0.2: use commandTimeoutMs');
    expect(() => createRedisIdempotencyStore({} as never, { prefix: 'p' })).toThrow(/evalsha/);
    expect(() =>
      createRedisIdempotencyStore(redis, { prefix: 'p', serializer: {} as never }),
    ).toThrow(/serializer\.serialize must be a function/);
  });

  it('after a worker is SIGKILLed holding a key, another process takes over and the dead token is refused', async () => {
    const prefix = uniquePrefix('idem-crash');
    const env = { REDIS_URL: redisUrl, PREFIX: prefix, KEY: 'send:crash', LEASE_MS: '1500' };
    const doomed = worker('claim', env);
    const { token } = JSON.parse(await firstLine(doomed)) as { token: string };
    doomed.kill('SIGKILL');
    await once(doomed, 'exit');

    const store = createRedisIdempotencyStore(connectRedis(), { prefix });
    const held = await store.claim('send:crash', { leaseMs: 1500 });
    expect(held.status).toBe('in_progress');

    const rescuer = worker('complete', { ...env, LEASE_MS: '10000' });
    const rescued = JSON.parse(await output(rescuer)) as { completedBy: number };
    expect(rescued.completedBy).toBe(rescuer.pid);

    expect(
      await store.complete(
        'send:crash',
        token,
        { completedBy: 'the dead' },
        { resultTtlMs: 60_000 },
      ),
    ).toBe(false);
    expect(await store.release('send:crash', token)).toBe(false);
    expect(await store.claim('send:crash', { leaseMs: 1000 })).toEqual({
      status: 'completed',
      result: rescued,
    });
  });

  it('handles 10,000 webhook IDs delivered 3 times each, shuffled over 4 processes, exactly once', async () => {
    const prefix = uniquePrefix('idem-webhooks');
    const ids = Array.from(
      { length: 10_000 },
      (_, i) => `wamid.${i.toString(36).padStart(6, '0')}`,
    );
    const deliveries = shuffle([...ids, ...ids, ...ids], seededRandom(2026));
    const processes = 4;
    const outputs = await Promise.all(
      Array.from({ length: processes }, (_, p) => {
        const child = worker('webhooks', { REDIS_URL: redisUrl, PREFIX: prefix });
        child.stdin?.end(JSON.stringify(deliveries.filter((_, i) => i % processes === p)));
        return output(child);
      }),
    );
    const handled = outputs.flatMap((o) => (JSON.parse(o) as { handled: string[] }).handled);
    expect(handled.length).toBe(10_000);
    expect(new Set(handled).size).toBe(10_000);
    expect(new Set(handled)).toEqual(new Set(ids));
  });
});

describeOwnRedis('idempotency with Redis going down', () => {
  it('fails with StoreUnavailableError and never reads a dead Redis as "first time"', async () => {
    const server = await ownRedisServer();
    const redis = connectRedis(server.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
    redis.on('error', () => {}); // reconnect attempts after the stop; the test checks the calls
    if (redis.status !== 'ready') await once(redis, 'ready');
    const store = createRedisIdempotencyStore(redis, { prefix: 'outage', commandTimeoutMs: 500 });
    const ran: string[] = [];
    const notRecorded: string[] = [];
    const handle = (id: string) =>
      idempotent(
        store,
        id,
        async () => {
          ran.push(id);
          return id;
        },
        { onNotRecorded: ({ key }) => notRecorded.push(key) },
      );

    // A steady stream of webhooks; Redis is stopped while it runs.
    const outcomes: { id: string; ok: boolean; error?: unknown }[] = [];
    let stopped = false;
    const stream = (async () => {
      // Until a call fails after the stop (however long stopping takes), with a cap that only a
      // Redis still answering after its stop would reach.
      for (let i = 0; i < 100_000 && !(stopped && outcomes.at(-1)?.ok === false); i++) {
        const id = `m${i}`;
        try {
          if (!(await store.markOnce(id, 60_000))) throw new Error(`${id} seen twice`);
          await handle(id);
          outcomes.push({ id, ok: true });
        } catch (error) {
          outcomes.push({ id, ok: false, error });
        }
      }
    })();
    while (outcomes.length < 20) await new Promise((resolve) => setTimeout(resolve, 5));
    await server.stop();
    stopped = true;
    await stream;

    const failed = outcomes.filter((o) => !o.ok);
    expect(failed.length).toBeGreaterThan(0);
    for (const { error } of failed) expect(error).toBeInstanceOf(StoreUnavailableError);
    // fn ran only for calls whose claim reached Redis; a result it could not store is reported.
    const succeeded = outcomes.filter((o) => o.ok).map((o) => o.id);
    expect(ran.filter((id) => !succeeded.includes(id))).toEqual([]);
    expect(notRecorded.every((id) => ran.includes(id))).toBe(true);

    // Redeliveries of the handled ones, and brand-new ones: all typed failures, none "first time".
    const again = await Promise.allSettled([
      ...succeeded.slice(0, 20).map((id) => store.markOnce(id, 60_000)),
      ...succeeded.slice(0, 20).map((id) => handle(id)),
      ...Array.from({ length: 20 }, (_, i) => store.markOnce(`fresh${i}`, 60_000)),
      ...Array.from({ length: 20 }, (_, i) => handle(`fresh${i}`)),
    ]);
    for (const outcome of again) {
      expect(outcome.status).toBe('rejected');
      if (outcome.status === 'rejected') {
        expect(outcome.reason).toBeInstanceOf(StoreUnavailableError);
      }
    }
    expect(ran.length).toBe(succeeded.length);

    const unguarded = await idempotent(store, 'opt-in', async () => 'ran anyway', {
      onStoreError: 'proceed',
    });
    expect(unguarded).toBe('ran anyway');
  });

  it('times out against a frozen Redis with StoreUnavailableError, then recovers', async () => {
    const server = await ownRedisServer();
    const redis = connectRedis(server.url, { maxRetriesPerRequest: 0 });
    const store = createRedisIdempotencyStore(redis, { prefix: 'frozen', commandTimeoutMs: 300 });
    const claim = await store.claim('k', { leaseMs: 60_000 });
    server.freeze();
    const error = await store.claim('k', { leaseMs: 60_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error).toMatchObject({ operation: 'claim' });
    server.thaw();
    await expect(
      idempotent(store, 'k', async () => 'dup', { waitForResultMs: 0 }),
    ).rejects.toBeInstanceOf(IdempotencyInProgressError);
    if (claim.status === 'claimed') {
      expect(await store.complete('k', claim.token, 'done', { resultTtlMs: 60_000 })).toBe(true);
    }
  });
});

describe.skipIf(!redisUrl)('markOnce from one process', () => {
  it('counts each of 1,000 IDs once when 3 copies race', async () => {
    const store = createRedisIdempotencyStore(connectRedis(), {
      prefix: uniquePrefix('idem-race'),
    });
    const ids = Array.from({ length: 1000 }, (_, i) => `id${i}`);
    const firsts = await Promise.all(
      shuffle([...ids, ...ids, ...ids], seededRandom(7)).map((id) => store.markOnce(id, 60_000)),
    );
    expect(firsts.filter(Boolean)).toHaveLength(1000);
  });
});
