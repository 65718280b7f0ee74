import type { TestProject } from 'vitest/node';
import { findPostgres } from './postgres-url.js';
import { hasRedisServer, type RedisServer, startRedisServer } from './redis-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the Redis the integration tests use; empty when none is available. */
    redisUrl: string;
    /** `true` when tests may start their own `redis-server` for fault tests. */
    canSpawnRedis: boolean;
    /** URL of the PostgreSQL the integration tests use; empty when none is reachable. */
    pgUrl: string;
  }
}

let server: RedisServer | undefined;

/** Provides Redis to the integration tests: REDIS_URL, else a `redis-server` of our own. */
export async function setup(project: TestProject): Promise<void> {
  project.provide('pgUrl', await findPostgres());
  const canSpawn = hasRedisServer();
  project.provide('canSpawnRedis', canSpawn);
  if (process.env.REDIS_URL) {
    project.provide('redisUrl', process.env.REDIS_URL);
    return;
  }
  if (canSpawn) {
    server = await startRedisServer();
    project.provide('redisUrl', server.url);
    return;
  }
  if (process.env.CI === 'true') {
    throw new Error('CI=true but no Redis: set REDIS_URL or put redis-server on the PATH');
  }
  console.warn(
    '\n!!! No Redis (no REDIS_URL, no redis-server on PATH): Redis test suites are SKIPPED !!!\n',
  );
  project.provide('redisUrl', '');
}

export async function teardown(): Promise<void> {
  await server?.stop();
}
