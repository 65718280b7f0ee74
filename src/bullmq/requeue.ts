import type { JobsOptions, Queue } from 'bullmq';
import type { DeadLetterEntry } from '../core/dead-letter/dead-letter-types.js';
import { showValue } from '../core/validate.js';
import { RETRYKIT_JOB_OPTIONS } from './job-options.js';

/** Options of {@link createDeadLetterRequeuer}. */
export interface DeadLetterRequeuerOptions {
  /** The BullMQ `prefix` of the queues the entries came from. @default BullMQ's own ('bull') */
  readonly prefix?: string;
  /**
   * Options of each re-added job. The original job's options are not kept in its dead letter.
   * @default RETRYKIT_JOB_OPTIONS
   */
  readonly jobOptions?: JobsOptions;
}

/** Re-adds dead letters that came from BullMQ jobs to their queues. */
export interface DeadLetterRequeuer {
  /**
   * Adds `entry`'s payload as a new job (its original job name) to the queue its `origin`
   * names, and resolves with the new job's id. Rejects for an entry without a BullMQ origin.
   */
  add(entry: DeadLetterEntry): Promise<string | undefined>;
  /** Closes the queues it opened. */
  close(): Promise<void>;
}

/**
 * Redrives BullMQ jobs: a dead letter whose `origin.kind` is `'bullmq'` goes back to its queue
 * as a new job, to run through the worker (and its `wrapProcessor`) again. Use it as the
 * handler of `dlq.redrive`; the `retrykit` command line and the dashboard do. `bullmq` is
 * loaded on the first `add`, so code that may never re-add a job needs it only then.
 *
 * @example
 * const requeuer = createDeadLetterRequeuer(redis);
 * try {
 *   await dlq.redrive({ reason: 'server_error' }, (entry) => requeuer.add(entry));
 * } finally {
 *   await requeuer.close();
 * }
 */
export function createDeadLetterRequeuer(
  connection: object,
  options: DeadLetterRequeuerOptions = {},
): DeadLetterRequeuer {
  if (typeof connection !== 'object' || connection === null) {
    throw new TypeError(`connection must be an ioredis client, got ${showValue(connection)}`);
  }
  const { prefix, jobOptions = RETRYKIT_JOB_OPTIONS } = options;
  if (prefix !== undefined && (typeof prefix !== 'string' || prefix === '')) {
    throw new TypeError(`prefix must be a non-empty string, got ${showValue(prefix)}`);
  }
  const queues = new Map<string, Promise<Queue>>();
  const open = async (name: string): Promise<Queue> => {
    let Bull: typeof import('bullmq');
    try {
      Bull = await import('bullmq');
    } catch {
      throw new Error('re-adding BullMQ jobs needs the bullmq package: npm install bullmq');
    }
    return new Bull.Queue(name, {
      connection: connection as never,
      ...(prefix === undefined ? {} : { prefix }),
    });
  };
  return {
    async add(entry) {
      const origin = entry.origin;
      if (origin?.kind !== 'bullmq') {
        throw new TypeError(`dead letter ${entry.id} did not come from a BullMQ job`);
      }
      let queue = queues.get(origin.queue);
      if (queue === undefined) {
        queue = open(origin.queue);
        queues.set(origin.queue, queue);
        queue.catch(() => queues.delete(origin.queue));
      }
      const job = await (await queue).add(origin.jobName ?? 'redrive', entry.payload, jobOptions);
      return job.id;
    },
    async close() {
      const all = [...queues.values()];
      queues.clear();
      await Promise.all(all.map(async (queue) => (await queue.catch(() => undefined))?.close()));
    },
  };
}
