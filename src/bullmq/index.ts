export type { BackoffStrategyOptions, RetrykitBackoffStrategy } from './backoff.js';
export { createBackoffStrategy, RETRYKIT_BACKOFF } from './backoff.js';
export type { WrapProcessorOptions } from './processor.js';
export { HISTORY_FIELD, wrapProcessor } from './processor.js';
