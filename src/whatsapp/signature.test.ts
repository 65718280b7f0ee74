import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  escapedBody,
  handleVerificationRequest,
  loadHmac,
  signWebhookBody,
  timingSafeEqual,
  verifyWasenderSignature,
  verifyWebhookSignature,
} from './signature.js';

const SECRET = 'app-secret-0123456789';

/** A status webhook as Meta serialises it: non-ASCII escaped as \uXXXX with lowercase hex. */
const BODY =
  '{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":' +
  '{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881",' +
  '"phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"J\\u00e4rvi \\u00f6\\u00e5"},' +
  '"wa_id":"16505551234"}],"messages":[{"from":"16505551234","id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",' +
  '"timestamp":"1749416383","type":"text","text":{"body":"h\\u00e4l\\u00f6 \\u00e5"}}]},"field":"messages"}]}]}';

/** Computed independently of the code under test, with node:crypto. */
const GOOD = `sha256=${createHmac('sha256', SECRET).update(Buffer.from(BODY, 'utf8')).digest('hex')}`;

describe('verifyWebhookSignature', () => {
  it('the fixture holds "äöå" escaped the way Meta signs it', () => {
    expect(BODY).toContain('\\u00e4');
    expect(JSON.parse(BODY).entry[0].changes[0].value.messages[0].text.body).toBe('hälö å');
  });

  it('accepts a known-good HMAC over the raw bytes, as string, Buffer, Uint8Array or ArrayBuffer', async () => {
    const bytes = Buffer.from(BODY, 'utf8');
    expect(await verifyWebhookSignature(BODY, GOOD, SECRET)).toBe(true);
    expect(await verifyWebhookSignature(bytes, GOOD, SECRET)).toBe(true);
    expect(await verifyWebhookSignature(new Uint8Array(bytes), GOOD, SECRET)).toBe(true);
    const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    expect(await verifyWebhookSignature(ab, GOOD, SECRET)).toBe(true);
    expect(
      await verifyWebhookSignature(BODY, GOOD.toUpperCase().replace('SHA256', 'sha256'), SECRET),
    ).toBe(true);
    expect(await verifyWebhookSignature(BODY, [GOOD], SECRET)).toBe(true);
  });

  it('accepts the payload with its characters unescaped, refuses any other re-serialisation', async () => {
    const unescaped = JSON.stringify(JSON.parse(BODY));
    expect(unescaped).toContain('ä');
    expect(await verifyWebhookSignature(unescaped, GOOD, SECRET)).toBe(true);
    const pretty = JSON.stringify(JSON.parse(BODY), null, 1);
    expect(await verifyWebhookSignature(pretty, GOOD, SECRET)).toBe(false);
  });

  it('rejects tampering: one byte changed, wrong secret, truncated header, extra whitespace', async () => {
    const oneByte = Buffer.from(BODY, 'utf8');
    oneByte[100]! ^= 0x01;
    expect(await verifyWebhookSignature(oneByte, GOOD, SECRET)).toBe(false);
    expect(await verifyWebhookSignature(BODY, GOOD, `${SECRET}x`)).toBe(false);
    expect(await verifyWebhookSignature(BODY, GOOD.slice(0, -1), SECRET)).toBe(false);
    expect(await verifyWebhookSignature(BODY, GOOD.slice(0, 20), SECRET)).toBe(false);
    expect(await verifyWebhookSignature(`${BODY} `, GOOD, SECRET)).toBe(false);
    expect(await verifyWebhookSignature(`${BODY}\n`, GOOD, SECRET)).toBe(false);
    expect(await verifyWebhookSignature(BODY, ` ${GOOD}`, SECRET)).toBe(false);
    expect(await verifyWebhookSignature(BODY, `${GOOD} `, SECRET)).toBe(false);
    expect(await verifyWebhookSignature(BODY, GOOD.replace('=', '= '), SECRET)).toBe(false);
  });

  it('rejects a missing or malformed header', async () => {
    for (const header of [
      undefined,
      null,
      '',
      'sha256=',
      GOOD.slice(7),
      GOOD.replace('sha256', 'sha1'),
      `${GOOD}00`,
      `sha256=${'z'.repeat(64)}`,
      [GOOD, GOOD],
      [],
    ]) {
      expect(await verifyWebhookSignature(BODY, header, SECRET)).toBe(false);
    }
  });

  it('throws for an empty app secret: a configuration error', async () => {
    await expect(verifyWebhookSignature(BODY, GOOD, '')).rejects.toThrow(/appSecret/);
  });

  it('agrees with node:crypto on any body and secret', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 512 }),
        fc.string({ minLength: 1 }),
        async (body, secret) => {
          const mac = createHmac('sha256', secret).update(body).digest('hex');
          expect(await signWebhookBody(body, secret)).toBe(mac);
          expect(await verifyWebhookSignature(body, `sha256=${mac}`, secret)).toBe(true);
          const flipped = `sha256=${mac.slice(0, -1)}${mac.endsWith('0') ? '1' : '0'}`;
          expect(await verifyWebhookSignature(body, flipped, secret)).toBe(false);
        },
      ),
      { numRuns: 50 },
    );
  });
});

