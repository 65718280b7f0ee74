import { createHmac } from 'node:crypto';
import { expect, it } from 'vitest';
import { createRedisIdempotencyStore } from '../../src/redis/index.js';
import {
  createWebhookHandler,
  type WebhookResult,
  type WebhookUpdate,
} from '../../src/whatsapp/index.js';
import { connectRedis, describeOwnRedis, ownRedisServer, ready } from '../support/redis.js';
import type { RedisServer } from '../support/redis-server.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

// Meta's side of a webhook under Redis faults: every answer other than 200 is delivered again,
// and a 200 must mean that every update of the body is queued. The lease is 30 s: a redelivery
// that had to wait it out would fail the test's few-second budget.
const SECRET = 'fault-secret';
const LEASE = 30_000;

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
              statuses: wamids.map((id) => ({
                id,
                status: 'sent',
                timestamp: '1700000000',
                recipient_id: '4915',
              })),
            },
          },
        ],
      },
    ],
  });
}

/** A handler on `url` with a queue that records what it got, and Meta's delivery loop. */
async function webhook(url: string, storeTimeoutMs: number, options: { retries?: number } = {}) {
  const redis = connectRedis(url, { maxRetriesPerRequest: options.retries ?? 1 });
  redis.on('error', () => {}); // reconnect attempts while the server is down
  await ready(redis);
  const store = createRedisIdempotencyStore(redis, {
    prefix: 'hook',
    commandTimeoutMs: storeTimeoutMs,
  });
  await store.claim('warm-up', { leaseMs: LEASE });
  await store.claim('warm-up', { leaseMs: LEASE });
  await store.release('warm-up', 'none');
  const queued: string[] = [];
  let beforeEnqueue: () => Promise<void> = async () => {};
  const handle = createWebhookHandler({
    appSecret: SECRET,
    store,
    leaseMs: LEASE,
    enqueue: async (updates) => {
      await beforeEnqueue();
      queued.push(...updates.map((u: WebhookUpdate) => (u.kind === 'status' ? u.id : u.kind)));
    },
  });
  const answers: WebhookResult[] = [];
  /** One delivery; a 200 must find every wamid of the body queued. */
  const deliver = async (wamids: readonly string[]): Promise<WebhookResult> => {
    const body = statusBody(wamids);
    const signature = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
    const result = await handle({ body, headers: { 'x-hub-signature-256': signature } });
    answers.push(result);
    if (result.status === 200) for (const id of wamids) expect(queued).toContain(id);
    return result;
  };
  /** Meta: delivers again, a little later each time, until answered 200 (within ~3 s). */
  const deliverUntilOk = async (wamids: readonly string[]): Promise<WebhookResult> => {
    let result = await deliver(wamids);
    for (let i = 0; i < 15 && result.status !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20 * (i + 1)));
      result = await deliver(wamids);
    }
    return result;
  };
  return {
    redis,
    queued,
    answers,
    deliver,
    deliverUntilOk,
    setBeforeEnqueue: (hook: () => Promise<void>) => {
      beforeEnqueue = hook;
    },
  };
}

