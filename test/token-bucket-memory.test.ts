import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;

it('holds a million keys in well under 200 MB', async () => {
  // A child process of its own, with --expose-gc: the heap is measured after full collections,
  // free of whatever else the test runner holds.
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', 'test/fixtures/million-keys.ts'],
    { cwd: root },
  );
  const { keys, totalMb } = JSON.parse(stdout) as { keys: number; totalMb: number };
  expect(keys).toBe(1_000_000);
  expect(totalMb).toBeLessThan(150);
});
