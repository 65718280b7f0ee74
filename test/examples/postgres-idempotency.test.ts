import { expect, it } from 'vitest';
import { describePostgres, pgUrl } from '../support/postgres.js';
import { runExample } from '../support/run-example.js';

describePostgres('examples/postgres-idempotency.ts', () => {
  it('stores one order per message out of four deliveries, none for a failed one until redriven', async () => {
    const run = await runExample('postgres-idempotency.ts', [], { DATABASE_URL: pgUrl });
    expect(run.stderr).not.toMatch(/Error/);
    expect(run.code).toBe(0);
    const answered = /4 deliveries of 2 messages answered (.*)/.exec(run.stdout)?.[1] ?? 'null';
    const [a, b, c, d] = (JSON.parse(answered) as { orderId: number }[]).map((r) => r.orderId);
    // The first message's three deliveries share one order; the second message has its own.
    expect([b, d]).toEqual([a, a]);
    expect(c).not.toBe(a);
    expect(run.stdout).toMatch(/orders: 2 /);
    expect(run.stdout).toMatch(/dead letters: wamid\.HBgLMTY1MDM4Nzk0MzkVAgC/);
    expect(run.stdout).toMatch(/orders now 3/);
  });
});
