import { WebhookPayloadError } from './errors.js';
import type { RawBody } from './signature.js';

/** A message's delivery status, as status webhooks report it. */
export type MessageStatus = 'sent' | 'delivered' | 'read' | 'played' | 'failed';

/** Where an update came from: the business phone number and its WhatsApp Business Account. */
export interface WebhookOrigin {
  /** `value.metadata.phone_number_id`: the business number the update is for. */
  readonly phoneNumberId: string;
  /** `value.metadata.display_phone_number`, when present. */
  readonly displayPhoneNumber: string | undefined;
  /** `entry[].id`: the WhatsApp Business Account ID. */
  readonly wabaId: string;
}

/** An error as WhatsApp reports it in a webhook (`statuses[].errors[]`, `value.errors[]`). */
export interface WebhookErrorDetail {
  /** Meta's error code, e.g. `131026`; classify it with `classifyWhatsAppError`. */
  readonly code: number;
  readonly title: string | undefined;
  readonly message: string | undefined;
  /** `error_data.details`. */
  readonly details: string | undefined;
}

/** An inbound message from a user (`value.messages[]`). */
export interface InboundMessage extends WebhookOrigin {
  readonly kind: 'message';
  /** The WhatsApp message ID (wamid). */
  readonly id: string;
  /** The sender's WhatsApp ID (phone number). */
  readonly from: string;
  /** The payload's own time of the message, in milliseconds since the epoch. */
  readonly timestampMs: number;
  /** `text`, `image`, `interactive`, `button`, … */
  readonly type: string;
  /** `text.body` for text messages. */
  readonly text: string | undefined;
  /** The sender's profile name from `value.contacts[]`, when present. */
  readonly contactName: string | undefined;
  /** The wamid this message replies to (`context.id`), when it is a reply. */
  readonly replyTo: string | undefined;
  /** The message object as parsed (from text: keys `__proto__`, `constructor`, `prototype` removed). */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** A delivery status of a message the business sent (`value.statuses[]`). */
export interface StatusUpdate extends WebhookOrigin {
  readonly kind: 'status';
  /** The wamid of the message the status is about. */
  readonly id: string;
  readonly status: MessageStatus;
  /** The payload's own time of the status, in milliseconds since the epoch. */
  readonly timestampMs: number;
  /** The recipient's WhatsApp ID. */
  readonly recipientId: string | undefined;
  /** Why the message failed (on `failed`); empty otherwise. */
  readonly errors: readonly WebhookErrorDetail[];
  /** `biz_opaque_callback_data` as sent with the message, when present. */
  readonly callbackData: string | undefined;
  /** The status object as parsed (from text: keys `__proto__`, `constructor`, `prototype` removed). */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** An error not tied to one message (`value.errors[]`, e.g. 130429). */
export interface WebhookErrorNotice extends WebhookOrigin, WebhookErrorDetail {
  readonly kind: 'error';
}

/** One thing a webhook reported. */
export type WebhookUpdate = InboundMessage | StatusUpdate | WebhookErrorNotice;

/** What {@link parseWebhook} found in a payload, in payload order. */
export interface ParsedWebhook {
  readonly messages: readonly InboundMessage[];
  readonly statuses: readonly StatusUpdate[];
  readonly errors: readonly WebhookErrorNotice[];
}

/** Options of {@link parseWebhook}. */
export interface ParseWebhookOptions {
  /**
   * Largest body accepted, in bytes (Meta sends at most 3 MB).
   * @default 3_145_728
   */
  readonly maxBytes?: number;
}

/** The defaults of {@link ParseWebhookOptions}. */
export const PARSE_WEBHOOK_DEFAULTS = Object.freeze({ maxBytes: 3 * 1024 * 1024 });

const STATUSES: ReadonlySet<string> = new Set(['sent', 'delivered', 'read', 'played', 'failed']);
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

type Loose = Readonly<Record<string, unknown>>;

const decoder = new TextDecoder('utf-8', { fatal: true });

function isRecord(value: unknown): value is Loose {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function record(value: unknown, path: string): Loose {
  if (!isRecord(value)) throw new WebhookPayloadError(path, 'expected an object');
  return value;
}

function list(value: unknown, path: string, optional: boolean): readonly unknown[] {
  if (value === undefined && optional) return [];
  if (!Array.isArray(value)) throw new WebhookPayloadError(path, 'expected an array');
  return value;
}

function text(value: unknown, path: string): string {
  if (typeof value !== 'string' || value === '') {
    throw new WebhookPayloadError(path, 'expected a non-empty string');
  }
  return value;
}

function optionalText(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** A Unix time in seconds (a digit string, as Meta sends it, or a number), in milliseconds. */
function unixSeconds(value: unknown, path: string): number {
  const seconds =
    typeof value === 'string' && /^\d{1,12}$/.test(value)
      ? Number(value)
      : typeof value === 'number' && Number.isInteger(value) && value >= 0
        ? value
        : undefined;
  if (seconds === undefined || seconds > 1e11) {
    throw new WebhookPayloadError(path, 'expected Unix seconds (a string of digits)');
  }
  return seconds * 1000;
}

function errorCode(value: unknown, path: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  if (typeof value === 'string' && /^\d{1,9}$/.test(value)) return Number(value);
  throw new WebhookPayloadError(path, 'expected an integer error code');
}

function errorDetail(value: unknown, path: string): WebhookErrorDetail {
  const e = record(value, path);
  const data = isRecord(e.error_data) ? e.error_data : undefined;
  return {
    code: errorCode(e.code, `${path}.code`),
    title: optionalText(e.title),
    message: optionalText(e.message),
    details: optionalText(data?.details),
  };
}

/** JSON.parse, dropping keys that could reach a prototype if the result were ever merged. */
function parseJson(body: RawBody, maxBytes: number): unknown {
  let source: string;
  if (typeof body === 'string') {
    if (body.length > maxBytes || (body.length * 3 > maxBytes && byteLength(body) > maxBytes)) {
      throw new WebhookPayloadError('$', `body larger than ${maxBytes} bytes`);
    }
    source = body;
  } else {
    const bytes = body instanceof Uint8Array ? body : new Uint8Array(body);
    if (bytes.byteLength > maxBytes) {
      throw new WebhookPayloadError('$', `body larger than ${maxBytes} bytes`);
    }
    try {
      source = decoder.decode(bytes);
    } catch (cause) {
      throw new WebhookPayloadError('$', 'body is not valid UTF-8', { cause });
    }
  }
  try {
    // The reviver costs about half the parse: run it only when a forbidden key can be there.
    return /__proto__|constructor|prototype/.test(source)
      ? JSON.parse(source, dropForbidden)
      : JSON.parse(source);
  } catch (cause) {
    throw new WebhookPayloadError('$', 'body is not JSON', { cause });
  }
}

function dropForbidden(key: string, value: unknown): unknown {
  return FORBIDDEN_KEYS.has(key) ? undefined : value;
}

function byteLength(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdbff ? 2 : 3;
  }
  return bytes;
}

/**
 * Parses a WhatsApp Cloud API webhook into typed updates: inbound messages, delivery statuses
 * and errors, each with its business phone number ID and the payload's own timestamp (Unix
 * seconds turned into milliseconds). Changes with another `field` (account or template
 * updates) are skipped.
 *
 * Untrusted input: give it the raw body (string or bytes; bodies over `maxBytes` are refused
 * before parsing) or an already-parsed object. Keys `__proto__`, `constructor` and `prototype`
 * are dropped while parsing, and only the fields documented here are read. Anything that does
 * not fit the schema throws {@link WebhookPayloadError} (classified `schema_mismatch`: dead
 * letter it, never retry) and nothing else.
 *
 * @example
 * const { messages, statuses } = parseWebhook(rawBody);
 */
export function parseWebhook(
  body: RawBody | Readonly<Record<string, unknown>>,
  options: ParseWebhookOptions = {},
): ParsedWebhook {
  const maxBytes = options.maxBytes ?? PARSE_WEBHOOK_DEFAULTS.maxBytes;
  const payload =
    typeof body === 'string' || body instanceof Uint8Array || body instanceof ArrayBuffer
      ? parseJson(body, maxBytes)
      : body;
  const root = record(payload, '$');
  if (root.object !== 'whatsapp_business_account') {
    throw new WebhookPayloadError('$.object', "expected 'whatsapp_business_account'");
  }
  const messages: InboundMessage[] = [];
  const statuses: StatusUpdate[] = [];
  const errors: WebhookErrorNotice[] = [];
  list(root.entry, '$.entry', false).forEach((rawEntry, i) => {
    const entryPath = `entry[${i}]`;
    const entry = record(rawEntry, entryPath);
    const wabaId = text(entry.id, `${entryPath}.id`);
    list(entry.changes, `${entryPath}.changes`, false).forEach((rawChange, j) => {
      const changePath = `${entryPath}.changes[${j}]`;
      const change = record(rawChange, changePath);
      if (change.field !== 'messages') return;
      const valuePath = `${changePath}.value`;
      const value = record(change.value, valuePath);
      const metadata = record(value.metadata, `${valuePath}.metadata`);
      const origin: WebhookOrigin = {
        phoneNumberId: text(metadata.phone_number_id, `${valuePath}.metadata.phone_number_id`),
        displayPhoneNumber: optionalText(metadata.display_phone_number),
        wabaId,
      };
      const names = new Map<string, string>();
      for (const contact of list(value.contacts, `${valuePath}.contacts`, true)) {
        if (!isRecord(contact) || typeof contact.wa_id !== 'string') continue;
        const profile = isRecord(contact.profile) ? contact.profile : undefined;
        if (typeof profile?.name === 'string') names.set(contact.wa_id, profile.name);
      }
      list(value.messages, `${valuePath}.messages`, true).forEach((raw, k) => {
        const path = `${valuePath}.messages[${k}]`;
        const m = record(raw, path);
        const from = text(m.from, `${path}.from`);
        const body = isRecord(m.text) ? optionalText(m.text.body) : undefined;
        const context = isRecord(m.context) ? optionalText(m.context.id) : undefined;
        messages.push({
          kind: 'message',
          ...origin,
          id: text(m.id, `${path}.id`),
          from,
          timestampMs: unixSeconds(m.timestamp, `${path}.timestamp`),
          type: text(m.type, `${path}.type`),
          text: body,
          contactName: names.get(from),
          replyTo: context,
          raw: m,
        });
      });
      list(value.statuses, `${valuePath}.statuses`, true).forEach((raw, k) => {
        const path = `${valuePath}.statuses[${k}]`;
        const s = record(raw, path);
        const status = text(s.status, `${path}.status`);
        if (!STATUSES.has(status)) {
          throw new WebhookPayloadError(
            `${path}.status`,
            `unknown status ${JSON.stringify(status)}`,
          );
        }
        statuses.push({
          kind: 'status',
          ...origin,
          id: text(s.id, `${path}.id`),
          status: status as MessageStatus,
          timestampMs: unixSeconds(s.timestamp, `${path}.timestamp`),
          recipientId: optionalText(s.recipient_id),
          errors: list(s.errors, `${path}.errors`, true).map((e, n) =>
            errorDetail(e, `${path}.errors[${n}]`),
          ),
          callbackData: optionalText(s.biz_opaque_callback_data),
          raw: s,
        });
      });
      list(value.errors, `${valuePath}.errors`, true).forEach((raw, k) => {
        errors.push({ kind: 'error', ...origin, ...errorDetail(raw, `${valuePath}.errors[${k}]`) });
      });
    });
  });
  return { messages, statuses, errors };
}

/** Every update of a parsed webhook in one list: messages, then statuses, then errors. */
export function webhookUpdates(parsed: ParsedWebhook): WebhookUpdate[] {
  return [...parsed.messages, ...parsed.statuses, ...parsed.errors];
}

/** The rank of each status: a message's status only moves up; `failed` is final. */
export const STATUS_RANK: Readonly<Record<MessageStatus, number>> = Object.freeze({
  sent: 1,
  delivered: 2,
  read: 3,
  played: 4,
  failed: 5,
});

/** What {@link reduceStatus} needs of a status: which, and the payload's time of it. */
export interface StatusPoint {
  readonly status: MessageStatus;
  /** The payload's own timestamp, in milliseconds. */
  readonly timestampMs: number;
}

/**
 * Folds a newly arrived status into a message's current one, so that webhooks arriving late,
 * twice or out of order never move a message backwards: sent < delivered < read ≤ played, and
 * `failed` is final. A status of the same rank keeps the earlier payload timestamp (when that
 * state was first reached). The arrival order never matters: folding any permutation of the
 * same statuses gives the same result.
 *
 * Returns `current` itself when `incoming` changes nothing (a stale or duplicate status), so
 * `reduceStatus(a, b) === a` tells that `b` arrived out of order or twice.
 *
 * @example
 * const next = reduceStatus(stored.get(update.id), update);
 * if (next !== stored.get(update.id)) stored.set(update.id, next);
 */
export function reduceStatus<S extends StatusPoint>(current: S | undefined, incoming: S): S {
  if (current === undefined) return incoming;
  const a = STATUS_RANK[current.status];
  const b = STATUS_RANK[incoming.status];
  if (b > a) return incoming;
  if (b < a) return current;
  return incoming.timestampMs < current.timestampMs ? incoming : current;
}
