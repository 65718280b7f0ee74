import { expect, it } from 'vitest';
import { runExample } from '../support/run-example.js';

it('examples/flaky-server.ts gets every request through and stops at once on a 400', async () => {
  const run = await runExample('flaky-server.ts', ['--requests', '20']);
  expect(run.stderr).not.toMatch(/Error:/);
  expect(run.code).toBe(0);
  expect(run.stdout).toMatch(/delivered 20\/20/);
  expect(run.stdout).toMatch(/server saw 50 requests/);
  expect(run.stdout).toMatch(/POST \/bad gave up at once: PermanentError \(client_error\)/);
});
