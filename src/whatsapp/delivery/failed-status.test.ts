import { describe, expect, it } from 'vitest';
import type {
  DeadLetterEntry,
  DeadLetterQueue,
  NewDeadLetter,
} from '../../core/dead-letter/dead-letter-types.js';
import { StoreUnavailableError } from '../../core/errors.js';
import { createMemoryDeadLetterQueue } from '../../memory/dead-letter.js';
import { createMemoryDeliveryStore } from '../../memory/delivery-store.js';
import { createMemoryIdempotencyStore } from '../../memory/idempotency.js';
import { createManualClock } from '../../testing/index.js';
import { signWebhookBody } from '../signature.js';
import type { WebhookErrorDetail } from '../webhook.js';
import { createWebhookHandler } from '../webhook-handler.js';
import { getDelivery } from './delivery.js';

const APP_SECRET = 'failed-status-secret';
const T = 1_750_263_000_000;
const PAYLOAD = { to: '16505551234', type: 'text', text: { body: 'Your order shipped' } };

const errorOf = (code: number, title: string) => ({
  code,
  title,
  message: title,
  error_data: { details: `${title}.` },
});
const UNDELIVERABLE = errorOf(131026, 'Message undeliverable');
const SOMETHING_WENT_WRONG = errorOf(131000, 'Something went wrong');
const ACCOUNT_LOCKED = errorOf(131031, 'Account has been locked');

const failed = (wamid: string, error: object, seconds = T / 1000 + 5) => ({
  id: wamid,
  status: 'failed',
  timestamp: String(seconds),
  recipient_id: '16505551234',
  errors: [error],
});

