import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { composeClassifiers } from '../core/retry/classify.js';
import { classifyWhatsAppError } from './classify.js';
import { isWebhookPayloadError, WebhookPayloadError } from './errors.js';
import {
  type MessageStatus,
  type ParsedWebhook,
  parseWebhook,
  reduceStatus,
  STATUS_RANK,
  type StatusPoint,
  webhookUpdates,
} from './webhook.js';
import { whatsAppDedupeKey } from './webhook-handler.js';

const METADATA = { display_phone_number: '15550783881', phone_number_id: '106540352242922' };

function envelope(value: Record<string, unknown>, field = 'messages') {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: '102290129340398',
        changes: [
          { value: { messaging_product: 'whatsapp', metadata: METADATA, ...value }, field },
        ],
      },
    ],
  };
}

const MESSAGE = envelope({
  contacts: [{ profile: { name: 'Kerry Fisher' }, wa_id: '16315551234' }],
  messages: [
    {
      from: '16315551234',
      id: 'wamid.ABGGFlCGg0cvAgo-sJQh43L5Pe4W',
      timestamp: '1603059201',
      text: { body: 'Hello this is an answer' },
      type: 'text',
      context: { from: '15550783881', id: 'wamid.PREVIOUS' },
    },
  ],
});

const STATUSES = envelope({
  statuses: [
    {
      id: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3NTM5',
      status: 'read',
      timestamp: '1750263773',
      recipient_id: '16505551234',
      biz_opaque_callback_data: 'order-42',
    },
    {
      id: 'wamid.FAILED',
      status: 'failed',
      timestamp: '1750263774',
      recipient_id: '16505551234',
      errors: [
        {
          code: 131026,
          title: 'Message undeliverable',
          message: 'Message undeliverable',
          error_data: { details: 'Message Undeliverable.' },
        },
      ],
    },
  ],
});

