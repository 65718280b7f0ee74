// `retrykit replay <file>`: ingests a JSON-lines file of dead letters (a `createFileSink`
// fallback file, or what `retrykit dlq export` wrote) into the Redis dead-letter queue.
import { createReadStream } from 'node:fs';
import { appendFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { type DeadLetterQueue, isRetrykitError, type NewDeadLetter } from '../index.js';
import { replayFile } from '../node/index.js';
import { CommandError, type Io, out, Pacer, Progress, parseRate, UsageError } from './io.js';

export interface ReplayFlags {
  readonly keep?: boolean | undefined;
  readonly rate?: string | undefined;
}

export async function replay(
  io: Io,
  dlq: DeadLetterQueue,
  file: string | undefined,
  flags: ReplayFlags,
  signal: AbortSignal,
  json: boolean,
): Promise<number> {
  if (file === undefined) throw new UsageError('replay needs a file');
  const path = resolve(io.cwd, file);
  const pacer = new Pacer(flags.rate === undefined ? undefined : parseRate('rate', flags.rate));
  try {
    await stat(path);
  } catch {
    if (flags.keep === true) throw new CommandError(`no such file: ${path}`);
    try {
      await stat(`${path}.replaying`); // a replay that stopped half-way: resume it
    } catch {
      throw new CommandError(`no such file: ${path}`);
    }
  }
  const invalidPath = `${path}.invalid`;
  const progress = new Progress(io, 'replay', undefined);
  const ingest = async (entry: unknown): Promise<void> => {
    signal.throwIfAborted();
    await pacer.next();
    try {
      const stored = await dlq.add(entry as NewDeadLetter);
      progress.tick('ingested', `ingested ${stored.id}`);
    } catch (error) {
      if (!isRetrykitError(error) || error.code !== 'INVALID_RECORD') throw error;
      await appendFile(invalidPath, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
      progress.tick('invalid', `invalid: ${error.message} (line kept in ${invalidPath})`);
    }
  };
  let rejected = 0;
  try {
    if (flags.keep === true) {
      const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
      for await (const line of lines) {
        if (line.trim() === '') continue;
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          rejected++;
          progress.tick('not JSON', 'skipped a line that is not JSON');
          continue;
        }
        await ingest(value);
      }
    } else {
      ({ rejected } = await replayFile(path, ingest, { signal }));
      if (rejected > 0)
        progress.tick('not JSON', `${rejected} lines that are not JSON: see ${path}.rejected`);
    }
  } catch (error) {
    progress.finish();
    throw new CommandError(
      `replay stopped: ${(error as Error)?.message ?? String(error)}${flags.keep === true ? '' : '; run it again to resume where it stopped'}`,
    );
  }
  const summary = progress.finish();
  const invalid = progress.count('invalid');
  if (json) {
    out(io, JSON.stringify({ ingested: progress.count('ingested'), invalid, rejected, summary }));
  }
  return invalid > 0 || rejected > 0 ? 1 : 0;
}
