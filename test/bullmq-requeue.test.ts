import { Queue } from 'bullmq';
import { afterEach, expect, it } from 'vitest';
import { createDeadLetterRequeuer, RETRYKIT_JOB_OPTIONS } from '../src/bullmq/index.js';
import { createRedisDeadLetterQueue } from '../src/redis/index.js';
import { letter } from './support/dead-letter-contract.js';
import { connectRedis, describeRedis, redisUrl, uniquePrefix } from './support/redis.js';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

describeRedis('createDeadLetterRequeuer on a real BullMQ queue', () => {
  it('re-adds a BullMQ dead letter to its queue as a new job, with its name, payload and job options', async () => {
    const redis = connectRedis(redisUrl, { maxRetriesPerRequest: null });
    const prefix = uniquePrefix('requeue').replaceAll(':', '-');
    const dlq = createRedisDeadLetterQueue<{ n: number }>(redis, { prefix: `${prefix}:dlq` });
    await dlq.add(
      letter(41, 'server_error', {
        id: 'sends:41',
        origin: { kind: 'bullmq', queue: 'sends', jobId: '41', jobName: 'send' },
      }),
    );
    await dlq.add(
      letter(1, 'server_error', {
        id: 'webhook:1',
        origin: { kind: 'webhook', webhookId: 'w1' },
      }),
    );

    const requeuer = createDeadLetterRequeuer(redis, { prefix });
    closers.push(() => requeuer.close());
    const report = await dlq.redrive({ ids: ['sends:41', 'webhook:1'] }, async (entry) => {
      await requeuer.add(entry);
    });
    expect(report.redriven).toEqual(['sends:41']);
    expect(report.failed).toEqual(['webhook:1']);

    const queue = new Queue('sends', { connection: redis, prefix });
    closers.push(() => queue.close());
    const jobs = await queue.getJobs(['waiting']);
    expect(jobs.map((j) => [j.name, j.data, j.opts.attempts, j.opts.backoff])).toEqual([
      ['send', { n: 41 }, RETRYKIT_JOB_OPTIONS.attempts, RETRYKIT_JOB_OPTIONS.backoff],
    ]);
  });

  it('refuses an entry without a BullMQ origin, and bad options, naming them', async () => {
    const redis = connectRedis(redisUrl, { maxRetriesPerRequest: null });
    const dlq = createRedisDeadLetterQueue<{ n: number }>(redis, { prefix: uniquePrefix('rq') });
    await dlq.add(letter(7, 'server_error', { id: 'x', origin: { kind: 'send', key: 'k' } }));
    const entry = await dlq.get('x');
    if (entry === undefined) throw new Error('the dead letter was not stored');
    const requeuer = createDeadLetterRequeuer(redis);
    await expect(requeuer.add(entry)).rejects.toThrow(
      /dead letter x did not come from a BullMQ job/,
    );
    await requeuer.close();
    expect(() => createDeadLetterRequeuer(redis, { prefix: '' })).toThrow(/prefix.*""/);
    expect(() => createDeadLetterRequeuer(null as never)).toThrow(/connection.*null/);
  });
});
