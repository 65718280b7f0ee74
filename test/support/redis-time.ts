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
