import { describe, expect, it, vi } from 'vitest';
import { createMemoryDeadLetterQueue } from '../../memory/dead-letter.js';
import { createMemoryDeliveryStore } from '../../memory/delivery-store.js';
import { createMemoryIdempotencyStore } from '../../memory/idempotency.js';
import { createManualClock } from '../../testing/index.js';
import { createWhatsAppClient } from '../client.js';
import type { CloudMessage } from '../endpoints.js';
import type { WhatsAppEvent } from '../events.js';
import { parseWebhook, type WebhookErrorDetail } from '../webhook.js';
import { applyDeliveryStatuses, getDelivery } from './delivery.js';
import { createDeliveryReconciler, type DeliveryReconcilerOptions } from './reconciler.js';
import { deliveryTag } from './tag.js';

const T = 1_750_263_000_000;
const GRACE = 60_000;
const STUCK = 600_000;
const message = (i: number): CloudMessage => ({
  to: `1650555${String(i).padStart(4, '0')}`,
  type: 'text',
  text: { body: `order ${i}` },
});

/** What the fake `fetch` does with one request. */
type Answer = 'accept' | 'timeout' | 'drop' | 'refused';

function setup(
  script: (n: number, body: Record<string, unknown>) => Answer = () => 'accept',
  reconcilerOptions: Partial<DeliveryReconcilerOptions> = {},
) {
  const clock = createManualClock(T);
  const deliveries = createMemoryDeliveryStore<CloudMessage, WebhookErrorDetail>({ clock });
  const dlq = createMemoryDeadLetterQueue<string>();
  const events: WhatsAppEvent[] = [];
  const onEvent = (e: WhatsAppEvent) => events.push(e);
  const requests: Record<string, unknown>[] = [];
  const fetch = (async (_url: string, init: { body: string }) => {
    const body = JSON.parse(init.body) as Record<string, unknown>;
    requests.push(body);
    const answer = script(requests.length, body);
    if (answer === 'timeout') throw new DOMException('Request timed out', 'TimeoutError');
    if (answer === 'drop') {
      throw new TypeError('fetch failed', { cause: { code: 'UND_ERR_SOCKET' } });
    }
    if (answer === 'refused') {
      throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
    }
    return new Response(JSON.stringify({ messages: [{ id: `wamid.${requests.length}` }] }), {
      status: 200,
    });
  }) as unknown as typeof globalThis.fetch;
  const client = createWhatsAppClient({
    accessToken: 'token',
    phoneNumberId: 'PN',
    fetch,
    deliveries,
    store: createMemoryIdempotencyStore({ clock }),
    dlq: createMemoryDeadLetterQueue<CloudMessage>(),
    retry: { maxAttempts: 3, backoff: { initialDelayMs: 0, jitter: 'none' } },
    onEvent,
    clock,
  });
  const reconciler = (extra: Partial<DeliveryReconcilerOptions> = {}) =>
    createDeliveryReconciler({
      deliveries,
      client,
      dlq,
      maxAttempts: 3,
      backoff: { initialDelayMs: 10_000, multiplier: 2, jitter: 'none' },
      timeoutGraceMs: GRACE,
      stuckAfterMs: STUCK,
      onEvent,
      clock,
      ...reconcilerOptions,
      ...extra,
    });
  const statuses = async (list: readonly Record<string, unknown>[]) =>
    applyDeliveryStatuses(
      deliveries,
      parseWebhook(
        JSON.stringify({
          object: 'whatsapp_business_account',
          entry: [
            {
              id: '1',
              changes: [
                {
                  field: 'messages',
                  value: { metadata: { phone_number_id: 'PN' }, statuses: list },
                },
              ],
            },
          ],
        }),
      ),
    );
  return { clock, deliveries, dlq, events, requests, client, reconciler, statuses };
}

const status = (
  wamid: string,
  name: string,
  extra: Record<string, unknown> = {},
  at = Math.floor(T / 1000) + 1,
) => ({ id: wamid, status: name, timestamp: String(at), recipient_id: '1', ...extra });
const failedWith = (code: number, title: string) => ({
  errors: [{ code, title, message: title, error_data: { details: title } }],
});

