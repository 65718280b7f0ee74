import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../core/errors.js';
import { createMemoryDeadLetterQueue } from '../memory/dead-letter.js';
import { withFallback } from './fallback.js';
import { createFileSink } from './file-sink.js';
import { replayFile } from './replay.js';

let dir: string;
let path: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'retrykit-sink-'));
  path = join(dir, 'dead-letters.jsonl');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function lines(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '');
}

const AT = '2026-01-01T00:00:00.000Z';
const letter = (n: number) => ({
  id: `m-${n}`,
  payload: { n },
  reason: 'server_error' as const,
  disposition: 'exhausted' as const,
  attempts: [{ message: 'HTTP 500', reason: 'server_error' as const, at: AT }],
  firstAttemptAt: AT,
  lastAttemptAt: AT,
});

describe('createFileSink', () => {
  it('appends concurrent writes as whole JSON lines, in call order, owner-readable only', async () => {
    const sink = createFileSink<{ n: number; text: string }>(path);
    await Promise.all(
      Array.from({ length: 200 }, (_, n) => sink.add({ n, text: `line\nwith "quotes" ${n}` })),
    );
    const written = (await lines(path)).map((l) => JSON.parse(l) as { n: number });
    expect(written.map((e) => e.n)).toEqual(Array.from({ length: 200 }, (_, n) => n));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('rejects what JSON cannot hold, writing nothing for it', async () => {
    const sink = createFileSink(path);
    await expect(sink.add(undefined)).rejects.toThrow('entry must be a JSON value, got undefined');
    await expect(sink.add({ big: 1n })).rejects.toBeInstanceOf(TypeError);
    await sink.add({ ok: true });
    expect(await lines(path)).toEqual(['{"ok":true}']);
    expect(() => createFileSink('')).toThrow('path must not be empty');
  });

  it('closes off a torn last line so it never corrupts the next entry', async () => {
    await writeFile(path, '{"n":1}\n{"n":2,"tor');
    await createFileSink(path).add({ n: 3 });
    expect(await lines(path)).toEqual(['{"n":1}', '{"n":2,"tor', '{"n":3}']);
    const seen: unknown[] = [];
    expect(await replayFile(path, (e) => seen.push(e))).toEqual({ replayed: 2, rejected: 1 });
    expect(seen).toEqual([{ n: 1 }, { n: 3 }]);
    expect(await lines(`${path}.rejected`)).toEqual(['{"n":2,"tor']);
  });
});

describe('replayFile', () => {
  it('hands every entry over once, oldest first, then removes the file', async () => {
    const sink = createFileSink<{ n: number }>(path);
    for (let n = 0; n < 5; n++) await sink.add({ n });
    const seen: number[] = [];
    expect(await replayFile<{ n: number }>(path, (e) => seen.push(e.n))).toEqual({
      replayed: 5,
      rejected: 0,
    });
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    await expect(stat(path)).rejects.toThrow();
    await expect(stat(`${path}.replaying`)).rejects.toThrow();
    expect(await replayFile(path, () => {})).toEqual({ replayed: 0, rejected: 0 });
  });

  it('stops at a failing entry and resumes there on the next call', async () => {
    const sink = createFileSink<{ n: number }>(path);
    for (let n = 0; n < 6; n++) await sink.add({ n });
    const seen: number[] = [];
    const boom = new Error('store down');
    await expect(
      replayFile<{ n: number }>(path, (e) => {
        if (e.n === 3) throw boom;
        seen.push(e.n);
      }),
    ).rejects.toBe(boom);
    await sink.add({ n: 6 });
    expect(await replayFile<{ n: number }>(path, (e) => seen.push(e.n))).toEqual({
      replayed: 4,
      rejected: 0,
    });
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('stops when its signal aborts, and resumes after the last accepted entry', async () => {
    const sink = createFileSink<{ n: number }>(path);
    for (let n = 0; n < 4; n++) await sink.add({ n });
    const controller = new AbortController();
    const seen: number[] = [];
    await expect(
      replayFile<{ n: number }>(
        path,
        (e) => {
          seen.push(e.n);
          if (e.n === 1) controller.abort(new Error('shutdown'));
        },
        { signal: controller.signal },
      ),
    ).rejects.toThrow('shutdown');
    await replayFile<{ n: number }>(path, (e) => seen.push(e.n));
    expect(seen).toEqual([0, 1, 2, 3]);
  });

  it('leaves entries written during a replay in a fresh file for the next one', async () => {
    const sink = createFileSink<{ n: number }>(path);
    for (let n = 0; n < 3; n++) await sink.add({ n });
    const seen: number[] = [];
    await replayFile<{ n: number }>(path, async (e) => {
      seen.push(e.n);
      await sink.add({ n: e.n + 100 });
    });
    expect(seen).toEqual([0, 1, 2]);
    await replayFile<{ n: number }>(path, (e) => seen.push(e.n));
    expect(seen).toEqual([0, 1, 2, 100, 101, 102]);
  });

  it('runs overlapping calls on one path one after the other: each entry handed over once', async () => {
    const sink = createFileSink<{ n: number }>(path);
    for (let n = 0; n < 20; n++) await sink.add({ n });
    const seen: number[] = [];
    const stop = new Error('store down');
    await expect(
      replayFile<{ n: number }>(path, (e) => {
        if (e.n === 5) throw stop;
        seen.push(e.n);
      }),
    ).rejects.toBe(stop);
    for (let n = 20; n < 25; n++) await sink.add({ n });
    const slow = async (e: { n: number }): Promise<void> => {
      seen.push(e.n);
      await new Promise((resolve) => setImmediate(resolve));
    };
    const reports = await Promise.all([
      replayFile(path, slow),
      replayFile(path, slow),
      replayFile(path, slow),
    ]);
    expect(seen).toEqual(Array.from({ length: 25 }, (_, n) => n));
    expect(reports.map((r) => r.replayed)).toEqual([20, 0, 0]);
    await expect(stat(`${path}.replaying`)).rejects.toThrow();
  });

  it('lets the next overlapping call resume where a failed one stopped', async () => {
    const sink = createFileSink<{ n: number }>(path);
    for (let n = 0; n < 4; n++) await sink.add({ n });
    const seen: number[] = [];
    const boom = new Error('store down');
    const [first, second] = await Promise.allSettled([
      replayFile<{ n: number }>(path, (e) => {
        if (e.n === 2) throw boom;
        seen.push(e.n);
      }),
      replayFile<{ n: number }>(path, (e) => seen.push(e.n)),
    ]);
    expect(first).toEqual({ status: 'rejected', reason: boom });
    expect(second).toEqual({ status: 'fulfilled', value: { replayed: 2, rejected: 0 } });
    expect(seen).toEqual([0, 1, 2, 3]);
  });

  it('reads lines longer than its read buffer and multi-byte text intact', async () => {
    const text = 'é€😀'.repeat(30_000);
    await appendFile(path, `${JSON.stringify({ text })}\n${JSON.stringify({ text: 'b' })}\n`);
    const seen: string[] = [];
    await replayFile<{ text: string }>(path, (e) => seen.push(e.text));
    expect(seen).toEqual([text, 'b']);
  });
});

describe('withFallback', () => {
  const down = new StoreUnavailableError('add', new Error('ECONNREFUSED'));

  it('writes a dead letter to the file when the queue is unavailable, keeping its id', async () => {
    const primary = createMemoryDeadLetterQueue();
    let failing = true;
    const flaky = {
      ...primary,
      add: (entry: Parameters<typeof primary.add>[0]) =>
        failing ? Promise.reject(down) : primary.add(entry),
    };
    const diverted: unknown[] = [];
    const dlq = withFallback(flaky, createFileSink(path), {
      onFallback: (entry) => diverted.push(entry),
    });
    const { id: _id, ...noId } = letter(1);
    const stored = await dlq.add(noId);
    expect(stored.id).toMatch(/.+/);
    expect(diverted).toEqual([stored]);
    expect((await lines(path)).map((l) => JSON.parse(l))).toEqual([stored]);
    failing = false;
    await replayFile(path, (e) => dlq.add(e as typeof stored));
    expect(await dlq.get(stored.id)).toEqual(stored);
    expect(await dlq.size()).toBe(1);
  });

  it('rejects errors other than an unavailable store, and wraps any sink', async () => {
    const sink = createFileSink(path);
    const invalid = withFallback(createMemoryDeadLetterQueue(), sink);
    await expect(invalid.add({ ...letter(1), reason: 'nope' as never })).rejects.toThrow(
      /entry\.reason/,
    );
    const plain = withFallback({ add: () => Promise.reject(down) }, sink);
    await plain.add({ any: 'thing' });
    expect(await lines(path)).toEqual(['{"any":"thing"}']);
    const broken = withFallback({ add: () => Promise.reject(new Error('bug')) }, sink);
    await expect(broken.add({})).rejects.toThrow('bug');
    expect(() => withFallback({} as never, sink)).toThrow('primary must have an add(entry) method');
  });

  it('keeps both errors when the fallback fails too, and still lets an outer fallback take it', async () => {
    const full = new Error('ENOSPC: no space left on device');
    const dlq = withFallback(
      { ...createMemoryDeadLetterQueue(), add: () => Promise.reject(down) },
      { add: () => Promise.reject(full) },
    );
    const error = await dlq.add(letter(1)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error).toMatchObject({
      operation: 'add (and its fallback)',
      message: expect.stringContaining('ENOSPC'),
    });
    const cause = (error as Error).cause as AggregateError;
    expect(cause).toBeInstanceOf(AggregateError);
    expect(cause.errors).toEqual([down, full]);
    expect(cause.message).toContain('ECONNREFUSED');

    const outer = withFallback(dlq, createFileSink(path));
    await outer.add(letter(2));
    expect((await lines(path)).map((l) => JSON.parse(l).id)).toEqual(['m-2']);
  });
});
