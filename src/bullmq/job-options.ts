import type { Job } from 'bullmq';
import type { Classification } from '../core/classify-types.js';
import { RETRYKIT_BACKOFF } from './backoff.js';

/**
 * Job options for work that `wrapProcessor` guards: 6 attempts (the first and 5 retries),
 * spaced by the worker's `createBackoffStrategy` (`backoff: RETRYKIT_BACKOFF`; the worker
 * needs `settings: { backoffStrategy }`, or BullMQ fails the job on an unknown backoff type).
 * BullMQ's own default is one attempt, so a job added without `attempts` is dead-lettered on
 * its first transient failure (as `exhausted`). Pass it as the queue's `defaultJobOptions`, or
 * spread it into `add`; override `attempts` as you need. Retention (`removeOnComplete`) is
 * left to you; leave `removeOnFail` unset, since a job whose dead-lettering failed waits in
 * BullMQ's failed set.
 *
 * @example
 * const queue = new Queue('webhooks', { connection, defaultJobOptions: RETRYKIT_JOB_OPTIONS });
 * await queue.add('webhook', body, { ...RETRYKIT_JOB_OPTIONS, jobId: messageId, attempts: 10 });
 */
export const RETRYKIT_JOB_OPTIONS = Object.freeze({
  attempts: 6,
  backoff: RETRYKIT_BACKOFF,
});

/** The code of the warning `wrapProcessor` gives once for a retryable failure of a one-attempt job. */
export const SINGLE_ATTEMPT_WARNING = 'RETRYKIT_SINGLE_ATTEMPT';

/** The warning {@link singleAttemptWarner} gives. */
type SingleAttemptWarning = Error & { readonly code: string };

/** Hands a warning to the runtime: Node's `process.emitWarning`, else `console.warn`. */
function emitWarning(warning: SingleAttemptWarning): void {
  const runtime = (globalThis as { process?: { emitWarning?: (warning: Error) => void } }).process;
  if (typeof runtime?.emitWarning === 'function') runtime.emitWarning(warning);
  else console.warn(warning.message);
}

/**
 * @internal Returns the check `wrapProcessor` runs on each failure: the first retryable failure
 * of a job allowed one attempt (`job.opts.attempts` unset, 0 or 1) gives `onWarning` a warning;
 * later ones give none.
 */
export function singleAttemptWarner(
  onWarning: (warning: SingleAttemptWarning) => void = emitWarning,
): (job: Pick<Job, 'opts' | 'queueName' | 'id'>, failure: Classification) => void {
  let warned = false;
  return (job, failure) => {
    if (warned || !failure.retryable || (job.opts.attempts ?? 1) > 1) return;
    warned = true;
    const warning = Object.assign(
      new Error(
        `job ${job.queueName}:${job.id} failed with a retryable error (${failure.reason}) but ` +
          `was added with attempts ${job.opts.attempts ?? 'unset'}, so BullMQ runs it once and ` +
          'it is dead-lettered as exhausted. Add jobs with RETRYKIT_JOB_OPTIONS (attempts 6, ' +
          'backoff RETRYKIT_BACKOFF), e.g. as the queue’s defaultJobOptions. This warning is ' +
          'given once per wrapped processor.',
      ),
      { name: 'RetrykitWarning', code: SINGLE_ATTEMPT_WARNING },
    );
    onWarning(warning);
  };
}
