import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { describeRedis, redisUrl } from './support/redis.js';

const run = promisify(execFile);

describeRedis('examples/fleet-metrics.ts', () => {
  it('merges three workers’ reports into one fleet snapshot and health report, then exits', async () => {
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', '--import', './tools/lua-loader.mjs', 'examples/fleet-metrics.ts'],
      {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        env: { ...process.env, REDIS_URL: redisUrl },
        timeout: 45_000,
      },
    );
    // Per worker: 40 calls; 8, 16, 24, 32 retried once after a 503; 20 and 40 refused (400).
    expect(stdout).toContain('worker-a: 38 sent on its own');
    expect(stdout).toContain('fleet: 3 instances');
    expect(stdout).toContain('calls: 120 started, 114 succeeded, 6 gave up');
    expect(stdout).toContain('first-attempt success: 85.0 %');
    expect(stdout).toContain('retry rate: 9.1 %, error rate: 5.0 %'); // 12 / (120 + 12); 6 / 120
    expect(stdout).toContain('health: retryRatio 0.091 > 0.02, errorRatio 0.050 > 0.02');
  });
});
