import { execFileSync } from 'node:child_process';
import { Queue } from 'bullmq';
import { expect, it, vi } from 'vitest';
import { connectRedis, describeRedis, redisUrl, uniquePrefix } from './support/redis.js';

/** The peer major this run is on: the `peers6` project sets 6; `integration` runs on 5. */
const major = process.env.RETRYKIT_PEER_MAJOR ?? '5';

describeRedis(`peer majors: ioredis ${major}, bullmq ${major}`, () => {
  it('talks to Redis through the ioredis of this run (ioredis 6 speaks RESP3)', async () => {
    const info = String(await connectRedis().client('INFO'));
    expect(info).toMatch(major === '6' ? / resp=3\b/ : / resp=2\b/);
  });

  it('runs queues on the bullmq of this run', async () => {
    const prefix = uniquePrefix('peers').replaceAll(':', '-');
    const queue = new Queue('peers', {
      connection: connectRedis(redisUrl, { maxRetriesPerRequest: null }),
      prefix,
    });
    await queue.waitUntilReady();
    const redis = connectRedis();
    await vi.waitFor(async () => {
      expect(await redis.hget(`${prefix}:peers:meta`, 'version')).toMatch(`bullmq:${major}.`);
    });
    await queue.close();
  });

  it('gives the processes tests spawn the same majors', () => {
    const resolved = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "console.log(import.meta.resolve('ioredis'), import.meta.resolve('bullmq'))",
      ],
      { encoding: 'utf8' },
    );
    const suffix = major === '6' ? '6' : '';
    expect(resolved).toContain(`/node_modules/ioredis${suffix}/`);
    expect(resolved).toContain(`/node_modules/bullmq${suffix}/`);
  });
});
