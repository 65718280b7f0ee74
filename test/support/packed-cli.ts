import { execFile, execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'tsup';
import { cli, library } from '../../tsup.config.js';

const root = join(import.meta.dirname, '..', '..');

/** The `retrykit` package packed with `npm pack` and unpacked where an app would have it. */
export interface PackedCli {
  /** The app directory: `node_modules/retrykit` from the tarball, the peers linked beside it. */
  readonly app: string;
  /** The file the package's `bin.retrykit` names, inside the unpacked package. */
  readonly bin: string;
  /** Runs `retrykit …args` in the app directory. */
  run(args: readonly string[], env?: Record<string, string>): Promise<CliRun>;
  remove(): void;
}

/** Output and exit code of one run. */
export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Builds the package (JavaScript only: declarations take half a minute and the CLI needs
 * none) into a staging copy with the project's package.json, packs it with `npm pack`
 * (offline: packing reads only the directory), unpacks the tarball into an app's
 * `node_modules/retrykit`, and links the optional peers (`ioredis`, `bullmq`) from the
 * project's `node_modules` beside it, as an app that installed them would have them.
 */
export async function packCli(): Promise<PackedCli> {
  const dir = mkdtempSync(join(tmpdir(), 'retrykit-cli-'));
  const stage = join(dir, 'stage');
  const outDir = join(stage, 'dist');
  const absolute = (entries: unknown): Record<string, string> =>
    Object.fromEntries(
      Object.entries(entries as Record<string, string>).map(([k, v]) => [k, join(root, v)]),
    );
  await build({
    ...library,
    config: false,
    dts: false,
    sourcemap: false,
    silent: true,
    outDir,
    entry: absolute(library.entry),
  });
  await build({ ...cli, config: false, silent: true, outDir, entry: absolute(cli.entry) });
  mkdirSync(stage, { recursive: true });
  for (const file of ['package.json', 'README.md', 'LICENSE']) {
    cpSync(join(root, file), join(stage, file));
  }
  const tarball = execFileSync(
    'npm',
    ['pack', '--pack-destination', dir, '--ignore-scripts', '--offline', '--silent'],
    { cwd: stage, encoding: 'utf8' },
  )
    .trim()
    .split('\n')
    .at(-1) as string;
  const app = join(dir, 'app');
  const pkg = join(app, 'node_modules', 'retrykit');
  mkdirSync(pkg, { recursive: true });
  execFileSync('tar', ['-xzf', join(dir, tarball), '-C', pkg, '--strip-components=1']);
  for (const peer of ['ioredis', 'bullmq']) {
    symlinkSync(join(root, 'node_modules', peer), join(app, 'node_modules', peer), 'dir');
  }
  const manifest = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as {
    bin: { retrykit: string };
  };
  const bin = join(pkg, manifest.bin.retrykit);
  return {
    app,
    bin,
    run: (args, env = {}) =>
      new Promise((resolve) => {
        execFile(
          bin,
          [...args],
          { cwd: app, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 20_000 },
          (error, stdout, stderr) => {
            const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
            resolve({ code, stdout, stderr });
          },
        );
      }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
