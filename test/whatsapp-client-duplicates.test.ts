import { afterEach, describe, expect, it } from 'vitest';
import {
  createMemoryDeadLetterQueue,
  createMemoryIdempotencyStore,
  type IdempotencyStore,
  PermanentError,
  RetryError,
  shouldHold,
} from '../src/index.js';
import { createRedisIdempotencyStore } from '../src/redis/index.js';
import {
  type CloudMessage,
  createWhatsAppClient,
  type WhatsAppEvent,
} from '../src/whatsapp/index.js';
import { connectRedis, redisUrl, uniquePrefix } from './support/redis.js';
import {
  type ScriptedAnswer,
  type ScriptedCloudApi,
  startScriptedCloudApi,
} from './support/scripted-cloud-api.js';

// A duplicate of a send (same idempotency key) never calls Meta again after a permanent
// failure, and never adds a second dead letter for one message.

const stores: Array<[string, () => IdempotencyStore]> = [
  ['memory', () => createMemoryIdempotencyStore({ maxEntries: 1000 })],
];
if (redisUrl) {
  stores.push([
    'Redis',
    () => createRedisIdempotencyStore(connectRedis(), { prefix: uniquePrefix('client-dup') }),
  ]);
}

let api: ScriptedCloudApi | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

const text = (to: string): CloudMessage => ({ to, type: 'text', text: { body: 'hi' } });

async function setup(store: IdempotencyStore, rememberFailures?: boolean) {
  // `gone` is undeliverable (131026); `down` answers 503 every time; `expired` gets 190.
  const answers: Record<string, ScriptedAnswer> = { gone: 131026, down: 503, expired: 190 };
  api = await startScriptedCloudApi((to) => answers[to] ?? 'accept');
  const events: WhatsAppEvent[] = [];
  const onEvent = (e: WhatsAppEvent) => {
    events.push(e);
  };
  const dlq = createMemoryDeadLetterQueue<CloudMessage>({ onEvent });
  const client = createWhatsAppClient({
    phoneNumberId: 'PN1',
    accessToken: 'test-token',
    baseUrl: api.url,
    store,
    dlq,
    onEvent,
    ...(rememberFailures === undefined ? {} : { rememberFailures }),
    retry: { maxAttempts: 2, backoff: { initialDelayMs: 1, maxDelayMs: 1, jitter: 'none' } },
  });
  const requests = (to: string) => api?.log.filter((r) => r.to === to).length ?? 0;
  const deadLetters = () => events.filter((e) => e.type === 'dead_letter').length;
  return { client, dlq, requests, deadLetters };
}

describe.each(stores)('WhatsApp client duplicates (%s idempotency store)', (_name, makeStore) => {
  it('answers a duplicate of a 131026 send with the same PermanentError, without calling Meta', async () => {
    const { client, dlq, requests, deadLetters } = await setup(makeStore());
    const first = await client
      .sendMessage(text('gone'), { idempotencyKey: 'order-1' })
      .catch((e: unknown) => e);
    expect(first).toBeInstanceOf(PermanentError);
    const again = await client
      .sendMessage(text('gone'), { idempotencyKey: 'order-1' })
      .catch((e: unknown) => e);
    expect(again).toBeInstanceOf(PermanentError);
    expect((again as PermanentError).classification).toEqual({
      retryable: false,
      reason: (first as PermanentError).classification?.reason,
      errorCode: 131026,
    });
    expect((first as PermanentError).classification?.errorCode).toBe(131026);
    expect((again as PermanentError).cause).toMatchObject({
      name: 'WhatsAppApiError',
      errorCode: 131026,
    });
    expect(requests('gone')).toBe(1);
    expect(await dlq.size()).toBe(1);
    expect(deadLetters()).toBe(1);
  });

  it('sends a duplicate of a send that ran out of retries again, with still one dead letter', async () => {
    const { client, dlq, requests, deadLetters } = await setup(makeStore());
    for (let i = 0; i < 2; i++) {
      const error = await client
        .sendMessage(text('down'), { idempotencyKey: 'order-2' })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RetryError);
    }
    expect(requests('down')).toBe(4);
    expect(await dlq.size()).toBe(1);
    expect(deadLetters()).toBe(1);
  });

  it('never keeps a held failure (an expired token): the duplicate sends again', async () => {
    const { client, dlq, requests, deadLetters } = await setup(makeStore());
    for (let i = 0; i < 2; i++) {
      const error = await client
        .sendMessage(text('expired'), { idempotencyKey: 'order-4' })
        .catch((e: unknown) => e);
      expect(shouldHold(error)).toBe(true);
    }
    expect(requests('expired')).toBe(2);
    expect(await dlq.size()).toBe(0);
    expect(deadLetters()).toBe(0);
  });

  it('with rememberFailures: false, sends the duplicate again; the queue still holds one entry', async () => {
    const { client, dlq, requests, deadLetters } = await setup(makeStore(), false);
    for (let i = 0; i < 2; i++) {
      await expect(
        client.sendMessage(text('gone'), { idempotencyKey: 'order-3' }),
      ).rejects.toBeInstanceOf(PermanentError);
    }
    expect(requests('gone')).toBe(2);
    expect(await dlq.size()).toBe(1);
    expect(deadLetters()).toBe(1);
  });
});

it('refuses a rememberFailures that is not a boolean, naming the value', () => {
  expect(() =>
    createWhatsAppClient({
      phoneNumberId: 'PN1',
      accessToken: 't',
      rememberFailures: 'yes' as never,
    }),
  ).toThrow('rememberFailures must be a boolean, got "yes"');
});