describe('parseWebhook', () => {
  it('parses an inbound message with its phone number ID and the payload timestamp', () => {
    const { messages, statuses, errors } = parseWebhook(JSON.stringify(MESSAGE));
    expect(statuses).toEqual([]);
    expect(errors).toEqual([]);
    expect(messages).toEqual([
      expect.objectContaining({
        kind: 'message',
        id: 'wamid.ABGGFlCGg0cvAgo-sJQh43L5Pe4W',
        from: '16315551234',
        timestampMs: 1_603_059_201_000,
        type: 'text',
        text: 'Hello this is an answer',
        contactName: 'Kerry Fisher',
        replyTo: 'wamid.PREVIOUS',
        phoneNumberId: '106540352242922',
        displayPhoneNumber: '15550783881',
        wabaId: '102290129340398',
      }),
    ]);
  });

  it('parses statuses, their errors and callback data, from bytes or an object', () => {
    for (const input of [new TextEncoder().encode(JSON.stringify(STATUSES)), STATUSES]) {
      const { statuses } = parseWebhook(input);
      expect(statuses.map((s) => [s.id, s.status, s.timestampMs])).toEqual([
        ['wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3NTM5', 'read', 1_750_263_773_000],
        ['wamid.FAILED', 'failed', 1_750_263_774_000],
      ]);
      expect(statuses[0]?.callbackData).toBe('order-42');
      expect(statuses[1]?.errors).toEqual([
        {
          errorCode: 131026,
          title: 'Message undeliverable',
          message: 'Message undeliverable',
          details: 'Message Undeliverable.',
        },
      ]);
      expect(classifyWhatsAppError(statuses[1]?.errors[0])).toMatchObject({ retryable: false });
    }
  });

  it('parses errors not tied to a message', () => {
    const { errors } = parseWebhook(
      envelope({
        errors: [{ code: 130429, title: 'Rate limit hit', message: '(#130429) Rate limit hit' }],
      }),
    );
    expect(errors).toEqual([
      expect.objectContaining({
        kind: 'error',
        errorCode: 130429,
        phoneNumberId: '106540352242922',
      }),
    ]);
  });

  it('reads changes of fields it does not parse as unknown updates, never dropping them', () => {
    const value = { call: { id: 'c1' } };
    const parsed = parseWebhook(envelope(value, 'calls'));
    expect(parsed.malformed).toEqual([]);
    expect(parsed.updates).toEqual([
      {
        kind: 'unknown',
        field: 'calls',
        path: 'entry[0].changes[0].value',
        wabaId: '102290129340398',
        timestampMs: undefined,
        raw: { messaging_product: 'whatsapp', metadata: METADATA, ...value },
      },
    ]);
    expect(webhookUpdates(parsed)).toEqual(parsed.updates);
  });

  it('throws WebhookPayloadError, classified schema_mismatch, only for a body that is no webhook', () => {
    for (const input of [
      '',
      'null',
      '[]',
      '{}',
      '{"object":"page","entry":[]}',
      '\u00ff{',
      '{"object":"whatsapp_business_account"}',
      '{"object":"whatsapp_business_account","entry":{}}',
    ]) {
      expect(() => parseWebhook(input)).toThrow(WebhookPayloadError);
    }
    const error = (() => {
      try {
        parseWebhook('{"object":"page","entry":[]}');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toMatchObject({ code: 'WEBHOOK_PAYLOAD', path: '$.object' });
    expect(composeClassifiers(classifyWhatsAppError)(error)).toEqual({
      retryable: false,
      reason: 'schema_mismatch',
    });
  });

  it('isolates a malformed item: the rest is parsed, the item reported with where and why', () => {
    const body = JSON.parse(JSON.stringify(STATUSES));
    body.entry[0].changes[0].value.statuses.splice(1, 0, {
      id: 'wamid.BAD',
      status: 'sent',
      timestamp: '12:00',
    });
    const parsed = parseWebhook(body);
    expect(parsed.statuses.map((s) => s.id)).toEqual([
      'wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3NTM5',
      'wamid.FAILED',
    ]);
    expect(parsed.malformed).toHaveLength(1);
    const [bad] = parsed.malformed;
    expect(bad?.path).toBe('entry[0].changes[0].value.statuses[1]');
    expect(bad?.error).toBeInstanceOf(WebhookPayloadError);
    expect(bad?.error.path).toBe('entry[0].changes[0].value.statuses[1].timestamp');
    expect(bad?.error.message).toMatch(/Unix seconds/);
    expect(bad?.raw).toEqual({ id: 'wamid.BAD', status: 'sent', timestamp: '12:00' });
    // The envelope is a webhook holding only that item, with its entry and metadata.
    expect(bad?.envelope).toEqual({
      object: 'whatsapp_business_account',
      entry: [
        {
          id: '102290129340398',
          changes: [
            {
              field: 'messages',
              value: {
                messaging_product: 'whatsapp',
                metadata: METADATA,
                statuses: [{ id: 'wamid.BAD', status: 'sent', timestamp: '12:00' }],
              },
            },
          ],
        },
      ],
    });
    const again = parseWebhook(bad!.envelope);
    expect(again.updates).toEqual([]);
    expect(again.malformed.map((m) => m.path)).toEqual(['entry[0].changes[0].value.statuses[0]']);
  });

  it('reports a bad change, entry or array on its own and parses the others', () => {
    const good = MESSAGE.entry[0]!;
    const body = {
      object: 'whatsapp_business_account',
      entry: [
        good,
        { changes: good.changes },
        'not an entry',
        { id: 'W2', changes: [7, { field: 'messages', value: { messages: [] } }, ...good.changes] },
        {
          id: 'W3',
          changes: [
            { field: 'messages', value: { metadata: METADATA, messages: {}, statuses: 5 } },
          ],
        },
      ],
    };
    const parsed = parseWebhook(body);
    expect(parsed.messages.map((m) => m.wabaId)).toEqual(['102290129340398', 'W2']);
    expect(parsed.malformed.map((m) => [m.path, m.error.path])).toEqual([
      ['entry[1]', 'entry[1].id'],
      ['entry[2]', 'entry[2]'],
      ['entry[3].changes[0]', 'entry[3].changes[0]'],
      ['entry[3].changes[1]', 'entry[3].changes[1].value.metadata'],
      ['entry[4].changes[0].value.messages', 'entry[4].changes[0].value.messages'],
      ['entry[4].changes[0].value.statuses', 'entry[4].changes[0].value.statuses'],
    ]);
  });

  it('keeps an unknown status value as an unknown update, not an exception', () => {
    const body = JSON.parse(
      JSON.stringify(STATUSES).replace('"status":"failed"', '"status":"deleted"'),
    );
    const parsed = parseWebhook(body);
    expect(parsed.malformed).toEqual([]);
    expect(parsed.statuses.map((s) => s.status)).toEqual(['read']);
    expect(parsed.updates[1]).toMatchObject({
      kind: 'unknown',
      field: 'messages',
      path: 'entry[0].changes[0].value.statuses[1]',
      timestampMs: 1_750_263_774_000,
      raw: expect.objectContaining({ id: 'wamid.FAILED', status: 'deleted' }),
    });
  });

  it('refuses a body over maxBytes before parsing it', () => {
    const body = JSON.stringify(MESSAGE);
    expect(() => parseWebhook(body, { maxBytes: body.length - 1 })).toThrow(/larger than/);
    expect(() => parseWebhook(new TextEncoder().encode(body), { maxBytes: 10 })).toThrow(
      /larger than/,
    );
    const multibyte = JSON.stringify(envelope({ messages: [] })).replace('whatsapp"', 'ääää"');
    expect(() => parseWebhook(multibyte, { maxBytes: multibyte.length + 2 })).toThrow(
      /larger than/,
    );
    expect(parseWebhook(body, { maxBytes: body.length }).messages).toHaveLength(1);
  });

  it('never lets __proto__ or constructor through, however the key is spelled', () => {
    const spellings = [
      ['"__proto__"', '"constructor"'],
      ['"\\u005f_proto__"', '"constr\\u0075ctor"'],
      ['"\\u005F\\u005Fproto\\u005F\\u005F"', '"\\u0063onstructor"'],
    ];
    for (const [proto, ctor] of spellings) {
      const body = JSON.stringify(MESSAGE).replace(
        '"type":"text"',
        `"type":"text",${proto}:{"polluted":true},${ctor}:{"polluted":true}`,
      );
      expect(body).toContain(proto);
      if (proto !== '"__proto__"') expect(body).not.toMatch(/__proto__|constructor|prototype/);
      for (const input of [body, new TextEncoder().encode(body), JSON.parse(body)]) {
        const [message] = parseWebhook(input).messages;
        expect(Object.hasOwn(message!.raw, '__proto__')).toBe(false);
        expect(Object.hasOwn(message!.raw, 'constructor')).toBe(false);
        expect(Object.getPrototypeOf(message!.raw)).toBe(Object.prototype);
      }
    }
    const nested = JSON.parse(
      JSON.stringify(MESSAGE).replace('"body":', '"\\u0070rototype":{"x":1},"body":'),
    );
    expect(Object.hasOwn(nested.entry[0].changes[0].value.messages[0].text, 'prototype')).toBe(
      true,
    );
    const [message] = parseWebhook(nested).messages;
    expect(Object.hasOwn(message!.raw.text as object, 'prototype')).toBe(false);
    expect(message!.text).toBe('Hello this is an answer');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('throws nothing but WebhookPayloadError on fuzzed bodies', () => {
    const onlyPayloadErrors = (input: Parameters<typeof parseWebhook>[0]) => {
      try {
        parseWebhook(input);
      } catch (error) {
        if (!isWebhookPayloadError(error)) throw error;
      }
    };
    fc.assert(fc.property(fc.string(), onlyPayloadErrors), { numRuns: 500 });
    fc.assert(fc.property(fc.uint8Array(), onlyPayloadErrors), { numRuns: 300 });
    fc.assert(
      fc.property(fc.jsonValue(), (v) => onlyPayloadErrors(JSON.stringify(v) ?? 'null')),
      { numRuns: 500 },
    );
    // Mutations of valid payloads: replace any one value anywhere with anything JSON.
    const replaceAt = (node: unknown, path: number[], value: unknown): unknown => {
      if (path.length === 0 || typeof node !== 'object' || node === null) return value;
      const keys = Object.keys(node);
      if (keys.length === 0) return value;
      const key = keys[path[0]! % keys.length]!;
      const copy: Record<string, unknown> = Array.isArray(node)
        ? ([...node] as never)
        : { ...node };
      copy[key] = replaceAt((node as Record<string, unknown>)[key], path.slice(1), value);
      return copy;
    };
    fc.assert(
      fc.property(
        fc.constantFrom(MESSAGE, STATUSES),
        fc.array(fc.nat(), { maxLength: 9 }),
        fc.jsonValue(),
        (base, path, value) => onlyPayloadErrors(JSON.stringify(replaceAt(base, path, value))),
      ),
      { numRuns: 2000 },
    );
  });

  it('survives deep nesting', () => {
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    expect(() => parseWebhook(deep)).toThrow(WebhookPayloadError);
    const deepValue = `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"calls","value":${'['.repeat(100_000)}${']'.repeat(100_000)}}]}]}`;
    expect(parseWebhook(deepValue).updates.map((u) => u.kind)).toEqual(['unknown']);
  });

  it('keeps the updates of a body nested deep that holds `\\u` escapes, filtering keys at any depth', () => {
    const depth = 100_000;
    const deep = `${'['.repeat(depth)}{"\\u005f_proto__":{"polluted":true},"ok":1}${']'.repeat(depth)}`;
    const status = `{"id":"wamid.1","status":"sent","timestamp":"1700000000","recipient_id":"49","note":"caf\\u00e9"}`;
    const body = `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"calls","value":${deep}},{"field":"messages","value":{"metadata":{"phone_number_id":"P"},"statuses":[${status}]}}]}]}`;
    const { updates, malformed } = parseWebhook(body);
    expect(malformed).toEqual([]);
    expect(updates.map((u) => u.kind)).toEqual(['unknown', 'status']);
    let node = (updates[0] as { raw: unknown }).raw;
    for (let i = 0; i < depth; i++) node = (node as unknown[])[0];
    expect(Object.keys(node as object)).toEqual(['ok']);
  });
});

const FIXTURES = new URL('../../test/fixtures/whatsapp/', import.meta.url);
const fixture = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');
const WABA = '880011223344556';
const PHONE_NUMBER_ID = '770011223344556';

/** The one update a fixture yields, as a plain object to compare. */
type Expect = (parsed: ParsedWebhook) => void;
const one =
  (expected: Record<string, unknown>): Expect =>
  (parsed) => {
    expect(parsed.malformed).toEqual([]);
    expect(parsed.updates).toHaveLength(1);
    expect(parsed.updates[0]).toMatchObject(expected);
  };
const message = (type: string, extra: Record<string, unknown> = {}) =>
  one({
    kind: 'message',
    type,
    wabaId: WABA,
    phoneNumberId: PHONE_NUMBER_ID,
    from: '351910000001',
    senderId: '351910000001',
    fromUserId: undefined,
    contactName: 'Ana Sousa',
    timestampMs: 1_767_225_600_000,
    errors: [],
    ...extra,
  });
const status = (value: string, extra: Record<string, unknown> = {}) =>
  one({ kind: 'status', status: value, wabaId: WABA, phoneNumberId: PHONE_NUMBER_ID, ...extra });
const PRICING = { billable: true, pricingModel: 'PMP', category: 'utility', type: 'regular' };

const FIXTURE_EXPECTATIONS: Record<string, Expect> = {
  'message-text.json': message('text', {
    id: 'wamid.TEXT001',
    text: 'Olá! Queria saber o horário de amanhã 🙂',
    replyTo: undefined,
  }),
  'message-text-reply.json': message('text', {
    text: 'Sim, confirmo.',
    replyTo: 'wamid.OUTBOUND001',
  }),
  'message-image.json': message('image', {
    text: undefined,
    raw: expect.objectContaining({ image: expect.objectContaining({ caption: 'Recibo' }) }),
  }),
  'message-audio.json': message('audio', { id: 'wamid.AUDIO001' }),
  'message-video.json': message('video', { id: 'wamid.VIDEO001' }),
  'message-document.json': message('document', { id: 'wamid.DOCUMENT001' }),
  'message-sticker.json': message('sticker', { id: 'wamid.STICKER001' }),
  'message-location.json': message('location', {
    raw: expect.objectContaining({ location: expect.objectContaining({ latitude: 38.7223 }) }),
  }),
  'message-contacts.json': message('contacts', { id: 'wamid.CONTACTS001' }),
  'message-interactive-button-reply.json': message('interactive', {
    replyTo: 'wamid.OUTBOUND002',
    raw: expect.objectContaining({
      interactive: { type: 'button_reply', button_reply: { id: 'confirm-yes', title: 'Sim' } },
    }),
  }),
  'message-interactive-list-reply.json': message('interactive', { id: 'wamid.LISTREPLY001' }),
  'message-interactive-flow-reply.json': message('interactive', { id: 'wamid.FLOWREPLY001' }),
  'message-button.json': message('button', { replyTo: 'wamid.TEMPLATE001' }),
  'message-reaction.json': message('reaction', { id: 'wamid.REACTION001' }),
  'message-order.json': message('order', { id: 'wamid.ORDER001' }),
  'message-system.json': message('system', { id: 'wamid.SYSTEM001' }),
  'message-referral.json': message('text', {
    text: 'Vi o anúncio, quero saber mais',
    raw: expect.objectContaining({ referral: expect.objectContaining({ source_type: 'ad' }) }),
  }),
  'message-unsupported.json': message('unsupported', {
    errors: [
      {
        errorCode: 131051,
        title: 'Message type unknown',
        message: 'Message type unknown',
        details: 'Message type is currently not supported.',
      },
    ],
  }),
  'message-new-type.json': message('poll_vote', { id: 'wamid.NEWTYPE001' }),
  'message-text-business-scoped-user.json': message('text', {
    from: undefined,
    fromUserId: 'FI.4412300000000001',
    senderId: 'FI.4412300000000001',
    contactName: 'Mika',
    text: 'Hei, onko pöytä vapaana?',
  }),
  'message-text-phone-and-user-id.json': message('text', {
    from: '358400000001',
    fromUserId: 'FI.4412300000000002',
    senderId: '358400000001',
    contactName: 'Aino',
  }),
  'status-sent.json': status('sent', {
    id: 'wamid.OUTBOUND001',
    recipientId: '351910000001',
    callbackData: 'order-7781',
    pricing: PRICING,
    timestampMs: 1_767_225_660_000,
  }),
  'status-delivered.json': status('delivered', { pricing: PRICING }),
  'status-read.json': status('read', { pricing: undefined, errors: [] }),
  'status-played.json': status('played', { id: 'wamid.VOICE001' }),
  'status-failed.json': status('failed', {
    errors: [
      {
        errorCode: 131026,
        title: 'Message undeliverable',
        message: 'Message undeliverable',
        details: 'Message Undeliverable.',
      },
    ],
  }),
  'status-failed-throttled.json': status('failed', {
    errors: [expect.objectContaining({ errorCode: 130429 })],
  }),
  'status-deleted.json': one({
    kind: 'unknown',
    field: 'messages',
    path: 'entry[0].changes[0].value.statuses[0]',
    raw: expect.objectContaining({ status: 'deleted', id: 'wamid.INBOUND009' }),
  }),
  'status-read-group.json': (parsed) => {
    expect(parsed.malformed).toEqual([]);
    expect(parsed.updates).toMatchObject([
      {
        kind: 'status',
        id: 'wamid.GROUP001',
        status: 'read',
        recipientParticipantId: '351910000002',
        recipientParticipantUserId: undefined,
      },
      {
        kind: 'status',
        id: 'wamid.GROUP001',
        status: 'read',
        recipientParticipantId: undefined,
        recipientParticipantUserId: 'FI.4412300000000001',
      },
    ]);
  },
  'status-read-business-scoped-user.json': status('read', {
    recipientId: undefined,
    recipientUserId: 'FI.4412300000000001',
  }),
  'errors.json': one({
    kind: 'error',
    errorCode: 130429,
    phoneNumberId: PHONE_NUMBER_ID,
    wabaId: WABA,
  }),
  'message-template-status-update-approved.json': one({
    kind: 'template_status',
    wabaId: WABA,
    timestampMs: 1_767_225_000_000,
    event: 'APPROVED',
    templateId: '1234567890123456',
    templateName: 'order_shipped',
    language: 'pt_PT',
    reason: 'NONE',
    category: 'UTILITY',
  }),
  'message-template-status-update-rejected.json': one({
    kind: 'template_status',
    event: 'REJECTED',
    reason: 'INVALID_FORMAT',
  }),
  'phone-number-quality-update-throughput.json': one({
    kind: 'phone_number_quality',
    wabaId: WABA,
    displayPhoneNumber: '15550001111',
    event: 'THROUGHPUT_UPGRADE',
    currentTier: 'TIER_UNLIMITED',
    oldTier: undefined,
    messagingLimit: Infinity,
    throughputPerSecond: 1000,
  }),
  'phone-number-quality-update-limit.json': one({
    kind: 'phone_number_quality',
    event: 'UPGRADE',
    currentTier: 'TIER_10K',
    oldTier: 'TIER_2K',
    messagingLimit: 10_000,
    throughputPerSecond: undefined,
  }),
  'account-update-disabled.json': one({
    kind: 'account_update',
    wabaId: WABA,
    event: 'DISABLED_UPDATE',
    raw: expect.objectContaining({
      ban_info: expect.objectContaining({ waba_ban_date: '2026-01-15' }),
    }),
  }),
  'account-update-violation.json': one({ kind: 'account_update', event: 'ACCOUNT_VIOLATION' }),
  'smb-message-echoes.json': one({
    kind: 'echo',
    id: 'wamid.ECHO001',
    from: '15550001111',
    to: '351910000001',
    type: 'text',
    text: 'Já está a caminho!',
    phoneNumberId: PHONE_NUMBER_ID,
  }),
  'unknown-field.json': one({
    kind: 'unknown',
    field: 'calls',
    wabaId: WABA,
    raw: expect.objectContaining({ calls: [expect.objectContaining({ id: 'wacid.CALL001' })] }),
  }),
};

describe('fixtures written from Meta documentation (test/fixtures/whatsapp)', () => {
  it('every fixture has an expectation, and every expectation a fixture', () => {
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.json'));
    expect(files.sort()).toEqual(Object.keys(FIXTURE_EXPECTATIONS).sort());
  });

  for (const [name, check] of Object.entries(FIXTURE_EXPECTATIONS)) {
    it(`parses ${name}`, () => {
      const body = fixture(name);
      check(parseWebhook(body));
      check(parseWebhook(new TextEncoder().encode(body)));
      check(parseWebhook(JSON.parse(body)));
    });
  }

  it('keeps every update a dedupe key can tell apart: wamid for messages with or without `from`', () => {
    const keyOf = (name: string) => parseWebhook(fixture(name)).updates.map(whatsAppDedupeKey);
    expect(keyOf('message-text-business-scoped-user.json')).toEqual(['message:wamid.BSUID001']);
    expect(keyOf('status-read-business-scoped-user.json')).toEqual([
      'status:wamid.OUTBOUND007:read',
    ]);
    // A group message is read by each participant: one key each, never one for the group.
    expect(keyOf('status-read-group.json')).toEqual([
      'status:wamid.GROUP001:read:351910000002',
      'status:wamid.GROUP001:read:FI.4412300000000001',
    ]);
    expect(keyOf('smb-message-echoes.json')).toEqual(['echo:wamid.ECHO001']);
    expect(keyOf('status-deleted.json')).toEqual([undefined]);
  });

  it('folds fixture statuses with reduceStatus', () => {
    const all = ['status-read.json', 'status-sent.json', 'status-delivered.json']
      .flatMap((name) => parseWebhook(fixture(name)).statuses)
      .reduce<StatusPoint | undefined>(reduceStatus, undefined);
    expect(all?.status).toBe('read');
  });
});

/** A well-formed message or status, each with its own wamid. */
const goodItem = (key: 'messages' | 'statuses', n: number): Record<string, unknown> =>
  key === 'messages'
    ? {
        from: '4915100000000',
        id: `wamid.M${n}`,
        timestamp: '1700000000',
        type: 'text',
        text: { body: `m${n}` },
      }
    : {
        id: `wamid.S${n}`,
        status: 'delivered',
        timestamp: '1700000000',
        recipient_id: '4915100000000',
      };

/** An item that is certainly malformed, of many kinds. */
const badItem = (key: 'messages' | 'statuses') =>
  fc.oneof(
    fc.oneof(fc.constant(null), fc.boolean(), fc.double(), fc.string(), fc.array(fc.jsonValue())),
    fc.constantFrom('id', 'timestamp', key === 'messages' ? 'type' : 'status').chain((field) =>
      fc
        .oneof(
          fc.constant(undefined),
          fc.constant(''),
          fc.constant(null),
          fc.integer({ min: -5, max: -1 }),
          fc.object(),
        )
        .map((junk) => {
          const item: Record<string, unknown> = { ...goodItem(key, -1), [field]: junk };
          if (junk === undefined) delete item[field];
          return item;
        }),
    ),
    fc.constant(
      key === 'messages'
        ? { ...goodItem(key, -1), from: undefined }
        : { ...goodItem(key, -1), status: 42 },
    ),
    fc.constant({ ...goodItem(key, -1), timestamp: '2026-01-01T00:00:00Z' }),
  );

const MESSAGE_FIELDS: ReadonlySet<string> = new Set([
  'messages',
  'smb_message_echoes',
  'message_echoes',
]);

describe('parseWebhook on any delivery (property)', () => {
  const field = fc.oneof(
    fc.constantFrom(
      'messages',
      'smb_message_echoes',
      'message_echoes',
      'message_template_status_update',
      'phone_number_quality_update',
      'account_update',
    ),
    fc.string(),
    fc.jsonValue(),
  );
  const value = fc.oneof(
    fc.jsonValue(),
    fc.dictionary(
      fc.constantFrom(
        'metadata',
        'messages',
        'statuses',
        'errors',
        'message_echoes',
        'contacts',
        'event',
      ),
      fc.oneof(fc.jsonValue(), fc.constant(METADATA), fc.array(fc.jsonValue())),
    ),
  );
  const delivery = fc.record({
    object: fc.constant('whatsapp_business_account'),
    entry: fc.array(
      fc.record(
        {
          id: fc.oneof(fc.constant('WABA'), fc.jsonValue()),
          changes: fc.array(fc.record({ field, value }), { maxLength: 4 }),
        },
        { requiredKeys: ['changes'] },
      ),
      { maxLength: 4 },
    ),
  });

  it('never throws, whatever `field` and `value` hold, and accounts for every change', () => {
    fc.assert(
      fc.property(delivery, (body) => {
        for (const input of [body, JSON.stringify(body)]) {
          const parsed = parseWebhook(input);
          const paths = parsed.malformed.map((m) => m.path);
          expect(new Set(paths).size).toBe(paths.length);
          for (const item of parsed.malformed) {
            expect(item.error).toBeInstanceOf(WebhookPayloadError);
            expect(item.error.path.startsWith(item.path)).toBe(true);
            expect(JSON.parse(JSON.stringify(item.envelope)).object).toBe(
              'whatsapp_business_account',
            );
          }
          const ids = body.entry.map((e) => e.id);
          for (const u of parsed.updates) expect(ids).toContain(u.wabaId);
          // A change of any field but the message ones is one update or one malformed item.
          let expected = 0;
          let malformedChanges = 0;
          body.entry.forEach((entry, i) => {
            if (typeof entry.id !== 'string' || entry.id === '') {
              expect(paths).toContain(`entry[${i}]`);
              return;
            }
            entry.changes.forEach((change, j) => {
              const at = `entry[${i}].changes[${j}]`;
              if (typeof change.field !== 'string' || change.field === '') {
                expect(paths).toContain(at);
              } else if (!MESSAGE_FIELDS.has(change.field)) {
                expected++;
                if (paths.includes(at)) malformedChanges++;
              }
            });
          });
          const perChange = parsed.updates.filter(
            (u) =>
              !['message', 'status', 'error', 'echo'].includes(u.kind) &&
              !('path' in u && /\]$/.test(u.path)),
          );
          expect(perChange.length + malformedChanges).toBe(expected);
          expect(webhookUpdates(parsed)).toEqual(parsed.updates);
          expect(parsed.updates.filter((u) => u.kind === 'message')).toEqual(parsed.messages);
          expect(parsed.updates.filter((u) => u.kind === 'status')).toEqual(parsed.statuses);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('returns every well-formed item and reports each malformed one separately', () => {
    const items = (key: 'messages' | 'statuses') =>
      fc
        .array(fc.oneof(fc.constant(undefined), badItem(key)), { maxLength: 8 })
        .map((slots) =>
          slots.map((bad, n) =>
            bad === undefined ? { good: true, item: goodItem(key, n) } : { good: false, item: bad },
          ),
        );
    fc.assert(
      fc.property(
        items('messages'),
        items('statuses'),
        fc.jsonValue(),
        (messages, statuses, other) => {
          const body = {
            object: 'whatsapp_business_account',
            entry: [
              {
                id: 'WABA',
                changes: [
                  {
                    field: 'messages',
                    value: {
                      metadata: METADATA,
                      messages: messages.map((m) => m.item),
                      statuses: statuses.map((s) => s.item),
                    },
                  },
                  { field: 'some_new_field', value: other },
                ],
              },
            ],
          };
          const parsed = parseWebhook(JSON.stringify(body));
          const goodIds = (slots: { good: boolean; item: unknown }[]) =>
            slots.filter((s) => s.good).map((s) => (s.item as { id: string }).id);
          const badPaths = (key: string, slots: { good: boolean }[]) =>
            slots.flatMap((s, n) => (s.good ? [] : [`entry[0].changes[0].value.${key}[${n}]`]));
          expect(parsed.messages.map((m) => m.id)).toEqual(goodIds(messages));
          expect(parsed.statuses.map((s) => s.id)).toEqual(goodIds(statuses));
          expect(parsed.malformed.map((m) => m.path)).toEqual([
            ...badPaths('messages', messages),
            ...badPaths('statuses', statuses),
          ]);
          for (const m of parsed.malformed) {
            const envelope = parseWebhook(m.envelope);
            expect(envelope.updates).toEqual([]);
            expect(envelope.malformed).toHaveLength(1);
          }
          expect(parsed.updates.at(-1)).toMatchObject({ kind: 'unknown', field: 'some_new_field' });
        },
      ),
      { numRuns: 300 },
    );
  });
});

const STATUS_VALUES: readonly MessageStatus[] = ['sent', 'delivered', 'read', 'played', 'failed'];
const point = fc.record({
  status: fc.constantFrom(...STATUS_VALUES),
  timestampMs: fc.integer({ min: 0, max: 10_000 }),
});

describe('reduceStatus', () => {
  it('never moves backwards: sent < delivered < read <= played; failed is final', () => {
    const at = (status: MessageStatus, timestampMs: number): StatusPoint => ({
      status,
      timestampMs,
    });
    let state = reduceStatus(undefined, at('read', 30));
    state = reduceStatus(state, at('delivered', 20));
    state = reduceStatus(state, at('sent', 10));
    expect(state).toEqual(at('read', 30));
    state = reduceStatus(state, at('played', 40));
    expect(state.status).toBe('played');
    state = reduceStatus(state, at('failed', 50));
    state = reduceStatus(state, at('read', 60));
    expect(state.status).toBe('failed');
    const current = at('delivered', 20);
    expect(reduceStatus(current, at('delivered', 20))).toBe(current);
    expect(reduceStatus(current, at('sent', 99))).toBe(current);
  });

  it('keeps the earliest payload timestamp of a status seen twice', () => {
    expect(
      reduceStatus({ status: 'read', timestampMs: 50 }, { status: 'read', timestampMs: 40 }),
    ).toEqual({
      status: 'read',
      timestampMs: 40,
    });
  });

  it('gives the same final state for any arrival order of the same statuses', () => {
    fc.assert(
      fc.property(
        fc
          .array(point, { minLength: 1, maxLength: 12 })
          .chain((xs) =>
            fc.tuple(
              fc.constant(xs),
              fc.shuffledSubarray(xs, { minLength: xs.length, maxLength: xs.length }),
            ),
          ),
        ([inOrder, shuffled]) => {
          const fold = (xs: StatusPoint[]) =>
            xs.reduce<StatusPoint | undefined>(reduceStatus, undefined);
          const a = fold(inOrder)!;
          const b = fold(shuffled)!;
          expect({ status: b.status, timestampMs: b.timestampMs }).toEqual({
            status: a.status,
            timestampMs: a.timestampMs,
          });
          const top = Math.max(...inOrder.map((p) => STATUS_RANK[p.status]));
          expect(STATUS_RANK[a.status]).toBe(top);
        },
      ),
    );
  });

  it('never lowers the rank, whatever arrives', () => {
    fc.assert(
      fc.property(point, point, (current, incoming) => {
        const next = reduceStatus(current, incoming);
        expect(STATUS_RANK[next.status]).toBeGreaterThanOrEqual(STATUS_RANK[current.status]);
        expect([current, incoming]).toContain(next);
      }),
    );
  });
});
