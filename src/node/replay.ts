import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { assertFunction, assertKey } from '../core/validate.js';
import { syncDirectory } from './file-sink.js';
import { withPathLock } from './path-lock.js';

/** Options of {@link replayFile}. */
export interface ReplayOptions {
  /** Stops before the next entry; the replay then rejects with the signal's reason and can be resumed. */
  readonly signal?: AbortSignal;
}

/** What {@link replayFile} did. */
export interface ReplayReport {
  /** Entries the handler accepted. */
  readonly replayed: number;
  /** Lines that weren't JSON (a write torn by a crash), copied to `<path>.rejected`. */
  readonly rejected: number;
}

const CHUNK_BYTES = 64 * 1024;
const OFFSET_WIDTH = 20;
const FILE_MODE = 0o600;

function isMissing(error: unknown): boolean {
  return (error as { code?: unknown })?.code === 'ENOENT';
}

async function readOffset(path: string): Promise<number> {
  try {
    const handle = await open(path, 'r');
    try {
      const { buffer, bytesRead } = await handle.read(
        Buffer.alloc(OFFSET_WIDTH),
        0,
        OFFSET_WIDTH,
        0,
      );
      const offset = Number(buffer.subarray(0, bytesRead).toString('utf8'));
      return Number.isSafeInteger(offset) && offset >= 0 ? offset : 0;
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (isMissing(error)) return 0;
    throw error;
  }
}

/** Yields the complete lines of `handle` from byte `start`, each with the offset just past it. */
async function* lines(
  handle: FileHandle,
  start: number,
): AsyncGenerator<{ readonly text: string; readonly end: number }> {
  let position = start;
  let carry = Buffer.alloc(0);
  for (;;) {
    const { buffer, bytesRead } = await handle.read(
      Buffer.alloc(CHUNK_BYTES),
      0,
      CHUNK_BYTES,
      position,
    );
    if (bytesRead === 0) break;
    position += bytesRead;
    let data = Buffer.concat([carry, buffer.subarray(0, bytesRead)]);
    let base = position - data.length;
    for (let nl = data.indexOf(0x0a); nl !== -1; nl = data.indexOf(0x0a)) {
      yield { text: data.subarray(0, nl).toString('utf8'), end: base + nl + 1 };
      base += nl + 1;
      data = data.subarray(nl + 1);
    }
    carry = data;
  }
  if (carry.length > 0) yield { text: carry.toString('utf8'), end: position };
}

/** Replays one file from its recorded offset; `false` when the file doesn't exist. */
async function replayOne<T>(
  file: string,
  handler: (entry: T) => unknown,
  signal: AbortSignal | undefined,
  counts: { replayed: number; rejected: number },
  rejectedPath: string,
): Promise<boolean> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
  const progressPath = `${file}.offset`;
  let progress: FileHandle | undefined;
  try {
    const start = await readOffset(progressPath);
    await (await open(progressPath, 'a', FILE_MODE)).close();
    progress = await open(progressPath, 'r+');
    for await (const line of lines(handle, start)) {
      signal?.throwIfAborted();
      const text = line.text.trim();
      if (text !== '') {
        let parsed: { readonly value: T } | undefined;
        try {
          parsed = { value: JSON.parse(text) as T };
        } catch {
          parsed = undefined;
        }
        if (parsed === undefined) {
          await writeRejected(rejectedPath, line.text);
          counts.rejected++;
        } else {
          await handler(parsed.value);
          counts.replayed++;
        }
      }
      await progress.write(String(line.end).padStart(OFFSET_WIDTH, '0'), 0, 'utf8');
    }
  } finally {
    await handle.close();
    await progress?.close();
  }
  await rm(file);
  await rm(progressPath, { force: true });
  return true;
}

async function writeRejected(path: string, text: string): Promise<void> {
  const handle = await open(path, 'a', FILE_MODE);
  try {
    await handle.appendFile(`${text}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Feeds every entry of a JSON-lines file (written by `createFileSink`) to `handler`, oldest
 * first, safely against a crash at any point:
 *
 * 1. the file is renamed to `<path>.replaying` first, so writers go on appending to a fresh
 *    `<path>` and the replay works on a file nobody else touches;
 * 2. after each entry the handler accepted, the byte offset of the next one is recorded in
 *    `<path>.replaying.offset`;
 * 3. a replay that finds a `<path>.replaying` (the last one crashed, or its handler threw)
 *    resumes at the recorded offset, then moves on to `<path>`;
 * 4. once done, the `.replaying` file and its offset are deleted.
 *
 * A crash between a handler's success and the offset write hands that one entry over again,
 * so make the handler idempotent (a dead-letter queue's `add` keeps the first of two entries
 * with one id): then no entry is lost and none takes effect twice. A handler that throws
 * stops the replay with its error; the next call resumes at that entry. Lines that aren't
 * JSON (a torn write) go to `<path>.rejected` for a person to look at. Entries appended
 * while the replay runs are left for the next call. Calls on one path in one process run one
 * after the other: a second call starts once the first has settled. Only replay a file in the process that
 * writes it, or while no process writes it: the rename is coordinated with `createFileSink`
 * within one process.
 *
 * @example
 * // Redis is back: move what the fallback file caught into the dead-letter queue.
 * const { replayed } = await replayFile('/var/lib/myapp/dead-letters.jsonl', (entry) =>
 *   redisDlq.add(entry),
 * );
 */
export async function replayFile<T = unknown>(
  path: string,
  handler: (entry: T) => unknown,
  options: ReplayOptions = {},
): Promise<ReplayReport> {
  assertKey('path', path);
  assertFunction('handler', handler);
  const { signal } = options;
  signal?.throwIfAborted();
  return withPathLock(`${path}.replaying`, async () => {
    const replaying = `${path}.replaying`;
    const counts = { replayed: 0, rejected: 0 };
    const rejectedPath = `${path}.rejected`;
    if (!(await replayOne(replaying, handler, signal, counts, rejectedPath))) {
      await rm(`${replaying}.offset`, { force: true });
    }
    const moved = await withPathLock(path, async () => {
      try {
        await rename(path, replaying);
        await syncDirectory(path);
        return true;
      } catch (error) {
        if (isMissing(error)) return false;
        throw error;
      }
    });
    if (moved) await replayOne(replaying, handler, signal, counts, rejectedPath);
    return counts;
  });
}
