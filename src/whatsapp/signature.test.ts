import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
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

  it('rejects the same payload re-serialised with the characters unescaped', async () => {
    const reserialised = JSON.stringify(JSON.parse(BODY));
    expect(reserialised).toContain('ä');
    expect(await verifyWebhookSignature(reserialised, GOOD, SECRET)).toBe(false);
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
    expect(() => handleVerificationRequest(query, '')).toThrow(/verifyToken/);
  });
});
