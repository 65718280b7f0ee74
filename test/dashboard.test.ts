import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createDashboard, DASHBOARD_CSP, toNodeHandler } from '../src/dashboard/index.js';
import type { DeadLetterEntry, NewDeadLetter, Reason, RetrykitEvent } from '../src/index.js';
import {
  createRedisDeadLetterQueue,
  createRedisMetricsReporter,
  readFleetMetrics,
} from '../src/redis/index.js';
import { createManualClock } from '../src/testing/index.js';
import { whatsappDeliveryMetrics } from '../src/whatsapp/index.js';
import { connectRedis, describeRedis, uniquePrefix } from './support/redis.js';

const AT = '2026-01-01T00:00:00.000Z';
const ORIGIN = 'http://dash.test';

function letter(
  id: string,
  reason: Reason,
  errorCode: number | undefined,
  extra: Partial<NewDeadLetter> = {},
): NewDeadLetter {
  return {
    id,
    payload: { id },
    reason,
    disposition: 'exhausted',
    attempts: [
      {
        message: `failed ${id}`,
        reason,
        at: AT,
        ...(errorCode === undefined ? {} : { errorCode }),
      },
    ],
    firstAttemptAt: AT,
    lastAttemptAt: AT,
    ...extra,
  };
}

const get = (path: string, headers: HeadersInit = {}) =>
  new Request(`${ORIGIN}${path}`, { headers });

/** A session's token and cookie, as the page gets them. */
async function session(handler: (r: Request) => Promise<Response>, base = '') {
  const response = await handler(get(`${base}/api/session`));
  const body = (await response.json()) as { csrf: string | null; canMutate: boolean };
  const setCookie = response.headers.get('set-cookie');
  return { body, setCookie, cookie: setCookie?.split(';')[0] ?? '' };
}

