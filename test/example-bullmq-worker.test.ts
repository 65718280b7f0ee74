import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { describeOwnRedis, describeRedis, redisUrl } from './support/redis.js';
import { type RedisCluster, startRedisCluster } from './support/redis-cluster.js';

const run = promisify(execFile);

/** Runs the example with `env`; resolves with its output. */
async function runWorkerExample(env: Record<string, string>): Promise<string> {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', '--import', './tools/lua-loader.mjs', 'examples/bullmq-worker.ts'],
    {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { ...process.env, ...env },
      timeout: 45_000,
    },
  );
  return stdout;
}

function expectTheStory(stdout: string): void {
  expect(stdout).toMatch(/retry in \d+ ms \(service_unavailable\)/);
  expect(stdout).toContain('wamid.A: completed');
  expect(stdout).toContain('wamid.B: completed');
  expect(stdout).toContain('dead-lettered: wamid.C (schema_mismatch, permanent, 1 attempts)');
  expect(stdout).toContain('dead-lettered: wamid.D (service_unavailable, exhausted, 4 attempts)');
  expect(stdout).toContain('redriven: webhooks:wamid.D');
  expect(stdout).toContain('wamid.D-redrive: completed');
  expect(stdout).toContain('left in the dead-letter queue: 1');
  expect(stdout.trimEnd().endsWith('done')).toBe(true);
}

describeRedis('examples/bullmq-worker.ts', () => {
  it('queues webhooks, retries, dead-letters and redrives, then exits by itself', async () => {
    expectTheStory(await runWorkerExample({ REDIS_URL: redisUrl }));
  });
});

describeOwnRedis('examples/bullmq-worker.ts on a Redis Cluster', () => {
  let cluster: RedisCluster | undefined;
  afterAll(() => cluster?.stop());

  it('runs the same story with the queue prefix in a hash tag, over 3 shards', async () => {
    cluster = await startRedisCluster({ replicasPerMaster: 0 });
    const nodes = cluster.seeds.map((s) => `${s.host}:${s.port}`).join(',');
    expectTheStory(await runWorkerExample({ REDIS_CLUSTER_NODES: nodes }));
    // Nothing of the queue or the example is left on any shard (the dead-letter queue keeps
    // its position counter across a purge).
    const keys = await Promise.all(cluster.seeds.map((s) => cluster!.cli(s.port, 'KEYS', '*')));
    expect(keys.join('').trim().split('\n')).toEqual([
      expect.stringMatching(/^\{retrykit-example-\d+:dlq:dead-letters\}:seq$/),
    ]);
  });
});