async function request(statuses: readonly object[]) {
  const body = JSON.stringify({
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
  return {
    body,
    headers: { 'x-hub-signature-256': `sha256=${await signWebhookBody(body, APP_SECRET)}` },
  };
}

function setup(dlq: DeadLetterQueue<string> = createMemoryDeadLetterQueue<string>()) {
  const clock = createManualClock(T);
  const deliveries = createMemoryDeliveryStore<typeof PAYLOAD, WebhookErrorDetail>({ clock });
  const handle = createWebhookHandler({
    appSecret: APP_SECRET,
    store: createMemoryIdempotencyStore({ clock }),
    enqueue: () => undefined,
    deliveries,
    dlq,
    clock,
  });
  const send = async (key: string, n: number, wamid: string) => {
    await deliveries.begin(key, PAYLOAD);
    await deliveries.recordAttempt(key, { attemptId: `${key}#${n}`, externalId: wamid, at: T });
  };
  return { clock, deliveries, handle, dlq, send };
}

describe('a failed status of a recorded send', () => {
  it('a permanent error dead-letters the message once, with its payload and history', async () => {
    const { handle, dlq, send, deliveries } = setup();
    await send('order-1', 1, 'wamid.A');
    expect((await handle(await request([failed('wamid.A', SOMETHING_WENT_WRONG)]))).status).toBe(
      200,
    );
    await send('order-1', 2, 'wamid.B');
    const result = await handle(await request([failed('wamid.B', UNDELIVERABLE)]));
    expect(result.status).toBe(200);
    expect(await dlq.size()).toBe(1);
    const entry = (await dlq.get('order-1')) as DeadLetterEntry<string>;
    expect(JSON.parse(entry.payload)).toEqual(PAYLOAD);
    expect(entry).toMatchObject({
      id: 'order-1',
      source: 'whatsapp.status',
      origin: { kind: 'status', key: 'order-1' },
      reason: 'client_error',
      disposition: 'permanent',
      firstAttemptAt: new Date(T + 5000).toISOString(),
      lastAttemptAt: new Date(T + 5000).toISOString(),
    });
    expect(entry.attempts).toEqual([
      expect.objectContaining({ errorCode: 131000, reason: 'server_error' }),
      expect.objectContaining({ errorCode: 131026, reason: 'client_error' }),
    ]);
    expect(entry.attempts[1]?.message).toContain('Message undeliverable');
    expect((await getDelivery(deliveries, 'order-1'))?.status).toBe('failed');
  });

  it('the same status again, in a redelivery or twice in one body, adds no second one', async () => {
    const added: NewDeadLetter<string>[] = [];
    const inner = createMemoryDeadLetterQueue<string>();
    const { handle, dlq, send } = setup({
      ...inner,
      add: (entry) => {
        added.push(entry);
        return inner.add(entry);
      },
    });
    await send('order-1', 1, 'wamid.A');
    const twice = await request([
      failed('wamid.A', UNDELIVERABLE),
      failed('wamid.A', UNDELIVERABLE),
    ]);
    expect((await handle(twice)).status).toBe(200);
    expect(added).toHaveLength(1);
    expect((await handle(twice)).status).toBe(200);
    expect(await dlq.size()).toBe(1);
    expect(new Set(added.map((e) => e.id))).toEqual(new Set(['order-1']));
  });

  it('a transient error is only recorded: nothing is dead-lettered', async () => {
    const { handle, dlq, send, deliveries } = setup();
    await send('order-1', 1, 'wamid.A');
    expect((await handle(await request([failed('wamid.A', SOMETHING_WENT_WRONG)]))).status).toBe(
      200,
    );
    expect(await dlq.size()).toBe(0);
    expect((await getDelivery(deliveries, 'order-1'))?.errors).toEqual([
      expect.objectContaining({ errorCode: 131000 }),
    ]);
  });

  it('an account-wide error is held like a send would be: nothing is dead-lettered', async () => {
    const { handle, dlq, send } = setup();
    await send('order-1', 1, 'wamid.A');
    expect((await handle(await request([failed('wamid.A', ACCOUNT_LOCKED)]))).status).toBe(200);
    expect(await dlq.size()).toBe(0);
  });

  it('a failed status of an earlier attempt, after a re-send, dead-letters nothing', async () => {
    const { handle, dlq, send } = setup();
    await send('order-1', 1, 'wamid.A');
    await send('order-1', 2, 'wamid.B');
    expect((await handle(await request([failed('wamid.A', UNDELIVERABLE)]))).status).toBe(200);
    expect(await dlq.size()).toBe(0);
  });

  it('a permanent failure of a re-send dead-letters nothing when an earlier send was delivered', async () => {
    const { handle, dlq, send, deliveries } = setup();
    // A held send that was in fact delivered, re-sent; the re-send fails as a duplicate.
    await send('order-1', 1, 'wamid.A');
    await send('order-1', 2, 'wamid.B');
    const delivered = { ...failed('wamid.A', {}, T / 1000 + 2), status: 'delivered', errors: [] };
    expect((await handle(await request([delivered]))).status).toBe(200);
    expect((await handle(await request([failed('wamid.B', UNDELIVERABLE)]))).status).toBe(200);
    expect(await dlq.size()).toBe(0);
    // Both in one body, the delivered one reported after the failure: the same.
    await send('order-2', 1, 'wamid.C');
    await send('order-2', 2, 'wamid.D');
    const late = { ...failed('wamid.C', {}, T / 1000 + 9), status: 'delivered', errors: [] };
    expect((await handle(await request([failed('wamid.D', UNDELIVERABLE), late]))).status).toBe(
      200,
    );
    expect(await dlq.size()).toBe(0);
    expect((await getDelivery(deliveries, 'order-2'))?.attempts.map((a) => a.status)).toEqual([
      'delivered',
      'failed',
    ]);
  });

  it('a failed status of a wamid no record has dead-letters nothing', async () => {
    const { handle, dlq } = setup();
    expect((await handle(await request([failed('wamid.X', UNDELIVERABLE)]))).status).toBe(200);
    expect(await dlq.size()).toBe(0);
  });

  it('a dead-letter queue that fails answers 500, and the redelivery dead-letters it once', async () => {
    const inner = createMemoryDeadLetterQueue<string>();
    let down = true;
    const queued: unknown[] = [];
    const clock = createManualClock(T);
    const deliveries = createMemoryDeliveryStore<typeof PAYLOAD, WebhookErrorDetail>({ clock });
    const handle = createWebhookHandler({
      appSecret: APP_SECRET,
      store: createMemoryIdempotencyStore({ clock }),
      enqueue: (batch) => {
        queued.push(...batch);
      },
      deliveries,
      dlq: {
        ...inner,
        add: (entry) =>
          down
            ? Promise.reject(new StoreUnavailableError('add', new Error('down')))
            : inner.add(entry),
      },
      clock,
    });
    await deliveries.begin('order-1', PAYLOAD);
    await deliveries.recordAttempt('order-1', {
      attemptId: 'order-1#1',
      externalId: 'wamid.A',
      at: T,
    });
    const delivery = await request([failed('wamid.A', UNDELIVERABLE)]);
    const refused = await handle(delivery);
    expect(refused).toMatchObject({ status: 500, outcome: 'failed', enqueued: 0 });
    expect(queued).toEqual([]);
    down = false;
    expect(await handle(delivery)).toMatchObject({ status: 200, enqueued: 1 });
    expect(await inner.size()).toBe(1);
    expect((await inner.get('order-1'))?.source).toBe('whatsapp.status');
  });
});
