import { expect, it } from 'vitest';
import { runExample } from '../support/run-example.js';

it('examples/circuit-breaker.ts holds the sends of an expired token and sends them after the refresh', async () => {
  const run = await runExample('circuit-breaker.ts');
  expect(run.stderr).not.toMatch(/Error/);
  expect(run.code).toBe(0);
  expect(run.stdout).toMatch(/held \(HeldError\)/);
  expect(run.stdout).toMatch(/circuit closed → open/);
  expect(run.stdout).toMatch(/held \(CircuitOpenError\)/);
  expect(run.stdout).toMatch(/3 of 6 sends were refused without a request/);
  expect(run.stdout).toMatch(/circuit half_open → closed/);
  expect(run.stdout).toMatch(/dead letters: 0/);
  expect(run.stdout).toMatch(/the API accepted 6 of 6 messages/);
});
