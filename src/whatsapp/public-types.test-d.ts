import type { Request } from 'express';
import type { ParsedQs } from 'qs';
import { describe, expectTypeOf, it } from 'vitest';
import { createMemoryDeliveryStore } from '../memory/delivery-store.js';
import { createRedisDeliveryStore } from '../redis/delivery-store.js';
import {
  applyDeliveryStatuses,
  type CloudMessage,
  createDeliveryReconciler,
  createWebhookHandler,
  createWhatsAppClient,
  type DeliveryStatusOutcome,
  getDelivery,
  handleVerificationRequest,
  type MalformedWebhookItem,
  type MessageStatus,
  parseWebhook,
  type ReconcileSummary,
  reduceStatus,
  type SendResult,
  type StatusUpdate,
  type WasenderMessage,
  type WebhookUpdate,
  type WhatsAppDelivery,
  type WhatsAppDeliveryStore,
  wasenderEndpoint,
} from './index.js';

describe('retrykit/whatsapp public types', () => {
  it('the client takes the payload type of its endpoint', () => {
    const cloud = createWhatsAppClient({ accessToken: 't', phoneNumberId: 'p' });
    expectTypeOf(cloud.sendMessage).parameter(0).toEqualTypeOf<CloudMessage>();
    expectTypeOf(cloud.sendMessage({ to: '1', type: 'text' })).toEqualTypeOf<Promise<SendResult>>();
    const wasender = createWhatsAppClient({
      phoneNumberId: 'session',
      endpoint: wasenderEndpoint({ apiKey: 'k' }),
    });
    expectTypeOf(wasender.sendMessage).parameter(0).toEqualTypeOf<WasenderMessage>();
  });

  it('a send result is accepted with a wamid, or held without one', () => {
    const result = {} as SendResult;
    expectTypeOf(result.messageId).toEqualTypeOf<string | undefined>();
    if (result.status === 'accepted') expectTypeOf(result.messageId).toEqualTypeOf<string>();
    else expectTypeOf(result.messageId).toEqualTypeOf<undefined>();
  });

  it('a delivery reconciler takes a WhatsApp client and a delivery store of either adapter', () => {
    const client = createWhatsAppClient({ accessToken: 't', phoneNumberId: 'p' });
    const deliveries: WhatsAppDeliveryStore = createMemoryDeliveryStore();
    const reconciler = createDeliveryReconciler({ deliveries, client });
    expectTypeOf(reconciler.runOnce).returns.resolves.toEqualTypeOf<ReconcileSummary>();
    const onRedis: WhatsAppDeliveryStore = createRedisDeliveryStore({} as never, { prefix: 'p' });
    createDeliveryReconciler({ deliveries: onRedis, client });
  });

  it('webhook updates are a union discriminated on kind', () => {
    const update = {} as WebhookUpdate;
    if (update.kind === 'status') expectTypeOf(update.status).toEqualTypeOf<MessageStatus>();
    if (update.kind === 'message') {
      expectTypeOf(update.senderId).toEqualTypeOf<string>();
      expectTypeOf(update.from).toEqualTypeOf<string | undefined>();
    }
    if (update.kind === 'unknown') expectTypeOf(update.field).toEqualTypeOf<string>();
    if (update.kind === 'error') expectTypeOf(update.errorCode).toEqualTypeOf<number>();
  });

  it('parseWebhook returns updates and malformed items; the handshake takes any query', () => {
    const parsed = parseWebhook('{}');
    expectTypeOf(parsed.updates).toEqualTypeOf<readonly WebhookUpdate[]>();
    expectTypeOf(parsed.malformed).toEqualTypeOf<readonly MalformedWebhookItem[]>();
    expectTypeOf(handleVerificationRequest(null, 't').status).toEqualTypeOf<number>();
    // What Express 5 hands over under strict settings: `req.query` is a `ParsedQs`, and an
    // environment variable is `string | undefined`.
    const req = {} as Request;
    expectTypeOf(req.query).toEqualTypeOf<ParsedQs>();
    handleVerificationRequest(req.query, process.env.WHATSAPP_VERIFY_TOKEN);
    createWebhookHandler<{ id: string }>({
      verify: () => true,
      parse: () => ({ updates: [{ id: 'x' }], malformed: [] }),
      dedupeKey: (u) => u.id,
      store: {} as never,
      enqueue: () => {},
    });
  });

  it('reduceStatus keeps the caller type', () => {
    expectTypeOf(reduceStatus<StatusUpdate>).returns.toEqualTypeOf<StatusUpdate>();
  });

  it('a custom webhook parser types enqueue', () => {
    createWebhookHandler<{ id: string }>({
      verify: () => true,
      parse: () => [{ id: 'x' }],
      dedupeKey: (u) => u.id,
      store: {} as never,
      enqueue: (updates) => {
        expectTypeOf(updates).toEqualTypeOf<readonly { id: string }[]>();
      },
    });
  });

  it('delivery records keep the payload type, on either store', () => {
    const redis: WhatsAppDeliveryStore<CloudMessage> = createRedisDeliveryStore({} as never, {
      prefix: 'p',
    });
    expectTypeOf(getDelivery(redis, 'k')).toEqualTypeOf<
      Promise<WhatsAppDelivery<CloudMessage> | undefined>
    >();
    expectTypeOf(applyDeliveryStatuses(redis, parseWebhook('{}'))).toEqualTypeOf<
      Promise<DeliveryStatusOutcome[]>
    >();
    const memory: WhatsAppDeliveryStore<CloudMessage> = createMemoryDeliveryStore();
    expectTypeOf(getDelivery(memory, 'k')).toEqualTypeOf<
      Promise<WhatsAppDelivery<CloudMessage> | undefined>
    >();
    // @ts-expect-error: a store typed with other errors than WhatsApp's webhook errors
    getDelivery(createMemoryDeliveryStore<CloudMessage, { code: string }>(), 'k');
  });
});
