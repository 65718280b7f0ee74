import { outranks } from '../core/delivery/status-rank.js';
import { isRecord } from '../core/loose.js';
import { splitCallbackData } from './delivery/tag.js';
import { isWebhookPayloadError, WebhookPayloadError } from './errors.js';
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
  /**
   * Meta's error code (the payload's `code`), e.g. `131026`; classify the detail with
   * `classifyWhatsAppError`. `errorCode`, as on `WhatsAppApiError`: a retrykit `code` is an
   * error family.
   */
  readonly errorCode: number;
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
  /**
   * The sender's phone number (`from`). Absent for users who adopted a username and whose
   * number Meta withholds: use {@link InboundMessage.senderId} to key state by sender.
   */
  readonly from: string | undefined;
  /** The sender's business-scoped user ID (`from_user_id`, e.g. `US.13491208655302741918`). */
  readonly fromUserId: string | undefined;
  /** One stable sender key: the phone number when present, else the business-scoped user ID. */
  readonly senderId: string;
  /** The payload's own time of the message, in milliseconds since the epoch. */
  readonly timestampMs: number;
  /**
   * `text`, `image`, `interactive`, `button`, `reaction`, `order`, `system`, `unsupported`, …
   * A type retrykit doesn't know is kept as Meta sent it (read it from `raw`).
   */
  readonly type: string;
  /** `text.body` for text messages. */
  readonly text: string | undefined;
  /** The sender's profile name from `value.contacts[]` (matched on `wa_id` or `user_id`). */
  readonly contactName: string | undefined;
  /** The wamid this message replies to (`context.id`), when it is a reply. */
  readonly replyTo: string | undefined;
  /** Why Meta could not deliver the content (`errors[]` of `unsupported` messages); empty otherwise. */
  readonly errors: readonly WebhookErrorDetail[];
  /** The message object as parsed (keys `__proto__`, `constructor`, `prototype` removed). */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** Pricing of a sent message as a status reports it (`statuses[].pricing`). */
export interface StatusPricing {
  /** `billable`, when present. */
  readonly billable: boolean | undefined;
  /** `pricing_model`, e.g. `CBP`, `PMP`. */
  readonly pricingModel: string | undefined;
  /** `category`, e.g. `marketing`, `utility`, `authentication`, `service`. */
  readonly category: string | undefined;
  /** `type`, e.g. `regular`, `free_customer_service`. */
  readonly type: string | undefined;
}

