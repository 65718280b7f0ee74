import { resolve } from 'node:path';

const locks = new Map<string, Promise<unknown>>();

/**
 * Runs `fn` once no other `fn` holds `path` in this process: a file sink's append never
 * overlaps the replay's rename of the same file.
 */
export function withPathLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const key = resolve(path);
  const previous = locks.get(key) ?? Promise.resolve();
  const run = previous.then(fn, fn);
  const tail = run.then(
    () => {},
    () => {},
  );
  locks.set(key, tail);
  void tail.then(() => {
    if (locks.get(key) === tail) locks.delete(key);
  });
  return run;
}
