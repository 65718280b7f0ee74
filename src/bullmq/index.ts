export type { BackoffStrategyOptions, RetrykitBackoffStrategy } from './backoff.js';
export { BACKOFF_STRATEGY_DEFAULTS, createBackoffStrategy, RETRYKIT_BACKOFF } from './backoff.js';
export { RETRYKIT_JOB_OPTIONS } from './job-options.js';
export type { WrapProcessorOptions } from './processor.js';
export { HISTORY_FIELD, wrapProcessor } from './processor.js';
export type { QueueDepthSampler, SampledQueue, SampleQueueDepthOptions } from './queue-depth.js';
export { sampleQueueDepth } from './queue-depth.js';
export type { SweepReport, SweepStalledJobsOptions } from './sweep.js';
export { BULLMQ_STALLED_REASONS, sweepStalledJobs } from './sweep.js';
