import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vitest/config';

/** Loads `.lua` and `.sql` files as text, as tsup does for the build. */
function luaAsText(): Plugin {
  return {
    name: 'lua-as-text',
    enforce: 'pre',
    load(id) {
      if (!id.endsWith('.lua') && !id.endsWith('.sql')) return null;
      return `export default ${JSON.stringify(readFileSync(id, 'utf8'))};`;
    },
  };
}

const peers6Loader = fileURLToPath(new URL('test/support/peers6-loader.mjs', import.meta.url));

export default defineConfig({
  plugins: [luaAsText()],
  cacheDir: '.cache/vite',
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts'],
          typecheck: { enabled: true, include: ['src/**/*.test-d.ts'] },
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        // The Redis adapters' and BullMQ's suites again, on ioredis 6 and bullmq 6 (the npm
        // aliases `ioredis6`, `bullmq6`): `import 'ioredis'` and `import 'bullmq'` load them, in
        // the tests and in the processes they spawn. `integration` runs the same on 5 and 5.
        extends: true,
        test: {
          name: 'peers6',
          include: [
            'test/bullmq-*.test.ts',
            'test/dead-letter.test.ts',
            'test/idempotency-*.test.ts',
            'test/metrics-scenario.test.ts',
            'test/peer-majors.test.ts',
            'test/rate-limiter-contract.test.ts',
            'test/circuit-store-contract.test.ts',
            'test/cluster-contracts.test.ts',
            'test/delivery-store-contract.test.ts',
            'test/fleet-metrics.test.ts',
            'test/redis-harness.test.ts',
            'test/redis-token-bucket.test.ts',
            'test/example-bullmq-worker.test.ts',
            'test/faults/*.test.ts',
          ],
          exclude: ['test/faults/harness.test.ts'],
          alias: [
            { find: /^ioredis$/, replacement: 'ioredis6' },
            { find: /^bullmq$/, replacement: 'bullmq6' },
          ],
          env: { RETRYKIT_PEER_MAJOR: '6', NODE_OPTIONS: `--import=${peers6Loader}` },
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
