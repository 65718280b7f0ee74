// What this feature offers to the rest of retrykit: the dead-letter record builder, redrive, retry records and failure attempts.
export type { Sink, ToDeadLetterOptions } from './dead-letter.js';
export { completeDeadLetter, newId, toDeadLetter } from './dead-letter.js';
export type {
  DeadLetterAttempt,
  DeadLetterEntry,
  DeadLetterOrigin,
  DeadLetterQueue,
  ListOptions,
  NewDeadLetter,
  RedriveOptions,
  RedriveReport,
  RedriveSelector,
} from './dead-letter-types.js';
export { attemptOf } from './failure.js';
export type { Positioned, RedrivePort } from './redrive.js';
export { DEAD_LETTER_DEFAULTS, listOptions, runRedrive } from './redrive.js';
export type { RetryRecord, RetryRecordOptions } from './retry-record.js';
export {
  createRetryRecord,
  expectAttempts,
  InvalidRecordError,
  parseRetryRecord,
  recordFailure,
  serializeRetryRecord,
  validateRetryRecord,
} from './retry-record.js';
export type {
  DeadLetterGroup,
  DeadLetterPattern,
  DeadLetterSummary,
  SummarizedDeadLetter,
} from './summary.js';
export { deadLetterCode, summarizeDeadLetters } from './summary.js';
