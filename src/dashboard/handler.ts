// The file, not the retrykit/bullmq entry: bullmq itself loads only when a job is re-added.
import { createDeadLetterRequeuer } from '../bullmq/requeue.js';
import { backgroundClock, type Clock } from '../core/clock.js';
import { HEALTH_DEFAULTS, resolveThresholds } from '../core/metrics/health.js';
import { assertFunction, assertInteger, assertKey, assertNumber } from '../core/validate.js';
import {
  type DeadLetterEntry,
  type DeadLetterQueue,
  deadLetterCode,
  type HealthThresholds,
  REASONS,
  type Reason,
  type SummarizedDeadLetter,
  summarizeDeadLetters,
} from '../index.js';
import {
  createRedisDeadLetterQueue,
  type RedisClientLike,
  readFleetMetrics,
} from '../redis/index.js';
import { whatsappDeliveryMetrics } from '../whatsapp/index.js';
import { APP_CSS, APP_JS, pageHtml } from './page.js';

/** Options of {@link createDashboard}. */
export interface DashboardOptions {
  /**
   * The Redis holding the fleet's metrics (`createRedisMetricsReporter`) and the dead-letter
   * queue (`createRedisDeadLetterQueue`). Redrive re-adds BullMQ jobs through it, so for that it
   * must be an ioredis client.
   */
  readonly redis: RedisClientLike;
  /**
   * The prefix the fleet's reporters were given (`createRedisMetricsReporter`), as `retrykit
   * stats --prefix`.
   * @default 'retrykit'
   */
  readonly prefix?: string;
  /**
   * The prefix of the dead-letter queue (`createRedisDeadLetterQueue`), as `retrykit dlq
   * --prefix`.
   * @default `prefix`
   */
  readonly dlqPrefix?: string;
  /**
   * Where the dashboard is mounted: `''` (the root) or a path such as `'/ops/retrykit'`
   * (starts with `/`, no trailing `/`). Requests outside it get 404.
   * @default ''
   */
  readonly basePath?: string;
  /**
   * Decides whether a request may change anything (redrive, purge). Without it the dashboard
   * is read-only: every mutation is refused with 403. Called for every mutating request and for
   * the page's session request; resolve `true` to allow.
   *
   * @example
   * { authorize: (request) => request.headers.get('x-forwarded-user') === 'oncall' }
   */
  readonly authorize?: (request: Request) => boolean | Promise<boolean>;
  /**
   * Runs a dead letter again when it is redriven from the page, as `retrykit dlq redrive
   * --handler` does: resolve when the work succeeded (the entry is removed), throw when it
   * failed (the entry stays, with the failure added). Without it, entries whose `origin` is
   * `bullmq` are re-added to their queue (job name and payload as they were; needs the
   * `bullmq` package); other entries are reported as not redrivable.
   *
   * @example
   * { redrive: (entry) => client.send(entry.payload as CloudMessage) }
   */
  readonly redrive?: (entry: DeadLetterEntry) => unknown;
  /** BullMQ's key prefix for re-added jobs. @default BullMQ's own ('bull') */
  readonly bullmqPrefix?: string;
  /** The reporters' `intervalMs`, in milliseconds. @default 10_000 */
  readonly intervalMs?: number;
  /** Length of the window the page shows, in milliseconds. @default 900_000 (15 minutes) */
  readonly windowMs?: number;
  /** Limits for the health report, over `createMetrics`' defaults (2 % retry and error rates). */
  readonly thresholds?: HealthThresholds;
  /** How often the page refreshes, in milliseconds. @default 5_000 */
  readonly refreshMs?: number;
  /**
   * At most this many dead letters are read for the counts by reason and code (the fleet's
   * metrics have no per-code counts: codes come from the dead letters), at most once per
   * `refreshMs` however many pages are open.
   * @default 10_000
   */
  readonly maxScan?: number;
  /**
   * Signs the CSRF tokens. Give every instance behind one load balancer the same secret (at
   * least 32 characters); the default is random per process.
   * @default 32 random bytes
   */
  readonly csrfSecret?: string;
  /**
   * Paces redrives, says which intervals are in the window, and dates the summary's reuse.
   * @default the system clock
   */
  readonly clock?: Clock;
}

/** The defaults of {@link DashboardOptions}. */
export const DASHBOARD_DEFAULTS = Object.freeze({
  prefix: 'retrykit',
  basePath: '',
  intervalMs: 10_000,
  windowMs: 900_000,
  refreshMs: 5_000,
  maxScan: 10_000,
  /** Most entries one redrive or purge request may name. */
  maxIds: 1_000,
  /** The redrive rate when the request names none, in entries per second. */
  entriesPerSecond: 10,
});

