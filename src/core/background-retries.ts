import { MAX_TIMER_MS } from './clock.js';

// Clean-up work that must not hold up a caller: releasing a claim whose answer never came,
// recording a completion that failed after the work was safe. Each task is tried at once, then
// again with backoff while it rejects, until it resolves or its time runs out (after which the
// store has forgotten the lease anyway). Timers are unref'd and never keep a process alive.

/** Delay before the second try, in milliseconds; it doubles up to {@link MAX_DELAY_MS}. */
const INITIAL_DELAY_MS = 100;
/** Longest delay between two tries, in milliseconds. */
const MAX_DELAY_MS = 5000;

/**
 * One try of a background task. `timeoutMs` is how long it may wait for an answer (the time left
 * to it, at most `setTimeout`'s limit); it resolves when the store answered, whatever the
 * answer, and rejects when it should be tried again.
 */
export type BackgroundTask = (timeoutMs: number) => Promise<unknown>;

/** Tasks retried in the background, grouped by a key (e.g. the record they touch). */
export interface BackgroundRetries {
  /**
   * Tries `task` now, then again while it rejects, for at most `withinMs` milliseconds.
   * `false` (nothing scheduled) when `limit` tasks are pending already.
   */
  add(group: string, task: BackgroundTask, withinMs: number): boolean;
  /** Tries at once the tasks of `group` that wait for their next try. */
  flush(group: string): void;
  /** Tasks pending (running or waiting for their next try). */
  readonly size: number;
}

interface Pending {
  readonly group: string;
  readonly task: BackgroundTask;
  readonly deadline: number;
  delayMs: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

const now = (): number => performance.now();

/** A bounded set of background retries: at most `limit` tasks pending at once. */
export function createBackgroundRetries(limit: number): BackgroundRetries {
  const groups = new Map<string, Set<Pending>>();
  let size = 0;
  // No pending task's deadline is before this: until then a full set has nothing to prune.
  let earliestDeadline = Number.POSITIVE_INFINITY;

  const remove = (pending: Pending): void => {
    const set = groups.get(pending.group);
    if (set === undefined || !set.delete(pending)) return;
    size--;
    if (set.size === 0) groups.delete(pending.group);
  };

  const run = (pending: Pending): void => {
    pending.timer = undefined;
    const left = pending.deadline - now();
    if (left <= 0) {
      remove(pending);
      return;
    }
    let attempt: Promise<unknown>;
    try {
      // A store method that is not `async` may answer with a plain value.
      attempt = Promise.resolve(pending.task(Math.min(Math.ceil(left), MAX_TIMER_MS)));
    } catch (error) {
      attempt = Promise.reject(error);
    }
    attempt.then(
      () => remove(pending),
      () => wait(pending),
    );
  };

  const wait = (pending: Pending): void => {
    const left = pending.deadline - now();
    if (left <= 0) {
      remove(pending);
      return;
    }
    const delay = Math.min(pending.delayMs, Math.ceil(left));
    pending.delayMs = Math.min(pending.delayMs * 2, MAX_DELAY_MS);
    pending.timer = setTimeout(() => run(pending), delay);
    (pending.timer as { unref?: () => void }).unref?.();
  };

  // A try that never settles (a client with no timeout) keeps its task past the deadline; when
  // full, those are dropped first. The scan runs only once a deadline may have passed, so that
  // a full set (a long store outage) refuses new tasks in O(1), not O(limit) each.
  const prune = (): void => {
    const at = now();
    if (at < earliestDeadline) return;
    let earliest = Number.POSITIVE_INFINITY;
    for (const set of [...groups.values()]) {
      for (const pending of set) {
        if (pending.deadline <= at) {
          if (pending.timer !== undefined) clearTimeout(pending.timer);
          remove(pending);
        } else if (pending.deadline < earliest) {
          earliest = pending.deadline;
        }
      }
    }
    earliestDeadline = earliest;
  };

  return {
    add(group, task, withinMs) {
      if (size >= limit) prune();
      if (size >= limit) return false;
      const pending: Pending = {
        group,
        task,
        deadline: now() + withinMs,
        delayMs: INITIAL_DELAY_MS,
        timer: undefined,
      };
      if (pending.deadline < earliestDeadline) earliestDeadline = pending.deadline;
      let set = groups.get(group);
      if (set === undefined) {
        set = new Set();
        groups.set(group, set);
      }
      set.add(pending);
      size++;
      run(pending);
      return true;
    },
    flush(group) {
      const set = groups.get(group);
      if (set === undefined) return;
      for (const pending of set) {
        if (pending.timer === undefined) continue;
        clearTimeout(pending.timer);
        run(pending);
      }
    },
    get size() {
      return size;
    },
  };
}
