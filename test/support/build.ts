import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'tsup';
import { library as config } from '../../tsup.config.js';

/** The package's entry points, as tsup names them (`index`, `redis/index`, …). */
export const ENTRIES = Object.keys(
  (config as { entry: Record<string, string> }).entry,
) as readonly string[];

/** The package built by tsup into a directory of its own, both formats loaded side by side. */
export interface BuiltPackage {
  readonly dir: string;
  /** The ESM build of `entry` (`import`). */
  esm(entry: string): Promise<Record<string, unknown>>;
  /** The CommonJS build of `entry` (`require`). */
  cjs(entry: string): Record<string, unknown>;
  remove(): Promise<void>;
}

/**
 * Builds the package with the project's tsup config, without declarations (they take half a
 * minute; the JavaScript takes two seconds), into a fresh directory under `.cache/` so that
 * the optional peers resolve from the project's `node_modules`.
 */
export async function buildPackage(): Promise<BuiltPackage> {
  const root = join(import.meta.dirname, '..', '..');
  const dir = join(root, '.cache', `build-${randomUUID()}`);
  await build({
    ...(config as object),
    config: false,
    dts: false,
    sourcemap: false,
    silent: true,
    outDir: dir,
    entry: Object.fromEntries(
      Object.entries((config as { entry: Record<string, string> }).entry).map(([name, path]) => [
        name,
        join(root, path),
      ]),
    ),
  });
  const require = createRequire(join(dir, 'index.cjs'));
  return {
    dir,
    esm: (entry) => import(pathToFileURL(join(dir, `${entry}.js`)).href),
    cjs: (entry) => require(join(dir, `${entry}.cjs`)),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
