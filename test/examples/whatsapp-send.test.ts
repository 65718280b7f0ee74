import { describe, expect, it } from 'vitest';
import { describeRedis, redisUrl } from '../support/redis.js';
import { runExample } from '../support/run-example.js';

describe('WhatsApp sending examples', () => {
  it('examples/demo.ts sends every message once, dead-letters 131026, resolves every status and closes the loop', async () => {
    const run = await runExample('demo.ts', ['--messages', '300', '--rate', '150']);
    expect(run.stderr).not.toMatch(/Error|FAILED/);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/each accepted once by the API unless it failed \(0 sent twice\)/);
    expect(run.stdout).toMatch(/× policy \(131049\), permanent/);
    expect(run.stdout).toMatch(/Closed loop\s+[1-9]\d* re-sent after a failed status/);
    expect(run.stdout).toMatch(/[1-9]\d* held after timeouts/);
    expect(run.stdout).toMatch(/[1-9]\d* stuck \(alert: messages\.stuck\)/);
    expect(run.stdout).toMatch(/\n {2}0 left open/);
    expect(run.stdout).toMatch(/× client_error \(131026\), permanent/);
    expect(run.stdout).toMatch(/First-attempt success\s+\d+\.\d %/);
    expect(run.stdout).toMatch(
      /Duplicates suppressed\s+\d+ repeated sends, \d+ webhook redeliveries/,
    );
    expect(run.stdout).toMatch(/Peak send rate\s+\d+ requests in one second \(limit 150\)/);
    expect(run.stdout).toMatch(/resolved; 0 messages off their final status/);
  });

  it('examples/send-with-retry.ts retries, dedupes and dead-letters', async () => {
    const run = await runExample('send-with-retry.ts');
    expect(run.stderr).not.toMatch(/Error/);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/retry in \d+ ms \((rate_limited|service_unavailable)\)/);
    expect(run.stdout).toMatch(/already sent as wamid\.FAKE00000001: not sent again/);
    expect(run.stdout).toMatch(/failed for good: PermanentError — \(#131026\)/);
    expect(run.stdout).toMatch(/dead letter order-3:shipped: client_error, permanent, code 131026/);
    expect(run.stdout).toMatch(/the API accepted 2 messages/);
  });
});

describeRedis('examples/demo.ts --redis', () => {
  it('runs on the Redis limiter, stores and dead-letter queue', async () => {
    const run = await runExample('demo.ts', [
      '--messages',
      '150',
      '--rate',
      '150',
      '--redis',
      redisUrl,
    ]);
    expect(run.stderr).not.toMatch(/Error|FAILED/);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/Messages\s+150 \(Redis /);
    expect(run.stdout).toMatch(/each accepted once by the API unless it failed \(0 sent twice\)/);
    expect(run.stdout).toMatch(/\n {2}0 left open/);
    expect(run.stdout).toMatch(/0 messages off their final status/);
  });
});
