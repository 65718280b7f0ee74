import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { describeRedis, redisUrl } from './support/redis.js';

const run = promisify(execFile);

describeRedis('examples/throttled-sends.ts', () => {
  it('sends the quiet number first, defers throttles without spending attempts, exits by itself', async () => {
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', 'examples/throttled-sends.ts'],
      {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        env: { ...process.env, REDIS_URL: redisUrl },
        timeout: 45_000,
      },
    );
    const quiet = Number(/PN-QUIET: 5 sent, the last after (\d+) ms/.exec(stdout)?.[1]);
    const busy = Number(/PN-BUSY: 30 sent, the last after (\d+) ms/.exec(stdout)?.[1]);
    expect(quiet).toBeLessThan(busy);
    expect(Number(/deferred without spending an attempt: (\d+)/.exec(stdout)?.[1])).toBeGreaterThan(
      0,
    );
    expect(stdout).toContain('most attempts one job spent: 1');
    expect(stdout).toContain('dead-lettered: 0');
    expect(stdout.trimEnd().endsWith('done')).toBe(true);
  });
});
