import { createHmac } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import type {
  DeadLetterEntry,
  DeadLetterQueue,
  NewDeadLetter,
} from '../core/dead-letter/dead-letter-types.js';
import { StoreUnavailableError } from '../core/errors.js';
import type { ClaimResult, IdempotencyStore } from '../core/idempotency/idempotency-types.js';
import { createMemoryDeadLetterQueue } from '../memory/dead-letter.js';
import { createMemoryIdempotencyStore } from '../memory/idempotency.js';
import type { WhatsAppEvent } from './events.js';
import { parseWebhook, type WebhookUpdate } from './webhook.js';
import { createWebhookHandler, type WebhookHandlerOptions } from './webhook-handler.js';

const SECRET = 'app-secret';

/** A minimal in-memory claim store for these unit tests (the real ones have their own suite). */
function fakeStore() {
  const entries = new Map<string, { state: 'in_progress' | 'completed'; token: string }>();
  let seq = 0;
  let down = false;
  let failCompletes = 0;
  const store: Pick<IdempotencyStore, 'claim' | 'complete' | 'release'> = {
    async claim<R>(key: string): Promise<ClaimResult<R>> {
      if (down) throw new StoreUnavailableError('claim', new Error('down'));
      const entry = entries.get(key);
      if (entry?.state === 'completed') return { status: 'completed', result: 1 as R };
      if (entry?.state === 'in_progress') return { status: 'in_progress', retryAfterMs: 1000 };
      const token = String(++seq);
      entries.set(key, { state: 'in_progress', token });
      return { status: 'claimed', token };
    },
    async complete(key, token) {
      if (failCompletes > 0) {
        failCompletes--;
        throw new StoreUnavailableError('complete', new Error('timed out'));
      }
      const entry = entries.get(key);
      if (entry?.token !== token) return false;
      entry.state = 'completed';
      return true;
    },
    async release(key, token) {
      if (entries.get(key)?.token !== token) return false;
      entries.delete(key);
      return true;
    },
  };
  return {
    store,
    entries,
    setDown: (value: boolean) => {
      down = value;
    },
    failCompletes: (count: number) => {
      failCompletes = count;
    },
  };
}

function statusBody(statuses: { id: string; status: string; timestamp?: string }[]): string {
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
              statuses: statuses.map((s) => ({
                recipient_id: '4915',
                timestamp: '1700000000',
                ...s,
              })),
            },
          },
        ],
      },
    ],
  });
}

