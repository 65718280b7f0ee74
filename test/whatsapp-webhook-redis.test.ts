import { createHmac } from 'node:crypto';
import { expect, it } from 'vitest';
import { createRedisIdempotencyStore } from '../src/redis/index.js';
import { createWebhookHandler, type WebhookUpdate } from '../src/whatsapp/index.js';
import { connectRedis, describeRedis, uniquePrefix } from './support/redis.js';

const SECRET = 'redis-webhook-secret';

function statusBody(wamids: readonly string[]): string {
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
              statuses: wamids.flatMap((id) => [
                { id, status: 'sent', timestamp: '1700000000', recipient_id: '4915' },
                { id, status: 'delivered', timestamp: '1700000001', recipient_id: '4915' },
              ]),
            },
          },
        ],
      },
    ],
  });
}

const headers = (body: string) => ({
  'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`,
});

describeRedis('createWebhookHandler on the Redis idempotency store', () => {
  it('enqueues each update once across 20 concurrent deliveries, answering 503 while another holds it', async () => {
    const store = createRedisIdempotencyStore(connectRedis(), { prefix: uniquePrefix('wa-hook') });
    const queued: WebhookUpdate[] = [];
    const handle = createWebhookHandler({
      appSecret: SECRET,
      store,
      enqueue: async (updates) => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        queued.push(...updates);
      },
    });
    const body = statusBody(['wamid.A', 'wamid.B', 'wamid.C']);
    const results = await Promise.all(
      Array.from({ length: 20 }, () => handle({ body, headers: headers(body) })),
    );
    // A delivery that finds another one's claim at work is answered 503, never 200: only the
    // holder knows whether its enqueue succeeds. Meta delivers those again.
    for (const result of results.filter((r) => r.status !== 200)) {
      expect(result).toMatchObject({ status: 503, outcome: 'in_progress', enqueued: 0 });
      expect(Number(result.headers?.['Retry-After'])).toBeGreaterThanOrEqual(1);
    }
    expect(results.reduce((n, r) => n + r.enqueued, 0)).toBe(6);
    for (const _ of results.filter((r) => r.status !== 200)) {
      expect(await handle({ body, headers: headers(body) })).toMatchObject({
        status: 200,
        outcome: 'duplicate',
        duplicates: 6,
      });
    }
    expect(queued.map((u) => (u.kind === 'status' ? `${u.id}:${u.status}` : '')).sort()).toEqual([
      'wamid.A:delivered',
      'wamid.A:sent',
      'wamid.B:delivered',
      'wamid.B:sent',
      'wamid.C:delivered',
      'wamid.C:sent',
    ]);
    expect(results.reduce((n, r) => n + r.duplicates + r.inProgress + r.enqueued, 0)).toBe(20 * 6);
    const later = await handle({ body, headers: headers(body) });
    expect(later).toMatchObject({ status: 200, outcome: 'duplicate', duplicates: 6 });
  });

  it('answers 500 when enqueue fails and processes the redelivery', async () => {
    const store = createRedisIdempotencyStore(connectRedis(), { prefix: uniquePrefix('wa-hook') });
    const queued: WebhookUpdate[] = [];
    let fail = true;
    const handle = createWebhookHandler({
      appSecret: SECRET,
      store,
      enqueue: (updates) => {
        if (fail) throw new Error('queue down');
        queued.push(...updates);
      },
    });
    const body = statusBody(['wamid.X']);
    expect(await handle({ body, headers: headers(body) })).toMatchObject({
      status: 500,
      outcome: 'failed',
    });
    fail = false;
    expect(await handle({ body, headers: headers(body) })).toMatchObject({
      status: 200,
      enqueued: 2,
    });
    expect(queued).toHaveLength(2);
  });
});
