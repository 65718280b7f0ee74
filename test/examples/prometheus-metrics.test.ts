import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));

describe('examples/prometheus-metrics.ts', () => {
  it('serves retrykit metrics to a Prometheus scrape, prints the window and exits', async () => {
    // The fake API answers 503 to the first attempt of 8 messages and 429 to the first two
    // attempts of 5 (message 10 gets a 503, then a 429): 17 retries, 12 messages retried, all
    // 40 delivered.
    const { stdout } = await promisify(execFile)(tsx, ['examples/prometheus-metrics.ts'], {
      cwd: root,
      timeout: 50_000,
    });
    expect(stdout).toMatch(
      /^retrykit_calls_total\{retrykit_outcome="success",retrykit_retried="false"[^}]*\} 28$/m,
    );
    expect(stdout).toMatch(
      /^retrykit_calls_total\{retrykit_outcome="success",retrykit_retried="true"[^}]*\} 12$/m,
    );
    expect(stdout).toMatch(/^retrykit_retries_total\{error_type="service_unavailable"[^}]*\} 8$/m);
    expect(stdout).toMatch(/^retrykit_retries_total\{error_type="rate_limited"[^}]*\} 9$/m);
    expect(stdout).toMatch(/^retrykit_call_duration_count\{retrykit_outcome="success"[^}]*\} 40$/m);
    expect(stdout).toMatch(
      /^retrykit_messages_total\{whatsapp_message_status="delivered"[^}]*\} 40$/m,
    );
    expect(stdout).toMatch(/^retrykit_queue_depth\{retrykit_queue="sends"[^}]*\} 5$/m);
    expect(stdout).toContain('calls: 40 succeeded, 0 gave up');
    expect(stdout).toContain('error rate: 0.0 %');
    expect(stdout).toContain('delivery: 100.0 %, mean 1400 ms');
    expect(stdout).toContain('first-attempt success: 70.0 %');
    expect(stdout).toContain('retry rate: 29.8 %');
    expect(stdout).toMatch(/health: retryRatio 0\.298 > 0\.02/);
  }, 60_000);
});
