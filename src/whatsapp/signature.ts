import { assertKey } from '../core/validate.js';

/** A request body as received: the raw bytes, or their UTF-8 text. */
export type RawBody = string | Uint8Array | ArrayBuffer;

/** Request headers: a fetch `Headers`, or Node's `IncomingMessage.headers`-style record. */
export type HeadersLike =
  | { get(name: string): string | null }
  | Readonly<Record<string, string | readonly string[] | undefined>>;

const encoder = new TextEncoder();

/** The bytes of `body`, without copying when it already is bytes. */
export function bodyBytes(body: RawBody): Uint8Array {
  if (typeof body === 'string') return encoder.encode(body);
  if (body instanceof Uint8Array) return body;
  return new Uint8Array(body);
}

/** One header's value (case-insensitive); `undefined` when absent or sent more than once. */
export function headerValue(headers: HeadersLike | undefined, name: string): string | undefined {
  if (headers === undefined || headers === null) return undefined;
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  const lower = name.toLowerCase();
  for (const key of Object.keys(record)) {
    if (key.toLowerCase() !== lower) continue;
    const value = record[key];
    if (typeof value === 'string') return value;
    if (Array.isArray(value) && value.length === 1 && typeof value[0] === 'string') return value[0];
    return undefined;
  }
  return undefined;
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
 * Checks Meta's `X-Hub-Signature-256` header: `sha256=` and the hex HMAC-SHA256 of the raw
 * request body keyed with the app secret. The body must be the bytes as received (Meta signs
 * its own serialisation, with non-ASCII characters escaped as `\u00e4`): never re-serialised
 * JSON. Compared in constant time (`node:crypto`'s `timingSafeEqual` on Node, Deno and Bun;
 * Web Crypto's `verify` elsewhere).
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
  return (await hmac()).verify(appSecret, hexToBytes(match[1]!), bodyBytes(rawBody));
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

/** The query of the verification GET: `URLSearchParams`, a query string, or a parsed record. */
export type VerificationQuery =
  | URLSearchParams
  | string
  | Readonly<Record<string, string | readonly string[] | undefined>>;

function queryValue(query: VerificationQuery, name: string): string | undefined {
  if (typeof query === 'string') {
    return (
      new URLSearchParams(query.startsWith('?') ? query.slice(1) : query).get(name) ?? undefined
    );
  }
  if (query instanceof URLSearchParams) return query.get(name) ?? undefined;
  if (!Object.hasOwn(query, name)) return undefined;
  const value = query[name];
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && typeof value[0] === 'string') return value[0];
  return undefined;
}

/**
 * Answers Meta's webhook verification handshake (GET with `hub.mode=subscribe`,
 * `hub.verify_token`, `hub.challenge`): 200 with the challenge when the token matches, 403
 * when it doesn't, 400 when the request is not a handshake. The token is compared in constant
 * time.
 *
 * @example
 * app.get('/webhook', (req, res) => {
 *   const { status, body } = handleVerificationRequest(req.query, process.env.VERIFY_TOKEN);
 *   res.status(status).send(body);
 * });
 */
export function handleVerificationRequest(
  query: VerificationQuery,
  verifyToken: string,
): WebhookResponse {
  assertKey('verifyToken', verifyToken);
  const mode = queryValue(query, 'hub.mode');
  const token = queryValue(query, 'hub.verify_token');
  const challenge = queryValue(query, 'hub.challenge');
  if (mode !== 'subscribe' || challenge === undefined || challenge.length > 1024) {
    return { status: 400, body: 'Bad Request' };
  }
  if (token === undefined || !timingSafeEqual(token, verifyToken)) {
    return { status: 403, body: 'Forbidden' };
  }
  return { status: 200, body: challenge };
}