describe('closed-loop delivery: held timeouts', () => {
  it('holds a timed-out send instead of retrying it, and re-sends it once after the grace window', async () => {
    const { clock, client, deliveries, events, requests, reconciler } = setup((n) =>
      n === 1 ? 'timeout' : 'accept',
    );
    const result = await client.sendMessage(message(1), { idempotencyKey: 'order-1' });
    expect(result).toEqual({
      status: 'held',
      messageId: undefined,
      attempts: 1,
      deduplicated: false,
    });
    expect(requests).toHaveLength(1);
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'message_held', key: 'order-1', attemptId: 'order-1#1' }),
    );
    // A duplicate call learns it is held, and sends nothing.
    expect(await client.sendMessage(message(1), { idempotencyKey: 'order-1' })).toMatchObject({
      status: 'held',
      deduplicated: true,
    });
    const r = reconciler();
    expect((await r.runOnce()).claimed).toBe(0);
    await clock.advance(GRACE - 1_000);
    expect((await r.runOnce()).claimed).toBe(0);
    await clock.advance(1_000);
    expect(await r.runOnce()).toMatchObject({ claimed: 1, resent: 1 });
    expect(requests).toHaveLength(2);
    expect(requests[1]).toEqual(requests[0]);
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'message_resent',
        key: 'order-1',
        attemptId: 'order-1#2',
        cause: 'unconfirmed',
        messageId: 'wamid.2',
      }),
    );
    const delivery = await getDelivery(deliveries, 'order-1');
    expect(delivery?.attempts.map((a) => [a.attemptId, a.wamid, a.status])).toEqual([
      ['order-1#1', undefined, 'pending'],
      ['order-1#2', 'wamid.2', 'accepted'],
    ]);
    // Nothing more to do until the re-send could be stuck.
    await clock.advance(GRACE);
    expect((await r.runOnce()).claimed).toBe(0);
  });

  it('a late status for a held send attaches its wamid by tag: it is not sent again', async () => {
    const { clock, client, deliveries, events, requests, reconciler, statuses } = setup((n) =>
      n === 1 ? 'drop' : 'accept',
    );
    await client.sendMessage(message(2), { idempotencyKey: 'order-2' });
    const tag = await deliveryTag('order-2');
    expect(requests[0]?.biz_opaque_callback_data).toBe(`rk:${tag}`);
    const [outcome] = await statuses([
      status('wamid.lost', 'sent', { biz_opaque_callback_data: `rk:${tag}` }),
    ]);
    expect(outcome).toMatchObject({ outcome: 'applied', key: 'order-2' });
    const r = reconciler();
    await clock.advance(GRACE * 2);
    expect(await r.runOnce()).toMatchObject({ claimed: 1, waiting: 1, resent: 0 });
    expect(requests).toHaveLength(1);
    expect((await getDelivery(deliveries, 'order-2'))?.wamids).toEqual(['wamid.lost']);
    // Still only sent when the stuck time comes: one event, once.
    await clock.advance(STUCK);
    expect(await r.runOnce()).toMatchObject({ claimed: 1, stuck: 1 });
    await clock.advance(STUCK * 3);
    expect(await r.runOnce()).toMatchObject({ claimed: 0 });
    expect(events.filter((e) => e.type === 'message_stuck')).toEqual([
      expect.objectContaining({ key: 'order-2', messageId: 'wamid.lost', status: 'sent' }),
    ]);
    expect(requests).toHaveLength(1);
  });

  it('retries a refused connection at once: it never reached the API', async () => {
    const { client, clock, requests, events } = setup((n) => (n === 1 ? 'refused' : 'accept'));
    let settled = false;
    const sending = client.sendMessage(message(3), { idempotencyKey: 'order-3' }).finally(() => {
      settled = true;
    });
    // Real event-loop turns between the clock's: the correlation tag is hashed by crypto.subtle.
    for (let i = 0; i < 1_000 && !settled; i++) {
      await clock.advance(0);
      if (!settled) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const result = await sending;
    expect(result).toMatchObject({ status: 'accepted', messageId: 'wamid.2', attempts: 2 });
    expect(requests).toHaveLength(2);
    expect(events.some((e) => e.type === 'message_held')).toBe(false);
    // Real turns of a busy machine's event loop can take a while: up to 1,000 of them.
  }, 20_000);

  it('dead-letters a message whose sends all went unanswered, with each one in its history', async () => {
    const { clock, client, dlq, requests, reconciler } = setup(() => 'timeout');
    await client.sendMessage(message(4), { idempotencyKey: 'order-4' });
    const r = reconciler();
    for (let i = 0; i < 3; i++) {
      await clock.advance(GRACE);
      await r.runOnce();
    }
    expect(requests).toHaveLength(3);
    const entry = await dlq.get('order-4');
    expect(entry).toMatchObject({
      source: 'whatsapp.reconciler',
      disposition: 'exhausted',
      reason: 'timeout',
    });
    expect(entry?.attempts).toHaveLength(3);
    expect(JSON.parse(entry?.payload ?? '')).toEqual(message(4));
    await clock.advance(GRACE * 10);
    expect((await r.runOnce()).claimed).toBe(0);
  });
});

