import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));

/** Output and exit code of one example run. */
export interface ExampleRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `examples/<name>` with tsx from the repository root, as the README says: `retrykit`
 * resolves to the sources (tsconfig.json `paths`), whose `.lua` files tools/lua-loader.mjs loads.
 */
export function runExample(
  name: string,
  args: readonly string[] = [],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<ExampleRun> {
  return new Promise((resolve) => {
    execFile(
      tsx,
      ['--import', './tools/lua-loader.mjs', `examples/${name}`, ...args],
      { cwd: root, env: { ...process.env, ...env, NO_COLOR: '1' }, timeout: timeoutMs },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
