import { expect, it } from 'vitest';
import { StoreUnavailableError } from '../src/index.js';
import { defineScript, runScript } from '../src/redis/script.js';
import { connectRedis, describeOwnRedis, describeRedis, ownRedisServer } from './support/redis.js';

const echo = defineScript('echo', "return ARGV[1] .. ':' .. KEYS[1]");

describeRedis('runScript', () => {
  it('runs a script through EVALSHA, loading it with EVAL after SCRIPT FLUSH', async () => {
    const redis = connectRedis();
    await redis.script('FLUSH');
    expect(await runScript(redis, echo, ['k'], ['v'], { operation: 'echo', timeoutMs: 1000 })).toBe(
      'v:k',
    );
    expect(await redis.script('EXISTS', echo.sha)).toEqual([1]);
    expect(
      await runScript(redis, echo, ['k2'], ['w'], { operation: 'echo', timeoutMs: 1000 }),
    ).toBe('w:k2');
  });
});

describeOwnRedis('runScript against a server in trouble', () => {
  it('rejects with StoreUnavailableError when the server is frozen, and recovers after', async () => {
    const server = await ownRedisServer();
    const redis = connectRedis(server.url, { maxRetriesPerRequest: 0 });
    expect(await runScript(redis, echo, ['k'], ['v'], { operation: 'echo', timeoutMs: 200 })).toBe(
      'v:k',
    );
    server.freeze();
    await expect(
      runScript(redis, echo, ['k'], ['v'], { operation: 'echo', timeoutMs: 200 }),
    ).rejects.toBeInstanceOf(StoreUnavailableError);
    server.thaw();
    expect(await runScript(redis, echo, ['k'], ['x'], { operation: 'echo', timeoutMs: 1000 })).toBe(
      'x:k',
    );
  });

  it('rejects with StoreUnavailableError when the server is down', async () => {
    const server = await ownRedisServer();
    const redis = connectRedis(server.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
    await server.stop();
    const error = await runScript(redis, echo, ['k'], ['v'], {
      operation: 'echo',
      timeoutMs: 500,
    }).catch((e: unknown) => e as StoreUnavailableError);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error).toMatchObject({ operation: 'echo' });
  });
});
