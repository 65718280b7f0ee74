import type { Redis } from 'ioredis';

/**
 * Moves Redis's expiry clock forward by `ms` milliseconds for the keys of one prefix: each key
 * with a TTL gets `ms` less of it, and those with less left are deleted. For stores whose only
 * use of time is key expiry, this is time travel without sleeping.
 */
export async function advanceRedisTime(redis: Redis, prefix: string, ms: number): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `{${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const left = await redis.pttl(key);
      if (left < 0) continue;
      if (left <= ms) await redis.del(key);
      else await redis.pexpire(key, left - ms);
    }
  } while (cursor !== '0');
}
