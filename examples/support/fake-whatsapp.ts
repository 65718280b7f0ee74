/**
 * A loopback fake of the WhatsApp Cloud API (and of Meta's webhook sender) with fault
 * injection, for tests, the demo and the examples. Not part of the package: it runs on
 * node:http and is meant for 127.0.0.1.
 *
 * - `POST /{version}/{phoneNumberId}/messages`: accepts a message and answers a wamid, or
 *   injects a fault: 503, 130429 with HTTP 400, 131026 for undeliverable recipients, or a hang
 *   (no answer until the client gives up). A sliding one-second window per phone number
 *   answers 130429 past `rateLimitPerSecond`, as Meta does.
 * - `POST /api/send-message`: the same for WASenderApi's format, with 429 + `X-RateLimit-*`
 *   and 503 (session reconnecting) faults.
 * - Status webhooks (`sent`, `delivered`, `read`) for every accepted message, signed with the
 *   app secret, posted in batches to `webhookUrl`: some duplicated, some out of order, and
 *   redelivered (like Meta) when the receiver doesn't answer 200.
 * - Delivery faults: a message accepted and later `failed` (`failAfterAccept`), a message
 *   accepted whose answer is lost (`acceptThen`: the connection is destroyed, or never answered,
 *   after the message was accepted), statuses that come late (`statusDelayMs`) or never
 *   (`dropStatuses`).
 * - For the chaos soak (tools/soak/): `onRequest` logs every Cloud API request and its outcome,
 *   and `configure` changes the faults and webhook shares while the fake runs.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Fault probabilities per request, each in [0, 1]. */
export interface FakeFaults {
  /** Answer 503 (Cloud API code 2 / WASenderApi session reconnecting). */
  readonly serverError?: number;
  /** Answer 130429 with HTTP 400 (Cloud API) or 429 with `X-RateLimit-*` (WASenderApi). */
  readonly rateLimit?: number;
  /** Never answer: the client's request timeout has to fire. Nothing is sent. */
  readonly hang?: number;
  /**
   * Accept the message (it goes out, its statuses follow), then destroy the connection before
   * answering: the client can't know it was sent.
   */
  readonly dropAfterAccept?: number;
}

/** Options of {@link startFakeWhatsApp}. */
export interface FakeWhatsAppOptions {
  /** Expected bearer token; other tokens get code 190 (HTTP 401). @default 'test-token' */
  readonly accessToken?: string;
  /** Signs the status webhooks. @default 'test-app-secret' */
  readonly appSecret?: string;
  /** Where status webhooks go; none are sent without it. */
  readonly webhookUrl?: string;
  /** Meta's per-number throughput limit, over a sliding second. @default 80 */
  readonly rateLimitPerSecond?: number;
  readonly faults?: FakeFaults;
  /** Recipients that always get 131026 (message undeliverable). @default none */
  readonly undeliverable?: (to: string) => boolean;
  /**
   * Recipients whose accepted messages later fail: the Cloud API code of a `failed` status
   * webhook posted half a second after their `sent` (a 131026 is permanent, a 131000
   * transient), or `undefined` for a message that is delivered. @default none
   */
  readonly failAfterAccept?: (to: string, n: number) => number | undefined;
  /**
   * What happens to the answer of the `n`-th message accepted for `to` (from 1): `drop`
   * destroys the connection, `hang` never answers (the client times out); either way the
   * message was accepted and its statuses follow. `undefined`: answered. @default none
   */
  readonly acceptThen?: (to: string, n: number) => 'drop' | 'hang' | undefined;
  /** Extra delay of every status webhook of messages to `to`, in milliseconds. @default 0 */
  readonly statusDelayMs?: (to: string) => number;
  /** Recipients whose messages get no status webhook at all (statuses lost). @default none */
  readonly dropStatuses?: (to: string) => boolean;
  /** Share of messages that also get a `read` status. @default 0.6 */
  readonly readShare?: number;
  /** Share of status events delivered twice. @default 0.1 */
  readonly duplicateShare?: number;
  /** Share of messages whose statuses are posted in random order. @default 0.3 */
  readonly reorderShare?: number;
  /** Statuses per webhook payload, at most. @default 20 */
  readonly batchSize?: number;
  /** Seed of the fault dice. @default 1 */
  readonly seed?: number;
  /** Tries per status webhook before the fake gives it up, as Meta stops after a week. @default 6 */
  readonly webhookAttempts?: number;
  /** Longest wait between two tries of a webhook (they double from 100 ms). @default unbounded */
  readonly maxWebhookRetryDelayMs?: number;
  /** Called for every Cloud API send request once the fake has answered it (or hung it). */
  readonly onRequest?: (request: CloudRequest) => void;
  /**
   * Called after every try of a status webhook: when it was answered, with which HTTP status
   * (`undefined`: no answer), and the statuses it carried.
   */
  readonly onWebhook?: (post: WebhookPost) => void;
}

