import { afterEach, expect, it, vi } from 'vitest';
import { startFakeWhatsApp } from '../examples/support/fake-whatsapp.js';
import {
  BulkheadRejectedError,
  createBulkhead,
  createMemoryDeadLetterQueue,
} from '../src/index.js';
import { type CloudMessage, createWhatsAppClient } from '../src/whatsapp/index.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

const message = (i: number): CloudMessage => ({
  to: `49151000${i}`,
  type: 'text',
  text: { body: `hi ${i}` },
});

it('caps the sends of a phone number in flight to a hung Cloud API, per number', async () => {
  const fake = await startFakeWhatsApp({ faults: { hang: 1 } });
  cleanups.push(() => fake.close());
  const bulkhead = createBulkhead({ maxConcurrent: 3, maxQueued: 2 });
  const dlq = createMemoryDeadLetterQueue<CloudMessage>();
  const clientFor = (phoneNumberId: string) =>
    createWhatsAppClient({
      accessToken: fake.accessToken,
      phoneNumberId,
      baseUrl: fake.url,
      bulkhead,
      dlq,
      retry: { maxAttempts: 1 },
    });
  const a = clientFor('PN-A');
  const b = clientFor('PN-B');
  const controllers = Array.from({ length: 10 }, () => new AbortController());
  const sends = controllers.map((c, i) => {
    const p = a.sendMessage(message(i), { signal: c.signal });
    p.catch(() => {});
    return p;
  });
  const other = new AbortController();
  const fromB = b.sendMessage(message(99), { signal: other.signal });
  fromB.catch(() => {});

  // Three reach the API, two wait, five are refused at once: nothing sent, nothing dead-lettered.
  for (const refused of sends.slice(5)) {
    await expect(refused).rejects.toBeInstanceOf(BulkheadRejectedError);
  }
  await vi.waitFor(() => expect(fake.arrivals.get('PN-A')).toHaveLength(3));
  await vi.waitFor(() => expect(fake.arrivals.get('PN-B')).toHaveLength(1));
  expect(bulkhead.stats('PN-A')).toEqual({ running: 3, queued: 2 });

  const leaving = new Error('caller left');
  controllers[3]?.abort(leaving);
  await expect(sends[3]).rejects.toBe(leaving);
  expect(bulkhead.stats('PN-A')).toEqual({ running: 3, queued: 1 });

  // A running send aborted frees its slot: the oldest waiter goes out.
  controllers[0]?.abort(new Error('shutdown'));
  await expect(sends[0]).rejects.toThrow('shutdown');
  await vi.waitFor(() => expect(fake.arrivals.get('PN-A')).toHaveLength(4));
  expect(bulkhead.stats('PN-A')).toEqual({ running: 3, queued: 0 });

  for (const c of [...controllers, other]) c.abort(new Error('shutdown'));
  await Promise.allSettled([...sends, fromB]);
  expect(bulkhead.size).toBe(0);
  expect(fake.arrivals.get('PN-A')).toHaveLength(4);
  expect(await dlq.size()).toBe(0);
});