/** HMAC-SHA256 hex of `text` (UTF-8), computed with node:crypto, independently of the code. */
const macOf = (text: string) =>
  `sha256=${createHmac('sha256', SECRET).update(Buffer.from(text, 'utf8')).digest('hex')}`;

/** Meta's signing form, written out by hand per code unit: lowercase `\uXXXX`. */
function metaEscape(text: string): string {
  let out = '';
  for (const unit of text.split('')) {
    const code = unit.charCodeAt(0);
    out += code < 0x80 ? unit : `\\u${code.toString(16).padStart(4, '0')}`;
  }
  return out;
}

describe('verifyWebhookSignature over non-ASCII bodies', () => {
  const texts = {
    accented: "J'ai mangé des pâtes à Zürich, äöå ÄÖÅ",
    cjk: '你好，世界 こんにちは 안녕하세요',
    emoji: 'ok 👍🏽 🇩🇪 👨‍👩‍👧 😀',
  };
  const bodyWith = (text: string) =>
    JSON.stringify({
      object: 'whatsapp_business_account',
      entry: [{ id: '1', changes: [{ field: 'messages', value: { text: { body: text } } }] }],
    });

  for (const [name, text] of Object.entries(texts)) {
    it(`accepts ${name} text whether the body holds the characters or their escapes`, async () => {
      const raw = bodyWith(text);
      const escaped = metaEscape(raw);
      expect(escaped).not.toBe(raw);
      expect(JSON.parse(escaped)).toEqual(JSON.parse(raw));
      const signature = macOf(escaped);
      // Meta signed the escaped form; the body arrives either way, as text or as bytes.
      for (const body of [escaped, raw, Buffer.from(escaped), new Uint8Array(Buffer.from(raw))]) {
        expect(await verifyWebhookSignature(body, signature, SECRET)).toBe(true);
      }
      // A signature over the raw characters verifies too (the first, raw-bytes check).
      expect(await verifyWebhookSignature(raw, macOf(raw), SECRET)).toBe(true);
    });
  }

  it('writes lowercase hex and one escape per UTF-16 code unit (emoji as surrogates)', () => {
    const decode = (b: Uint8Array | undefined) => new TextDecoder().decode(b);
    expect(decode(escapedBody('äöå'))).toBe('\\u00e4\\u00f6\\u00e5');
    expect(decode(escapedBody('Ä'))).toBe('\\u00c4');
    expect(decode(escapedBody('😀'))).toBe('\\ud83d\\ude00');
    expect(decode(escapedBody(Buffer.from('a"\\u00e4"ü', 'utf8')))).toBe('a"\\u00e4"\\u00fc');
    expect(escapedBody('plain ASCII \\u00e4')).toBeUndefined();
    expect(escapedBody(new Uint8Array([0x7b, 0xff, 0x7d]))).toBeUndefined();
  });

  it('still refuses a tampered body, in either form', async () => {
    const raw = bodyWith(texts.accented);
    const signature = macOf(metaEscape(raw));
    for (const tampered of [
      raw.replace('pâtes', 'pâtés'),
      raw.replace('mangé', 'mange'),
      metaEscape(raw).replace('\\u00e9', '\\u00e8'),
      metaEscape(raw).replace('\\u00e9', '\\u00E9'),
      `${raw} `,
      raw.replace('Zürich', 'Zurich'),
    ]) {
      expect(await verifyWebhookSignature(tampered, signature, SECRET)).toBe(false);
    }
    expect(await verifyWebhookSignature(raw, signature, `${SECRET}x`)).toBe(false);
  });

  it('holds for any text: the escaped-form signature verifies both forms, a changed byte neither', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: 'grapheme', maxLength: 40 }),
        fc.nat(),
        async (text, at) => {
          const raw = bodyWith(text);
          const signature = macOf(metaEscape(raw));
          expect(await verifyWebhookSignature(raw, signature, SECRET)).toBe(true);
          expect(await verifyWebhookSignature(metaEscape(raw), signature, SECRET)).toBe(true);
          const bytes = Buffer.from(raw, 'utf8');
          bytes[at % bytes.length]! ^= 0x01;
          expect(await verifyWebhookSignature(bytes, signature, SECRET)).toBe(false);
        },
      ),
      { numRuns: 100 },
    );
  });

  for (const preferNode of [true, false]) {
    it(`verifies the escaped form on ${preferNode ? 'node:crypto' : 'Web Crypto'}`, async () => {
      const backend = await loadHmac(preferNode);
      const raw = bodyWith(texts.emoji);
      const mac = new Uint8Array(Buffer.from(macOf(metaEscape(raw)).slice(7), 'hex'));
      expect(await backend.verify(SECRET, mac, Buffer.from(raw))).toBe(false);
      expect(await backend.verify(SECRET, mac, escapedBody(raw)!)).toBe(true);
    });
  }
});

