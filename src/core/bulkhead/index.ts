// What this feature offers to the rest of retrykit: the keyed bulkhead and its rejection.
export type { Bulkhead, BulkheadOptions, BulkheadRunOptions, BulkheadStats } from './bulkhead.js';
export { BULKHEAD_DEFAULTS, BulkheadRejectedError, createBulkhead } from './bulkhead.js';
