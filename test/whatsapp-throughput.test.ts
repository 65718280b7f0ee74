import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type AdjustableRateLimiter, createMemoryTokenBucket } from '../src/index.js';
import { createRedisTokenBucket } from '../src/redis/index.js';
import {
  parseWebhook,
  throughputLimits,
  type WebhookUpdate,
  WHATSAPP_RATE_LIMITS,
} from '../src/whatsapp/index.js';
import { connectRedis, describeRedis, uniquePrefix } from './support/redis.js';

// A `phone_number_quality_update` announcing Meta's higher throughput raises that number's
// limiter, on memory and on Redis, as docs/whatsapp.md shows.
const body = readFileSync(
  new URL('./fixtures/whatsapp/phone-number-quality-update-throughput.json', import.meta.url),
);
/** The user's own map from display number to phone number ID (the webhook carries no ID). */
const phoneNumberIds = new Map([['15550001111', '1001']]);

async function follow(limiter: AdjustableRateLimiter, update: WebhookUpdate): Promise<void> {
  if (update.kind !== 'phone_number_quality' || update.throughputPerSecond === undefined) return;
  const id = phoneNumberIds.get(update.displayPhoneNumber ?? '');
  if (id === undefined) return;
  await limiter.setRate(id, throughputLimits(update.throughputPerSecond));
}

/**
 * `key` grants a burst of exactly `burst` tokens now: one request for all of them, then nothing.
 * Two round trips, so a bucket key's expiry on Redis's real clock can't refill it in between.
 */
async function expectBurst(limiter: AdjustableRateLimiter, key: string, burst: number) {
  expect((await limiter.tryAcquire(key, burst)).ok).toBe(true);
  expect((await limiter.tryAcquire(key)).ok).toBe(false);
}

/** A clock the test moves by hand. */
function manualTime() {
  let now = 1_000_000;
  return {
    clock: {
      now: () => now,
      sleep: async (ms: number) => {
        now += ms;
      },
    },
    advance: (ms: number) => {
      now += ms;
    },
  };
}

/**
 * The 80/s preset (a burst of 4) until the upgrade; for that number the 1,000/s one after (a
 * burst of 50).
 */
async function check(limiter: AdjustableRateLimiter, advance: (ms: number) => void) {
  await expectBurst(limiter, '1001', 4);
  for (const update of parseWebhook(body).updates) await follow(limiter, update);
  advance(1000);
  await expectBurst(limiter, '1001', 50);
  await expectBurst(limiter, '1002', 4);
}

describe('following a throughput upgrade from the webhook', () => {
  it('raises one number of a memory bucket from 80/s to 1,000/s', async () => {
    const { clock, advance } = manualTime();
    await check(
      createMemoryTokenBucket({ ...WHATSAPP_RATE_LIMITS.perPhoneNumber, clock }),
      advance,
    );
  });
});

describeRedis('following a throughput upgrade from the webhook, on Redis', () => {
  it('raises one number of a Redis bucket from 80/s to 1,000/s for every process', async () => {
    const { clock, advance } = manualTime();
    const options = {
      ...WHATSAPP_RATE_LIMITS.perPhoneNumber,
      prefix: uniquePrefix('throughput'),
      timeSource: 'client',
      clock,
    } as const;
    const limiter = createRedisTokenBucket(connectRedis(), options);
    await check(limiter, advance);
    const other = createRedisTokenBucket(connectRedis(), options);
    advance(1000);
    await expectBurst(other, '1001', 50);
    await other.resetRate('1001');
    advance(1000);
    await expectBurst(limiter, '1001', 4);
  });
});
