import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import type { DeadLetterEntry } from '../../src/index.js';
import { createRedisDeadLetterQueue } from '../../src/redis/index.js';
import { letter, passRedisTime } from '../support/dead-letter-contract.js';
import { connectRedis, describeOwnRedis, ownRedisServer, ready } from '../support/redis.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

const backoff = { initialDelayMs: 60_000, jitter: 'none' } as const;
const LEASE_MS = 200;

// A consumer loses Redis in the middle of a redrive: the entry must stay in the queue, and no
// other consumer may run it again before its redrive backoff has passed.
describeOwnRedis('dead-letter redrive when a consumer is cut off mid-run', () => {
  it('a cut connection before the failure is recorded: kept, and held for the backoff', async () => {
    const server = await ownRedisServer();
    const proxy = await startTcpProxy(server.port);
    const cutOff = connectRedis(proxy.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
    cutOff.on('error', () => {});
    const direct = connectRedis(server.url);
    await Promise.all([ready(cutOff), ready(direct)]);
    const prefix = 'cut';
    const a = createRedisDeadLetterQueue<{ n: number }>(cutOff, { prefix, commandTimeoutMs: 300 });
    const b = createRedisDeadLetterQueue<{ n: number }>(direct, { prefix });
    await b.add(letter(1));
    const runs: string[] = [];

    const lost = a.redrive(
      {},
      (entry) => {
        runs.push(entry.id);
        proxy.refuse(true);
        proxy.cut();
        throw new Error('HTTP 503');
      },
      { leaseMs: LEASE_MS, backoff },
    );
    await expect(lost).rejects.toMatchObject({ name: 'StoreUnavailableError' });
    expect(runs).toEqual(['m-1']);

    const again = (entry: DeadLetterEntry<{ n: number }>): void => {
      runs.push(entry.id);
    };
    expect((await b.redrive({}, again, { leaseMs: LEASE_MS, backoff })).skipped).toEqual(['m-1']);
    await passRedisTime(direct, prefix, LEASE_MS);
    expect((await b.redrive({}, again, { leaseMs: LEASE_MS, backoff })).skipped).toEqual(['m-1']);
    expect(runs).toEqual(['m-1']);
    expect(await b.get('m-1')).toMatchObject({ id: 'm-1', attempts: [{ message: 'HTTP 1' }] });

    await passRedisTime(direct, prefix, backoff.initialDelayMs);
    expect((await b.redrive({}, again, { backoff })).redriven).toEqual(['m-1']);
    expect(runs).toEqual(['m-1', 'm-1']);
    expect(await b.size()).toBe(0);
  });

  it('a lost reply to the recorded failure, sent again: appended once, held for the backoff', async () => {
    const server = await ownRedisServer();
    const proxy = await startTcpProxy(server.port);
    const flaky = connectRedis(proxy.url, { maxRetriesPerRequest: 5 });
    flaky.on('error', () => {});
    const direct = connectRedis(server.url);
    await Promise.all([ready(flaky), ready(direct)]);
    const prefix = 'resent';
    const a = createRedisDeadLetterQueue<{ n: number }>(flaky, { prefix });
    const b = createRedisDeadLetterQueue<{ n: number }>(direct, { prefix });
    const fail = (): never => {
      throw new Error('HTTP 503');
    };
    await b.add(letter(0));
    expect((await a.redrive({ ids: ['m-0'] }, fail, { backoff })).failed).toEqual(['m-0']);

    await b.add(letter(1));
    const runs: string[] = [];
    let handlerRan = (): void => {};
    const ran = new Promise<void>((resolve) => {
      handlerRan = resolve;
    });
    const report = a.redrive(
      { ids: ['m-1'] },
      (entry) => {
        runs.push(entry.id);
        proxy.dropReplies(1);
        handlerRan();
        throw new Error('HTTP 503');
      },
      { leaseMs: LEASE_MS, backoff },
    );
    await ran;
    await proxy.dropped();
    proxy.cut();
    expect(await report).toMatchObject({ failed: ['m-1'] });

    const entry = await b.get('m-1');
    expect(entry?.attempts.map((x) => x.message)).toEqual(['HTTP 1', 'HTTP 503']);
    expect(entry?.redriveFailures).toBe(1);
    await passRedisTime(direct, prefix, LEASE_MS);
    const again = await b.redrive({}, () => {
      runs.push('again');
    });
    expect(again.skipped).toEqual(['m-0', 'm-1']);
    expect(runs).toEqual(['m-1']);
  });

  it('a consumer process SIGKILLed mid-run: the entry stays, and waits out its backoff', async () => {
    const server = await ownRedisServer();
    const direct = connectRedis(server.url);
    await ready(direct);
    const prefix = 'killed';
    const dlq = createRedisDeadLetterQueue<{ n: number }>(direct, { prefix });
    await dlq.add(letter(1));
    await dlq.add(letter(2));

    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--import',
        './tools/lua-loader.mjs',
        'test/fixtures/redrive-worker.ts',
        server.url,
        prefix,
        String(LEASE_MS),
        String(backoff.initialDelayMs),
      ],
      {
        cwd: fileURLToPath(new URL('../..', import.meta.url)),
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('running m-1')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`redrive child exited early (${code})`)));
    });
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));

    const runs = (): Promise<string[]> => direct.lrange(`${prefix}:runs`, 0, -1);
    const record = async (entry: DeadLetterEntry<{ n: number }>): Promise<void> => {
      await direct.rpush(`${prefix}:runs`, entry.id);
    };
    const options = { leaseMs: LEASE_MS, backoff };
    expect(await dlq.redrive({}, record, options)).toEqual({
      redriven: ['m-2'],
      failed: [],
      skipped: ['m-1'],
    });
    await passRedisTime(direct, prefix, LEASE_MS);
    expect((await dlq.redrive({}, record, options)).skipped).toEqual(['m-1']);
    expect(await runs()).toEqual(['m-1', 'm-2']);
    expect(await dlq.get('m-1')).toMatchObject({ id: 'm-1', payload: { n: 1 } });

    await passRedisTime(direct, prefix, backoff.initialDelayMs);
    expect((await dlq.redrive({}, record, options)).redriven).toEqual(['m-1']);
    expect(await runs()).toEqual(['m-1', 'm-2', 'm-1']);
    expect(await dlq.size()).toBe(0);
  });
});
