import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'redis/index': 'src/redis/index.ts',
    'bullmq/index': 'src/bullmq/index.ts',
    'whatsapp/index': 'src/whatsapp/index.ts',
    'testing/index': 'src/testing/index.ts',
    'node/index': 'src/node/index.ts',
    'otel/index': 'src/otel/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'es2022',
  splitting: true,
  treeshake: true,
  loader: { '.lua': 'text' },
  external: ['ioredis', 'bullmq', '@opentelemetry/api'],
});
