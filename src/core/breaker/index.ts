// What this feature offers to the rest of retrykit: the keyed circuit breaker, its store interface and its state machine.
export type {
  CircuitBreaker,
  CircuitExecuteOptions,
  CircuitPermission,
  CircuitPermit,
} from './breaker.js';
export { createCircuitBreaker } from './breaker.js';
export { CircuitOpenError } from './breaker-errors.js';
export type { CircuitRecord } from './breaker-machine.js';
export {
  admitCall,
  breakDuration,
  isIdle,
  newCircuitRecord,
  recordOutcome,
  windowCounts,
} from './breaker-machine.js';
export type { CircuitBreakerOptions } from './breaker-options.js';
export {
  CIRCUIT_BREAKER_DEFAULTS,
  isCircuitFailure,
  resolveCircuitPolicy,
} from './breaker-options.js';
export type {
  CircuitAdmission,
  CircuitBreakerStore,
  CircuitOutcome,
  CircuitPolicy,
  CircuitState,
  CircuitStatus,
  CircuitTicket,
  CircuitTransition,
} from './breaker-types.js';