/** A delivery status of a message the business sent (`value.statuses[]`). */
export interface StatusUpdate extends WebhookOrigin {
  readonly kind: 'status';
  /** The wamid of the message the status is about. */
  readonly id: string;
  readonly status: MessageStatus;
  /** The payload's own time of the status, in milliseconds since the epoch. */
  readonly timestampMs: number;
  /** The recipient's WhatsApp ID (phone number), when Meta includes it. */
  readonly recipientId: string | undefined;
  /** The recipient's business-scoped user ID (`recipient_user_id`), when present. */
  readonly recipientUserId: string | undefined;
  /**
   * For a message sent to a group (`recipient_id` is then the group ID): the participant whose
   * `delivered` or `read` this is, by phone number (`recipient_participant_id`). Meta sends one
   * such status per participant, all with the message's wamid.
   */
  readonly recipientParticipantId: string | undefined;
  /** The group participant's business-scoped user ID (`recipient_participant_user_id`). */
  readonly recipientParticipantUserId: string | undefined;
  /** Why the message failed (on `failed`); empty otherwise. */
  readonly errors: readonly WebhookErrorDetail[];
  /**
   * `biz_opaque_callback_data` as sent with the message, when present, without the
   * correlation tag (`rk:<tag>|`) a client with `deliveries` adds.
   */
  readonly callbackData: string | undefined;
  /**
   * The correlation tag a client with `deliveries` sent in `biz_opaque_callback_data` (a hash
   * of the idempotency key), when present.
   */
  readonly deliveryTag?: string;
  /** `pricing`, when present (with `sent`, and one of `delivered` or `read`). */
  readonly pricing: StatusPricing | undefined;
  /** The status object as parsed (keys `__proto__`, `constructor`, `prototype` removed). */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** An error not tied to one message (`value.errors[]`, e.g. 130429). */
export interface WebhookErrorNotice extends WebhookOrigin, WebhookErrorDetail {
  readonly kind: 'error';
}

/**
 * A message the business sent from the WhatsApp Business app or a linked device, echoed to
 * the Cloud API (`smb_message_echoes` field, `value.message_echoes[]`).
 */
export interface MessageEcho extends WebhookOrigin {
  readonly kind: 'echo';
  /** The wamid of the echoed message. */
  readonly id: string;
  /** The business number it was sent from (`from`). */
  readonly from: string | undefined;
  /** The user it was sent to (`to`). */
  readonly to: string | undefined;
  /** The payload's own time of the message, in milliseconds since the epoch. */
  readonly timestampMs: number;
  readonly type: string;
  /** `text.body` for text messages. */
  readonly text: string | undefined;
  /** The echo object as parsed. */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** What every update of a field other than `messages` carries. */
export interface AccountOrigin {
  /** `entry[].id`: the WhatsApp Business Account ID. */
  readonly wabaId: string;
  /** `entry[].time`, in milliseconds since the epoch, when present. */
  readonly timestampMs: number | undefined;
  /** The change's `value` as parsed. */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** A template was approved, rejected, paused, disabled, … (`message_template_status_update`). */
export interface TemplateStatusUpdate extends AccountOrigin {
  readonly kind: 'template_status';
  /** `event`: `APPROVED`, `REJECTED`, `PAUSED`, `DISABLED`, `ARCHIVED`, … as Meta sends it. */
  readonly event: string;
  /** `message_template_id`, as a string (Meta sends a number). */
  readonly templateId: string | undefined;
  readonly templateName: string | undefined;
  /** `message_template_language`, e.g. `en_US`. */
  readonly language: string | undefined;
  /** `reason`: `NONE`, `INVALID_FORMAT`, … */
  readonly reason: string | undefined;
  /** `message_template_category`, when present. */
  readonly category: string | undefined;
}

/** A messaging limit or throughput tier, as Meta names it (`TIER_2K`, `TIER_UNLIMITED`, …). */
export type MessagingTier = string;

/**
 * A business number's messaging limit or throughput changed (`phone_number_quality_update`).
 * Follow {@link PhoneNumberQualityUpdate.throughputPerSecond} with the per-number limiter.
 */
export interface PhoneNumberQualityUpdate extends AccountOrigin {
  readonly kind: 'phone_number_quality';
  /** `display_phone_number`: which business number (this field carries no phone number ID). */
  readonly displayPhoneNumber: string | undefined;
  /** `event`: `THROUGHPUT_UPGRADE`, `ONBOARDING`, `UPGRADE`, `DOWNGRADE`, `FLAGGED`, … */
  readonly event: string;
  /** `max_daily_conversations_per_business`, else `current_limit` (deprecated by Meta). */
  readonly currentTier: MessagingTier | undefined;
  /** `old_limit`, on messaging limit changes. */
  readonly oldTier: MessagingTier | undefined;
  /**
   * The current tier as a number of unique users per rolling 24 hours (`TIER_2K` → 2000),
   * `Infinity` for `TIER_UNLIMITED`, `undefined` for `TIER_NOT_SET` or a tier retrykit
   * can't read.
   */
  readonly messagingLimit: number | undefined;
  /**
   * The number's throughput in messages per second when the event tells it: 1000 on
   * `THROUGHPUT_UPGRADE` (Meta's higher throughput); `undefined` otherwise.
   */
  readonly throughputPerSecond: number | undefined;
}

/** A change to the WhatsApp Business Account itself (`account_update`). */
export interface AccountUpdate extends AccountOrigin {
  readonly kind: 'account_update';
  /** `event`: `VERIFIED_ACCOUNT`, `DISABLED_UPDATE`, `ACCOUNT_VIOLATION`, `PARTNER_ADDED`, … */
  readonly event: string;
  /** `phone_number`, for events about one number. */
  readonly phoneNumber: string | undefined;
}

/**
 * Something retrykit does not parse: a change of another field (`calls`, `history`, a field
 * Meta adds later), or a status value it does not know (`deleted`). Kept whole in `raw`.
 */
export interface UnknownUpdate {
  readonly kind: 'unknown';
  /** The change's `field`, e.g. `calls`; `messages` for an unknown status value. */
  readonly field: string;
  /** Where it was, e.g. `entry[0].changes[1].value`. */
  readonly path: string;
  /** `entry[].id`: the WhatsApp Business Account ID. */
  readonly wabaId: string;
  /** `entry[].time`, in milliseconds since the epoch, when present. */
  readonly timestampMs: number | undefined;
  /** The change's value (or the status object) as parsed: any JSON value. */
  readonly raw: unknown;
}

/** One thing a webhook reported. */
export type WebhookUpdate =
  | InboundMessage
  | StatusUpdate
  | WebhookErrorNotice
  | MessageEcho
  | TemplateStatusUpdate
  | PhoneNumberQualityUpdate
  | AccountUpdate
  | UnknownUpdate;

/**
 * One item of a delivery that does not fit the documented shape (a message without its wamid,
 * a status whose timestamp isn't Unix seconds, a change that isn't an object). The rest of the
 * delivery is parsed without it.
 */
export interface MalformedWebhookItem {
  /** Where the item is, e.g. `entry[0].changes[0].value.messages[2]`. */
  readonly path: string;
  /** What is wrong, with the exact field (`path` of the error is the field's own path). */
  readonly error: WebhookPayloadError;
  /** The item as parsed. */
  readonly raw: unknown;
  /**
   * A webhook body holding only this item, with its entry ID and its change's field and
   * metadata: a payload that `parseWebhook` reads again once the cause is fixed.
   */
  readonly envelope: Readonly<Record<string, unknown>>;
}

/** What {@link parseWebhook} found in a delivery. */
export interface ParsedWebhook {
  /**
   * Every well-formed update in payload order (within one change: messages, echoes, statuses,
   * errors).
   */
  readonly updates: readonly WebhookUpdate[];
  /** The inbound messages of `updates`. */
  readonly messages: readonly InboundMessage[];
  /** The statuses of `updates`. */
  readonly statuses: readonly StatusUpdate[];
  /** The errors not tied to a message, of `updates`. */
  readonly errors: readonly WebhookErrorNotice[];
  /** Items that did not fit, each on its own; empty for a clean delivery. */
  readonly malformed: readonly MalformedWebhookItem[];
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
const ECHO_FIELDS: ReadonlySet<string> = new Set(['smb_message_echoes', 'message_echoes']);
/** Higher throughput, as Meta's throughput page gives it, in messages per second. */
const HIGHER_THROUGHPUT_PER_SECOND = 1000;

type Loose = Readonly<Record<string, unknown>>;

const decoder = new TextDecoder('utf-8', { fatal: true });

function record(value: unknown, path: string): Loose {
  if (!isRecord(value)) throw new WebhookPayloadError(path, 'expected an object');
  return value;
}

function list(value: unknown, path: string): readonly unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new WebhookPayloadError(path, 'expected an array');
  return value;
}

function text(value: unknown, path: string): string {
  if (typeof value !== 'string' || value === '') {
    throw new WebhookPayloadError(path, 'expected a non-empty string');
  }
  return value;
}

/** A status's callback data without retrykit's correlation tag, and the tag. */
function callback(value: string | undefined): {
  readonly callbackData: string | undefined;
  readonly deliveryTag?: string;
} {
  const { tag, callerData } = splitCallbackData(value);
  return tag === undefined
    ? { callbackData: value }
    : { callbackData: callerData, deliveryTag: tag };
}

function optionalText(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** A non-empty string, or `undefined`: for identifiers, where `""` identifies no one. */
function optionalId(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
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

function optionalUnixSeconds(value: unknown): number | undefined {
  try {
    return value === undefined ? undefined : unixSeconds(value, '');
  } catch {
    return undefined;
  }
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
    errorCode: errorCode(e.code, `${path}.code`),
    title: optionalText(e.title),
    message: optionalText(e.message),
    details: optionalText(data?.details),
  };
}

function errorDetails(value: unknown, path: string): WebhookErrorDetail[] {
  return list(value, path).map((e, n) => errorDetail(e, `${path}[${n}]`));
}

function pricing(value: unknown): StatusPricing | undefined {
  if (!isRecord(value)) return undefined;
  return {
    billable: typeof value.billable === 'boolean' ? value.billable : undefined,
    pricingModel: optionalText(value.pricing_model),
    category: optionalText(value.category),
    type: optionalText(value.type),
  };
}

/** `TIER_2K` → 2000, `TIER_UNLIMITED` → Infinity; `undefined` for anything else. */
function tierLimit(tier: string | undefined): number | undefined {
  if (tier === 'TIER_UNLIMITED') return Infinity;
  const match = tier === undefined ? null : /^TIER_(\d{1,9})(K?)$/.exec(tier);
  if (!match) return undefined;
  return Number(match[1]) * (match[2] === 'K' ? 1000 : 1);
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
  let parsed: unknown;
  try {
    parsed = JSON.parse(source);
  } catch (cause) {
    throw new WebhookPayloadError('$', 'body is not JSON', { cause });
  }
  // JSON.parse makes `__proto__` an own key, never a prototype; the parsed keys are filtered
  // only when one can be forbidden: the text spells one or holds a `\u` escape (the only JSON
  // escape that can produce a letter or `_`). Not with a reviver: JSON.parse recurses into
  // one, and a body nested a few thousand levels deep would overflow the stack.
  if (/__proto__|constructor|prototype|\\u/.test(source)) dropForbiddenKeys(parsed);
  return parsed;
}

/** Deletes the forbidden keys of freshly parsed JSON in place, at any depth, without recursion. */
function dropForbiddenKeys(parsed: unknown): void {
  const stack: unknown[] = [parsed];
  while (stack.length > 0) {
    const node = stack.pop();
    if (typeof node !== 'object' || node === null) continue;
    const target = node as Record<string, unknown>;
    for (const key of Object.keys(target)) {
      if (FORBIDDEN_KEYS.has(key)) delete target[key];
      else stack.push(target[key]);
    }
  }
}

/** An already-parsed payload without forbidden keys: itself when it has none, else a clean copy. */
function withoutForbiddenKeys(payload: unknown): unknown {
  const seen = new Set<object>();
  const stack: unknown[] = [payload];
  let found = false;
  while (stack.length > 0 && !found) {
    const node = stack.pop();
    if (typeof node !== 'object' || node === null || seen.has(node)) continue;
    seen.add(node);
    for (const key of Object.keys(node)) {
      if (FORBIDDEN_KEYS.has(key)) found = true;
      stack.push((node as Loose)[key]);
    }
  }
  if (!found) return payload;
  try {
    const copy: unknown = JSON.parse(JSON.stringify(payload));
    dropForbiddenKeys(copy);
    return copy;
  } catch (cause) {
    throw new WebhookPayloadError('$', 'payload is not JSON data', { cause });
  }
}

function byteLength(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdbff ? 2 : 3;
  }
  return bytes;
}

const OBJECT = 'whatsapp_business_account';
const ITEM_ARRAYS = ['messages', 'statuses', 'errors', 'message_echoes'] as const;

/** Collects what one delivery holds, each item on its own. */
class Findings {
  readonly updates: WebhookUpdate[] = [];
  readonly messages: InboundMessage[] = [];
  readonly statuses: StatusUpdate[] = [];
  readonly errors: WebhookErrorNotice[] = [];
  readonly malformed: MalformedWebhookItem[] = [];

