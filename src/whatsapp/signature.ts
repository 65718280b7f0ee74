import { headerValue } from '../core/loose.js';
import { assertKey } from '../core/validate.js';

export { headerValue };

/** A request body as received: the raw bytes, or their UTF-8 text. */
export type RawBody = string | Uint8Array | ArrayBuffer;

/** Request headers: a fetch `Headers`, or Node's `IncomingMessage.headers`-style record. */
export type HeadersLike =
  | { get(name: string): string | null }
  | Readonly<Record<string, string | readonly string[] | undefined>>;

const encoder = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The bytes of `body`, without copying when it already is bytes. */
export function bodyBytes(body: RawBody): Uint8Array {
  if (typeof body === 'string') return encoder.encode(body);
  if (body instanceof Uint8Array) return body;
  return new Uint8Array(body);
}

/** HMAC-SHA256 as the runtime offers it best. @internal */
export interface Hmac {
  /** `true` when `mac` is the HMAC of `body` under `secret`; constant time. */
  verify(
    secret: string,
    mac: Uint8Array<ArrayBuffer>,
    body: Uint8Array,
  ): boolean | Promise<boolean>;
  sign(secret: string, body: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

let hmacPromise: Promise<Hmac> | undefined;

function isNodeLike(): boolean {
  const proc = (globalThis as { process?: { versions?: { node?: unknown } } }).process;
  return typeof proc?.versions?.node === 'string';
}

/**
 * On Node (and Deno, Bun) `node:crypto`, loaded on first use: synchronous and about four times
 * faster than Web Crypto for webhook-sized bodies. Elsewhere (workers, browsers) Web Crypto's
 * `subtle`, whose `verify` compares in constant time.
 */
function hmac(): Promise<Hmac> {
  hmacPromise ??= loadHmac();
  return hmacPromise;
}

/** The HMAC backend: `node:crypto` when `preferNode` and it loads, else Web Crypto. @internal */
export async function loadHmac(preferNode = isNodeLike()): Promise<Hmac> {
  if (preferNode) {
    try {
      // A computed specifier: bundlers for workers and browsers leave it alone.
      const specifier = 'node:crypto';
      const { createHmac, timingSafeEqual } = (await import(
        /* @vite-ignore */ specifier
      )) as typeof import('node:crypto');
      const digest = (secret: string, body: Uint8Array) =>
        createHmac('sha256', secret).update(body).digest();
      return {
        verify: (secret, mac, body) => {
          const expected = digest(secret, body);
          return expected.length === mac.length && timingSafeEqual(expected, mac);
        },
        sign: digest,
      };
    } catch {
      // No node:crypto after all: Web Crypto below.
    }
  }
  const subtle = (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle;
  if (subtle === undefined) throw new Error('Neither node:crypto nor Web Crypto is available');
  const keys = new Map<string, Promise<CryptoKey>>();
  const key = (secret: string): Promise<CryptoKey> => {
    let found = keys.get(secret);
    if (found === undefined) {
      found = subtle.importKey(
        'raw',
        encoder.encode(secret),
        { name: 'HMAC', hash: 'SHA-256' },
        false,
        ['sign', 'verify'],
      );
      if (keys.size >= 16) keys.delete(keys.keys().next().value as string);
      keys.set(secret, found);
    }
    return found;
  };
  return {
    verify: async (secret, mac, body) =>
      subtle.verify('HMAC', await key(secret), mac, body as BufferSource),
    sign: async (secret, body) =>
      new Uint8Array(await subtle.sign('HMAC', await key(secret), body as BufferSource)),
  };
}

const SIGNATURE = /^sha256=([0-9a-fA-F]{64})$/;

function hexToBytes(hex: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * The body as Meta serialises it for signing: every non-ASCII character written as a JSON
 * `\u` escape with lowercase hex, one per UTF-16 code unit (so an emoji becomes its two
 * surrogates, `😀` → `\ud83d\ude00`); ASCII bytes, escapes already there included, are kept
 * as they are. `undefined` when the body is all ASCII (escaping would change nothing) or is not
 * valid UTF-8.
 * @internal
 */
export function escapedBody(body: RawBody): Uint8Array | undefined {
  let text: string;
  if (typeof body === 'string') {
    text = body;
  } else {
    const bytes = bodyBytes(body);
    let ascii = true;
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i]! >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return undefined;
    try {
      text = strictUtf8.decode(bytes);
    } catch {
      return undefined;
    }
  }
  let out = '';
  let from = 0;
  let changed = false;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    out += `${text.slice(from, i)}\\u${unit.toString(16).padStart(4, '0')}`;
    from = i + 1;
    changed = true;
  }
  return changed ? encoder.encode(out + text.slice(from)) : undefined;
}

/**
 * Checks Meta's `X-Hub-Signature-256` header: `sha256=` and the hex HMAC-SHA256 of the
 * request body keyed with the app secret. The body must be the bytes as received, never
 * re-serialised JSON.
 *
 * Meta signs its own serialisation, in which non-ASCII characters are escaped (`ä` →
 * `\u00e4`, lowercase hex, emoji as two surrogates). Most deliveries arrive in that form, but
 * some arrive with the characters themselves while the signature still covers the escaped form.
 * So the HMAC is checked over the raw bytes first and, only when that fails and the body holds
 * non-ASCII characters, over its escaped form ({@link escapedBody}). Both comparisons run in
 * constant time (`node:crypto`'s `timingSafeEqual` on Node, Deno and Bun; Web Crypto's
 * `verify` elsewhere); any change to the body other than escaping its non-ASCII characters
 * fails both.
 *
 * Resolves `false` for a missing, malformed (anything but exactly `sha256=` + 64 hex digits,
 * whitespace included) or wrong signature. Throws a `TypeError` for an empty `appSecret`: that
 * is a configuration error, not a bad request.
 *
 * @example
 * const ok = await verifyWebhookSignature(rawBody, req.headers['x-hub-signature-256'], secret);
 * if (!ok) return res.status(401).end();
 */
export async function verifyWebhookSignature(
  rawBody: RawBody,
  signatureHeader: string | readonly string[] | null | undefined,
  appSecret: string,
): Promise<boolean> {
  assertKey('appSecret', appSecret);
  const header =
    typeof signatureHeader === 'string'
      ? signatureHeader
      : Array.isArray(signatureHeader) && signatureHeader.length === 1
        ? (signatureHeader[0] as string)
        : undefined;
  if (header === undefined) return false;
  const match = SIGNATURE.exec(header);
  if (!match) return false;
  const mac = hexToBytes(match[1]!);
  const backend = await hmac();
  if (await backend.verify(appSecret, mac, bodyBytes(rawBody))) return true;
  const escaped = escapedBody(rawBody);
  return escaped !== undefined && (await backend.verify(appSecret, mac, escaped));
}

/** The hex HMAC-SHA256 of `body` keyed with `secret`, as Meta puts it after `sha256=`. */
export async function signWebhookBody(body: RawBody, secret: string): Promise<string> {
  assertKey('secret', secret);
  const mac = await (await hmac()).sign(secret, bodyBytes(body));
  let hex = '';
  for (const byte of mac) hex += byte.toString(16).padStart(2, '0');
  return hex;
}

/**
 * Compares two strings in time that depends only on their lengths, not on where they differ.
 * Lengths are not secret here (a signature or a token has a known length).
 */
export function timingSafeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  const n = Math.max(x.length, y.length);
  for (let i = 0; i < n; i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/**
 * Checks WASenderApi's `X-Webhook-Signature` header, which carries the shared webhook secret
 * itself: a constant-time equality. `false` for a missing header. Throws a `TypeError` for an
 * empty `secret`.
 *
 * @example
 * if (!verifyWasenderSignature(req.headers['x-webhook-signature'], secret)) return reply.code(401);
 */
export function verifyWasenderSignature(
  header: string | readonly string[] | null | undefined,
  secret: string,
): boolean {
  assertKey('secret', secret);
  const value =
    typeof header === 'string'
      ? header
      : Array.isArray(header) && header.length === 1
        ? (header[0] as string)
        : undefined;
  if (value === undefined) return false;
  return timingSafeEqual(value, secret);
}

/** What to answer an HTTP request with. */
export interface WebhookResponse {
  /** HTTP status code. */
  readonly status: number;
  /** Response body (text). */
  readonly body: string;
}

/**
 * The query of the verification GET as a framework hands it over: `URLSearchParams`, a `URL`,
 * a query string, or a parsed record (Express 4 and 5, with either query parser, Fastify, Koa,
 * Hono's `c.req.query()`), with `hub.*` as flat keys or nested under `hub`. Anything else,
 * `null` and `undefined` included, is answered 400.
 */
export type VerificationQuery =
  | URLSearchParams
  | URL
  | string
  | Readonly<Record<string, unknown>>
  | null
  | undefined;

/** One query value; `undefined` when absent, repeated, or not a string. */
function queryValue(
  query: unknown,
  name: 'mode' | 'verify_token' | 'challenge',
): string | undefined {
  const key = `hub.${name}`;
  if (typeof query === 'string') {
    const params = new URLSearchParams(query.startsWith('?') ? query.slice(1) : query);
    return single(params.getAll(key));
  }
  if (query instanceof URL) return single(query.searchParams.getAll(key));
  if (query instanceof URLSearchParams) return single(query.getAll(key));
  if (typeof query !== 'object' || query === null) return undefined;
  const record = query as Readonly<Record<string, unknown>>;
  if (Object.hasOwn(record, key)) return single(record[key]);
  const hub = Object.hasOwn(record, 'hub') ? record.hub : undefined;
  if (typeof hub === 'object' && hub !== null && Object.hasOwn(hub, name)) {
    return single((hub as Readonly<Record<string, unknown>>)[name]);
  }
  return undefined;
}

function single(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.length === 1 && typeof value[0] === 'string') return value[0];
  return undefined;
}

/**
 * Answers Meta's webhook verification handshake (GET with `hub.mode=subscribe`,
 * `hub.verify_token`, `hub.challenge`): 200 with the challenge when the token matches, 403
 * when it doesn't, 400 when the request is not a handshake. The token is compared in constant
 * time. It never throws for what a request can carry: `null`, `undefined`, a number, a
 * repeated parameter (ambiguous, so absent), a record whose getters throw — all are answered,
 * 400 or 403. `verifyToken` may be typed `string | undefined`, as `process.env` hands it over,
 * but a missing or empty one (a configuration error) throws a `TypeError` or `RangeError` on
 * every call: a handshake is never accepted without a token to compare.
 *
 * @example
 * app.get('/webhook', (req, res) => {
 *   const { status, body } = handleVerificationRequest(req.query, process.env.VERIFY_TOKEN);
 *   res.status(status).send(body);
 * });
 */
export function handleVerificationRequest(
  query: VerificationQuery,
  verifyToken: string | undefined,
): WebhookResponse {
  if (verifyToken === undefined) {
    throw new TypeError(
      'verifyToken must be a string, got undefined: is the setting (an environment variable?) it is read from set?',
    );
  }
  assertKey('verifyToken', verifyToken);
  let mode: string | undefined;
  let token: string | undefined;
  let challenge: string | undefined;
  try {
    mode = queryValue(query, 'mode');
    token = queryValue(query, 'verify_token');
    challenge = queryValue(query, 'challenge');
  } catch {
    return BAD_REQUEST;
  }
  if (mode !== 'subscribe' || challenge === undefined || challenge.length > 1024) {
    return BAD_REQUEST;
  }
  if (token === undefined || !timingSafeEqual(token, verifyToken)) {
    return { status: 403, body: 'Forbidden' };
  }
  return { status: 200, body: challenge };
}

const BAD_REQUEST: WebhookResponse = Object.freeze({ status: 400, body: 'Bad Request' });