describe('both HMAC backends (node:crypto and Web Crypto)', () => {
  for (const preferNode of [true, false]) {
    it(`${preferNode ? 'node:crypto' : 'Web Crypto'} signs and verifies like createHmac`, async () => {
      const backend = await loadHmac(preferNode);
      await fc.assert(
        fc.asyncProperty(
          fc.uint8Array({ maxLength: 256 }),
          fc.string({ minLength: 1 }),
          async (body, secret) => {
            const mac = createHmac('sha256', secret).update(body).digest();
            expect(Buffer.from(await backend.sign(secret, body)).equals(mac)).toBe(true);
            expect(await backend.verify(secret, new Uint8Array(mac), body)).toBe(true);
            const wrong = new Uint8Array(mac);
            wrong[0]! ^= 1;
            expect(await backend.verify(secret, wrong, body)).toBe(false);
            expect(await backend.verify(secret, new Uint8Array(mac.subarray(1)), body)).toBe(false);
          },
        ),
        { numRuns: 30 },
      );
    });
  }
});

describe('verifyWasenderSignature', () => {
  it('accepts the exact secret and nothing else', () => {
    expect(verifyWasenderSignature('s3cret-webhook', 's3cret-webhook')).toBe(true);
    expect(verifyWasenderSignature(['s3cret-webhook'], 's3cret-webhook')).toBe(true);
    for (const header of [
      's3cret-webhooK',
      's3cret-webhoo',
      's3cret-webhook ',
      '',
      undefined,
      null,
    ]) {
      expect(verifyWasenderSignature(header, 's3cret-webhook')).toBe(false);
    }
    expect(() => verifyWasenderSignature('x', '')).toThrow(/secret/);
  });

  it('timingSafeEqual is string equality', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => {
        expect(timingSafeEqual(a, b)).toBe(a === b);
        expect(timingSafeEqual(a, a)).toBe(true);
      }),
    );
  });
});

