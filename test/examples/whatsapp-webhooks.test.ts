import { describe, expect, it } from 'vitest';
import { describeRedis, redisUrl } from '../support/redis.js';
import { runExample } from '../support/run-example.js';

describe('WhatsApp webhook examples', () => {
  it('examples/fastify-webhook.ts folds duplicated, out-of-order statuses to the final one', async () => {
    const run = await runExample('fastify-webhook.ts');
    expect(run.stderr).not.toMatch(/Error/);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/Meta posted \d+ status events; 15 new ones were queued/);
    expect(run.stdout.match(/final read/g)).toHaveLength(5);
  });

  it('examples/wasender-webhook.ts accepts the shared secret once per message', async () => {
    const run = await runExample('wasender-webhook.ts');
    expect(run.stderr).not.toMatch(/Error/);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/answered 200, 200, 403, 400/);
    expect(run.stdout).toMatch(/inbox holds 1 message/);
  });
});

describeRedis('examples/express-webhook.ts', () => {
  it('verifies, dedupes, queues to BullMQ and processes each update once', async () => {
    const run = await runExample('express-webhook.ts', [], { REDIS_URL: redisUrl });
    expect(run.stderr).not.toMatch(/Error/);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/GET handshake: 200 1158201444/);
    expect(run.stdout).toMatch(/deliveries answered 200, 200, 200; forged signature answered 403/);
    expect(run.stdout).toMatch(/worker processed 2 updates from 3 deliveries/);
    expect(run.stdout).toMatch(/message wamid\.INBOUND1/);
    expect(run.stdout).toMatch(/wamid\.OUT1 delivered/);
  });
});