/** One try of a status webhook, for {@link FakeWhatsAppOptions.onWebhook}. */
export interface WebhookPost {
  /** When the answer came (or the try failed), epoch milliseconds. */
  readonly at: number;
  readonly status: number | undefined;
  readonly events: readonly { readonly wamid: string; readonly status: FakeStatus }[];
}

/** One Cloud API send request as the fake saw it, for {@link FakeWhatsAppOptions.onRequest}. */
export interface CloudRequest {
  /** Arrival time, epoch milliseconds. */
  readonly at: number;
  readonly phoneNumberId: string;
  /** The recipient, when the body had one. */
  readonly to?: string;
  readonly headers: IncomingMessage['headers'];
  /**
   * `accepted`, or the fault or error the fake answered with (`hang`: no answer;
   * `drop_after_accept` / `hang_after_accept`: accepted, its answer lost).
   */
  readonly outcome: string;
  /** The wamid of an accepted message. */
  readonly wamid?: string;
  /** The request body, parsed, when it was JSON. */
  readonly payload?: Record<string, unknown>;
}

/** What {@link FakeWhatsApp.configure} can change while the fake runs. */
export interface FakeSettings {
  readonly faults?: FakeFaults;
  readonly duplicateShare?: number;
  readonly reorderShare?: number;
}

/** A message the fake accepted. */
export interface AcceptedMessage {
  readonly wamid: string;
  readonly phoneNumberId: string;
  readonly to: string;
  /** The request body as sent. */
  readonly payload: Record<string, unknown>;
  /** Arrival time, epoch milliseconds. */
  readonly at: number;
}

export interface FakeWhatsApp {
  /** Base URL, e.g. `http://127.0.0.1:41234` (use as `baseUrl`). */
  readonly url: string;
  readonly accessToken: string;
  readonly appSecret: string;
  /** Every accepted message, in arrival order. */
  readonly accepted: readonly AcceptedMessage[];
  /** Arrival times (epoch ms) of every send request, per phone number. */
  readonly arrivals: ReadonlyMap<string, readonly number[]>;
  /** The last status the fake reported for each wamid: what a receiver must end up with. */
  readonly finalStatus: ReadonlyMap<string, FakeStatus>;
  /** Injected faults by kind, and 130429s from the rate window. */
  readonly faults: Readonly<Record<string, number>>;
  /** Status events posted (duplicates included) and webhook requests answered non-200. */
  readonly webhookStats: {
    readonly events: number;
    readonly posts: number;
    readonly refused: number;
  };
  /** Most requests for `phoneNumberId` (all numbers when omitted) in any `windowMs` window. */
  maxInWindow(windowMs?: number, phoneNumberId?: string): number;
  /** Resolves once every scheduled webhook has been delivered (or given up). */
  drainWebhooks(): Promise<void>;
  /** Replaces the fault probabilities or webhook shares from now on (for chaos schedules). */
  configure(settings: FakeSettings): void;
  close(): Promise<void>;
}