/** A Web-standard request handler: what {@link createDashboard} returns. */
export type DashboardHandler = (request: Request) => Promise<Response>;

const CSRF_COOKIE = 'retrykit_csrf';
const CSRF_HEADER = 'x-retrykit-csrf';

/** The Content-Security-Policy of every response: same-origin scripts and styles only. */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

function respond(body: string, status: number, type: string, extra: HeadersInit = {}): Response {
  const headers = new Headers(extra);
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) headers.set(k, v);
  headers.set('content-type', type);
  return new Response(body, { status, headers });
}

function json(value: unknown, status = 200, extra: HeadersInit = {}): Response {
  return respond(JSON.stringify(value), status, 'application/json; charset=utf-8', extra);
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function cookie(request: Request, name: string): string | undefined {
  for (const part of (request.headers.get('cookie') ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The page's view of one dead letter in a list. */
function row(entry: DeadLetterEntry) {
  return {
    id: entry.id,
    reason: entry.reason,
    code: deadLetterCode(entry),
    disposition: entry.disposition,
    attempts: entry.attempts.length,
    deadAt: entry.deadAt,
    origin: entry.origin ?? null,
    source: entry.source ?? null,
    redriveFailures: entry.redriveFailures ?? 0,
  };
}

/** Web Crypto (`globalThis.crypto`): Node 19+, Deno, Bun, browsers and edge runtimes. */
function webCrypto(): Crypto {
  const found = (globalThis as { crypto?: Crypto }).crypto;
  if (found?.subtle === undefined) {
    throw new Error(
      'the dashboard needs globalThis.crypto (Web Crypto); on Node 18 run with --experimental-global-webcrypto',
    );
  }
  return found;
}

function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The bytes of a base64url text, or `undefined` when it is not one. */
function fromBase64url(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  try {
    const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

function checkBasePath(value: unknown): string {
  if (value === undefined) return DASHBOARD_DEFAULTS.basePath;
  if (
    typeof value !== 'string' ||
    (value !== '' && (!value.startsWith('/') || value.endsWith('/') || /[\s?#]/.test(value)))
  ) {
    throw new TypeError(
      `basePath must be '' or a path starting with '/' without a trailing '/', got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/**
 * The retrykit dashboard: one page (HTML, and same-origin JS and CSS: no CDN, works offline)
 * that shows the fleet's metrics live — first-attempt successes against retried ones, retry
 * and error rates against their 2 % lines, latency, errors by reason and code, queue depth,
 * health breaches — and browses the dead letters, with redrive and purge. Returns a
 * Web-standard handler (`Request` in, `Response` out); serve it with {@link toNodeHandler}
 * from `node:http` or Express, or as is from any runtime with `fetch` types.
 *
 * Dead-letter payloads come from webhooks, so they are attacker-controlled: the page renders
 * them as text only, and every response carries a strict Content-Security-Policy
 * ({@link DASHBOARD_CSP}: no inline script). Mutations need `authorize(request)` to allow them
 * and a CSRF token (a signed double-submit cookie that the page sends back in a header); without
 * `authorize` the dashboard is read-only.
 *
 * Routes under `basePath`: `GET /` (the page), `GET /assets/app.js|app.css`, `GET
 * /api/session`, `GET /api/metrics`, `GET /api/dead-letters` (`reason`, `code`, `limit`,
 * `cursor`), `GET /api/dead-letters/summary`, `GET /api/dead-letters/entry?id=`, `POST
 * /api/dead-letters/redrive` (`{ ids, entriesPerSecond }`), `POST /api/dead-letters/purge`
 * (`{ ids }`).
 *
 * @example
 * import { createServer } from 'node:http';
 * import { Redis } from 'ioredis';
 * import { createDashboard, toNodeHandler } from 'retrykit/dashboard';
 *
 * const dashboard = createDashboard({
 *   redis: new Redis(),
 *   prefix: 'myapp',
 *   dlqPrefix: 'myapp:dlq',
 *   authorize: (request) => request.headers.get('authorization') === `Bearer ${process.env.OPS_TOKEN}`,
 * });
 * createServer(toNodeHandler(dashboard)).listen(8080, '127.0.0.1');
 */
export function createDashboard(options: DashboardOptions): DashboardHandler {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`options must be an object, got ${String(options)}`);
  }
  const redis = options.redis;
  if (typeof redis?.evalsha !== 'function') {
    throw new TypeError('redis must be a Redis client (ioredis, or node-redis via fromNodeRedis)');
  }
  const prefix = assertKey('prefix', options.prefix ?? DASHBOARD_DEFAULTS.prefix);
  if (/[{}]/.test(prefix)) {
    throw new TypeError(`prefix must not contain '{' or '}', got ${JSON.stringify(prefix)}`);
  }
  const basePath = checkBasePath(options.basePath);
  if (options.authorize !== undefined) assertFunction('authorize', options.authorize);
  if (options.redrive !== undefined) assertFunction('redrive', options.redrive);
  const intervalMs = assertInteger(
    'intervalMs',
    options.intervalMs ?? DASHBOARD_DEFAULTS.intervalMs,
    1,
  );
  const windowMs = assertNumber(
    'windowMs',
    options.windowMs ?? DASHBOARD_DEFAULTS.windowMs,
    intervalMs,
    intervalMs * 10_000,
  );
  const refreshMs = assertNumber(
    'refreshMs',
    options.refreshMs ?? DASHBOARD_DEFAULTS.refreshMs,
    100,
  );
  const maxScan = assertInteger('maxScan', options.maxScan ?? DASHBOARD_DEFAULTS.maxScan, 1);
  const clock = options.clock ?? backgroundClock;
  if (typeof clock?.now !== 'function' || typeof clock.sleep !== 'function') {
    throw new TypeError('clock must have now() and sleep(ms, signal)');
  }
  const secret = options.csrfSecret ?? base64url(webCrypto().getRandomValues(new Uint8Array(32)));
  if (typeof secret !== 'string' || secret.length < 32) {
    throw new RangeError(
      `csrfSecret must be a string of at least 32 characters, got ${typeof secret === 'string' ? `${secret.length} characters` : typeof secret}`,
    );
  }
  const bullmqPrefix =
    options.bullmqPrefix === undefined
      ? undefined
      : assertKey('bullmqPrefix', options.bullmqPrefix);
  const dlqPrefix = assertKey('dlqPrefix', options.dlqPrefix ?? prefix);
  const dlq: DeadLetterQueue = createRedisDeadLetterQueue(redis, { prefix: dlqPrefix });
  const section = whatsappDeliveryMetrics();
  const readOptions = {
    prefix,
    intervalMs,
    windowMs,
    clock,
    ...(options.thresholds === undefined ? {} : { thresholds: options.thresholds }),
  };
  const thresholds = resolveThresholds(HEALTH_DEFAULTS, options.thresholds, 'thresholds');

  // HMAC-SHA256 through Web Crypto, so the handler runs on any runtime with `fetch` types.
  const encoder = new TextEncoder();
  const key = webCrypto().subtle.importKey(
    'raw',
    encoder.encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign', 'verify'],
  );
  const signed = (nonce: string): Uint8Array => encoder.encode(`retrykit-dashboard:${nonce}`);
  const newToken = async (): Promise<string> => {
    const nonce = base64url(webCrypto().getRandomValues(new Uint8Array(18)));
    const mac = await webCrypto().subtle.sign('HMAC', await key, signed(nonce) as BufferSource);
    return `${nonce}.${base64url(new Uint8Array(mac))}`;
  };
  /** `verify` compares in constant time. */
  const validToken = async (token: string | undefined): Promise<boolean> => {
    if (token === undefined) return false;
    const dot = token.indexOf('.');
    const mac = dot <= 0 ? undefined : fromBase64url(token.slice(dot + 1));
    if (mac === undefined || mac.length !== 32) return false;
    return webCrypto().subtle.verify(
      'HMAC',
      await key,
      mac as BufferSource,
      signed(token.slice(0, dot)) as BufferSource,
    );
  };

  const allowed = async (request: Request): Promise<boolean> =>
    options.authorize !== undefined && (await options.authorize(request)) === true;

  /** Refuses a mutation unless authorized, same-site and carrying a valid CSRF token. */
  const checkMutation = async (request: Request): Promise<void> => {
    if (options.authorize === undefined) {
      throw new HttpError(403, 'read-only dashboard: createDashboard was given no authorize');
    }
    if (!(await allowed(request))) throw new HttpError(403, 'not authorized');
    const site = request.headers.get('sec-fetch-site');
    if (site !== null && site !== 'same-origin') {
      throw new HttpError(403, `cross-site request refused (sec-fetch-site: ${site})`);
    }
    const header = request.headers.get(CSRF_HEADER) ?? undefined;
    const fromCookie = cookie(request, CSRF_COOKIE);
    if (header === undefined || header !== fromCookie || !(await validToken(header))) {
      throw new HttpError(403, 'missing or invalid CSRF token');
    }
    if (!(request.headers.get('content-type') ?? '').startsWith('application/json')) {
      throw new HttpError(415, 'send the body as application/json');
    }
  };

  const idsOf = (body: unknown): string[] => {
    const ids = (body as { ids?: unknown } | null)?.ids;
    if (
      !Array.isArray(ids) ||
      ids.length === 0 ||
      ids.length > DASHBOARD_DEFAULTS.maxIds ||
      !ids.every((id) => typeof id === 'string' && id !== '')
    ) {
      throw new HttpError(
        400,
        `ids must be a list of 1 to ${DASHBOARD_DEFAULTS.maxIds} entry ids, got ${JSON.stringify(ids)}`,
      );
    }
    return [...new Set(ids as string[])];
  };

  const readBody = async (request: Request): Promise<unknown> => {
    try {
      return await request.json();
    } catch {
      throw new HttpError(400, 'the body must be JSON');
    }
  };

  const redrive = async (request: Request): Promise<Response> => {
    await checkMutation(request);
    const body = await readBody(request);
    const ids = idsOf(body);
    const rate =
      (body as { entriesPerSecond?: unknown }).entriesPerSecond ??
      DASHBOARD_DEFAULTS.entriesPerSecond;
    if (typeof rate !== 'number' || !(rate >= 0.1 && rate <= 1000)) {
      throw new HttpError(
        400,
        `entriesPerSecond must be a number from 0.1 to 1000, got ${JSON.stringify(rate)}`,
      );
    }
    const runnable: string[] = [];
    const cannot: string[] = [];
    const missing: string[] = [];
    for (const id of ids) {
      const entry = await dlq.get(id);
      if (entry === undefined) missing.push(id);
      else if (options.redrive !== undefined || entry.origin?.kind === 'bullmq') runnable.push(id);
      else cannot.push(id);
    }
    const gapMs = 1000 / rate;
    let next = 0;
    const queue = createDeadLetterRequeuer(
      redis,
      bullmqPrefix === undefined ? {} : { prefix: bullmqPrefix },
    );
    const errors: string[] = [];
    try {
      const report =
        runnable.length === 0
          ? { redriven: [], failed: [], skipped: [] }
          : await dlq.redrive(
              { ids: runnable },
              async (entry) => {
                const now = clock.now();
                const at = Math.max(now, next);
                next = at + gapMs;
                if (at > now) await clock.sleep(at - now);
                try {
                  if (options.redrive !== undefined) await options.redrive(entry);
                  else await queue.add(entry);
                } catch (error) {
                  errors.push(`${entry.id}: ${(error as Error)?.message ?? String(error)}`);
                  throw error;
                }
              },
              // A page that goes away stops the redrive before the next entry.
              { signal: request.signal },
            );
      return json({ ...report, cannot, missing, errors });
    } finally {
      await queue.close();
    }
  };

  const purge = async (request: Request): Promise<Response> => {
    await checkMutation(request);
    const ids = idsOf(await readBody(request));
    const removed: string[] = [];
    const missing: string[] = [];
    for (const id of ids) {
      if (await dlq.remove(id)) removed.push(id);
      else missing.push(id);
    }
    return json({ removed, missing });
  };

  const list = async (url: URL): Promise<Response> => {
    const reasonParam = url.searchParams.get('reason') ?? '';
    if (reasonParam !== '' && !(REASONS as readonly string[]).includes(reasonParam)) {
      throw new HttpError(400, `reason must be one of ${REASONS.join(', ')}, got "${reasonParam}"`);
    }
    const reason = reasonParam === '' ? undefined : (reasonParam as Reason);
    const codeParam = url.searchParams.get('code') ?? '';
    const codes = codeParam === '' ? undefined : new Set(codeParam.split(',').map((c) => c.trim()));
    const limitParam = url.searchParams.get('limit') ?? '100';
    const limit = Number(limitParam);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new HttpError(400, `limit must be an integer from 1 to 1000, got "${limitParam}"`);
    }
    let cursor = url.searchParams.get('cursor') || undefined;
    const rows: ReturnType<typeof row>[] = [];
    let scanned = 0;
    do {
      const page = await dlq.list({ cursor, reason, limit: Math.min(200, limit) });
      cursor = page.cursor;
      for (const entry of page.entries) {
        scanned++;
        if (codes === undefined || codes.has(deadLetterCode(entry))) rows.push(row(entry));
      }
    } while (cursor !== undefined && rows.length < limit && scanned < maxScan);
    return json({ entries: rows, cursor: cursor ?? null, total: await dlq.size() });
  };

  /** The dead letters' summary, read at most once per `refreshMs` whoever asks. */
  let summarized: { readonly at: number; readonly body: Promise<unknown> } | undefined;
  const summarize = async (): Promise<unknown> => {
    const all: SummarizedDeadLetter[] = [];
    let cursor: string | undefined;
    do {
      const page = await dlq.list({ cursor, limit: 200 });
      for (const e of page.entries.slice(0, maxScan - all.length)) {
        all.push({ reason: e.reason, deadAt: e.deadAt, attempts: e.attempts.slice(-1) });
      }
      cursor = page.cursor;
    } while (cursor !== undefined && all.length < maxScan);
    return { ...summarizeDeadLetters(all), truncated: cursor !== undefined };
  };
  const summary = async (): Promise<Response> => {
    const now = clock.now();
    if (summarized === undefined || now - summarized.at >= refreshMs) {
      const body = summarize();
      summarized = { at: now, body };
      body.catch(() => {
        if (summarized?.body === body) summarized = undefined;
      });
    }
    return json(await summarized.body);
  };

  const metrics = async (): Promise<Response> => {
    const fleet = await readFleetMetrics(redis, {
      ...readOptions,
      sections: [section],
      series: true,
    });
    return json({ ...fleet, intervalMs, thresholds });
  };

  const session = async (request: Request): Promise<Response> => {
    const canMutate = await allowed(request);
    const base = {
      canMutate,
      refreshMs,
      windowMs,
      intervalMs,
      prefix,
      dlqPrefix,
      reasons: REASONS,
    };
    if (!canMutate) return json({ ...base, csrf: null });
    const token = cookie(request, CSRF_COOKIE);
    const csrf = (await validToken(token)) ? (token as string) : await newToken();
    const secure = new URL(request.url).protocol === 'https:' ? '; Secure' : '';
    return json({ ...base, csrf }, 200, {
      'set-cookie': `${CSRF_COOKIE}=${csrf}; Path=${basePath || '/'}; HttpOnly; SameSite=Strict${secure}`,
    });
  };

  const routes: Record<string, (request: Request, url: URL) => Promise<Response>> = {
    'GET /': async () => respond(pageHtml(basePath), 200, 'text/html; charset=utf-8'),
    'GET /assets/app.js': async () => respond(APP_JS, 200, 'text/javascript; charset=utf-8'),
    'GET /assets/app.css': async () => respond(APP_CSS, 200, 'text/css; charset=utf-8'),
    'GET /api/session': (request) => session(request),
    'GET /api/metrics': () => metrics(),
    'GET /api/dead-letters': (_, url) => list(url),
    'GET /api/dead-letters/summary': () => summary(),
    'GET /api/dead-letters/entry': async (_, url) => {
      const id = url.searchParams.get('id') ?? '';
      const entry = id === '' ? undefined : await dlq.get(id);
      if (entry === undefined) throw new HttpError(404, `no dead letter with id "${id}"`);
      return json({ ...entry, code: deadLetterCode(entry) });
    },
    'POST /api/dead-letters/redrive': (request) => redrive(request),
    'POST /api/dead-letters/purge': (request) => purge(request),
  };
  const paths = new Set(Object.keys(routes).map((k) => k.slice(k.indexOf(' ') + 1)));

  return async (request) => {
    try {
      const url = new URL(request.url);
      if (url.pathname !== basePath && !url.pathname.startsWith(`${basePath}/`)) {
        throw new HttpError(404, 'not found');
      }
      const path = url.pathname.slice(basePath.length) || '/';
      const route = routes[`${request.method === 'HEAD' ? 'GET' : request.method} ${path}`];
      if (route === undefined) {
        throw new HttpError(
          paths.has(path) ? 405 : 404,
          paths.has(path) ? 'method not allowed' : 'not found',
        );
      }
      return await route(request, url);
    } catch (error) {
      if (error instanceof HttpError) return json({ error: error.message }, error.status);
      return json({ error: (error as Error)?.message ?? String(error) }, 500);
    }
  };
}