function post(path: string, body: unknown, headers: Record<string, string>): Request {
  return new Request(`${ORIGIN}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

describeRedis('dashboard handler (real Redis)', () => {
  const redis = connectRedis();

  it('serves the page and its files with a strict CSP and no inline script', async () => {
    const handler = createDashboard({ redis, prefix: uniquePrefix('dash-csp'), basePath: '/ops' });
    const page = await handler(get('/ops'));
    expect(page.status).toBe(200);
    const csp = page.headers.get('content-security-policy');
    expect(csp).toBe(DASHBOARD_CSP);
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    const html = await page.text();
    // Every <script> has a same-origin src; no inline code, no inline style, no CDN.
    expect(html.match(/<script\b[^>]*>/g)).toEqual(['<script src="/ops/assets/app.js" defer>']);
    expect(html).not.toMatch(/<style|style=|https?:\/\//);
    for (const [path, type] of [
      ['/ops/assets/app.js', 'text/javascript'],
      ['/ops/assets/app.css', 'text/css'],
      ['/ops/api/metrics', 'application/json'],
    ] as const) {
      const r = await handler(get(path));
      expect(r.status, path).toBe(200);
      expect(r.headers.get('content-type')).toContain(type);
      expect(r.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    }
    const js = await (await handler(get('/ops/assets/app.js'))).text();
    expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
    expect((await handler(get('/elsewhere'))).status).toBe(404);
    expect((await handler(get('/ops/api/nothing'))).status).toBe(404);
    expect((await handler(post('/ops/api/metrics', {}, {}))).status).toBe(405);
  });

  it('without authorize it is read-only: no token, every mutation 403, nothing changes', async () => {
    const prefix = uniquePrefix('dash-ro');
    const dlq = createRedisDeadLetterQueue(redis, { prefix });
    await dlq.add(letter('a', 'server_error', 500));
    let ran = 0;
    const handler = createDashboard({ redis, prefix, redrive: () => void ran++ });
    const s = await session(handler);
    expect(s.body).toMatchObject({ canMutate: false, csrf: null });
    expect(s.setCookie).toBeNull();
    for (const path of ['/api/dead-letters/redrive', '/api/dead-letters/purge']) {
      const r = await handler(post(path, { ids: ['a'] }, {}));
      expect(r.status).toBe(403);
      expect(await r.json()).toEqual({ error: expect.stringMatching(/read-only/) });
    }
    expect(ran).toBe(0);
    expect(await dlq.size()).toBe(1);
  });

  it('mutations need authorize to allow them and a valid CSRF token in header and cookie', async () => {
    const prefix = uniquePrefix('dash-csrf');
    const dlq = createRedisDeadLetterQueue(redis, { prefix });
    await dlq.add(letter('a', 'server_error', 500));
    await dlq.add(letter('b', 'client_error', 131026));
    const redriven: DeadLetterEntry[] = [];
    const handler = createDashboard({
      redis,
      prefix,
      authorize: (request) => request.headers.get('x-user') === 'oncall',
      redrive: (entry) => void redriven.push(entry),
    });
    const user = { 'x-user': 'oncall' };
    const anonymous = await session(handler);
    expect(anonymous.body).toMatchObject({ canMutate: false, csrf: null });
    const s = await session((r) => handler(new Request(r, { headers: user })));
    expect(s.body.canMutate).toBe(true);
    expect(s.setCookie).toMatch(/^retrykit_csrf=[^;]+; Path=\/; HttpOnly; SameSite=Strict$/);
    const token = s.body.csrf as string;
    expect(s.cookie).toBe(`retrykit_csrf=${token}`);

    const redrive = (headers: Record<string, string>) =>
      handler(post('/api/dead-letters/redrive', { ids: ['a'], entriesPerSecond: 1000 }, headers));
    const forged = `${token.split('.')[0]}.${Buffer.alloc(32, 7).toString('base64url')}`;
    const refused = [
      // not authorized, though the token is right
      { cookie: s.cookie, 'x-retrykit-csrf': token },
      // no token
      { ...user, cookie: s.cookie },
      // header without the cookie (another site cannot set it)
      { ...user, 'x-retrykit-csrf': token },
      // a token that was never signed, in both places
      { ...user, cookie: 'retrykit_csrf=abc.def', 'x-retrykit-csrf': 'abc.def' },
      // a forged one: the real nonce, a signature of the right length but not the secret's
      { ...user, cookie: `retrykit_csrf=${forged}`, 'x-retrykit-csrf': forged },
      // a request from another site
      { ...user, cookie: s.cookie, 'x-retrykit-csrf': token, 'sec-fetch-site': 'cross-site' },
    ];
    for (const headers of refused) expect((await redrive(headers)).status).toBe(403);
    expect(redriven).toEqual([]);
    // A form post (not JSON) is refused too.
    const form = await handler(
      new Request(`${ORIGIN}/api/dead-letters/redrive`, {
        method: 'POST',
        headers: {
          ...user,
          cookie: s.cookie,
          'x-retrykit-csrf': token,
          'content-type': 'text/plain',
        },
        body: '{"ids":["a"]}',
      }),
    );
    expect(form.status).toBe(415);

    const ok = await redrive({
      ...user,
      cookie: s.cookie,
      'x-retrykit-csrf': token,
      'sec-fetch-site': 'same-origin',
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({
      redriven: ['a'],
      failed: [],
      skipped: [],
      cannot: [],
      missing: [],
      errors: [],
    });
    expect(redriven.map((e) => e.id)).toEqual(['a']);
    expect(await dlq.get('a')).toBeUndefined();

    const bad = await handler(
      post(
        '/api/dead-letters/purge',
        { ids: [] },
        { ...user, cookie: s.cookie, 'x-retrykit-csrf': token },
      ),
    );
    expect(bad.status).toBe(400);
    const purged = await handler(
      post(
        '/api/dead-letters/purge',
        { ids: ['b', 'zz'] },
        { ...user, cookie: s.cookie, 'x-retrykit-csrf': token },
      ),
    );
    expect(await purged.json()).toEqual({ removed: ['b'], missing: ['zz'] });
    expect(await dlq.size()).toBe(0);
  });

  it('redrive paces itself at the chosen rate, and stops before the next entry when the client goes away', async () => {
    const prefix = uniquePrefix('dash-pace');
    const dlq = createRedisDeadLetterQueue(redis, { prefix });
    for (const id of ['a', 'b', 'c', 'd', 'e']) await dlq.add(letter(id, 'server_error', 500));
    const clock = createManualClock(1_000_000);
    const ran: string[] = [];
    const handler = createDashboard({
      redis,
      prefix,
      clock,
      authorize: () => true,
      redrive: (entry) => void ran.push(entry.id),
    });
    const s = await session(handler);
    const headers = { cookie: s.cookie, 'x-retrykit-csrf': s.body.csrf as string };
    const paced = handler(
      post('/api/dead-letters/redrive', { ids: ['a', 'b'], entriesPerSecond: 2 }, headers),
    );
    await vi.waitFor(() => expect(clock.pending()).toHaveLength(1));
    expect(ran).toEqual(['a']);
    await clock.advance(499);
    expect(ran).toEqual(['a']);
    await clock.advance(1);
    expect(await (await paced).json()).toMatchObject({ redriven: ['a', 'b'] });
    expect(clock.sleeps).toEqual([500]);

    const gone = new AbortController();
    const request = post(
      '/api/dead-letters/redrive',
      { ids: ['c', 'd', 'e'], entriesPerSecond: 0.1 },
      headers,
    );
    const answer = handler(new Request(request, { signal: gone.signal }));
    await vi.waitFor(() => expect(clock.pending()).toHaveLength(1));
    expect(ran).toEqual(['a', 'b', 'c']);
    gone.abort(new Error('the client went away'));
    await clock.advance(10_000);
    expect((await answer).status).toBe(500);
    // d was claimed before the abort and ran; e was left as it was (no failure recorded).
    expect(ran).toEqual(['a', 'b', 'c', 'd']);
    const left = await dlq.list();
    expect(left.entries.map((e) => [e.id, e.redriveFailures])).toEqual([['e', undefined]]);
  });

  it('redrive re-adds BullMQ entries to their queue; others need a redrive option', async () => {
    const prefix = uniquePrefix('dash-bull');
    const bullmqPrefix = uniquePrefix('bull');
    const dlq = createRedisDeadLetterQueue(redis, { prefix });
    await dlq.add(
      letter('sends:7', 'server_error', 500, {
        payload: { to: '4915', text: 'hi' },
        origin: { kind: 'bullmq', queue: 'dash-sends', jobId: '7', jobName: 'send-text' },
      }),
    );
    await dlq.add(
      letter('w', 'server_error', 500, { origin: { kind: 'webhook', webhookId: 'x' } }),
    );
    const handler = createDashboard({ redis, prefix, bullmqPrefix, authorize: () => true });
    const s = await session(handler);
    const r = await handler(
      post(
        '/api/dead-letters/redrive',
        { ids: ['sends:7', 'w'], entriesPerSecond: 1000 },
        { cookie: s.cookie, 'x-retrykit-csrf': s.body.csrf as string },
      ),
    );
    expect(await r.json()).toMatchObject({ redriven: ['sends:7'], cannot: ['w'] });
    const queue = new Queue('dash-sends', { connection: redis, prefix: bullmqPrefix });
    try {
      const jobs = await queue.getWaiting();
      expect(jobs.map((j) => [j.name, j.data])).toEqual([
        ['send-text', { to: '4915', text: 'hi' }],
      ]);
    } finally {
      await queue.close();
    }
    expect((await dlq.list()).entries.map((e) => e.id)).toEqual(['w']);
  });

  it('the JSON API: metrics as readFleetMetrics reads them, dead letters filtered, grouped, opened', async () => {
    const prefix = uniquePrefix('dash-api');
    const reporter = createRedisMetricsReporter(redis, { prefix, instanceId: 'i1' });
    const time = Date.now();
    const events: RetrykitEvent[] = [
      { type: 'attempt_start', time, attempt: 0, elapsedMs: 0 },
      { type: 'attempt_success', time, attempt: 0, durationMs: 40, elapsedMs: 40 },
      { type: 'attempt_start', time, attempt: 0, elapsedMs: 0 },
      {
        type: 'attempt_failure',
        time,
        attempt: 0,
        durationMs: 30,
        error: new Error('503'),
        classification: { reason: 'server_error', retryable: true },
      },
      { type: 'retry_scheduled', time, attempt: 1, delayMs: 100, reason: 'server_error' },
      { type: 'attempt_start', time, attempt: 1, elapsedMs: 130 },
      { type: 'attempt_success', time, attempt: 1, durationMs: 50, elapsedMs: 180 },
    ];
    for (const e of events) reporter.onEvent(e);
    expect(await reporter.flush()).toBe(true);
    await reporter.close();
    const dlq = createRedisDeadLetterQueue(redis, { prefix: `${prefix}:dlq` });
    await dlq.add(letter('a', 'client_error', 131026, { deadAt: '2026-01-01T10:00:00.000Z' }));
    await dlq.add(letter('b', 'client_error', 131026, { deadAt: '2026-01-02T10:00:00.000Z' }));
    await dlq.add(letter('c', 'rate_limited', 130429, { deadAt: '2026-01-02T11:00:00.000Z' }));

    const handler = createDashboard({
      redis,
      prefix,
      dlqPrefix: `${prefix}:dlq`,
      windowMs: 60_000,
    });
    const metrics = (await (await handler(get('/api/metrics'))).json()) as Record<string, unknown>;
    const direct = await readFleetMetrics(redis, {
      prefix,
      windowMs: 60_000,
      series: true,
      sections: [whatsappDeliveryMetrics()],
    });
    expect(metrics).toMatchObject({
      instances: 1,
      health: { healthy: direct.health.healthy },
      thresholds: { retryRatio: 0.02, errorRatio: 0.02 },
    });
    const snapshot = metrics.snapshot as typeof direct.snapshot;
    // perMinute depends on the moment of reading; every count must match.
    const { perMinute: _a, ...calls } = snapshot.calls;
    const { perMinute: _b, ...directCalls } = direct.snapshot.calls;
    expect(calls).toEqual(directCalls);
    expect(snapshot.calls).toMatchObject({ started: 2, succeeded: 2, firstAttemptSucceeded: 1 });
    expect(snapshot.ratios).toEqual(direct.snapshot.ratios);
    expect(snapshot.latency).toEqual(direct.snapshot.latency);
    expect((metrics.series as unknown[]).length).toBe(direct.series?.length);

    const list = async (query: string) =>
      (await (await handler(get(`/api/dead-letters?${query}`))).json()) as {
        entries: { id: string; code: string }[];
        total: number;
      };
    expect((await list('')).entries.map((e) => e.id)).toEqual(['a', 'b', 'c']);
    expect((await list('')).total).toBe(3);
    expect((await list('code=130429')).entries).toMatchObject([{ id: 'c', code: '130429' }]);
    expect((await list('reason=client_error')).entries.map((e) => e.id)).toEqual(['a', 'b']);
    expect((await handler(get('/api/dead-letters?reason=bogus'))).status).toBe(400);
    expect((await handler(get('/api/dead-letters?limit=0'))).status).toBe(400);
    const summary = await (await handler(get('/api/dead-letters/summary'))).json();
    expect(summary).toMatchObject({
      total: 3,
      byReason: { client_error: 2, rate_limited: 1 },
      byCode: { '131026': 2, '130429': 1 },
      byDay: { '2026-01-01': 1, '2026-01-02': 2 },
      truncated: false,
    });
    const entry = await (await handler(get('/api/dead-letters/entry?id=b'))).json();
    expect(entry).toMatchObject({ id: 'b', code: '131026', payload: { id: 'b' } });
    expect((await handler(get('/api/dead-letters/entry?id=nope'))).status).toBe(404);
  });

  it('rejects bad options with errors that name them', () => {
    expect(() => createDashboard({ redis: {} as never })).toThrow(/redis must be a Redis client/);
    expect(() => createDashboard({ redis, basePath: '/ops/' })).toThrow(/basePath .*"\/ops\/"/);
    expect(() => createDashboard({ redis, authorize: 'yes' as never })).toThrow(/authorize/);
    expect(() => createDashboard({ redis, windowMs: 1 })).toThrow(/windowMs/);
    expect(() => createDashboard({ redis, csrfSecret: 'short' })).toThrow(
      /csrfSecret .* got 5 characters/,
    );
    expect(() => createDashboard({ redis, prefix: 'a{b}' })).toThrow(/prefix .*"a\{b\}"/);
    expect(() => createDashboard({ redis, thresholds: { retryRatio: -1 } })).toThrow(/retryRatio/);
  });
});

describeRedis('toNodeHandler (node:http)', () => {
  const redis = connectRedis();
  let url = '';
  const server = createServer();
  const prefix = uniquePrefix('dash-node');

  beforeAll(async () => {
    server.on('request', toNodeHandler(createDashboard({ redis, prefix, authorize: () => true })));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('carries the cookie, headers and JSON body both ways', async () => {
    const dlq = createRedisDeadLetterQueue(redis, { prefix });
    await dlq.add(letter('x', 'server_error', 500));
    const s = await fetch(`${url}/api/session`);
    const { csrf } = (await s.json()) as { csrf: string };
    const cookie = (s.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    expect(s.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    const purge = await fetch(`${url}/api/dead-letters/purge`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie, 'x-retrykit-csrf': csrf },
      body: JSON.stringify({ ids: ['x'] }),
    });
    expect(purge.status).toBe(200);
    expect(await purge.json()).toEqual({ removed: ['x'], missing: [] });
    const page = await fetch(`${url}/`);
    expect(await page.text()).toMatch(/^<!doctype html>/);
  });
});

describeRedis('toNodeHandler (Express, under a basePath)', () => {
  it('answers under the mount path with the original URL, and leaves other paths to Express', async () => {
    const { default: express } = await import('express');
    const redis = connectRedis();
    const app = express();
    app.use(
      '/ops',
      toNodeHandler(
        createDashboard({ redis, prefix: uniquePrefix('dash-express'), basePath: '/ops' }),
      ),
    );
    app.get('/health', (_req, res) => void res.send('ok'));
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const page = await fetch(`${url}/ops`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('src="/ops/assets/app.js"');
      const session = await fetch(`${url}/ops/api/session`);
      expect(await session.json()).toMatchObject({ canMutate: false, csrf: null });
      expect(await (await fetch(`${url}/health`)).text()).toBe('ok');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('dashboard options', () => {
  it('needs an options object', () => {
    expect(() => createDashboard(undefined as never)).toThrow(TypeError);
  });
});