describe('closed-loop delivery: failed statuses', () => {
  it('re-sends after a transient failed status once its backoff passed, then dead-letters when attempts run out', async () => {
    const { clock, client, dlq, requests, reconciler, statuses, events } = setup();
    const sent = await client.sendMessage(message(5), { idempotencyKey: 'order-5' });
    const r = reconciler();
    const fail = (wamid: string, at: number) =>
      statuses([status(wamid, 'failed', failedWith(131000, 'Something went wrong'), at)]);
    await fail(sent.messageId as string, Math.floor(clock.now() / 1000));
    expect(await r.runOnce()).toMatchObject({ claimed: 1, waiting: 1 });
    await clock.advance(10_000);
    expect(await r.runOnce()).toMatchObject({ claimed: 1, resent: 1 });
    expect(requests).toHaveLength(2);
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'message_resent', cause: 'failed', attemptId: 'order-5#2' }),
    );
    // The second send fails too: its backoff doubles.
    await fail('wamid.2', Math.floor(clock.now() / 1000));
    await clock.advance(10_000);
    expect(await r.runOnce()).toMatchObject({ claimed: 1, waiting: 1 });
    await clock.advance(10_000);
    expect(await r.runOnce()).toMatchObject({ resent: 1 });
    await fail('wamid.3', Math.floor(clock.now() / 1000));
    expect(await r.runOnce()).toMatchObject({ claimed: 1, deadLettered: 1 });
    expect(requests).toHaveLength(3);
    const entry = await dlq.get('order-5');
    expect(entry).toMatchObject({ disposition: 'exhausted', source: 'whatsapp.reconciler' });
    expect(entry?.attempts.map((a) => a.errorCode)).toEqual([131000, 131000, 131000]);
  });

  it('closes a message on delivered, and on a permanent failed status: no re-send', async () => {
    const { clock, client, requests, reconciler, statuses } = setup();
    const a = await client.sendMessage(message(6), { idempotencyKey: 'order-6' });
    const b = await client.sendMessage(message(7), { idempotencyKey: 'order-7' });
    await statuses([
      status(a.messageId as string, 'delivered'),
      status(b.messageId as string, 'failed', failedWith(131026, 'Message undeliverable')),
    ]);
    await clock.advance(STUCK * 2);
    expect((await reconciler().runOnce()).claimed).toBe(0);
    expect(requests).toHaveLength(2);
  });

  it('a failed status of an older send does not wake the message', async () => {
    const { clock, client, requests, reconciler, statuses } = setup((n) =>
      n === 1 ? 'timeout' : 'accept',
    );
    await client.sendMessage(message(8), { idempotencyKey: 'order-8' });
    await clock.advance(GRACE);
    await reconciler().runOnce();
    await statuses([status('wamid.2', 'delivered')]);
    // The first send's status arrives late and says it failed: the message is delivered.
    const tag = await deliveryTag('order-8');
    await statuses([
      status('wamid.old', 'failed', {
        biz_opaque_callback_data: `rk:${tag}`,
        ...failedWith(131000, 'Something went wrong'),
      }),
    ]);
    await clock.advance(STUCK * 2);
    expect((await reconciler().runOnce()).claimed).toBe(0);
    expect(requests).toHaveLength(2);
  });
});

describe('closed-loop delivery: late statuses of an earlier send', () => {
  it('a message whose earlier send turns out delivered is neither sent again nor reported stuck', async () => {
    const { clock, client, events, requests, reconciler, statuses } = setup((n) =>
      n === 1 ? 'timeout' : 'accept',
    );
    await client.sendMessage(message(12), { idempotencyKey: 'order-12' });
    await clock.advance(GRACE);
    const r = reconciler();
    expect(await r.runOnce()).toMatchObject({ resent: 1 });
    // The first send's statuses come at last (the duplicate window): it was delivered.
    const tag = await deliveryTag('order-12');
    await statuses([status('wamid.first', 'delivered', { biz_opaque_callback_data: `rk:${tag}` })]);
    // The re-send then fails transiently, and never gets a status otherwise.
    await statuses([status('wamid.2', 'failed', failedWith(131000, 'Something went wrong'))]);
    expect(await r.runOnce()).toMatchObject({ claimed: 1, closed: 1 });
    await clock.advance(STUCK * 2);
    expect((await r.runOnce()).claimed).toBe(0);
    expect(requests).toHaveLength(2);
    expect(events.some((e) => e.type === 'message_stuck')).toBe(false);
  });
});

