import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;

it('examples/rate-limit.ts runs, sends everything and slows down under 130429', async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'examples/rate-limit.ts'],
    { cwd: root, timeout: 60_000 },
  );
  expect(stdout).toMatch(/sent 300 messages in/);
  const throttles = Number(/throttles reported to the limiter: (\d+)/.exec(stdout)?.[1]);
  expect(throttles).toBeGreaterThan(0);
  const rate = Number(/effective rate now: ([\d.]+)\/s/.exec(stdout)?.[1]);
  expect(rate).toBeLessThan(60);
});
