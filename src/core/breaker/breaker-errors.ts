import { brandCheck, RetrykitError } from '../errors.js';
import type { CircuitState } from './breaker-types.js';

/**
 * A circuit breaker refused the call (its circuit is open, or every half-open probe place is
 * taken), or, from `retry` with a `breaker`, the failure just opened it. Nothing is wrong with
 * the message: hold it and send it again after `retryAfterMs` (see `shouldHold`). `cause` is
 * the failure that opened the circuit, when `retry` saw it.
 */
export class CircuitOpenError extends RetrykitError {
  override readonly name = 'CircuitOpenError' as const;

  /** Makes `instanceof` recognise this error made by any copy of retrykit. */
  static override [Symbol.hasInstance] = brandCheck('CircuitOpenError', 'CIRCUIT_OPEN');

  /** The breaker key (a phone number ID, a host). */
  readonly key: string;
  /** `open`, or `half_open` when every probe place was taken. */
  readonly state: CircuitState;
  /** Milliseconds until a call may be let through (a probe, once the break ends). */
  readonly retryAfterMs: number;
  /** When that is, in epoch milliseconds of the store's clock. */
  readonly openUntil: number;

  constructor(
    details: { key: string; state: CircuitState; retryAfterMs: number; openUntil: number },
    options?: { cause?: unknown },
  ) {
    super(
      'CIRCUIT_OPEN',
      `Circuit "${details.key}" is ${details.state === 'open' ? 'open' : 'half-open with every probe place taken'}: try again in ${details.retryAfterMs} ms`,
      options,
    );
    this.key = details.key;
    this.state = details.state;
    this.retryAfterMs = details.retryAfterMs;
    this.openUntil = details.openUntil;
  }
}