const sign = (body: string, secret = SECRET) =>
  `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

/** Three good messages around one whose timestamp is not Unix seconds. */
function batchWithOneBadMessage(): string {
  const message = (id: string, timestamp = '1700000000') => ({
    from: '4915100000000',
    id,
    timestamp,
    type: 'text',
    text: { body: id },
  });
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
              messages: [
                message('wamid.GOOD1'),
                message('wamid.BAD', 'yesterday'),
                message('wamid.GOOD2'),
              ],
            },
          },
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '1555', phone_number_id: 'PN1' },
              messages: [message('wamid.GOOD3')],
            },
          },
        ],
      },
    ],
  });
}

/** A dead-letter queue that records what it is given and keeps the first entry of an id. */
function fakeDlq() {
  const added: DeadLetterEntry<string>[] = [];
  let failing = false;
  const dlq = {
    add: async (entry: NewDeadLetter<string>) => {
      if (failing) throw new StoreUnavailableError('add', new Error('down'));
      const stored = {
        ...entry,
        id: entry.id ?? `dl${added.length}`,
        deadAt: new Date(0).toISOString(),
      };
      added.push(stored);
      return added.find((e) => e.id === stored.id) ?? stored;
    },
  } as unknown as DeadLetterQueue<string>;
  return {
    dlq,
    added,
    fail: (value: boolean) => {
      failing = value;
    },
  };
}

function setup(overrides: Partial<WebhookHandlerOptions> = {}) {
  const { store, entries, setDown, failCompletes } = fakeStore();
  const queued: WebhookUpdate[] = [];
  let failEnqueue = false;
  const handle = createWebhookHandler({
    appSecret: SECRET,
    store,
    enqueue: async (updates) => {
      if (failEnqueue) throw new Error('queue down');
      queued.push(...updates);
    },
    ...overrides,
  });
  const post = (body: string, signature = sign(body)) =>
    handle({ body, headers: { 'x-hub-signature-256': signature } });
  return {
    handle,
    post,
    queued,
    entries,
    setDown,
    failCompletes,
    failEnqueue: (v: boolean) => {
      failEnqueue = v;
    },
  };
}

describe('createWebhookHandler', () => {
  it('verifies, enqueues new updates and answers 200', async () => {
    const { post, queued } = setup();
    const result = await post(
      statusBody([
        { id: 'wamid.1', status: 'sent' },
        { id: 'wamid.1', status: 'delivered' },
      ]),
    );
    expect(result).toMatchObject({ status: 200, outcome: 'enqueued', enqueued: 2, duplicates: 0 });
    expect(queued.map((u) => u.kind === 'status' && `${u.id}:${u.status}`)).toEqual([
      'wamid.1:sent',
      'wamid.1:delivered',
    ]);
  });

  it('dedupes by wamid + status across deliveries and within one', async () => {
    const { post, queued } = setup();
    await post(statusBody([{ id: 'wamid.1', status: 'sent' }]));
    const again = await post(statusBody([{ id: 'wamid.1', status: 'sent' }]));
    expect(again).toMatchObject({ status: 200, outcome: 'duplicate', enqueued: 0, duplicates: 1 });
    const mixed = await post(
      statusBody([
        { id: 'wamid.1', status: 'sent' },
        { id: 'wamid.1', status: 'read' },
        { id: 'wamid.1', status: 'read' },
      ]),
    );
    expect(mixed).toMatchObject({ status: 200, enqueued: 1, duplicates: 2, inProgress: 0 });
    expect(queued).toHaveLength(2);
  });

  it("queues each participant's read of a group message, and dedupes each across redeliveries", async () => {
    const { post, queued } = setup();
    const read = (participant: Record<string, string>) => ({
      id: 'wamid.G',
      status: 'read',
      recipient_id: 'GROUP_ID',
      recipient_type: 'group',
      ...participant,
    });
    const body = statusBody([
      read({ recipient_participant_id: '351910000002' }),
      read({ recipient_participant_user_id: 'FI.4412300000000001' }),
      read({ recipient_participant_id: '351910000003' }),
    ]);
    expect(await post(body)).toMatchObject({ status: 200, enqueued: 3, duplicates: 0 });
    expect(await post(body)).toMatchObject({ status: 200, outcome: 'duplicate', duplicates: 3 });
    expect(queued).toHaveLength(3);
  });

  it('answers 503 for an update another delivery holds, after queueing the new ones', async () => {
    const { post, queued, entries } = setup();
    // A claim nobody will complete: a delivery still at work, or a claim whose answer was lost.
    entries.set('whatsapp:webhook:status:wamid.1:sent', { state: 'in_progress', token: 'lost' });
    const body = statusBody([
      { id: 'wamid.1', status: 'sent' },
      { id: 'wamid.2', status: 'sent' },
    ]);
    const first = await post(body);
    expect(first).toMatchObject({
      status: 503,
      outcome: 'in_progress',
      headers: { 'Retry-After': '1' },
      enqueued: 1,
      duplicates: 0,
      inProgress: 1,
    });
    expect(queued.map((u) => u.kind === 'status' && u.id)).toEqual(['wamid.2']);
    expect(entries.get('whatsapp:webhook:status:wamid.2:sent')?.state).toBe('completed');
    // Meta delivers it again: still held, still 503, and wamid.2 is not queued twice.
    expect(await post(body)).toMatchObject({ status: 503, enqueued: 0, duplicates: 1 });
    // The claim is released (or runs out): the next redelivery queues wamid.1, once.
    entries.delete('whatsapp:webhook:status:wamid.1:sent');
    expect(await post(body)).toMatchObject({
      status: 200,
      outcome: 'enqueued',
      enqueued: 1,
      duplicates: 1,
    });
    expect(queued.map((u) => u.kind === 'status' && u.id)).toEqual(['wamid.2', 'wamid.1']);
  });

  it('answers 200 when complete fails after enqueue, and records the completion in the background', async () => {
    vi.useFakeTimers();
    try {
      const { post, queued, entries, failCompletes } = setup();
      failCompletes(2);
      const body = statusBody([{ id: 'wamid.1', status: 'sent' }]);
      expect(await post(body)).toMatchObject({ status: 200, outcome: 'enqueued', enqueued: 1 });
      const key = 'whatsapp:webhook:status:wamid.1:sent';
      expect(entries.get(key)?.state).toBe('in_progress');
      await vi.advanceTimersByTimeAsync(100);
      expect(entries.get(key)?.state).toBe('completed');
      expect(await post(body)).toMatchObject({ status: 200, outcome: 'duplicate' });
      expect(queued).toHaveLength(1);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('answers 200 without calling enqueue for a body with no updates', async () => {
    const { post, queued } = setup();
    expect(await post(statusBody([]))).toMatchObject({
      status: 200,
      outcome: 'empty',
      enqueued: 0,
    });
    expect(queued).toEqual([]);
  });

  it('enqueues account, template and unknown-field updates too, never deduping them', async () => {
    const { post, queued } = setup();
    const body = JSON.stringify({
      object: 'whatsapp_business_account',
      entry: [
        {
          id: 'WABA',
          time: 1700000000,
          changes: [
            { field: 'account_update', value: { event: 'VERIFIED_ACCOUNT' } },
            { field: 'calls', value: { calls: [] } },
          ],
        },
      ],
    });
    expect(await post(body)).toMatchObject({ status: 200, outcome: 'enqueued', enqueued: 2 });
    expect(await post(body)).toMatchObject({ status: 200, outcome: 'enqueued', enqueued: 2 });
    expect(queued.map((u) => u.kind)).toEqual([
      'account_update',
      'unknown',
      'account_update',
      'unknown',
    ]);
  });

  it('answers 401 without a signature and 403 with a wrong one, enqueuing nothing', async () => {
    const { handle, post, queued } = setup();
    const body = statusBody([{ id: 'wamid.1', status: 'sent' }]);
    expect((await handle({ body, headers: {} })).status).toBe(401);
    expect((await post(body, sign(body, 'other'))).status).toBe(403);
    expect((await post(`${body} `, sign(body))).status).toBe(403);
    expect(queued).toEqual([]);
  });

  it('answers 500 when enqueue fails, and processes the redelivery', async () => {
    const { post, queued, failEnqueue, entries } = setup();
    const body = statusBody([
      { id: 'wamid.1', status: 'sent' },
      { id: 'wamid.2', status: 'sent' },
    ]);
    failEnqueue(true);
    expect(await post(body)).toMatchObject({ status: 500, outcome: 'failed' });
    expect(entries.size).toBe(0);
    failEnqueue(false);
    expect(await post(body)).toMatchObject({ status: 200, enqueued: 2 });
    expect(queued).toHaveLength(2);
  });

  it('answers 500 when the store is down, never treating that as "first time"', async () => {
    const { post, queued, setDown } = setup();
    setDown(true);
    const result = await post(statusBody([{ id: 'wamid.1', status: 'sent' }]));
    expect(result).toMatchObject({ status: 500, outcome: 'failed' });
    expect(result.error).toBeInstanceOf(StoreUnavailableError);
    expect(queued).toEqual([]);
  });

  it('answers 500 for a store that throws synchronously, and releases the claims it took', async () => {
    const { store, entries } = fakeStore();
    const queued: WebhookUpdate[] = [];
    const broken = (name: 'claim' | 'complete' | 'release', when: (key: string) => boolean) =>
      ({
        ...store,
        [name]: (key: string, ...rest: unknown[]) => {
          if (when(key)) throw new Error(`${name} threw`);
          return (store[name] as (...args: unknown[]) => unknown)(key, ...rest);
        },
      }) as typeof store;
    const post = (target: typeof store, body: string, failEnqueue = false) =>
      createWebhookHandler({
        appSecret: SECRET,
        store: target,
        enqueue: (updates) => {
          if (failEnqueue) throw new Error('queue down');
          queued.push(...updates);
        },
      })({ body, headers: { 'x-hub-signature-256': sign(body) } });
    const body = statusBody([
      { id: 'wamid.1', status: 'sent' },
      { id: 'wamid.2', status: 'sent' },
    ]);
    // The second claim throws: the first key's claim is released, not left for the lease.
    const claimThrows = broken('claim', (key) => key.includes('wamid.2'));
    expect(await post(claimThrows, body)).toMatchObject({ status: 500, outcome: 'failed' });
    expect([...entries.keys()]).toEqual([]);
    // A release that throws after a failed enqueue: still an answer, 500.
    const releaseThrows = broken('release', () => true);
    expect(await post(releaseThrows, body, true)).toMatchObject({ status: 500, outcome: 'failed' });
    entries.clear();
    // A complete that throws after the enqueue: the updates are queued, so 200.
    const completeThrows = broken('complete', () => true);
    expect(await post(completeThrows, body)).toMatchObject({ status: 200, enqueued: 2 });
    expect(queued).toHaveLength(2);
  });

  it('answers 500 when a claim never answers within storeTimeoutMs, and releases it if it lands later', async () => {
    vi.useFakeTimers();
    try {
      const released: [string, string][] = [];
      let land: (claim: ClaimResult) => void = () => {};
      const store = {
        claim: () =>
          new Promise<ClaimResult>((resolve) => {
            land = resolve;
          }),
        complete: async () => true,
        release: async (key: string, token: string) => {
          released.push([key, token]);
          return true;
        },
      } as unknown as Pick<IdempotencyStore, 'claim' | 'complete' | 'release'>;
      const { post, queued } = setup({ store, storeTimeoutMs: 1000 });
      const answer = post(statusBody([{ id: 'wamid.1', status: 'sent' }]));
      await vi.advanceTimersByTimeAsync(999);
      let settled = false;
      void answer.then(() => {
        settled = true;
      });
      await vi.advanceTimersByTimeAsync(0);
      expect(settled).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      const result = await answer;
      expect(result).toMatchObject({ status: 500, outcome: 'failed' });
      expect(result.error).toBeInstanceOf(StoreUnavailableError);
      expect(queued).toEqual([]);
      land({ status: 'claimed', token: 'late' });
      await vi.advanceTimersByTimeAsync(0);
      expect(released).toEqual([['whatsapp:webhook:status:wamid.1:sent', 'late']]);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses a body over maxBodyBytes with 413', async () => {
    const { post } = setup({ maxBodyBytes: 100 });
    expect((await post(statusBody([{ id: 'wamid.1', status: 'sent' }]))).status).toBe(413);
  });

  it('dead-letters a signed body that is no webhook at all and answers 200', async () => {
    const { dlq, added } = fakeDlq();
    const { post, queued } = setup({ dlq });
    const body = '{"object":"page","entry":[]}';
    expect(await post(body)).toMatchObject({ status: 200, outcome: 'invalid' });
    expect(added).toEqual([
      expect.objectContaining({
        id: expect.stringMatching(/^whatsapp\.webhook:[0-9a-f]{32}:\$$/),
        payload: body,
        reason: 'schema_mismatch',
        disposition: 'permanent',
        source: 'whatsapp.webhook',
      }),
    ]);
    expect(queued).toEqual([]);
    const { post: noDlq } = setup();
    expect(await noDlq(body)).toMatchObject({ status: 400, outcome: 'invalid' });
  });

  it('enqueues the good updates of a batch, dead-letters the malformed one with its reason, answers 200', async () => {
    const { dlq, added } = fakeDlq();
    const events: WhatsAppEvent[] = [];
    const { post, queued } = setup({ dlq, onEvent: (e) => events.push(e) });
    const body = batchWithOneBadMessage();
    const result = await post(body);
    expect(result).toMatchObject({ status: 200, outcome: 'enqueued', enqueued: 3 });
    expect(queued.map((u) => (u.kind === 'message' ? u.id : u.kind))).toEqual([
      'wamid.GOOD1',
      'wamid.GOOD2',
      'wamid.GOOD3',
    ]);
    expect(added).toHaveLength(1);
    const [letter] = added;
    expect(letter).toMatchObject({
      id: expect.stringMatching(
        /^whatsapp\.webhook:[0-9a-f]{32}:entry\[0\]\.changes\[0\]\.value\.messages\[1\]$/,
      ),
      reason: 'schema_mismatch',
      disposition: 'permanent',
      source: 'whatsapp.webhook',
      origin: {
        kind: 'webhook',
        webhookId: expect.stringMatching(/^[0-9a-f]{32}$/),
        path: 'entry[0].changes[0].value.messages[1]',
      },
    });
    expect(letter?.attempts[0]?.message).toMatch(
      /entry\[0\]\.changes\[0\]\.value\.messages\[1\]\.timestamp: expected Unix seconds/,
    );
    // The payload is a webhook holding only the bad message: it parses again after a fix.
    const payload = JSON.parse(letter!.payload);
    expect(payload.entry[0].changes[0].value.messages).toEqual([
      expect.objectContaining({ id: 'wamid.BAD', timestamp: 'yesterday' }),
    ]);
    expect(payload.entry[0].changes[0].value.metadata).toEqual({
      display_phone_number: '1555',
      phone_number_id: 'PN1',
    });
    // The dead-letter queue and the store report; the handler doesn't say it again.
    expect(events.filter((e) => e.type === 'dead_letter')).toEqual([]);

    // Redelivered (say the first answer was lost): nothing enqueued twice, the same dead-letter id.
    expect(await post(body)).toMatchObject({ status: 200, outcome: 'duplicate', duplicates: 3 });
    expect(events.filter((e) => e.type === 'idempotency_hit')).toEqual([]);
    expect(added).toHaveLength(2);
    expect(added[1]?.id).toBe(letter?.id);
    expect(queued).toHaveLength(3);
  });

  it('answers 200 invalid when every item is malformed, and 500 when the dead-letter queue fails', async () => {
    const { dlq, added, fail } = fakeDlq();
    const { post, queued } = setup({ dlq });
    const allBad = statusBody([{ id: 'wamid.1', status: 'sent', timestamp: 'soon' }]);
    expect(await post(allBad)).toMatchObject({ status: 200, outcome: 'invalid', enqueued: 0 });
    expect(added).toHaveLength(1);
    fail(true);
    expect(await post(batchWithOneBadMessage())).toMatchObject({ status: 500, outcome: 'failed' });
    expect(queued).toEqual([]);
    fail(false);
    expect(await post(batchWithOneBadMessage())).toMatchObject({ status: 200, enqueued: 3 });
  });

  it('without a dlq, queues the good updates of a batch holding a malformed item, then answers 400', async () => {
    const { post, queued } = setup({ store: createMemoryIdempotencyStore({ maxEntries: 1000 }) });
    const body = batchWithOneBadMessage();
    expect(await post(body)).toMatchObject({ status: 400, outcome: 'invalid', enqueued: 3 });
    expect(await post(body)).toMatchObject({
      status: 400,
      outcome: 'invalid',
      enqueued: 0,
      duplicates: 3,
    });
    expect(queued).toHaveLength(3);
  });

  it('with the memory stores: a failed enqueue and its redelivery leave one dead letter, each update queued once', async () => {
    const dlq = createMemoryDeadLetterQueue<string>();
    const { post, queued, failEnqueue } = setup({
      dlq,
      store: createMemoryIdempotencyStore({ maxEntries: 1000 }),
    });
    const body = batchWithOneBadMessage();
    failEnqueue(true);
    expect(await post(body)).toMatchObject({ status: 500, outcome: 'failed' });
    failEnqueue(false);
    expect(await post(body)).toMatchObject({ status: 200, outcome: 'enqueued', enqueued: 3 });
    expect(await post(body)).toMatchObject({ status: 200, outcome: 'duplicate' });
    expect(queued).toHaveLength(3);
    const { entries } = await dlq.list();
    expect(entries).toHaveLength(1);
    const again = parseWebhook(entries[0]!.payload);
    expect(again.malformed.map((m) => m.error.path)).toEqual([
      'entry[0].changes[0].value.messages[0].timestamp',
    ]);
  });

  it('dead-letters the whole body for an item nested too deep to write on its own', async () => {
    const { dlq, added } = fakeDlq();
    const { post } = setup({ dlq });
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const body = `{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"account_update","value":${deep}}]}]}`;
    expect(await post(body)).toMatchObject({ status: 200, outcome: 'invalid' });
    expect(added).toEqual([
      expect.objectContaining({
        id: expect.stringMatching(/:entry\[0\]\.changes\[0\]$/),
        payload: body,
      }),
    ]);
  });

  it('takes a custom parse that reports malformed items', async () => {
    const { dlq, added } = fakeDlq();
    const { store } = fakeStore();
    const seen: string[] = [];
    const handle = createWebhookHandler<{ id: string }>({
      verify: () => true,
      parse: (body) => {
        const parsed = parseWebhook(body);
        return {
          updates: parsed.messages.map((m) => ({ id: m.id })),
          malformed: parsed.malformed,
        };
      },
      dedupeKey: (u) => u.id,
      dlq,
      store,
      enqueue: (updates) => void seen.push(...updates.map((u) => u.id)),
    });
    expect(await handle({ body: batchWithOneBadMessage(), headers: {} })).toMatchObject({
      status: 200,
      enqueued: 3,
    });
    expect(seen).toEqual(['wamid.GOOD1', 'wamid.GOOD2', 'wamid.GOOD3']);
    expect(added).toHaveLength(1);
  });

  it('accepts custom verification, parsing and keys (WASenderApi)', async () => {
    const { store } = fakeStore();
    const seen: string[][] = [];
    const handle = createWebhookHandler<{ id: string }>({
      verify: ({ headers }) => (headers as Record<string, string>)['x-webhook-signature'] === 'shh',
      parse: (body) => [JSON.parse(String(body)) as { id: string }],
      dedupeKey: (u) => u.id,
      store,
      enqueue: (updates) => void seen.push(updates.map((u) => u.id)),
    });
    const request = { body: '{"id":"m1"}', headers: { 'x-webhook-signature': 'shh' } };
    expect((await handle(request)).status).toBe(200);
    expect((await handle(request)).outcome).toBe('duplicate');
    expect((await handle({ ...request, headers: { 'x-webhook-signature': 'no' } })).status).toBe(
      403,
    );
    expect(seen).toEqual([['m1']]);
  });

  it('rejects bad options with errors naming them', () => {
    const { store } = fakeStore();
    expect(() => createWebhookHandler({ store, enqueue: () => {} })).toThrow(/appSecret/);
    expect(() =>
      createWebhookHandler({ appSecret: 's', store, enqueue: () => {}, resultTtlMs: -1 }),
    ).toThrow(/resultTtlMs/);
    expect(() =>
      createWebhookHandler({
        appSecret: 's',
        store,
        enqueue: () => {},
        dedupeTtlMs: 1000,
      } as never),
    ).toThrow('dedupeTtlMs was renamed in retrykit 0.2: use resultTtlMs');
    expect(() =>
      createWebhookHandler({ appSecret: 's', store, enqueue: () => {}, storeTimeoutMs: 0 }),
    ).toThrow(/storeTimeoutMs must be a finite number >= 1, got 0/);
    expect(() => createWebhookHandler({ appSecret: 's', store, enqueue: 'x' as never })).toThrow(
      /enqueue/,
    );
  });
});
