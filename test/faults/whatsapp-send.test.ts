import type { RedisOptions } from 'ioredis';
import { afterEach, expect, it } from 'vitest';
import { type FakeWhatsApp, startFakeWhatsApp } from '../../examples/support/fake-whatsapp.js';
import { IdempotencyInProgressError, StoreUnavailableError } from '../../src/index.js';
import { createRedisIdempotencyStore } from '../../src/redis/index.js';
import { type CloudMessage, createWhatsAppClient } from '../../src/whatsapp/index.js';
import {
  connectRedis,
  describeOwnRedis,
  ownRedisServer,
  ready,
  uniquePrefix,
} from '../support/redis.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

// The WhatsApp client's promise: one idempotency key, one message accepted by the Cloud API,
// whatever Redis does between the claim and the record of the wamid.
const LEASE = 30_000;

const fakes: FakeWhatsApp[] = [];
afterEach(async () => {
  await Promise.all(fakes.splice(0).map((f) => f.close()));
});

const message = (to: string): CloudMessage => ({
  messaging_product: 'whatsapp',
  to,
  type: 'text',
  text: { body: 'Your order shipped' },
});

async function setUp(options: {
  timeoutMs: number;
  waitForResultMs: number;
  appendonly?: boolean;
  redis?: RedisOptions;
}) {
  const server = await ownRedisServer({ appendonly: options.appendonly ?? false });
  const proxy = await startTcpProxy(server.port);
  const redis = connectRedis(proxy.url, { maxRetriesPerRequest: 5, ...options.redis });
  redis.on('error', () => {});
  await ready(redis);
  const fake = await startFakeWhatsApp({ seed: 3 });
  fakes.push(fake);
  let afterResponse: (() => Promise<void>) | undefined;
  const client = createWhatsAppClient({
    accessToken: fake.accessToken,
    phoneNumberId: '1001',
    baseUrl: fake.url,
    store: createRedisIdempotencyStore(redis, {
      prefix: uniquePrefix('wa-send'),
      commandTimeoutMs: options.timeoutMs,
    }),
    leaseMs: LEASE,
    waitForResultMs: options.waitForResultMs,
    fetch: async (input, init) => {
      const response = await fetch(input, init);
      const hook = afterResponse;
      afterResponse = undefined;
      await hook?.();
      return response;
    },
  });
  const acceptedFor = (to: string) => fake.accepted.filter((m) => m.to === to).length;
  return {
    server,
    proxy,
    redis,
    client,
    acceptedFor,
    onResponse: (f: () => Promise<void>) => {
      afterResponse = f;
    },
  };
}

/**
 * Retries as a caller would while Redis is unreachable or another call holds the key (the
 * orphaned claim is being freed), every 50 ms, up to 100 times.
 */
async function sendUntilFree(send: () => Promise<unknown>): Promise<unknown> {
  for (let i = 0; ; i++) {
    const answer = await send().catch((error: unknown) => error);
    const retryable =
      answer instanceof IdempotencyInProgressError || answer instanceof StoreUnavailableError;
    if (!retryable || i === 100) return answer;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describeOwnRedis(
  'createWhatsAppClient on Redis: one key, one accepted message, under faults',
  () => {
    it('a claim re-sent after its reply was lost still sends once', async () => {
      const { proxy, client, acceptedFor } = await setUp({ timeoutMs: 5000, waitForResultMs: 0 });
      proxy.dropReplies(1);
      const sending = client.sendMessage(message('15550000001'), { idempotencyKey: 'k1' });
      await proxy.dropped();
      proxy.cut();
      const first = await sending;
      expect(first.deduplicated).toBe(false);
      const again = await client.sendMessage(message('15550000001'), { idempotencyKey: 'k1' });
      expect(again).toMatchObject({ messageId: first.messageId, deduplicated: true });
      expect(acceptedFor('15550000001')).toBe(1);
    });

    it('Redis lost right after the API accepted: a duplicate gets the wamid once Redis is back', async () => {
      // Redis dies between the API's answer and the record of the wamid, and the client (no
      // offline queue) drops that record; the claim survives in the append-only file.
      const { server, client, acceptedFor, onResponse, redis } = await setUp({
        timeoutMs: 300,
        waitForResultMs: 0,
        appendonly: true,
        redis: { enableOfflineQueue: false, maxRetriesPerRequest: 0 },
      });
      onResponse(() => server.kill());
      const first = await client.sendMessage(message('15550000002'), { idempotencyKey: 'k2' });
      expect(first.deduplicated).toBe(false);
      await server.start();
      await ready(redis);
      const again = await sendUntilFree(() =>
        client.sendMessage(message('15550000002'), { idempotencyKey: 'k2' }),
      );
      expect(again).toMatchObject({ messageId: first.messageId, deduplicated: true });
      expect(acceptedFor('15550000002')).toBe(1);
    });

    it('a claim that timed out on a paused Redis sends nothing; the retry sends once, without waiting out the lease', async () => {
      const { server, client, acceptedFor } = await setUp({ timeoutMs: 200, waitForResultMs: 0 });
      await server.pause(700);
      await expect(
        client.sendMessage(message('15550000003'), { idempotencyKey: 'k3' }),
      ).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(acceptedFor('15550000003')).toBe(0);
      const started = performance.now();
      const retry = await sendUntilFree(() =>
        client.sendMessage(message('15550000003'), { idempotencyKey: 'k3' }),
      );
      expect(retry).toMatchObject({ deduplicated: false });
      expect(performance.now() - started).toBeLessThan(LEASE / 2);
      expect(acceptedFor('15550000003')).toBe(1);
    });
  },
);
