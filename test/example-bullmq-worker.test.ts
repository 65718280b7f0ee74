import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { describeRedis, redisUrl } from './support/redis.js';

const run = promisify(execFile);

describeRedis('examples/bullmq-worker.ts', () => {
  it('queues webhooks, retries, dead-letters and redrives, then exits by itself', async () => {
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', '--import', './tools/lua-loader.mjs', 'examples/bullmq-worker.ts'],
      {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        env: { ...process.env, REDIS_URL: redisUrl },
        timeout: 45_000,
      },
    );
    expect(stdout).toMatch(/retry in \d+ ms \(service_unavailable\)/);
    expect(stdout).toContain('wamid.A: completed');
    expect(stdout).toContain('wamid.B: completed');
    expect(stdout).toContain('dead-lettered: wamid.C (schema_mismatch, permanent, 1 attempts)');
    expect(stdout).toContain('dead-lettered: wamid.D (service_unavailable, exhausted, 4 attempts)');
    expect(stdout).toContain('redriven: webhooks:wamid.D');
    expect(stdout).toContain('wamid.D-redrive: completed');
    expect(stdout).toContain('left in the dead-letter queue: 1');
    expect(stdout.trimEnd().endsWith('done')).toBe(true);
  });
});
