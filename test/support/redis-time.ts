import { Cluster, type Redis } from 'ioredis';

/**
 * Moves Redis's expiry clock forward by `ms` milliseconds for the keys of one prefix: each key
 * with a TTL gets `ms` less of it, and those with less left are deleted. For stores whose only
 * use of time is key expiry, this is time travel without sleeping. On a `Cluster` it walks
 * every master (the keys of one prefix spread over every slot).
 */
export async function advanceRedisTime(
  redis: Redis | Cluster,
  prefix: string,
  ms: number,
): Promise<void> {
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `{${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        const left = await node.pttl(key);
        if (left < 0) continue;
        if (left <= ms) await node.del(key);
        else await node.pexpire(key, left - ms);
      }
    } while (cursor !== '0');
  }
}

/**
 * {@link advanceRedisTime} for a Redis delivery store: its due times are Redis `TIME`, so the
 * due index's scores move back by `ms` as well.
 */
export async function advanceDeliveryTime(
  redis: Redis | Cluster,
  prefix: string,
  ms: number,
): Promise<void> {
  await advanceRedisTime(redis, prefix, ms);
  const due = `{${prefix}:deliveries}:due`;
  const members = await redis.zrange(due, '0', '-1', 'WITHSCORES');
  for (let i = 0; i < members.length; i += 2) {
    await redis.zadd(due, String(Number(members[i + 1]) - ms), members[i] as string);
  }
}
