import { describe, expect, it } from 'vitest';
import { createMemoryDeliveryStore } from '../../memory/delivery-store.js';
import { createManualClock } from '../../testing/index.js';
import { parseWebhook, type WebhookErrorDetail } from '../webhook.js';
import { applyDeliveryStatuses, getDelivery } from './delivery.js';

const T = 1_750_263_000_000;

function statusWebhook(statuses: readonly Record<string, unknown>[]) {
  return JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [
      {
        id: '102290129340398',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550783881', phone_number_id: '106540352242922' },
              statuses,
            },
          },
        ],
      },
    ],
  });
}

const status = (id: string, value: string, seconds: number, extra = {}) => ({
  id,
  status: value,
  timestamp: String(seconds),
  recipient_id: '16505551234',
  ...extra,
});

const UNDELIVERABLE = {
  code: 131026,
  title: 'Message undeliverable',
  message: 'Message undeliverable',
  error_data: { details: 'Message Undeliverable.' },
};

const setup = () => {
  const clock = createManualClock(T);
  return createMemoryDeliveryStore<{ to: string }, WebhookErrorDetail>({ clock });
};

describe('getDelivery', () => {
  it('reads pending, then accepted, then the highest status a webhook reported', async () => {
    const store = setup();
    expect(await getDelivery(store, 'order-1')).toBeUndefined();
    await store.begin('order-1', { to: '16505551234' });
    expect(await getDelivery(store, 'order-1')).toEqual({
      key: 'order-1',
      payload: { to: '16505551234' },
      createdAt: T,
      phoneNumberId: undefined,
      status: 'pending',
      timestamps: {},
      attempts: [],
      wamids: [],
      errors: [],
    });
    await store.recordAttempt('order-1', { attemptId: 'order-1#1', at: T + 10 });
    expect((await getDelivery(store, 'order-1'))?.status).toBe('pending');
    await store.recordAttempt('order-1', { attemptId: 'order-1#1', externalId: 'wamid.A', at: T });
    expect((await getDelivery(store, 'order-1'))?.status).toBe('accepted');

    const outcomes = await applyDeliveryStatuses(
      store,
      parseWebhook(
        statusWebhook([
          status('wamid.A', 'read', 1_750_263_030),
          status('wamid.A', 'delivered', 1_750_263_020),
          status('wamid.A', 'read', 1_750_263_030),
          status('wamid.A', 'sent', 1_750_263_010),
        ]),
      ),
    );
    expect(outcomes.map((o) => [o.status, o.outcome, o.key])).toEqual([
      ['read', 'applied', 'order-1'],
      ['delivered', 'stale', 'order-1'],
      ['read', 'stale', 'order-1'],
      ['sent', 'stale', 'order-1'],
    ]);
    const delivery = await getDelivery(store, 'order-1');
    expect(delivery).toMatchObject({
      status: 'read',
      wamids: ['wamid.A'],
      timestamps: {
        sent: 1_750_263_010_000,
        delivered: 1_750_263_020_000,
        read: 1_750_263_030_000,
      },
    });
    expect(delivery?.attempts).toEqual([
      {
        attemptId: 'order-1#1',
        wamid: 'wamid.A',
        at: T + 10,
        status: 'read',
        timestamps: delivery?.timestamps,
        errors: [],
      },
    ]);
  });

  it('shows a failed send with its errors beside the re-send that was delivered', async () => {
    const store = setup();
    await store.begin('order-2', { to: '16505551234' });
    await store.recordAttempt('order-2', { attemptId: 'order-2#1', externalId: 'wamid.1', at: T });
    await applyDeliveryStatuses(
      store,
      parseWebhook(
        statusWebhook([status('wamid.1', 'failed', 1_750_263_005, { errors: [UNDELIVERABLE] })]),
      ).updates,
    );
    expect(await getDelivery(store, 'order-2')).toMatchObject({
      status: 'failed',
      errors: [{ errorCode: 131026, title: 'Message undeliverable' }],
    });
    await store.recordAttempt('order-2', {
      attemptId: 'order-2#2',
      externalId: 'wamid.2',
      at: T + 60_000,
    });
    await applyDeliveryStatuses(
      store,
      parseWebhook(statusWebhook([status('wamid.2', 'delivered', 1_750_263_070)])),
    );
    const delivery = await getDelivery(store, 'order-2');
    expect(delivery?.status).toBe('delivered');
    expect(delivery?.wamids).toEqual(['wamid.1', 'wamid.2']);
    expect(delivery?.attempts.map((a) => a.status)).toEqual(['failed', 'delivered']);
    expect(delivery?.errors).toEqual([
      {
        errorCode: 131026,
        title: 'Message undeliverable',
        message: 'Message undeliverable',
        details: 'Message Undeliverable.',
      },
    ]);
  });

  it('reports a status for a wamid no record has as unknown, and ignores other updates', async () => {
    const store = setup();
    const body = JSON.parse(statusWebhook([status('wamid.stranger', 'sent', 1_750_263_000)]));
    body.entry[0].changes[0].value.messages = [
      {
        from: '16505551234',
        id: 'wamid.IN',
        timestamp: '1750263000',
        type: 'text',
        text: { body: 'hi' },
      },
    ];
    const parsed = parseWebhook(JSON.stringify(body));
    expect(parsed.updates).toHaveLength(2);
    expect(await applyDeliveryStatuses(store, parsed.updates)).toEqual([
      { wamid: 'wamid.stranger', status: 'sent', outcome: 'unknown', key: undefined },
    ]);
    expect(store.size).toBe(0);
    await expect(getDelivery(store, '')).rejects.toThrow(/key must not be empty/);
  });
});
