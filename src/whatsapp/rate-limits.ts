import type { TokenBucketLimits } from '../core/rate-limit/token-bucket-options.js';
import { assertNumber } from '../core/validate.js';

/**
 * Token-bucket options that keep a throughput limit of `limitPerSecond` messages: a burst of a
 * twentieth of a second's traffic (`capacity = max(1, floor(limit / 20))`) and a refill that
 * brings every one-second window to 95 % of the limit (`refillPerSecond = 0.95 · limit −
 * capacity`). At most `capacity + refillPerSecond` requests start in any second, so the API
 * never counts more than the limit unless requests bunch up on the way: with requests taking
 * between d and d + s seconds to arrive, a second at the API can hold what left within 1 + s
 * seconds, `refillPerSecond · s` more. The 5 % left over covers a spread of at least 50 ms
 * (55 ms for the presets). The price is the sustained rate: at least 90 % of the limit from
 * 20/s up (72 of 80/s), `0.95 · limit − 1` below.
 *
 * Use it for a limit Meta announces at runtime (a `phone_number_quality_update` with
 * `throughputPerSecond`); `WHATSAPP_RATE_LIMITS` holds its values for the documented limits.
 * To go nearer a limit, use `{ capacity, refillPerSecond }` of your own with `adaptive: true`,
 * which slows a number down on each 130429.
 *
 * @param limitPerSecond - the platform's limit, in messages per second (at least 2).
 * @example
 * perNumber.setRate(phoneNumberId, throughputLimits(1000)); // { capacity: 50, refillPerSecond: 900 }
 */
export function throughputLimits(limitPerSecond: number): TokenBucketLimits {
  assertNumber('limitPerSecond', limitPerSecond, 2);
  const capacity = Math.max(1, Math.floor(limitPerSecond / 20));
  return Object.freeze({ capacity, refillPerSecond: (limitPerSecond * 19) / 20 - capacity });
}

/**
 * WhatsApp Cloud API throughput limits as token-bucket options, for `createMemoryTokenBucket` or
 * `createRedisTokenBucket`. Key the per-number limiters by phone number ID and the pair
 * limiter by phone number ID and recipient.
 *
 * The per-number presets are {@link throughputLimits} of Meta's documented limits: no
 * one-second window holds more than 95 % of the limit (76 for 80/s: a burst of 4 and 72/s),
 * the sustained rate is 90 % of it, and the rest absorbs at least 55 ms of spread in request
 * latency, which bunches requests on their way to the API. Turn on `adaptive` to slow down on
 * 130429. The pair limit explicitly lets a burst of 45 borrow future quota, so that bucket
 * holds 45 and refills one every 6 s.
 *
 * @example
 * const perNumber = createMemoryTokenBucket({ ...WHATSAPP_RATE_LIMITS.perPhoneNumber, adaptive: true });
 */
export const WHATSAPP_RATE_LIMITS = Object.freeze({
  /** A business phone number's default limit, 80 messages/s (error 130429 above): 4 + 72/s. */
  perPhoneNumber: throughputLimits(80),
  /** An upgraded number's limit, 1,000 messages/s: 50 + 900/s. */
  upgradedPhoneNumber: throughputLimits(1000),
  /** A coexistence number (WhatsApp Business app and Cloud API), 20 messages/s: 1 + 18/s. */
  coexistencePhoneNumber: throughputLimits(20),
  /** Messages to one recipient: about 1 per 6 s, bursts up to 45 (error 131056 above). */
  pair: Object.freeze({ capacity: 45, refillPerSecond: 1 / 6 }),
} satisfies Record<string, TokenBucketLimits>);