describe('closed-loop delivery: leases', () => {
  it('two reconcilers racing re-send each message once', async () => {
    const { clock, client, requests, reconciler } = setup((n) => (n <= 20 ? 'timeout' : 'accept'));
    for (let i = 0; i < 20; i++) {
      await client.sendMessage(message(100 + i), { idempotencyKey: `race-${i}` });
    }
    await clock.advance(GRACE);
    const a = reconciler({ batchSize: 7 });
    const b = reconciler({ batchSize: 7 });
    const rounds = await Promise.all([a.runOnce(), b.runOnce(), a.runOnce(), b.runOnce()]);
    expect(rounds.reduce((n, s) => n + s.resent, 0)).toBe(20);
    expect(requests).toHaveLength(40);
    const resent = requests.slice(20).map((r) => (r.to as string).slice(-4));
    expect(new Set(resent).size).toBe(20);
  });

  it('a reconciler that died holding a lease hands its records back when the lease runs out', async () => {
    const { clock, client, deliveries, requests, reconciler } = setup((n) =>
      n === 1 ? 'timeout' : 'accept',
    );
    await client.sendMessage(message(9), { idempotencyKey: 'order-9' });
    await clock.advance(GRACE);
    // The crashed one: claimed, then nothing.
    expect(await deliveries.claimDue({ limit: 10, leaseMs: 30_000 })).toHaveLength(1);
    const r = reconciler();
    expect((await r.runOnce()).claimed).toBe(0);
    await clock.advance(30_000);
    expect(await r.runOnce()).toMatchObject({ claimed: 1, resent: 1 });
    expect(requests).toHaveLength(2);
  });

  it('a retried job does not send a message whose send a dead process recorded: the reconciler alone re-sends it', async () => {
    // Found by the chaos soak: a worker SIGKILLed mid-send left attempt #1 (no wamid) in the
    // due index; the reconciler re-sent it as #2 (delivered), and once the claim's lease ran
    // out BullMQ's retry of the job sent it again as #3.
    for (const jobFirst of [false, true]) {
      const { clock, client, deliveries, requests, reconciler, statuses } = setup();
      const key = `crashed-${jobFirst}`;
      // The dead sender: begun and its attempt recorded, as the client does, then nothing.
      await deliveries.begin(key, message(7), { dueInMs: 120_000 });
      await deliveries.recordAttempt(
        key,
        { attemptId: `${key}#1`, at: clock.now() },
        { dueInMs: 120_000 },
      );
      await clock.advance(120_000);
      const job = () => client.sendMessage(message(7), { idempotencyKey: key });
      if (jobFirst) {
        expect(await job()).toMatchObject({ status: 'held', deduplicated: true });
        expect(requests).toHaveLength(0);
      }
      expect(await reconciler().runOnce()).toMatchObject({ claimed: 1, resent: 1 });
      if (!jobFirst) {
        // The re-send was accepted, and delivered (out of the due index): still not again.
        await statuses([status('wamid.1', 'delivered')]);
        expect(await job()).toMatchObject({
          status: 'accepted',
          messageId: 'wamid.1',
          deduplicated: true,
        });
      }
      expect(requests).toHaveLength(1);
      const delivery = await getDelivery(deliveries, key);
      expect(delivery?.attempts.map((a) => a.attemptId)).toEqual([`${key}#1`, `${key}#2`]);
    }
  });

  it('fences re-sends: a stale attempt count sends nothing', async () => {
    const { client, requests } = setup();
    await client.sendMessage(message(10), { idempotencyKey: 'order-10' });
    expect(await client.resendMessage('order-10', { afterAttempts: 0 })).toEqual({
      status: 'conflict',
    });
    expect(await client.resendMessage('nope', { afterAttempts: 0 })).toEqual({ status: 'missing' });
    expect(requests).toHaveLength(1);
    const again = await client.resendMessage('order-10', { afterAttempts: 1 });
    expect(again).toMatchObject({ status: 'accepted', attemptId: 'order-10#2' });
    expect(requests).toHaveLength(2);
  });

  it('start() runs rounds until stop()', async () => {
    const { clock, client, requests, reconciler } = setup((n) => (n === 1 ? 'timeout' : 'accept'));
    await client.sendMessage(message(11), { idempotencyKey: 'order-11' });
    const r = reconciler({ intervalMs: 1_000 });
    r.start();
    for (let i = 0; i < 60; i++) await clock.advance(1_000);
    // The re-send hashes its key with crypto.subtle (a real thread-pool task) before it goes out.
    await vi.waitFor(() => expect(requests).toHaveLength(2));
    expect(clock.now() - T).toBe(GRACE);
    await r.stop();
    await clock.advance(GRACE * 10);
    expect(clock.pending()).toEqual([]);
  });

  it('refuses bad options, naming the option and the value', () => {
    const { client, deliveries } = setup();
    expect(() => createDeliveryReconciler({ deliveries: {} as never, client })).toThrow(
      /deliveries must be a delivery store/,
    );
    expect(() => createDeliveryReconciler({ deliveries, client: {} as never })).toThrow(
      /client must be a WhatsApp client/,
    );
    expect(() => createDeliveryReconciler({ deliveries, client, maxAttempts: 0 })).toThrow(
      /maxAttempts must be .*, got 0/,
    );
    expect(() =>
      createDeliveryReconciler({ deliveries, client, stuckAfterMs: Number.NaN }),
    ).toThrow(/stuckAfterMs must be a number, got NaN/);
    expect(() =>
      createDeliveryReconciler({ deliveries, client, backoff: { multiplier: 0.5 } }),
    ).toThrow(/backoff.multiplier must be .*, got 0.5/);
    expect(() => createDeliveryReconciler({ deliveries, client, batchSize: 1.5 })).toThrow(
      /batchSize must be an integer, got 1.5/,
    );
    expect(() =>
      createWhatsAppClient({ accessToken: 't', phoneNumberId: 'p', timeoutGraceMs: -1 }),
    ).toThrow(/timeoutGraceMs must be .*, got -1/);
    expect(() =>
      createWhatsAppClient({ accessToken: 't', phoneNumberId: 'p' }).resendMessage('k', {
        afterAttempts: 0,
      }),
    ).toThrow(/resendMessage needs the client option deliveries/);
  });
});

