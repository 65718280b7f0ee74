import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Root from '../src/index.js';
import type * as WhatsApp from '../src/whatsapp/index.js';
import { type BuiltPackage, buildPackage } from './support/build.js';

/**
 * Two copies of retrykit in one process, as Node gives when one dependency `import`s the
 * package and another `require`s it (or when it is installed twice): the ESM and CJS builds
 * have distinct classes, and each must still recognise the other's errors.
 */
type Copy = typeof Root & typeof WhatsApp;

let built: BuiltPackage;
let esm: Copy;
let cjs: Copy;

beforeAll(async () => {
  built = await buildPackage();
  esm = { ...(await built.esm('index')), ...(await built.esm('whatsapp/index')) } as Copy;
  cjs = { ...built.cjs('index'), ...built.cjs('whatsapp/index') } as Copy;
});

afterAll(async () => {
  await built?.remove();
});

/** A clock whose sleeps end at once: a retry that should not happen shows as extra calls. */
const instantClock = { now: () => 0, sleep: async () => {} };

/** One error of every retrykit class, made by `copy`. */
function everyError(copy: Copy) {
  const cause = new Error('underlying');
  return {
    RetrykitError: new copy.RetrykitError('PERMANENT', 'base'),
    RetryError: new copy.RetryError('max_attempts', [], cause),
    PermanentError: copy.permanent(cause),
    StoreUnavailableError: new copy.StoreUnavailableError('claim', cause),
    RateLimitTimeoutError: new copy.RateLimitTimeoutError({
      key: 'k',
      tokens: 1,
      maxWaitMs: 10,
      retryAfterMs: 20,
    }),
    RateLimitAbortedError: new copy.RateLimitAbortedError({ key: 'k', tokens: 1 }, cause),
    IdempotencyInProgressError: new copy.IdempotencyInProgressError('k', 100, 0),
    IdempotencyKeyReuseError: new copy.IdempotencyKeyReuseError('k'),
    InvalidRecordError: new copy.InvalidRecordError('retry_count', 'bad'),
    WhatsAppApiError: new copy.WhatsAppApiError({ message: 'rate limited', errorCode: 130429 }),
    WebhookPayloadError: new copy.WebhookPayloadError('$.entry', 'expected an array'),
    CircuitOpenError: new copy.CircuitOpenError({
      key: 'n',
      state: 'open',
      retryAfterMs: 1_000,
      openUntil: 1_000,
    }),
    HeldError: new copy.HeldError(cause, {
      classification: { retryable: false, reason: 'auth', scope: 'account' },
      attempts: 1,
      errors: [],
    }),
  } as const;
}

const CLASSES = [
  'RetryError',
  'PermanentError',
  'StoreUnavailableError',
  'RateLimitTimeoutError',
  'RateLimitAbortedError',
  'IdempotencyInProgressError',
  'IdempotencyKeyReuseError',
  'InvalidRecordError',
  'WhatsAppApiError',
  'WebhookPayloadError',
  'CircuitOpenError',
  'HeldError',
] as const;

describe('ESM and CJS builds in one process', () => {
  it('are two copies with distinct classes', () => {
    expect(esm.PermanentError).not.toBe(cjs.PermanentError);
    expect(Object.getPrototypeOf(cjs.permanent(1))).not.toBe(esm.PermanentError.prototype);
  });

  for (const [from, to] of [
    ['cjs', 'esm'],
    ['esm', 'cjs'],
  ] as const) {
    it(`${to} retry does not retry a permanent() made by the ${from} copy`, async () => {
      const maker = from === 'cjs' ? cjs : esm;
      const runner = to === 'cjs' ? cjs : esm;
      let calls = 0;
      const failure = new Error('invalid recipient');
      const error = await runner
        .retry(
          () => {
            calls++;
            throw maker.permanent(failure);
          },
          { clock: instantClock, maxAttempts: 5 },
        )
        .catch((e: unknown) => e);
      expect(calls).toBe(1);
      expect(error).toBeInstanceOf(runner.PermanentError);
      expect((error as Root.PermanentError).cause).toBe(failure);
      expect(runner.classify(maker.permanent(failure)).retryable).toBe(false);
    });

    it(`every ${to} error class recognises the ${from} copy's errors, and only its own kind`, () => {
      const errors = everyError(from === 'cjs' ? cjs : esm);
      const target = to === 'cjs' ? cjs : esm;
      for (const [kind, error] of Object.entries(errors)) {
        expect(error instanceof target.RetrykitError, kind).toBe(true);
        expect(target.isRetrykitError(error), kind).toBe(true);
        for (const name of CLASSES) {
          expect(error instanceof target[name], `${kind} instanceof ${name}`).toBe(kind === name);
        }
        expect(target.isWhatsAppApiError(error), kind).toBe(kind === 'WhatsAppApiError');
        expect(target.isWebhookPayloadError(error), kind).toBe(kind === 'WebhookPayloadError');
      }
      expect(target.permanent(errors.PermanentError)).toBe(errors.PermanentError);
      for (const [kind, error] of Object.entries(errors)) {
        expect(target.shouldHold(error), kind).toBe(
          kind === 'CircuitOpenError' || kind === 'HeldError',
        );
      }
    });
  }

  it('a CircuitOpenError from the other copy stops retry at once with circuit_open', async () => {
    let calls = 0;
    const stops: string[] = [];
    const error = await esm
      .retry(
        () => {
          calls++;
          throw new cjs.CircuitOpenError({
            key: 'n',
            state: 'open',
            retryAfterMs: 5,
            openUntil: 5,
          });
        },
        { clock: instantClock, onGiveUp: ({ stopReason }) => stops.push(stopReason) },
      )
      .catch((e: unknown) => e);
    expect(calls).toBe(1);
    expect(error).toBeInstanceOf(esm.CircuitOpenError);
    expect(stops).toEqual(['circuit_open']);
  });

  it('keeps the prototype check for a class derived outside retrykit', () => {
    class MyPermanent extends esm.PermanentError {}
    const mine = new MyPermanent(new Error('x'));
    expect(mine instanceof esm.PermanentError).toBe(true);
    expect(mine instanceof cjs.PermanentError).toBe(true);
    expect(esm.permanent(1) instanceof MyPermanent).toBe(false);
    expect(cjs.permanent(1) instanceof MyPermanent).toBe(false);
    expect(new Error('plain') instanceof esm.RetrykitError).toBe(false);
    expect({ code: 'PERMANENT', name: 'PermanentError' } instanceof esm.PermanentError).toBe(false);
  });
});