  /**
   * Runs `parse`; a {@link WebhookPayloadError} it throws marks the item malformed, wrapped in
   * `envelope(raw)` (built only then: it copies).
   */
  item(path: string, raw: unknown, envelope: (raw: unknown) => Loose, parse: () => void): void {
    try {
      parse();
    } catch (error) {
      if (!isWebhookPayloadError(error)) throw error;
      this.malformed.push({ path, error, raw, envelope: envelope(raw) });
    }
  }

  add(update: WebhookUpdate): void {
    this.updates.push(update);
    if (update.kind === 'message') this.messages.push(update);
    else if (update.kind === 'status') this.statuses.push(update);
    else if (update.kind === 'error') this.errors.push(update);
  }
}

/** The entry fields a single-item envelope keeps. */
function entryHead(entry: Loose): Loose {
  return entry.time === undefined ? { id: entry.id } : { id: entry.id, time: entry.time };
}

/** A change's value without its item arrays (keeps `metadata`, `contacts` and other fields). */
function valueHead(value: unknown): Loose {
  if (!isRecord(value)) return {};
  const head: Record<string, unknown> = { ...value };
  for (const key of ITEM_ARRAYS) delete head[key];
  return head;
}

function parseEntry(delivery: Findings, rawEntry: unknown, i: number): void {
  const entryPath = `entry[${i}]`;
  let entry: Loose = {};
  let wabaId = '';
  let changes: readonly unknown[] = [];
  delivery.item(
    entryPath,
    rawEntry,
    (raw) => ({ object: OBJECT, entry: [raw] }),
    () => {
      const parsed = record(rawEntry, entryPath);
      const id = text(parsed.id, `${entryPath}.id`);
      changes = list(parsed.changes, `${entryPath}.changes`);
      entry = parsed;
      wabaId = id;
    },
  );
  if (wabaId === '') return;
  const timestampMs = optionalUnixSeconds(entry.time);
  changes.forEach((rawChange, j) => {
    const changePath = `${entryPath}.changes[${j}]`;
    const envelope = (change: unknown): Loose => ({
      object: OBJECT,
      entry: [{ ...entryHead(entry), changes: [change] }],
    });
    delivery.item(changePath, rawChange, envelope, () => {
      const change = record(rawChange, changePath);
      const field = text(change.field, `${changePath}.field`);
      const valuePath = `${changePath}.value`;
      const itemEnvelope = (key: string, whole: boolean) => (raw: unknown) =>
        envelope({ field, value: { ...valueHead(change.value), [key]: whole ? raw : [raw] } });
      const context = { delivery, wabaId, timestampMs, field, valuePath, itemEnvelope };
      if (field === 'messages') parseMessages(context, change.value);
      else if (ECHO_FIELDS.has(field)) parseEchoes(context, change.value);
      else if (field === 'message_template_status_update') {
        const value = record(change.value, valuePath);
        delivery.add({
          kind: 'template_status',
          wabaId,
          timestampMs,
          event: text(value.event, `${valuePath}.event`),
          templateId:
            typeof value.message_template_id === 'number' ||
            typeof value.message_template_id === 'string'
              ? String(value.message_template_id)
              : undefined,
          templateName: optionalText(value.message_template_name),
          language: optionalText(value.message_template_language),
          reason: optionalText(value.reason),
          category: optionalText(value.message_template_category),
          raw: value,
        });
      } else if (field === 'phone_number_quality_update') {
        const value = record(change.value, valuePath);
        const event = text(value.event, `${valuePath}.event`);
        const currentTier =
          optionalId(value.max_daily_conversations_per_business) ?? optionalId(value.current_limit);
        delivery.add({
          kind: 'phone_number_quality',
          wabaId,
          timestampMs,
          displayPhoneNumber: optionalText(value.display_phone_number),
          event,
          currentTier,
          oldTier: optionalId(value.old_limit),
          messagingLimit: tierLimit(currentTier),
          throughputPerSecond:
            event === 'THROUGHPUT_UPGRADE' ? HIGHER_THROUGHPUT_PER_SECOND : undefined,
          raw: value,
        });
      } else if (field === 'account_update') {
        const value = record(change.value, valuePath);
        delivery.add({
          kind: 'account_update',
          wabaId,
          timestampMs,
          event: text(value.event, `${valuePath}.event`),
          phoneNumber: optionalText(value.phone_number),
          raw: value,
        });
      } else {
        delivery.add({
          kind: 'unknown',
          field,
          path: valuePath,
          wabaId,
          timestampMs,
          raw: change.value,
        });
      }
    });
  });
}

interface ChangeContext {
  readonly delivery: Findings;
  readonly wabaId: string;
  readonly timestampMs: number | undefined;
  readonly field: string;
  readonly valuePath: string;
  /** The envelope of one item of `value[key]` (of the whole `value[key]` when `whole`). */
  readonly itemEnvelope: (key: string, whole: boolean) => (raw: unknown) => Loose;
}

function changeOrigin(value: Loose, valuePath: string, wabaId: string): WebhookOrigin {
  const metadata = record(value.metadata, `${valuePath}.metadata`);
  return {
    phoneNumberId: text(metadata.phone_number_id, `${valuePath}.metadata.phone_number_id`),
    displayPhoneNumber: optionalText(metadata.display_phone_number),
    wabaId,
  };
}

/** Each item of `value[key]`, isolated: a bad array or item is reported and skipped. */
function eachItem(
  context: ChangeContext,
  value: Loose,
  key: string,
  parse: (item: Loose, path: string) => void,
): void {
  const arrayPath = `${context.valuePath}.${key}`;
  const envelope = context.itemEnvelope(key, false);
  let items: readonly unknown[] = [];
  context.delivery.item(arrayPath, value[key], context.itemEnvelope(key, true), () => {
    items = list(value[key], arrayPath);
  });
  items.forEach((raw, k) => {
    const path = `${arrayPath}[${k}]`;
    context.delivery.item(path, raw, envelope, () => parse(record(raw, path), path));
  });
}

function parseMessages(context: ChangeContext, rawValue: unknown): void {
  const { delivery, valuePath, wabaId } = context;
  const value = record(rawValue, valuePath);
  const origin = changeOrigin(value, valuePath, wabaId);
  const names = new Map<string, string>();
  if (Array.isArray(value.contacts)) {
    for (const contact of value.contacts) {
      if (!isRecord(contact) || !isRecord(contact.profile)) continue;
      const name = optionalText(contact.profile.name);
      if (name === undefined) continue;
      for (const id of [contact.wa_id, contact.user_id]) {
        if (typeof id === 'string' && id !== '') names.set(id, name);
      }
    }
  }
  eachItem(context, value, 'messages', (m, path) => {
    const from = optionalId(m.from);
    const fromUserId = optionalId(m.from_user_id);
    const senderId = from ?? fromUserId;
    if (senderId === undefined) {
      throw new WebhookPayloadError(`${path}.from`, 'expected `from` or `from_user_id`');
    }
    delivery.add({
      kind: 'message',
      ...origin,
      id: text(m.id, `${path}.id`),
      from,
      fromUserId,
      senderId,
      timestampMs: unixSeconds(m.timestamp, `${path}.timestamp`),
      type: text(m.type, `${path}.type`),
      text: isRecord(m.text) ? optionalText(m.text.body) : undefined,
      contactName:
        (from === undefined ? undefined : names.get(from)) ??
        (fromUserId === undefined ? undefined : names.get(fromUserId)),
      replyTo: isRecord(m.context) ? optionalText(m.context.id) : undefined,
      errors: errorDetails(m.errors, `${path}.errors`),
      raw: m,
    });
  });
  eachItem(context, value, 'statuses', (s, path) => {
    const status = text(s.status, `${path}.status`);
    const id = text(s.id, `${path}.id`);
    const timestampMs = unixSeconds(s.timestamp, `${path}.timestamp`);
    if (!STATUSES.has(status)) {
      delivery.add({ kind: 'unknown', field: context.field, path, wabaId, timestampMs, raw: s });
      return;
    }
    delivery.add({
      kind: 'status',
      ...origin,
      id,
      status: status as MessageStatus,
      timestampMs,
      recipientId: optionalId(s.recipient_id),
      recipientUserId: optionalId(s.recipient_user_id),
      recipientParticipantId: optionalId(s.recipient_participant_id),
      recipientParticipantUserId: optionalId(s.recipient_participant_user_id),
      errors: errorDetails(s.errors, `${path}.errors`),
      ...callback(optionalText(s.biz_opaque_callback_data)),
      pricing: pricing(s.pricing),
      raw: s,
    });
  });
  eachItem(context, value, 'errors', (e, path) => {
    delivery.add({ kind: 'error', ...origin, ...errorDetail(e, path) });
  });
}

function parseEchoes(context: ChangeContext, rawValue: unknown): void {
  const { delivery, valuePath, wabaId } = context;
  const value = record(rawValue, valuePath);
  const origin = changeOrigin(value, valuePath, wabaId);
  eachItem(context, value, 'message_echoes', (m, path) => {
    delivery.add({
      kind: 'echo',
      ...origin,
      id: text(m.id, `${path}.id`),
      from: optionalText(m.from),
      to: optionalText(m.to),
      timestampMs: unixSeconds(m.timestamp, `${path}.timestamp`),
      type: text(m.type, `${path}.type`),
      text: isRecord(m.text) ? optionalText(m.text.body) : undefined,
      raw: m,
    });
  });
}

/**
 * Parses a WhatsApp Cloud API webhook delivery into typed updates — inbound messages,
 * statuses, errors, message echoes, template status, phone number quality and account
 * updates — each with its WhatsApp Business Account ID and the payload's own timestamp (Unix
 * seconds turned into milliseconds), and lists the items that don't fit, each on its own.
 *
 * One odd item never costs the rest of the delivery: a malformed item (a message without its
 * wamid, a timestamp that isn't Unix seconds, a change that isn't an object) goes to
 * `malformed` with where it was and why; a change of a field retrykit doesn't parse, or a
 * status value it doesn't know, is an update of kind `unknown` with its raw value; a message
 * type it doesn't know is a `message` with that `type`. Senders without a phone number
 * (business-scoped user IDs) are read from `from_user_id`.
 *
 * Untrusted input: give it the raw body (string or bytes; bodies over `maxBytes` are refused
 * before parsing) or an already-parsed object. Keys `__proto__`, `constructor` and `prototype`
 * are dropped from the parsed data however the text spells them, and only the fields
 * documented here are read. It throws {@link WebhookPayloadError} (classified
 * `schema_mismatch`) only for a body that is not a WhatsApp webhook at all: too large, not
 * UTF-8 or JSON, not an object with `object: "whatsapp_business_account"` and an `entry` array.
 *
 * @example
 * const { updates, malformed } = parseWebhook(rawBody);
 */
export function parseWebhook(
  body: RawBody | Readonly<Record<string, unknown>>,
  options: ParseWebhookOptions = {},
): ParsedWebhook {
  const maxBytes = options.maxBytes ?? PARSE_WEBHOOK_DEFAULTS.maxBytes;
  const payload =
    typeof body === 'string' || body instanceof Uint8Array || body instanceof ArrayBuffer
      ? parseJson(body, maxBytes)
      : withoutForbiddenKeys(body);
  const root = record(payload, '$');
  if (root.object !== OBJECT) {
    throw new WebhookPayloadError('$.object', `expected '${OBJECT}'`);
  }
  if (!Array.isArray(root.entry)) throw new WebhookPayloadError('$.entry', 'expected an array');
  const delivery = new Findings();
  root.entry.forEach((entry, i) => {
    parseEntry(delivery, entry, i);
  });
  const { updates, messages, statuses, errors, malformed } = delivery;
  return { updates, messages, statuses, errors, malformed };
}

/** Every update of a parsed webhook, in payload order: {@link ParsedWebhook.updates}. */
export function webhookUpdates(parsed: ParsedWebhook): WebhookUpdate[] {
  return [...parsed.updates];
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
  const ranked = (s: S) => ({ rank: STATUS_RANK[s.status], timestampMs: s.timestampMs });
  return outranks(ranked(incoming), ranked(current)) ? incoming : current;
}
