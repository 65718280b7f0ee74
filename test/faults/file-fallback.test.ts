import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { DeadLetterEntry, NewDeadLetter } from '../../src/index.js';
import { createFileSink, replayFile, withFallback } from '../../src/node/index.js';
import { createRedisDeadLetterQueue } from '../../src/redis/index.js';
import {
  connectRedis,
  describeOwnRedis,
  describeRedis,
  ownRedisServer,
  ready,
  redisUrl,
  uniquePrefix,
} from '../support/redis.js';

let dir: string;
let path: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'retrykit-fallback-'));
  path = join(dir, 'dead-letters.jsonl');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const AT = '2026-01-01T00:00:00.000Z';
function letter(n: number): NewDeadLetter<{ n: number }> {
  return {
    payload: { n },
    reason: 'service_unavailable',
    disposition: 'exhausted',
    attempts: [{ message: 'HTTP 503', errorCode: 503, reason: 'service_unavailable', at: AT }],
    firstAttemptAt: AT,
    lastAttemptAt: AT,
    source: 'webhooks',
  };
}

async function allIds(dlq: ReturnType<typeof createRedisDeadLetterQueue>): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await dlq.list({ limit: 500, ...(cursor === undefined ? {} : { cursor }) });
    ids.push(...page.entries.map((e) => e.id));
    cursor = page.cursor;
  } while (cursor !== undefined);
  return ids;
}

describeOwnRedis('withFallback with Redis down', () => {
  it('catches 1,000 dead letters in the file while Redis is down, and replays them all once', async () => {
    const server = await ownRedisServer();
    const redis = connectRedis(server.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
    redis.on('error', () => {});
    await ready(redis);
    const primary = createRedisDeadLetterQueue<{ n: number }>(redis, {
      prefix: 'outage',
      commandTimeoutMs: 1000,
    });
    let diverted = 0;
    const dlq = withFallback(primary, createFileSink<DeadLetterEntry<{ n: number }>>(path), {
      onFallback: () => diverted++,
    });
    await server.stop();

    const added = await Promise.all(Array.from({ length: 1000 }, (_, n) => dlq.add(letter(n))));
    expect(diverted).toBe(1000);
    const lines = (await readFile(path, 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(1000);
    const inFile = lines.map((l) => JSON.parse(l) as DeadLetterEntry<{ n: number }>);
    expect(new Set(inFile.map((e) => e.id)).size).toBe(1000);
    expect(inFile.map((e) => e.payload.n).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 1000 }, (_, n) => n),
    );
    expect(inFile).toEqual(expect.arrayContaining(added));

    await server.start();
    await ready(redis);
    const report = await replayFile<DeadLetterEntry<{ n: number }>>(path, (entry) =>
      primary.add(entry),
    );
    expect(report).toEqual({ replayed: 1000, rejected: 0 });
    expect(await primary.size()).toBe(1000);
    const ids = await allIds(primary);
    expect(ids).toHaveLength(1000);
    expect(new Set(ids)).toEqual(new Set(added.map((e) => e.id)));
    expect(await primary.get(added[7]?.id as string)).toEqual(added[7]);
    await expect(stat(path)).rejects.toThrow();
    expect(await replayFile(path, () => {})).toEqual({ replayed: 0, rejected: 0 });
    expect(await primary.size()).toBe(1000);
  });
});

describeRedis('replayFile killed mid-replay', () => {
  it('resumes where the dead process stopped: nothing lost, nothing doubled', async () => {
    const redis = connectRedis();
    const prefix = uniquePrefix('replay-crash');
    const sink = createFileSink<NewDeadLetter<{ n: number }>>(path);
    for (let n = 0; n < 50; n++) await sink.add({ ...letter(n), id: `m-${n}` });

    const root = fileURLToPath(new URL('../..', import.meta.url));
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--import',
        './tools/lua-loader.mjs',
        'test/fixtures/replay-child.ts',
        redisUrl,
        prefix,
        path,
        '20',
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('hanging')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`replay child exited early (${code})`)));
    });
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    expect(await redis.lrange(`${prefix}:handled`, 0, -1)).toEqual(
      Array.from({ length: 21 }, (_, n) => `m-${n}`),
    );
    await stat(`${path}.replaying`);

    const dlq = createRedisDeadLetterQueue(redis, { prefix });
    const resumed: string[] = [];
    const report = await replayFile<DeadLetterEntry>(path, async (entry) => {
      resumed.push(entry.id);
      await dlq.add(entry);
    });
    // Entry 20 was handled but its progress never recorded: it comes again, once.
    expect(resumed).toEqual(Array.from({ length: 30 }, (_, i) => `m-${i + 20}`));
    expect(report).toEqual({ replayed: 30, rejected: 0 });
    expect(await dlq.size()).toBe(50);
    const ids = await allIds(dlq);
    expect(ids).toEqual(Array.from({ length: 50 }, (_, n) => `m-${n}`));
  });
});
