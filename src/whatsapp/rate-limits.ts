import type { TokenBucketLimits } from '../core/rate-limit/token-bucket-options.js';

/**
 * WhatsApp Cloud API throughput limits as token-bucket options, for `createMemoryTokenBucket` or
 * `createRedisTokenBucket`. Key the per-number limiters by phone number ID and the pair
 * limiter by phone number ID and recipient.
 *
 * Capacities: the throughput limits are per second, and Meta does not say how it measures
 * them, so those buckets hold a tenth of a second of traffic, never less than one token
 * (`max(1, refillPerSecond / 10)`: a bucket below 1 could never grant). That absorbs scheduling jitter
 * while the worst one-second window stays within 10 % of the limit (88 for 80/s); lower
 * `refillPerSecond` if you still see 130429, or turn on `adaptive`. The pair limit explicitly
 * lets a burst of 45 borrow future quota, so that bucket holds 45 and refills one every 6 s.
 *
 * @example
 * const perNumber = createMemoryTokenBucket({ ...WHATSAPP_RATE_LIMITS.perPhoneNumber, adaptive: true });
 */
export const WHATSAPP_RATE_LIMITS = Object.freeze({
  /** Default throughput of a business phone number: 80 messages/s (error 130429 above). */
  perPhoneNumber: Object.freeze({ capacity: 8, refillPerSecond: 80 }),
  /** An upgraded number: up to 1,000 messages/s. */
  upgradedPhoneNumber: Object.freeze({ capacity: 100, refillPerSecond: 1000 }),
  /** A coexistence number (WhatsApp Business app and Cloud API): 20 messages/s. */
  coexistencePhoneNumber: Object.freeze({ capacity: 2, refillPerSecond: 20 }),
  /** Messages to one recipient: about 1 per 6 s, bursts up to 45 (error 131056 above). */
  pair: Object.freeze({ capacity: 45, refillPerSecond: 1 / 6 }),
} satisfies Record<string, TokenBucketLimits>);