describeOwnRedis('webhook claims under Redis faults', () => {
  it('a claim re-sent after a dropped reply is its own: the first delivery is queued and answered 200', async () => {
    const server = await ownRedisServer();
    const proxy = await startTcpProxy(server.port);
    const hook = await webhook(proxy.url, 5000, { retries: 5 });
    proxy.dropReplies(1);
    const first = hook.deliver(['wamid.A']);
    await proxy.dropped();
    proxy.cut();
    expect(await first).toMatchObject({ status: 200, outcome: 'enqueued', enqueued: 1 });
    expect(await hook.deliver(['wamid.A'])).toMatchObject({ status: 200, outcome: 'duplicate' });
    expect(hook.queued).toEqual(['wamid.A']);
  });

  it('a claim that timed out and was then re-sent after a dropped reply is released: the redelivery is queued once', async () => {
    const server = await ownRedisServer();
    const proxy = await startTcpProxy(server.port);
    const hook = await webhook(proxy.url, 150, { retries: 5 });
    // The SET takes the key, its reply is lost and the connection hangs past the timeout; on
    // reconnect ioredis sends it again and the copy finds the key taken.
    proxy.dropReplies(1);
    expect(await hook.deliver(['wamid.A'])).toMatchObject({ status: 500, outcome: 'failed' });
    await proxy.dropped();
    proxy.cut();
    await ready(hook.redis);
    expect(await hook.deliverUntilOk(['wamid.A'])).toMatchObject({ status: 200 });
    expect(hook.queued).toEqual(['wamid.A']);
  });

  const stalls: [string, (server: RedisServer) => Promise<() => Promise<void>>][] = [
    [
      'CLIENT PAUSE (the claim runs when the pause ends)',
      async (server) => {
        await server.pause(400);
        return async () => {};
      },
    ],
    [
      'SIGSTOP (the claim runs when the server thaws)',
      async (server) => {
        server.freeze();
        return async () => server.thaw();
      },
    ],
  ];
  for (const [name, stall] of stalls) {
    it(`a claim that timed out under ${name} is released: Meta's redelivery is queued once`, async () => {
      const server = await ownRedisServer();
      const hook = await webhook(server.url, 150);
      const resume = await stall(server);
      expect(await hook.deliver(['wamid.A', 'wamid.B'])).toMatchObject({
        status: 500,
        outcome: 'failed',
      });
      expect(hook.queued).toEqual([]);
      await resume();
      expect(await hook.deliverUntilOk(['wamid.A', 'wamid.B'])).toMatchObject({ status: 200 });
      expect(hook.queued.sort()).toEqual(['wamid.A', 'wamid.B']);
      expect(await hook.deliver(['wamid.A', 'wamid.B'])).toMatchObject({
        status: 200,
        outcome: 'duplicate',
      });
    });
  }

  it("a claim held in ioredis's offline queue while Redis restarts is released: the redelivery is queued once", async () => {
    const server = await ownRedisServer();
    const hook = await webhook(server.url, 150, { retries: 1000 });
    await server.kill();
    expect(await hook.deliver(['wamid.A'])).toMatchObject({ status: 500, outcome: 'failed' });
    await server.start();
    await ready(hook.redis);
    expect(await hook.deliverUntilOk(['wamid.A'])).toMatchObject({ status: 200 });
    expect(hook.queued).toEqual(['wamid.A']);
  });

  it('an update another delivery holds gets 503, and the body’s new updates are queued once', async () => {
    const server = await ownRedisServer();
    const hook = await webhook(server.url, 2000);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    hook.setBeforeEnqueue(() => gate);
    const slow = hook.deliver(['wamid.A']);
    // Wait until the slow delivery holds its claim.
    for (
      let i = 0;
      i < 200 && (await hook.redis.exists('{hook:whatsapp:webhook:status:wamid.A:sent}')) === 0;
      i++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    hook.setBeforeEnqueue(async () => {});
    const other = await hook.deliver(['wamid.A', 'wamid.B']);
    expect(other).toMatchObject({
      status: 503,
      outcome: 'in_progress',
      enqueued: 1,
      inProgress: 1,
    });
    expect(Number(other.headers?.['Retry-After'])).toBeGreaterThan(0);
    expect(Number(other.headers?.['Retry-After'])).toBeLessThanOrEqual(LEASE / 1000);
    release();
    expect(await slow).toMatchObject({ status: 200, enqueued: 1 });
    expect(await hook.deliverUntilOk(['wamid.A', 'wamid.B'])).toMatchObject({
      status: 200,
      outcome: 'duplicate',
      duplicates: 2,
    });
    expect(hook.queued.sort()).toEqual(['wamid.A', 'wamid.B']);
  });

  it('a complete the client gave up after the enqueue still answers 200, and is recorded in the background', async () => {
    const server = await ownRedisServer({ appendonly: true });
    const hook = await webhook(server.url, 5000);
    // Redis dies right after the queue took the update; the client drops the `complete` it
    // can't send (maxRetriesPerRequest), and the claim survives the restart in the AOF.
    hook.setBeforeEnqueue(() => server.kill());
    expect(await hook.deliver(['wamid.A'])).toMatchObject({ status: 200, enqueued: 1 });
    hook.setBeforeEnqueue(async () => {});
    await server.start();
    // Meta's redelivery (its own, or a duplicate it sends anyway) finds the update done.
    expect(await hook.deliverUntilOk(['wamid.A'])).toMatchObject({
      status: 200,
      outcome: 'duplicate',
    });
    expect(hook.queued).toEqual(['wamid.A']);
  });
});
