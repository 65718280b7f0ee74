import { type FileHandle, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Sink } from '../core/dead-letter/dead-letter.js';
import { assertKey } from '../core/validate.js';
import { withPathLock } from './path-lock.js';

/** An append-only JSON-lines file that only acknowledges what is on disk. */
export interface FileSink<T> extends Sink<T> {
  /** The file written to. */
  readonly path: string;
  /**
   * Appends `entry` as one JSON line and resolves once it is fsynced. Concurrent calls are
   * written in order and share one fsync. Rejects with the write error (nothing is
   * acknowledged that isn't on disk) or a `TypeError` for a value JSON can't hold.
   */
  add(entry: T): Promise<void>;
  /** Resolves once every `add` made so far has settled. */
  flush(): Promise<void>;
}

interface Pending {
  readonly line: string;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** Files are created readable by their owner only: dead letters hold customer messages. */
const FILE_MODE = 0o600;

async function endsWithNewline(handle: FileHandle): Promise<boolean> {
  const { size } = await handle.stat();
  if (size === 0) return true;
  const { buffer } = await handle.read(Buffer.alloc(1), 0, 1, size - 1);
  return buffer[0] === 0x0a;
}

/** fsyncs a directory so that a file just created in it survives a power loss. */
export async function syncDirectory(path: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dirname(path), 'r');
    await handle.sync();
  } catch {
    // Some platforms (Windows) can't open or fsync a directory; the file itself is synced.
  } finally {
    await handle?.close();
  }
}

/**
 * A JSON-lines file to catch what would otherwise be lost when the queue itself is down
 * (see `withFallback`). Each `add` resolves only once its line is fsynced; concurrent adds
 * are written in call order, one line each, and share an fsync (group commit). The file is
 * opened per batch, so `replayFile` can move it away at any time, and created with mode
 * 0600. A torn last line left by a crash is closed off before the next append, so it can
 * never corrupt the next entry (`replayFile` sets it aside).
 *
 * @example
 * const sink = createFileSink<NewDeadLetter>('/var/lib/myapp/dead-letters.jsonl');
 * const dlq = withFallback(createRedisDeadLetterQueue(redis, { prefix: 'myapp' }), sink);
 */
export function createFileSink<T = unknown>(path: string): FileSink<T> {
  assertKey('path', path);
  let pending: Pending[] = [];
  let draining: Promise<void> | undefined;
  let directorySynced = false;

  const writeBatch = (batch: readonly Pending[]): Promise<void> =>
    withPathLock(path, async () => {
      const handle = await open(path, 'a+', FILE_MODE);
      try {
        const head = (await endsWithNewline(handle)) ? '' : '\n';
        await handle.appendFile(`${head}${batch.map((p) => `${p.line}\n`).join('')}`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      if (!directorySynced) {
        await syncDirectory(path);
        directorySynced = true;
      }
    });

  const drain = async (): Promise<void> => {
    while (pending.length > 0) {
      const batch = pending;
      pending = [];
      try {
        await writeBatch(batch);
        for (const p of batch) p.resolve();
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
    draining = undefined;
  };

  return {
    path,
    add(entry) {
      let line: string | undefined;
      try {
        line = JSON.stringify(entry);
      } catch (error) {
        return Promise.reject(error);
      }
      if (line === undefined) {
        return Promise.reject(new TypeError('entry must be a JSON value, got undefined'));
      }
      const text = line;
      return new Promise<void>((resolve, reject) => {
        pending.push({ line: text, resolve, reject });
        draining ??= drain();
      });
    },
    async flush() {
      while (draining !== undefined) await draining;
    },
  };
}
