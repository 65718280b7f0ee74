import { brandCheck, RetrykitError } from '../core/errors.js';
import { isObject } from '../core/loose.js';

function asString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** An integer from a number or a numeric string (`130429` or `"130429"`). */
function asCode(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && /^\d{1,9}$/.test(value)) return Number(value);
  return undefined;
}

/** Response headers as a plain record with lower-case names. */
export type HeaderRecord = Readonly<Record<string, string>>;

function toHeaderRecord(headers: unknown): HeaderRecord {
  const out: Record<string, string> = Object.create(null);
  if (!isObject(headers)) return out;
  if (typeof headers.forEach === 'function' && typeof headers.get === 'function') {
    (headers as unknown as Headers).forEach((value, name) => {
      out[name.toLowerCase()] = value;
    });
    return out;
  }
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value === 'string') out[name.toLowerCase()] = value;
    else if (typeof value === 'number') out[name.toLowerCase()] = String(value);
    else if (Array.isArray(value) && typeof value[0] === 'string')
      out[name.toLowerCase()] = value.join(', ');
  }
  return out;
}

/** The fields of a Graph API (or WASenderApi) error, every one but `message` optional. */
export interface WhatsAppErrorFields {
  /** Human-readable message from the platform. */
  readonly message: string;
  /** Graph API `error.code`, e.g. `130429`. Absent for WASenderApi and non-JSON bodies. */
  readonly errorCode?: number | undefined;
  /** Graph API `error.type`, e.g. `OAuthException`. */
  readonly type?: string | undefined;
  /** Graph API `error.error_subcode`. */
  readonly subcode?: number | undefined;
  /** Graph API `error.error_data.details`: the most specific explanation Meta gives. */
  readonly details?: string | undefined;
  /** Graph API `error.fbtrace_id`, for Meta support. */
  readonly fbtraceId?: string | undefined;
  /** HTTP status of the response, when the error came from one. */
  readonly status?: number | undefined;
  /** Response headers, lower-case names (rate-limit and usage headers live here). */
  readonly headers?: HeaderRecord | undefined;
}

/**
 * A WhatsApp Cloud API (Graph API) or WASenderApi request failed with an error response.
 * `code` is retrykit's `WHATSAPP_API`; Meta's numeric code is {@link WhatsAppApiError.errorCode}.
 * Classify it with `classifyWhatsAppError`.
 */
export class WhatsAppApiError extends RetrykitError {
  override readonly name = 'WhatsAppApiError' as const;

  /** Makes `instanceof` recognise this error made by any copy of retrykit. */
  static override [Symbol.hasInstance] = brandCheck('WhatsAppApiError', 'WHATSAPP_API');

  /** Meta's `error.code` (e.g. `130429`), `undefined` when the response had none. */
  readonly errorCode: number | undefined;
  /** Meta's `error.type` (e.g. `OAuthException`). */
  readonly type: string | undefined;
  /** Meta's `error.error_subcode`. */
  readonly subcode: number | undefined;
  /** Meta's `error.error_data.details`. */
  readonly details: string | undefined;
  /** Meta's `error.fbtrace_id`. */
  readonly fbtraceId: string | undefined;
  /** HTTP status of the response. */
  readonly status: number | undefined;
  /** Response headers with lower-case names; empty when unknown. */
  readonly headers: HeaderRecord;

  constructor(fields: WhatsAppErrorFields, options?: { cause?: unknown }) {
    const prefix = fields.errorCode === undefined ? '' : `(#${fields.errorCode}) `;
    const message = fields.message.startsWith('(#') ? fields.message : prefix + fields.message;
    super('WHATSAPP_API', message, options);
    this.errorCode = fields.errorCode;
    this.type = fields.type;
    this.subcode = fields.subcode;
    this.details = fields.details;
    this.fbtraceId = fields.fbtraceId;
    this.status = fields.status;
    this.headers = fields.headers ?? Object.freeze(Object.create(null));
  }

  /**
   * Builds the error from a response's status, parsed JSON body (or raw text) and headers.
   * Tolerates anything: a Graph API `{ error: {...} }`, a WASenderApi `{ message }`, an HTML
   * error page, or nothing.
   *
   * @example
   * if (!res.ok) throw WhatsAppApiError.fromResponse(res.status, await res.text(), res.headers);
   */
  static fromResponse(
    status: number | undefined,
    body: unknown,
    headers?: unknown,
  ): WhatsAppApiError {
    const fields = parseErrorBody(body);
    return new WhatsAppApiError({
      ...fields,
      message:
        fields.message ??
        (status === undefined ? 'WhatsApp API error' : `WhatsApp API answered HTTP ${status}`),
      status,
      headers: toHeaderRecord(headers),
    });
  }
}

/** `true` for a {@link WhatsAppApiError} from any installed copy of retrykit. */
export function isWhatsAppApiError(error: unknown): error is WhatsAppApiError {
  return error instanceof WhatsAppApiError;
}

type ParsedFields = Omit<WhatsAppErrorFields, 'message' | 'status' | 'headers'> & {
  message: string | undefined;
};

/**
 * Reads the error fields out of a Graph API error body (`{ error: { code, ... } }`), a bare
 * error object (`{ code, message, error_data }`, as in webhook `errors[]`), a WASenderApi body
 * (`{ success: false, message }`) or JSON text of any of those.
 */
export function parseErrorBody(body: unknown): ParsedFields {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      const text = body.trim().slice(0, 200);
      return { message: text === '' ? undefined : text };
    }
  }
  if (!isObject(value)) return { message: undefined };
  const inner = isObject(value.error) ? value.error : value;
  const data = isObject(inner.error_data) ? inner.error_data : undefined;
  const message = asString(inner.message) ?? asString(inner.title) ?? asString(value.message);
  let errorCode = asCode(inner.code);
  if (errorCode === undefined && message !== undefined) {
    const match = /^\(#(\d{1,9})\)/.exec(message);
    if (match) errorCode = Number(match[1]);
  }
  return {
    message,
    errorCode,
    type: asString(inner.type),
    subcode: asCode(inner.error_subcode),
    details: asString(data?.details) ?? asString(inner.details),
    fbtraceId: asString(inner.fbtrace_id),
  };
}

/**
 * A webhook body, or one item of it, that is not what WhatsApp sends. `parseWebhook` throws it
 * only for a body that is not a WhatsApp webhook at all (too large, not UTF-8 or JSON, no
 * `object: "whatsapp_business_account"` with an `entry` array); for one malformed item it is
 * the `error` of that item in `ParsedWebhook.malformed`, and the rest is parsed. Never worth
 * retrying: `classifyWhatsAppError` calls it `schema_mismatch`, permanent, so it goes to a
 * dead-letter queue and an engineer looks at it.
 */
export class WebhookPayloadError extends RetrykitError {
  override readonly name = 'WebhookPayloadError' as const;

  /** Makes `instanceof` recognise this error made by any copy of retrykit. */
  static override [Symbol.hasInstance] = brandCheck('WebhookPayloadError', 'WEBHOOK_PAYLOAD');

  /** Where in the payload the problem is, e.g. `entry[0].changes[0].value.statuses[2].timestamp`. */
  readonly path: string;

  constructor(path: string, problem: string, options?: { cause?: unknown }) {
    super('WEBHOOK_PAYLOAD', `Invalid WhatsApp webhook payload at ${path}: ${problem}`, options);
    this.path = path;
  }
}

/** `true` for a {@link WebhookPayloadError} from any installed copy of retrykit. */
export function isWebhookPayloadError(error: unknown): error is WebhookPayloadError {
  return error instanceof WebhookPayloadError;
}
