// Opening Redis for a command: the optional peer `ioredis`, loaded only when a command needs it.
import type { Redis } from 'ioredis';
import { CommandError, type Io } from './io.js';

/** The Redis URL of a command: `--redis`, else `REDIS_URL`, else the local default. */
export function redisUrl(io: Io, flag: string | undefined): string {
  return flag ?? io.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
}

/** Hides a password in a URL shown to the user. */
export function showUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

/** Connects to `url`, failing fast (no reconnect loop) with a {@link CommandError}. */
export async function connect(url: string): Promise<Redis> {
  let Client: typeof Redis;
  try {
    ({ Redis: Client } = await import('ioredis'));
  } catch {
    throw new CommandError('this command needs the ioredis package: npm install ioredis');
  }
  const redis = new Client(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
    connectTimeout: 5_000,
  });
  let lastError: unknown;
  redis.on('error', (error: unknown) => {
    lastError = error; // reported by the command that fails
  });
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new CommandError(
      `cannot connect to Redis at ${showUrl(url)}: ${(lastError as Error | undefined)?.message ?? (error as Error).message}`,
    );
  }
  return redis;
}

/** Closes `redis`, gracefully when it can. */
export async function close(redis: Redis): Promise<void> {
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
}
