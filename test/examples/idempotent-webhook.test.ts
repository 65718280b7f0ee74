import { expect, it } from 'vitest';
import { describeRedis, redisUrl } from '../support/redis.js';
import { runExample } from '../support/run-example.js';

describeRedis('examples/idempotent-webhook.ts', () => {
  it('stores each of two messages once out of five deliveries', async () => {
    const run = await runExample('idempotent-webhook.ts', [], { REDIS_URL: redisUrl });
    expect(run.stderr).not.toMatch(/Error/);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /Meta delivered 5 webhooks for 2 messages; we answered 200, 200, 200, 200, 200/,
    );
    expect(run.stdout).toMatch(/stored 2 rows:/);
    expect(run.stdout.match(/wamid\.HBgL/g)).toHaveLength(2);
  });
});
