import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, describe, inject } from 'vitest';
import { type RedisServer, type RedisServerOptions, startRedisServer } from './redis-server.js';

/** URL of the shared test Redis, or `''` when there is none (suites then skip, loudly). */
export const redisUrl: string = inject('redisUrl');

/** `describe` that runs only when a Redis is available. */
export const describeRedis = redisUrl ? describe : describe.skip;

/**
 * `describe` that runs only when tests may spawn their own `redis-server` (fault tests). Under
 * `CI=true` it always runs, so a missing `redis-server` fails the suite instead of skipping it.
 */
export const describeOwnRedis =
  inject('canSpawnRedis') || process.env.CI === 'true' ? describe : describe.skip;

const clients: Redis[] = [];

/**
 * Options of {@link connectRedis}: ioredis's, less ioredis 6's `replyMapping`, which its
 * constructor types refuse as `RedisOptions` declares it under `exactOptionalPropertyTypes`.
 */
export type ConnectOptions = Omit<RedisOptions, 'replyMapping'>;

/** A new ioredis client on `url` (default: the shared test Redis), closed after the file. */
export function connectRedis(url: string = redisUrl, options: ConnectOptions = {}): Redis {
  const client = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1, ...options });
  clients.push(client);
  return client;
}

/** A unique key prefix per test, so tests sharing one server never collide. */
export function uniquePrefix(name: string): string {
  return `test:${name}:${process.pid}:${Math.random().toString(36).slice(2, 10)}`;
}

/** Resolves once `client` is connected and ready for commands. */
export function ready(client: Redis): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => client.once('ready', () => resolve()));
}

const servers: RedisServer[] = [];

/** Starts a private `redis-server` for a fault test; stopped after the file. */
export async function ownRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const server = await startRedisServer(options);
  servers.push(server);
  return server;
}

afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => c.quit().catch(() => c.disconnect())));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});
