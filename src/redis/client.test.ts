import { describe, expect, it } from 'vitest';
import { fromNodeRedis, type NodeRedisLike } from './client.js';

describe('fromNodeRedis', () => {
  it('maps EVALSHA, EVAL and SET onto the node-redis call shapes', async () => {
    const calls: unknown[][] = [];
    const nodeRedis: NodeRedisLike = {
      evalSha: async (...args) => calls.push(['evalSha', ...args]),
      eval: async (...args) => calls.push(['eval', ...args]),
      set: async (...args) => calls.push(['set', ...args]),
    };
    const client = fromNodeRedis(nodeRedis);
    await client.evalsha('abc', 2, 'k1', 'k2', 5, 'x');
    await client.eval('return 1', 0, 7);
    await client.set?.('k', 'v', 'PX', 250, 'NX');
    expect(calls).toEqual([
      ['evalSha', 'abc', { keys: ['k1', 'k2'], arguments: ['5', 'x'] }],
      ['eval', 'return 1', { keys: [], arguments: ['7'] }],
      ['set', 'k', 'v', { PX: 250, NX: true }],
    ]);
  });
});
