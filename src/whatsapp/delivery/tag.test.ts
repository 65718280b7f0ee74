import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseWebhook } from '../webhook.js';
import { deliveryTag, MAX_CALLBACK_DATA, splitCallbackData, tagCallbackData } from './tag.js';

describe('the correlation tag in biz_opaque_callback_data', () => {
  it('is the first 22 base64url characters of the SHA-256 of the key', async () => {
    for (const key of ['order-42:shipped', '', 'ключ', 'a'.repeat(1000)]) {
      const expected = createHash('sha256').update(key).digest('base64url').slice(0, 22);
      expect(await deliveryTag(key)).toBe(expected);
    }
  });

  it('keeps the caller value after the tag, or alone when both would pass 512 characters', () => {
    const tag = 'A'.repeat(22);
    expect(tagCallbackData(tag, undefined)).toBe(`rk:${tag}`);
    expect(tagCallbackData(tag, 'order-42')).toBe(`rk:${tag}|order-42`);
    expect(tagCallbackData(tag, '')).toBe(`rk:${tag}|`);
    const longest = 'x'.repeat(MAX_CALLBACK_DATA - 26);
    expect(tagCallbackData(tag, longest)).toBe(`rk:${tag}|${longest}`);
    expect(tagCallbackData(tag, `${longest}x`)).toBe(`${longest}x`);
    expect(tagCallbackData(tag, 42)).toBe(42);
    fc.assert(
      fc.property(
        fc.string({ minLength: 22, maxLength: 22, unit: fc.constantFrom(...'ab-_Z9') }),
        fc.string({ maxLength: 700 }),
        (t, caller) => {
          const sent = tagCallbackData(t, caller) as string;
          if (caller.length <= MAX_CALLBACK_DATA) expect(sent.length).toBeLessThanOrEqual(512);
          const split = splitCallbackData(sent);
          if (sent === caller) expect(caller.length + 26).toBeGreaterThan(MAX_CALLBACK_DATA);
          else expect(split).toEqual({ tag: t, callerData: caller });
        },
      ),
    );
  });

  it('is split off the status a webhook reports', () => {
    const body = (data: string) =>
      JSON.stringify({
        object: 'whatsapp_business_account',
        entry: [
          {
            id: '1',
            changes: [
              {
                field: 'messages',
                value: {
                  metadata: { phone_number_id: 'PN' },
                  statuses: [
                    {
                      id: 'wamid.A',
                      status: 'sent',
                      timestamp: '1',
                      biz_opaque_callback_data: data,
                    },
                  ],
                },
              },
            ],
          },
        ],
      });
    const tag = 'b'.repeat(22);
    expect(parseWebhook(body(`rk:${tag}|mine`)).statuses[0]).toMatchObject({
      callbackData: 'mine',
      deliveryTag: tag,
    });
    expect(parseWebhook(body(`rk:${tag}`)).statuses[0]).toMatchObject({
      callbackData: undefined,
      deliveryTag: tag,
    });
    const other = parseWebhook(body('rk:short|mine')).statuses[0];
    expect(other?.callbackData).toBe('rk:short|mine');
    expect(other).not.toHaveProperty('deliveryTag');
  });
});
