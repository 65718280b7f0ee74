import { expect, it } from 'vitest';
import { connectRedis, describeOwnRedis, ownRedisServer, ready } from '../support/redis.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

// The fault tools themselves: each must produce the fault the other fault tests rely on.
describeOwnRedis('fault harness', () => {
  it('CLIENT PAUSE holds a command and runs it when the pause ends', async () => {
    const server = await ownRedisServer();
    const redis = connectRedis(server.url);
    await ready(redis);
    await server.pause(300);
    const started = performance.now();
    await redis.set('k', 'v');
    expect(performance.now() - started).toBeGreaterThanOrEqual(200);
    expect(await redis.get('k')).toBe('v');
  });

  it('a dropped reply and a cut connection make ioredis send the command again', async () => {
    const server = await ownRedisServer();
    const proxy = await startTcpProxy(server.port);
    const redis = connectRedis(proxy.url, { maxRetriesPerRequest: 5 });
    await ready(redis);
    proxy.dropReplies(1);
    const pending = redis.incr('counter');
    await proxy.dropped();
    proxy.cut();
    expect(await pending).toBe(2);
    const direct = connectRedis(server.url);
    expect(await direct.get('counter')).toBe('2');
  });

  it('a server with an append-only file keeps its keys across SIGKILL and restart', async () => {
    const server = await ownRedisServer({ appendonly: true });
    const redis = connectRedis(server.url, { maxRetriesPerRequest: 50 });
    await ready(redis);
    await redis.set('kept', '1');
    await server.kill();
    await server.start();
    expect(await redis.get('kept')).toBe('1');
  });

  it('a server without persistence comes back empty', async () => {
    const server = await ownRedisServer();
    const redis = connectRedis(server.url, { maxRetriesPerRequest: 50 });
    await ready(redis);
    await redis.set('lost', '1');
    await server.kill();
    await server.start();
    expect(await redis.get('lost')).toBeNull();
  });
});