describe('handleVerificationRequest', () => {
  const query = {
    'hub.mode': 'subscribe',
    'hub.verify_token': 'tok',
    'hub.challenge': '1158201444',
  };

  it('answers the challenge when the token matches', () => {
    expect(handleVerificationRequest(query, 'tok')).toEqual({ status: 200, body: '1158201444' });
    expect(handleVerificationRequest(new URLSearchParams(query), 'tok').status).toBe(200);
    expect(
      handleVerificationRequest('?hub.mode=subscribe&hub.verify_token=tok&hub.challenge=42', 'tok'),
    ).toEqual({ status: 200, body: '42' });
  });

  it('refuses a wrong or missing token with 403 and a non-handshake with 400', () => {
    expect(handleVerificationRequest({ ...query, 'hub.verify_token': 'tok2' }, 'tok').status).toBe(
      403,
    );
    expect(
      handleVerificationRequest({ ...query, 'hub.verify_token': undefined }, 'tok').status,
    ).toBe(403);
    expect(handleVerificationRequest({ ...query, 'hub.mode': 'unsubscribe' }, 'tok').status).toBe(
      400,
    );
    expect(
      handleVerificationRequest({ 'hub.mode': 'subscribe', 'hub.verify_token': 'tok' }, 'tok')
        .status,
    ).toBe(400);
    expect(
      handleVerificationRequest({ ['__proto__']: 'x' } as Record<string, string>, 'tok').status,
    ).toBe(400);
    expect(() => handleVerificationRequest(query, '')).toThrow(
      new RangeError('verifyToken must not be empty'),
    );
  });

  it('refuses every handshake, loudly, when the verify token is not configured', () => {
    const unset: string | undefined = process.env.RETRYKIT_TEST_VERIFY_TOKEN_NEVER_SET;
    const query = { 'hub.mode': 'subscribe', 'hub.verify_token': 'tok', 'hub.challenge': '42' };
    for (const given of [query, { ...query, 'hub.verify_token': '' }, {}]) {
      expect(() => handleVerificationRequest(given, unset)).toThrow(
        new TypeError(
          'verifyToken must be a string, got undefined: is the setting (an environment variable?) it is read from set?',
        ),
      );
    }
  });

  it('answers 400, never throws, for whatever a framework hands over', () => {
    const weird: unknown[] = [
      null,
      undefined,
      0,
      42,
      true,
      Symbol('q'),
      () => 'x',
      [],
      [['hub.mode', 'subscribe']],
      '',
      '?',
      '%',
      '?hub.mode=subscribe&hub.challenge=1&hub.mode=subscribe',
      { 'hub.mode': ['subscribe', 'subscribe'], 'hub.challenge': '1', 'hub.verify_token': 'tok' },
      { 'hub.mode': { nested: true }, 'hub.challenge': '1', 'hub.verify_token': 'tok' },
      { 'hub.mode': 'subscribe', 'hub.challenge': 7, 'hub.verify_token': 'tok' },
      { hub: null },
      { hub: 'subscribe' },
      Object.defineProperty({}, 'hub.mode', {
        enumerable: true,
        get() {
          throw new Error('getter');
        },
      }),
      new Proxy(
        {},
        {
          has() {
            throw new Error('trap');
          },
          getOwnPropertyDescriptor() {
            throw new Error('trap');
          },
        },
      ),
    ];
    for (const input of weird) {
      expect(handleVerificationRequest(input as never, 'tok')).toEqual({
        status: 400,
        body: 'Bad Request',
      });
    }
    fc.assert(
      fc.property(fc.anything(), (input) => {
        const { status } = handleVerificationRequest(input as never, 'tok');
        expect([400, 403]).toContain(status);
      }),
    );
  });

  it("accepts Express 5's query shapes: null prototype, arrays of one, a nested hub, a URL", () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, query);
    expect(handleVerificationRequest(bare, 'tok')).toEqual({ status: 200, body: '1158201444' });
    const arrays = Object.fromEntries(Object.entries(query).map(([k, v]) => [k, [v]]));
    expect(handleVerificationRequest(arrays, 'tok').status).toBe(200);
    const nested = { hub: { mode: 'subscribe', verify_token: 'tok', challenge: '9' } };
    expect(handleVerificationRequest(nested, 'tok')).toEqual({ status: 200, body: '9' });
    expect(
      handleVerificationRequest({ hub: { ...nested.hub, verify_token: 'x' } }, 'tok').status,
    ).toBe(403);
    const url = new URL(
      'https://example.com/webhook?hub.mode=subscribe&hub.verify_token=tok&hub.challenge=5',
    );
    expect(handleVerificationRequest(url, 'tok')).toEqual({ status: 200, body: '5' });
  });
});
