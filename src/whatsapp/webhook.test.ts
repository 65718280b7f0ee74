import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { composeClassifiers } from '../core/classify.js';
import { classifyWhatsAppError } from './classify.js';
import { isWebhookPayloadError, WebhookPayloadError } from './errors.js';
import {
  type MessageStatus,
  type ParsedWebhook,
  parseWebhook,
  reduceStatus,
  STATUS_RANK,
  type StatusPoint,
  type WebhookUpdate,
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
          code: 131026,
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
      expect.objectContaining({ kind: 'error', code: 130429, phoneNumberId: '106540352242922' }),
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
          changes: [{ field: 'messages', value: { metadata: METADATA, messages: {}, statuses: 5 } }],
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
        `"type":"text",${proto}:{"polluted":true},${ctor}:{"prototype":{"polluted":true}}`,
      );
      expect(body).toContain(proto);
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
    expect(Object.hasOwn(nested.entry[0].changes[0].value.messages[0].text, 'prototype')).toBe(true);
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