describe('closed-loop delivery: one reconciler for several phone numbers', () => {
  /** Two clients for two numbers writing one store; requests are logged with their number. */
  function twoNumbers(script: (n: number) => Answer) {
    const clock = createManualClock(T);
    const deliveries = createMemoryDeliveryStore<CloudMessage, WebhookErrorDetail>({ clock });
    const sent: { number: string; to: unknown }[] = [];
    const fetch = (async (url: string, init: { body: string }) => {
      const number = String(url).split('/').at(-2) ?? '';
      sent.push({ number, to: (JSON.parse(init.body) as { to: unknown }).to });
      if (script(sent.length) === 'timeout') {
        throw new DOMException('Request timed out', 'TimeoutError');
      }
      return new Response(JSON.stringify({ messages: [{ id: `wamid.${sent.length}` }] }));
    }) as unknown as typeof globalThis.fetch;
    const clientOf = (phoneNumberId: string) =>
      createWhatsAppClient({
        accessToken: 'token',
        phoneNumberId,
        fetch,
        deliveries,
        retry: { maxAttempts: 1 },
        clock,
      });
    const errors: unknown[] = [];
    const reconciler = (extra: Partial<DeliveryReconcilerOptions>) =>
      createDeliveryReconciler({
        deliveries,
        timeoutGraceMs: GRACE,
        backoff: { initialDelayMs: 10_000, jitter: 'none' },
        onError: (e) => errors.push(e),
        clock,
        ...extra,
      });
    return {
      clock,
      deliveries,
      sent,
      errors,
      sales: clientOf('PN-SALES'),
      support: clientOf('PN-SUPPORT'),
      reconciler,
    };
  }

  it('re-sends each message through the client of the number that sent it', async () => {
    const { clock, deliveries, sent, errors, sales, support, reconciler } = twoNumbers((n) =>
      n <= 4 ? 'timeout' : 'accept',
    );
    expect(sales.phoneNumberId).toBe('PN-SALES');
    await sales.sendMessage(message(1), { idempotencyKey: 'a-1' });
    await support.sendMessage(message(2), { idempotencyKey: 'b-1' });
    await sales.sendMessage(message(3), { idempotencyKey: 'a-2' });
    await support.sendMessage(message(4), { idempotencyKey: 'b-2' });
    expect((await getDelivery(deliveries, 'b-1'))?.phoneNumberId).toBe('PN-SUPPORT');
    const r = reconciler({ clients: [support, sales] });
    await clock.advance(GRACE);
    expect(await r.runOnce()).toMatchObject({ claimed: 4, resent: 4, failed: 0 });
    // The re-sends of one round run at once: which number sent what, in any order.
    const byNumber = (number: string) =>
      sent
        .filter((s) => s.number === number)
        .map((s) => s.to)
        .sort();
    const twice = (...tos: string[]) => [...tos, ...tos].sort();
    expect(byNumber('PN-SALES')).toEqual(twice(message(1).to, message(3).to));
    expect(byNumber('PN-SUPPORT')).toEqual(twice(message(2).to, message(4).to));
    expect((await getDelivery(deliveries, 'a-2'))?.wamids).toHaveLength(1);
    expect(errors).toEqual([]);
  });

  it('leaves a message whose number has no client for a later round, reported once per round', async () => {
    const { clock, deliveries, sent, errors, sales, support, reconciler } = twoNumbers((n) =>
      n <= 3 ? 'timeout' : 'accept',
    );
    await support.sendMessage(message(1), { idempotencyKey: 'b-1' });
    await support.sendMessage(message(2), { idempotencyKey: 'b-2' });
    await sales.sendMessage(message(3), { idempotencyKey: 'a-1' });
    await clock.advance(GRACE);
    const onlySales = reconciler({ clients: [sales] });
    expect(await onlySales.runOnce()).toMatchObject({ claimed: 3, resent: 1, failed: 2 });
    expect(sent.slice(3)).toEqual([{ number: 'PN-SALES', to: message(3).to }]);
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/sender "PN-SUPPORT": 2 left for a later round/);
    // Kept, not dead-lettered: the single client with its own number does not take it either,
    // and a reconciler with its client re-sends it once the backoff has passed.
    const r = await getDelivery(deliveries, 'b-1');
    expect(r?.attempts).toHaveLength(1);
    await clock.advance(10_000);
    expect(await reconciler({ client: sales }).runOnce()).toMatchObject({ claimed: 2, failed: 2 });
    expect(errors).toHaveLength(2);
    await clock.advance(10_000);
    expect(await reconciler({ clients: [sales, support] }).runOnce()).toMatchObject({
      claimed: 2,
      resent: 2,
    });
    expect(sent.slice(4).map((s) => s.number)).toEqual(['PN-SUPPORT', 'PN-SUPPORT']);
  });

  it('sends a record without a sender through `client`, or the only one of `clients`', async () => {
    const { clock, deliveries, sent, errors, sales, support, reconciler } = twoNumbers(
      () => 'accept',
    );
    // Written before senders were recorded.
    await deliveries.begin('old', message(9), { dueInMs: 0 });
    await deliveries.recordAttempt('old', { attemptId: 'old#1', at: T });
    await clock.advance(GRACE);
    expect(await reconciler({ clients: [sales, support] }).runOnce()).toMatchObject({
      failed: 1,
    });
    expect(String(errors[0])).toMatch(/without a sender/);
    expect(sent).toEqual([]);
    await clock.advance(10_000);
    expect(await reconciler({ clients: [support] }).runOnce()).toMatchObject({ resent: 1 });
    expect(sent).toEqual([{ number: 'PN-SUPPORT', to: message(9).to }]);
  });

  it('takes exactly one of client and clients, each with its own number', () => {
    const { deliveries, sales, support } = twoNumbers(() => 'accept');
    const make = (extra: Partial<DeliveryReconcilerOptions>) => () =>
      createDeliveryReconciler({ deliveries, ...extra });
    expect(make({})).toThrow(/client \(one WhatsApp client\) or clients .* is required/);
    expect(make({ client: {} as never })).toThrow(
      /client must be a WhatsApp client \(resendMessage\), got/,
    );
    expect(make({ client: sales, clients: [support] })).toThrow(/client or clients, not both/);
    expect(make({ clients: [] })).toThrow(/clients must hold at least one client/);
    expect(make({ clients: sales as never })).toThrow(/clients must be an array/);
    expect(make({ clients: [sales, sales] })).toThrow(/"PN-SALES" is given twice/);
    expect(make({ clients: [{ resendMessage: sales.resendMessage } as never] })).toThrow(
      /clients\[0\]\.phoneNumberId must be a string, got undefined/,
    );
  });
});
