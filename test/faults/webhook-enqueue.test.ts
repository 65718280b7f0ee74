import { createHmac } from 'node:crypto';
import { Queue } from 'bullmq';
import { expect, it } from 'vitest';
import { createRedisIdempotencyStore } from '../../src/redis/index.js';
import {
  createWebhookHandler,
  type WebhookUpdate,
  whatsAppDedupeKey,
} from '../../src/whatsapp/index.js';
import { connectRedis, describeRedis, ready, redisUrl, uniquePrefix } from '../support/redis.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

// Found by the chaos soak (docs/soak.md): redis-server SIGKILLed right after it ran a
// webhook's `addBulk`, before its reply left. ioredis re-sends a command whose reply never
// came once it reconnects, so the add ran twice and the update was queued twice behind one
// 200. A job ID derived from the update's dedupe key makes the re-sent add a no-op.
const SECRET = 'enqueue-secret';

function statusBody(wamid: string): string {
  return JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [
      {
        id: 'WABA',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '1555', phone_number_id: 'PN1' },
              statuses: [
                { id: wamid, status: 'sent', timestamp: '1700000000', recipient_id: '4915' },
                { id: wamid, status: 'delivered', timestamp: '1700000001', recipient_id: '4915' },
              ],
            },
          },
        ],
      },
    ],
  });
}

/**
 * Delivers one webhook whose `addBulk` reply is lost with its connection (the command ran),
 * and answers how many jobs the queue then holds.
 */
async function jobsAfterLostReply(withJobIds: boolean) {
  const proxy = await startTcpProxy(Number(new URL(redisUrl).port));
  const connection = connectRedis(proxy.url, { maxRetriesPerRequest: null });
  connection.on('error', () => {});
  await ready(connection);
  const queue = new Queue<WebhookUpdate>('updates', {
    connection,
    prefix: uniquePrefix('enqueue').replaceAll(':', '-'),
  });
  // Loads BullMQ's scripts, so the next reply on the wire is the webhook's add.
  await (await queue.add('warm-up', { kind: 'unknown' } as never)).remove();
  const handle = createWebhookHandler({
    appSecret: SECRET,
    store: createRedisIdempotencyStore(connectRedis(), { prefix: uniquePrefix('enqueue-hook') }),
    enqueue: (updates) =>
      queue.addBulk(
        updates.map((u) => {
          const key = whatsAppDedupeKey(u);
          return {
            name: u.kind,
            data: u,
            opts: withJobIds && key !== undefined ? { jobId: key.replaceAll(':', '-') } : {},
          };
        }),
      ),
  });
  const body = statusBody(`wamid.${Math.random().toString(36).slice(2)}`);
  const signature = createHmac('sha256', SECRET).update(body).digest('hex');
  proxy.loseReplies(1);
  const result = await handle({
    body,
    headers: { 'x-hub-signature-256': `sha256=${signature}` },
  });
  expect(result.status).toBe(200);
  const jobs = await queue.getJobs(['wait']);
  await queue.close();
  return jobs.length;
}

describeRedis('webhook enqueue when Redis ran the add and its reply was lost', () => {
  it('queues each update twice when the add is not idempotent (the fault is real)', async () => {
    expect(await jobsAfterLostReply(false)).toBe(4);
  });

  it('queues each update once with a job ID from whatsAppDedupeKey, as docs/whatsapp.md shows', async () => {
    expect(await jobsAfterLostReply(true)).toBe(2);
  });
});
