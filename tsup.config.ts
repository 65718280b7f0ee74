import { cpSync } from 'node:fs';
import { defineConfig, type Options } from 'tsup';

/** The library: one entry per subpath export, ESM and CommonJS. */
export const library: Options = {
  entry: {
    index: 'src/index.ts',
    'redis/index': 'src/redis/index.ts',
    'bullmq/index': 'src/bullmq/index.ts',
    'whatsapp/index': 'src/whatsapp/index.ts',
    'testing/index': 'src/testing/index.ts',
    'node/index': 'src/node/index.ts',
    'otel/index': 'src/otel/index.ts',
    'postgres/index': 'src/postgres/index.ts',
    'dashboard/index': 'src/dashboard/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'es2022',
  splitting: true,
  treeshake: true,
  loader: { '.lua': 'text', '.sql': 'text' },
  external: ['ioredis', 'bullmq', '@opentelemetry/api', 'pg'],
  // The migration files are also shipped as files (`retrykit/postgres/sql/*.sql`), for users'
  // own migration tools; the code has them inlined as text.
  onSuccess: async () => {
    cpSync('src/postgres/sql', 'dist/postgres/sql', { recursive: true });
  },
};

/** The `retrykit` command (package `bin`): Node only, ESM, no declarations. */
export const cli: Options = {
  entry: { 'cli/bin': 'src/cli/bin.ts' },
  format: ['esm'],
  platform: 'node',
  target: 'node18',
  dts: false,
  clean: false,
  sourcemap: false,
  splitting: false,
  treeshake: true,
  loader: { '.lua': 'text', '.sql': 'text' },
  external: ['ioredis', 'bullmq', '@opentelemetry/api', 'pg'],
};

export default defineConfig([library, cli]);
