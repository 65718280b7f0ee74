import { isObject } from '../core/loose.js';
import { assertKey } from '../core/validate.js';
import { WhatsAppApiError } from './errors.js';

/** One HTTP request of a send attempt. */
export interface EndpointRequest {
  readonly url: string;
  /** @default 'POST' */
  readonly method?: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/**
 * How to talk to a WhatsApp sending API: build the request for a payload, read the message ID
 * out of a successful response. {@link cloudApiEndpoint} and {@link wasenderEndpoint} are
 * built in; write your own for another provider.
 *
 * @example
 * const endpoint: WhatsAppEndpoint<{ to: string; text: string }> = {
 *   recipient: (p) => p.to,
 *   buildRequest: (p) => ({ url: 'https://bsp.example/send', headers: { 'content-type':
 *     'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(p) }),
 *   parseResponse: (body) => ({ messageId: (body as { id: string }).id }),
 * };
 */
export interface WhatsAppEndpoint<P> {
  /** The recipient of `payload`: the pair limiter's key. */
  recipient(payload: P): string;
  /** The HTTP request that sends `payload`. */
  buildRequest(payload: P): EndpointRequest;
  /**
   * The message ID from a 2xx response's body (parsed JSON, or text when it isn't JSON).
   * Throw when the body doesn't carry one.
   */
  parseResponse(body: unknown): { readonly messageId: string };
}

/** A Cloud API message: `to`, `type` and the type's object (`text`, `template`, …). */
export interface CloudMessage {
  /** Recipient phone number or WhatsApp ID. */
  readonly to: string;
  /** `text`, `template`, `image`, `interactive`, … @default 'text' (Meta's default) */
  readonly type?: string;
  readonly [field: string]: unknown;
}

/** Options of {@link cloudApiEndpoint}. */
export interface CloudApiEndpointOptions {
  /** System-user or business access token. */
  readonly accessToken: string;
  /** The business phone number ID to send from. */
  readonly phoneNumberId: string;
  /** @default 'https://graph.facebook.com' */
  readonly baseUrl?: string;
  /** Graph API version. @default 'v23.0' */
  readonly apiVersion?: string;
}

/** The defaults of {@link CloudApiEndpointOptions}. */
export const CLOUD_API_DEFAULTS = Object.freeze({
  baseUrl: 'https://graph.facebook.com',
  apiVersion: 'v23.0',
});

function missingId(body: unknown): never {
  throw new WhatsAppApiError({
    message: `Send response carries no message ID: ${JSON.stringify(body)?.slice(0, 200)}`,
  });
}

/**
 * The WhatsApp Cloud API: `POST {baseUrl}/{apiVersion}/{phoneNumberId}/messages` with a bearer
 * token; `messaging_product` and `recipient_type` are filled in. The message ID is
 * `messages[0].id` (a wamid).
 */
export function cloudApiEndpoint(options: CloudApiEndpointOptions): WhatsAppEndpoint<CloudMessage> {
  const accessToken = assertKey('accessToken', options.accessToken);
  const phoneNumberId = assertKey('phoneNumberId', options.phoneNumberId);
  const baseUrl = (options.baseUrl ?? CLOUD_API_DEFAULTS.baseUrl).replace(/\/+$/, '');
  const apiVersion = options.apiVersion ?? CLOUD_API_DEFAULTS.apiVersion;
  const url = `${baseUrl}/${apiVersion}/${encodeURIComponent(phoneNumberId)}/messages`;
  const headers = Object.freeze({
    authorization: `Bearer ${accessToken}`,
    'content-type': 'application/json',
  });
  return {
    recipient: (payload) => payload.to,
    buildRequest: (payload) => ({
      url,
      headers,
      body: JSON.stringify({
        messaging_product: 'whatsapp',
        recipient_type: 'individual',
        ...payload,
      }),
    }),
    parseResponse(body) {
      const messages = isObject(body) ? body.messages : undefined;
      const first = Array.isArray(messages) ? messages[0] : undefined;
      if (isObject(first) && typeof first.id === 'string' && first.id !== '') {
        return { messageId: first.id };
      }
      return missingId(body);
    },
  };
}

/** A WASenderApi message: `to` and `text` (or `imageUrl`, `documentUrl`, …). */
export interface WasenderMessage {
  readonly to: string;
  readonly text?: string;
  readonly [field: string]: unknown;
}

/** Options of {@link wasenderEndpoint}. */
export interface WasenderEndpointOptions {
  /** The session's API key. */
  readonly apiKey: string;
  /** @default 'https://www.wasenderapi.com' */
  readonly baseUrl?: string;
}

/**
 * WASenderApi: `POST {baseUrl}/api/send-message` with a bearer API key; the message ID is
 * `data.msgId`. Its 429 (with `X-RateLimit-*` headers) and its 503 while the session
 * reconnects are classified by `classifyWhatsAppError`.
 */
export function wasenderEndpoint(
  options: WasenderEndpointOptions,
): WhatsAppEndpoint<WasenderMessage> {
  const apiKey = assertKey('apiKey', options.apiKey);
  const baseUrl = (options.baseUrl ?? 'https://www.wasenderapi.com').replace(/\/+$/, '');
  const headers = Object.freeze({
    authorization: `Bearer ${apiKey}`,
    'content-type': 'application/json',
  });
  return {
    recipient: (payload) => payload.to,
    buildRequest: (payload) => ({
      url: `${baseUrl}/api/send-message`,
      headers,
      body: JSON.stringify(payload),
    }),
    parseResponse(body) {
      const data = isObject(body) && isObject(body.data) ? body.data : undefined;
      const id = data?.msgId ?? data?.id;
      if (typeof id === 'string' && id !== '') return { messageId: id };
      if (typeof id === 'number') return { messageId: String(id) };
      return missingId(body);
    },
  };
}