function dice(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, body: unknown, headers = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function graphError(res: ServerResponse, status: number, code: number, message: string): void {
  json(res, status, {
    error: {
      message: `(#${code}) ${message}`,
      type: 'OAuthException',
      code,
      error_data: { messaging_product: 'whatsapp', details: message },
      fbtrace_id: 'AfakeTrace',
    },
  });
}

/** A status the fake reports. */
export type FakeStatus = 'sent' | 'delivered' | 'read' | 'failed';

interface StatusEvent {
  readonly phoneNumberId: string;
  readonly wamid: string;
  readonly to: string;
  readonly status: FakeStatus;
  /** The error code of a `failed` status. */
  readonly errorCode?: number;
  readonly timestamp: number;
  readonly dueAt: number;
  /** The message's `biz_opaque_callback_data`, echoed on its statuses as Meta does. */
  readonly callbackData: string | undefined;
}

/** Starts the fake on 127.0.0.1 and a free port. */
export async function startFakeWhatsApp(options: FakeWhatsAppOptions = {}): Promise<FakeWhatsApp> {
  const accessToken = options.accessToken ?? 'test-token';
  const appSecret = options.appSecret ?? 'test-app-secret';
  const limit = options.rateLimitPerSecond ?? 80;
  let faults = options.faults ?? {};
  const random = dice(options.seed ?? 1);
  const readShare = options.readShare ?? 0.6;
  let duplicateShare = options.duplicateShare ?? 0.1;
  let reorderShare = options.reorderShare ?? 0.3;
  const webhookAttempts = options.webhookAttempts ?? 6;
  const maxRetryDelayMs = options.maxWebhookRetryDelayMs ?? Number.POSITIVE_INFINITY;
  const batchSize = options.batchSize ?? 20;

  const accepted: AcceptedMessage[] = [];
  const finalStatus = new Map<string, FakeStatus>();
  const arrivals = new Map<string, number[]>();
  const recent = new Map<string, number[]>();
  const faultCounts: Record<string, number> = {};
  const hung = new Set<ServerResponse>();
  const pending: StatusEvent[] = [];
  const webhookStats = { events: 0, posts: 0, refused: 0 };
  let inFlight = 0;
  let seq = 0;
  const count = (kind: string): void => {
    faultCounts[kind] = (faultCounts[kind] ?? 0) + 1;
  };

  /** Counts the request in the number's sliding second; `false` when over the limit. */
  const admit = (phoneNumberId: string, now: number): boolean => {
    const list = arrivals.get(phoneNumberId) ?? [];
    arrivals.set(phoneNumberId, list);
    list.push(now);
    const window = recent.get(phoneNumberId) ?? [];
    recent.set(phoneNumberId, window);
    while (window.length > 0 && window[0]! <= now - 1000) window.shift();
    window.push(now);
    return window.length <= limit;
  };

  /** Messages accepted per recipient. */
  const acceptedFor = new Map<string, number>();

  const scheduleStatuses = (message: AcceptedMessage, n: number): void => {
    if (options.webhookUrl === undefined) return;
    if (options.dropStatuses?.(message.to) === true) return;
    const seconds = Math.floor(message.at / 1000);
    const extra = options.statusDelayMs?.(message.to) ?? 0;
    const failCode = options.failAfterAccept?.(message.to, n);
    if (failCode !== undefined) {
      finalStatus.set(message.wamid, 'failed');
      // Meta documents `biz_opaque_callback_data` on sent, delivered and read statuses only.
      const base = {
        phoneNumberId: message.phoneNumberId,
        wamid: message.wamid,
        to: message.to,
      };
      pending.push(
        {
          ...base,
          status: 'sent',
          timestamp: seconds,
          dueAt: Date.now() + extra + 40,
          callbackData:
            typeof message.payload.biz_opaque_callback_data === 'string'
              ? message.payload.biz_opaque_callback_data
              : undefined,
        },
        {
          ...base,
          callbackData: undefined,
          status: 'failed',
          errorCode: failCode,
          timestamp: seconds + 1,
          dueAt: Date.now() + extra + 500,
        },
      );
      return;
    }
    const statuses: StatusEvent['status'][] = ['sent', 'delivered'];
    if (random() < readShare) statuses.push('read');
    finalStatus.set(message.wamid, statuses[statuses.length - 1]!);
    const shuffled = random() < reorderShare;
    statuses.forEach((status, i) => {
      const copies = random() < duplicateShare ? 2 : 1;
      for (let c = 0; c < copies; c++) {
        const delay = shuffled ? random() * 300 : 40 * (i + 1) + c * 150;
        pending.push({
          phoneNumberId: message.phoneNumberId,
          wamid: message.wamid,
          to: message.to,
          status,
          timestamp: seconds + i,
          dueAt: Date.now() + extra + delay,
          callbackData:
            typeof message.payload.biz_opaque_callback_data === 'string'
              ? message.payload.biz_opaque_callback_data
              : undefined,
        });
      }
    });
  };

  const post = async (body: string, events: WebhookPost['events']): Promise<void> => {
    const signature = createHmac('sha256', appSecret).update(body).digest('hex');
    for (let attempt = 0; attempt < webhookAttempts; attempt++) {
      webhookStats.posts++;
      let answered: number | undefined;
      try {
        const res = await fetch(options.webhookUrl as string, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-hub-signature-256': `sha256=${signature}`,
          },
          body,
        });
        await res.arrayBuffer();
        answered = res.status;
      } catch {
        // The receiver is down: try again, as Meta does.
      }
      options.onWebhook?.({ at: Date.now(), status: answered, events });
      if (answered === 200) return;
      webhookStats.refused++;
      await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, maxRetryDelayMs)));
    }
  };

  const flush = (): void => {
    const now = Date.now();
    const due: StatusEvent[] = [];
    const later: StatusEvent[] = [];
    for (const e of pending) (e.dueAt <= now ? due : later).push(e);
    if (due.length === 0) return;
    pending.length = 0;
    pending.push(...later);
    for (let i = 0; i < due.length; i += batchSize) {
      const batch = due.slice(i, i + batchSize);
      const byNumber = new Map<string, StatusEvent[]>();
      for (const e of batch)
        byNumber.set(e.phoneNumberId, [...(byNumber.get(e.phoneNumberId) ?? []), e]);
      const body = JSON.stringify({
        object: 'whatsapp_business_account',
        entry: [
          {
            id: 'FAKE_WABA',
            changes: [...byNumber].map(([phoneNumberId, events]) => ({
              field: 'messages',
              value: {
                messaging_product: 'whatsapp',
                metadata: { display_phone_number: '15550000000', phone_number_id: phoneNumberId },
                statuses: events.map((e) => ({
                  id: e.wamid,
                  status: e.status,
                  timestamp: String(e.timestamp),
                  recipient_id: e.to,
                  ...(e.errorCode === undefined
                    ? {}
                    : {
                        errors: [
                          {
                            code: e.errorCode,
                            title: `Error ${e.errorCode}`,
                            message: `Error ${e.errorCode}`,
                            error_data: {
                              details: `The fake failed this message (${e.errorCode}).`,
                            },
                          },
                        ],
                      }),
                  ...(e.callbackData === undefined
                    ? {}
                    : { biz_opaque_callback_data: e.callbackData }),
                })),
              },
            })),
          },
        ],
      });
      webhookStats.events += batch.length;
      inFlight++;
      const events = batch.map((e) => ({ wamid: e.wamid, status: e.status }));
      void post(body, events).finally(() => {
        inFlight--;
      });
    }
  };
  const flusher = setInterval(flush, 50);
  flusher.unref();

  const handleCloud = async (req: IncomingMessage, res: ServerResponse, phoneNumberId: string) => {
    const now = Date.now();
    const body = await readBody(req);
    const result = answerCloud(req, res, phoneNumberId, now, body);
    options.onRequest?.({ at: now, phoneNumberId, headers: req.headers, ...result });
  };

  /** Answers one send request; says how, for `onRequest`. */
  const answerCloud = (
    req: IncomingMessage,
    res: ServerResponse,
    phoneNumberId: string,
    now: number,
    body: string,
  ): Omit<CloudRequest, 'at' | 'phoneNumberId' | 'headers'> => {
    if (req.headers.authorization !== `Bearer ${accessToken}`) {
      graphError(res, 401, 190, 'Error validating access token');
      return { outcome: 'unauthorized' };
    }
    if (!admit(phoneNumberId, now)) {
      count('rate_window');
      graphError(res, 400, 130429, 'Rate limit hit');
      return { outcome: 'rate_window' };
    }
    let payload: Record<string, unknown>;
    try {
      payload = JSON.parse(body) as Record<string, unknown>;
    } catch {
      graphError(res, 400, 100, 'Invalid parameter');
      return { outcome: 'invalid' };
    }
    const to = payload.to;
    if (typeof to !== 'string' || payload.messaging_product !== 'whatsapp') {
      graphError(res, 400, 131008, 'Required parameter is missing');
      return { outcome: 'invalid', payload };
    }
    const seen = { to, payload };
    const roll = random();
    const { serverError = 0, rateLimit = 0, hang = 0 } = faults;
    if (roll < serverError) {
      count('server_error');
      graphError(res, 503, 2, 'Service temporarily unavailable');
      return { outcome: 'server_error', ...seen };
    }
    if (roll < serverError + rateLimit) {
      count('rate_limit');
      graphError(res, 400, 130429, 'Rate limit hit');
      return { outcome: 'rate_limit', ...seen };
    }
    if (roll < serverError + rateLimit + hang) {
      count('hang');
      hung.add(res);
      res.on('close', () => hung.delete(res));
      return { outcome: 'hang', ...seen };
    }
    if (options.undeliverable?.(to)) {
      count('undeliverable');
      graphError(res, 400, 131026, 'Message undeliverable');
      return { outcome: 'undeliverable', ...seen };
    }
    const wamid = `wamid.FAKE${(++seq).toString(36).toUpperCase().padStart(8, '0')}`;
    const message: AcceptedMessage = { wamid, phoneNumberId, to, payload, at: now };
    accepted.push(message);
    const n = (acceptedFor.get(to) ?? 0) + 1;
    acceptedFor.set(to, n);
    scheduleStatuses(message, n);
    const { dropAfterAccept = 0 } = faults;
    const after =
      options.acceptThen?.(to, n) ??
      (dropAfterAccept > 0 && random() < dropAfterAccept ? 'drop' : undefined);
    if (after === 'drop') {
      count('drop_after_accept');
      res.socket?.destroy();
      return { outcome: 'drop_after_accept', wamid, ...seen };
    }
    if (after === 'hang') {
      count('hang_after_accept');
      hung.add(res);
      res.on('close', () => hung.delete(res));
      return { outcome: 'hang_after_accept', wamid, ...seen };
    }
    json(res, 200, {
      messaging_product: 'whatsapp',
      contacts: [{ input: to, wa_id: to.replace(/\D/g, '') }],
      messages: [{ id: wamid, message_status: 'accepted' }],
    });
    return { outcome: 'accepted', wamid, ...seen };
  };

  const handleWasender = async (req: IncomingMessage, res: ServerResponse) => {
    const now = Date.now();
    const body = await readBody(req);
    if (req.headers.authorization !== `Bearer ${accessToken}`) {
      return json(res, 401, { success: false, message: 'Unauthenticated' });
    }
    const overLimit = !admit('wasender', now);
    const roll = random();
    const { serverError = 0, rateLimit = 0, hang = 0 } = faults;
    if (overLimit || (roll >= serverError && roll < serverError + rateLimit)) {
      count(overLimit ? 'rate_window' : 'rate_limit');
      return json(
        res,
        429,
        { success: false, message: 'Too many requests' },
        {
          'x-ratelimit-limit': String(limit),
          'x-ratelimit-remaining': '0',
          'x-ratelimit-reset': String(Math.ceil(now / 1000) + 1),
        },
      );
    }
    if (roll < serverError) {
      count('server_error');
      return json(res, 503, { success: false, message: 'Session is reconnecting' });
    }
    if (roll < serverError + rateLimit + hang) {
      count('hang');
      hung.add(res);
      res.on('close', () => hung.delete(res));
      return;
    }
    const payload = JSON.parse(body) as Record<string, unknown>;
    const to = String(payload.to);
    const wamid = String(++seq);
    accepted.push({ wamid, phoneNumberId: 'wasender', to, payload, at: now });
    json(res, 200, {
      success: true,
      data: { msgId: Number(wamid), jid: `${to}@s.whatsapp.net`, status: 'in_progress' },
    });
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const cloud = /^\/v[\d.]+\/([^/]+)\/messages$/.exec(url.pathname);
    const route =
      req.method === 'POST' && cloud
        ? handleCloud(req, res, decodeURIComponent(cloud[1]!))
        : req.method === 'POST' && url.pathname === '/api/send-message'
          ? handleWasender(req, res)
          : Promise.resolve(json(res, 404, { error: { message: 'Unknown path', code: 100 } }));
    route.catch(() => {
      if (!res.headersSent) json(res, 500, { error: { message: 'fake crashed', code: 1 } });
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    accessToken,
    appSecret,
    accepted,
    finalStatus,
    arrivals,
    faults: faultCounts,
    webhookStats,
    maxInWindow(windowMs = 1000, phoneNumberId?: string) {
      const times = (
        phoneNumberId === undefined
          ? [...arrivals.values()].flat()
          : [...(arrivals.get(phoneNumberId) ?? [])]
      ).sort((a, b) => a - b);
      let best = 0;
      let start = 0;
      for (let end = 0; end < times.length; end++) {
        while (times[end]! - times[start]! >= windowMs) start++;
        best = Math.max(best, end - start + 1);
      }
      return best;
    },
    configure(settings) {
      if (settings.faults !== undefined) faults = settings.faults;
      if (settings.duplicateShare !== undefined) duplicateShare = settings.duplicateShare;
      if (settings.reorderShare !== undefined) reorderShare = settings.reorderShare;
    },
    async drainWebhooks() {
      while (pending.length > 0 || inFlight > 0) {
        flush();
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      clearInterval(flusher);
      for (const res of hung) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
