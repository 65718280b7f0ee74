import { expect, it } from 'vitest';
import { createRedisDeliveryStore } from '../src/redis/index.js';
import {
  applyDeliveryStatuses,
  getDelivery,
  parseWebhook,
  type WebhookErrorDetail,
  type WhatsAppDeliveryStore,
} from '../src/whatsapp/index.js';
import { connectRedis, describeRedis, uniquePrefix } from './support/redis.js';

const body = (statuses: readonly Record<string, unknown>[]) =>
  JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [
      {
        id: '102290129340398',
        changes: [
          {
            field: 'messages',
            value: { metadata: { phone_number_id: '106540352242922' }, statuses },
          },
        ],
      },
    ],
  });

describeRedis('WhatsApp delivery records on Redis', () => {
  it('a sender and a webhook handler in two processes share one record per message', async () => {
    const prefix = uniquePrefix('wa-delivery');
    const sender: WhatsAppDeliveryStore<{ to: string }> = createRedisDeliveryStore<
      { to: string },
      WebhookErrorDetail
    >(connectRedis(), { prefix });
    const webhooks: WhatsAppDeliveryStore = createRedisDeliveryStore(connectRedis(), { prefix });

    await sender.begin('order-7', { to: '16505551234' });
    await sender.recordAttempt('order-7', {
      attemptId: 'order-7#1',
      externalId: 'wamid.7a',
      at: Date.now(),
    });
    const failed = {
      id: 'wamid.7a',
      status: 'failed',
      timestamp: '1750263005',
      errors: [{ code: 131000, title: 'Something went wrong' }],
    };
    const outcomes = await applyDeliveryStatuses(
      webhooks,
      parseWebhook(
        body([
          failed,
          { id: 'wamid.7a', status: 'sent', timestamp: '1750263001' },
          failed,
          { id: 'wamid.other', status: 'sent', timestamp: '1750263001' },
        ]),
      ),
    );
    expect(outcomes.map((o) => o.outcome)).toEqual(['applied', 'stale', 'stale', 'unknown']);
    await sender.recordAttempt('order-7', {
      attemptId: 'order-7#2',
      externalId: 'wamid.7b',
      at: Date.now(),
    });
    await applyDeliveryStatuses(
      webhooks,
      parseWebhook(body([{ id: 'wamid.7b', status: 'delivered', timestamp: '1750263065' }])),
    );

    const delivery = await getDelivery(sender, 'order-7');
    expect(delivery).toMatchObject({
      key: 'order-7',
      payload: { to: '16505551234' },
      status: 'delivered',
      timestamps: { delivered: 1_750_263_065_000 },
      wamids: ['wamid.7a', 'wamid.7b'],
      errors: [{ errorCode: 131000, title: 'Something went wrong' }],
    });
    expect(delivery?.attempts.map((a) => [a.status, a.timestamps])).toEqual([
      ['failed', { sent: 1_750_263_001_000, failed: 1_750_263_005_000 }],
      ['delivered', { delivered: 1_750_263_065_000 }],
    ]);
    expect(Math.abs((delivery?.createdAt ?? 0) - Date.now())).toBeLessThan(5_000);
  });
});
