// `retrykit dlq …`: inspect, count, redrive, purge and export a Redis dead-letter queue.
import { createWriteStream } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Redis } from 'ioredis';
// The file, not the retrykit/bullmq entry: bullmq itself loads only when a job is re-added.
import { createDeadLetterRequeuer } from '../bullmq/requeue.js';
import {
  type DeadLetterEntry,
  type DeadLetterQueue,
  deadLetterCode,
  REASONS,
  type Reason,
  type SummarizedDeadLetter,
  summarizeDeadLetters,
} from '../index.js';
import { createRedisDeadLetterQueue } from '../redis/index.js';
import {
  CommandError,
  err,
  type Io,
  out,
  Pacer,
  Progress,
  parseCount,
  parseDuration,
  parseRate,
  table,
  UsageError,
} from './io.js';

/** Flags every `dlq` command may take that choose entries. */
export interface FilterFlags {
  readonly reason?: string | undefined;
  readonly code?: string | undefined;
  readonly ids?: string | undefined;
  readonly 'older-than'?: string | undefined;
}

/** Which entries a command works on. */
interface Filter {
  readonly reason: Reason | undefined;
  readonly matches: (entry: DeadLetterEntry) => boolean;
  /** `true` when no flag narrowed the selection. */
  readonly all: boolean;
}

/** The platform's (or OS's) error code of an entry's last failure, as text; `-` when none. */
export const codeOf: (entry: DeadLetterEntry) => string = deadLetterCode;

function originOf(entry: DeadLetterEntry): string {
  const o = entry.origin;
  if (o === undefined) return entry.source ?? '-';
  switch (o.kind) {
    case 'bullmq':
      return `bullmq ${o.queue}#${o.jobId}`;
    case 'send':
      return o.key === undefined ? 'send' : `send ${o.key}`;
    case 'webhook':
      return `webhook ${o.webhookId}${o.path === undefined ? '' : ` ${o.path}`}`;
    case 'status':
      return `status ${o.key}`;
  }
}

export function parseFilter(flags: FilterFlags, now: number): Filter {
  const reason = flags.reason;
  if (reason !== undefined && !(REASONS as readonly string[]).includes(reason)) {
    throw new UsageError(`--reason must be one of ${REASONS.join(', ')}, got "${reason}"`);
  }
  const codes =
    flags.code === undefined ? undefined : new Set(flags.code.split(',').map((c) => c.trim()));
  const ids =
    flags.ids === undefined
      ? undefined
      : new Set(
          flags.ids
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s !== ''),
        );
  if (ids !== undefined && ids.size === 0) throw new UsageError('--ids must name at least one id');
  const olderThan =
    flags['older-than'] === undefined
      ? undefined
      : parseDuration('older-than', flags['older-than']);
  const cutoff = olderThan === undefined ? undefined : now - olderThan;
  return {
    reason: reason as Reason | undefined,
    all: reason === undefined && codes === undefined && ids === undefined && cutoff === undefined,
    matches: (entry) =>
      (reason === undefined || entry.reason === reason) &&
      (codes === undefined || codes.has(codeOf(entry))) &&
      (ids === undefined || ids.has(entry.id)) &&
      (cutoff === undefined || Date.parse(entry.deadAt) <= cutoff),
  };
}

/** Every entry the filter keeps, oldest first, page by page. */
export async function* entries(
  dlq: DeadLetterQueue,
  filter: Filter,
): AsyncGenerator<DeadLetterEntry> {
  let cursor: string | undefined;
  do {
    const page = await dlq.list({ cursor, reason: filter.reason, limit: 200 });
    for (const entry of page.entries) if (filter.matches(entry)) yield entry;
    cursor = page.cursor;
  } while (cursor !== undefined);
}

/** The context a `dlq` command runs in. */
export interface DlqContext {
  readonly io: Io;
  readonly redis: Redis;
  readonly dlq: DeadLetterQueue;
  readonly json: boolean;
  readonly signal: AbortSignal;
}

export function openDlq(redis: Redis, prefix: string): DeadLetterQueue {
  try {
    return createRedisDeadLetterQueue(redis, { prefix });
  } catch (error) {
    throw new UsageError(`--prefix: ${(error as Error).message}`);
  }
}

export async function list(
  ctx: DlqContext,
  flags: FilterFlags & { limit?: string },
): Promise<number> {
  const limit = flags.limit === undefined ? 50 : parseCount('limit', flags.limit);
  const filter = parseFilter(flags, Date.now());
  const shown: DeadLetterEntry[] = [];
  let more = false;
  for await (const entry of entries(ctx.dlq, filter)) {
    if (shown.length === limit) {
      more = true;
      break;
    }
    shown.push(entry);
  }
  if (ctx.json) {
    out(ctx.io, JSON.stringify({ entries: shown, more }));
    return 0;
  }
  if (shown.length === 0) {
    out(ctx.io, 'No dead letters match.');
    return 0;
  }
  const rows = shown.map((e) => [
    e.id,
    e.deadAt,
    e.reason,
    codeOf(e),
    String(e.attempts.length),
    originOf(e),
  ]);
  out(ctx.io, table([['ID', 'DEAD AT', 'REASON', 'CODE', 'ATTEMPTS', 'ORIGIN'], ...rows]));
  if (more) out(ctx.io, `… more: raise --limit (now ${limit}) or narrow with filters`);
  return 0;
}

export async function show(ctx: DlqContext, id: string | undefined): Promise<number> {
  if (id === undefined) throw new UsageError('dlq show needs an entry id');
  const entry = await ctx.dlq.get(id);
  if (entry === undefined) throw new CommandError(`no dead letter with id "${id}"`);
  if (ctx.json) {
    out(ctx.io, JSON.stringify(entry));
    return 0;
  }
  const rows: [string, string][] = [
    ['id', entry.id],
    ['reason', entry.reason],
    ['disposition', entry.disposition],
    ['code', codeOf(entry)],
    ['origin', originOf(entry)],
    ['source', entry.source ?? '-'],
    ['first attempt', entry.firstAttemptAt],
    ['last attempt', entry.lastAttemptAt],
    ['dead at', entry.deadAt],
  ];
  if (entry.redriveFailures !== undefined) {
    rows.push(['redrive failures', String(entry.redriveFailures)]);
  }
  if (entry.notBefore !== undefined) rows.push(['not before', entry.notBefore]);
  out(ctx.io, table(rows));
  out(ctx.io);
  out(
    ctx.io,
    table([
      ['#', 'AT', 'REASON', 'CODE', 'MESSAGE'],
      ...entry.attempts.map((a, i) => [
        String(i + 1),
        a.at,
        a.reason,
        a.errorCode === undefined ? '-' : String(a.errorCode),
        a.message + (a.deferredMs === undefined ? '' : ` (deferred ${a.deferredMs} ms)`),
      ]),
    ]),
  );
  out(ctx.io);
  out(ctx.io, 'payload:');
  out(
    ctx.io,
    typeof entry.payload === 'string' ? entry.payload : JSON.stringify(entry.payload, null, 2),
  );
  return 0;
}

export async function stats(ctx: DlqContext, flags: FilterFlags): Promise<number> {
  const filter = parseFilter(flags, Date.now());
  // Only what the summary reads: the payloads of a large queue are not kept.
  const all: SummarizedDeadLetter[] = [];
  for await (const e of entries(ctx.dlq, filter)) {
    all.push({ reason: e.reason, deadAt: e.deadAt, attempts: e.attempts.slice(-1) });
  }
  const summary = summarizeDeadLetters(all);
  const { total } = summary;
  if (ctx.json) {
    out(ctx.io, JSON.stringify(summary));
    return 0;
  }
  out(ctx.io, `${total} dead letter${total === 1 ? '' : 's'}`);
  if (total === 0) return 0;
  out(ctx.io);
  out(
    ctx.io,
    table([
      ['REASON', 'CODE', 'COUNT', 'FIRST', 'LAST'],
      ...summary.patterns.map((p) => [
        p.reason,
        p.code,
        String(p.count),
        p.firstDeadAt,
        p.lastDeadAt,
      ]),
    ]),
  );
  out(ctx.io);
  out(
    ctx.io,
    table([
      ['REASON', 'COUNT'],
      ...Object.entries(summary.byReason).map(([k, n]) => [k, String(n)]),
    ]),
  );
  out(ctx.io);
  out(
    ctx.io,
    table([['CODE', 'COUNT'], ...Object.entries(summary.byCode).map(([k, n]) => [k, String(n)])]),
  );
  out(ctx.io);
  out(
    ctx.io,
    table([['DAY', 'COUNT'], ...Object.entries(summary.byDay).map(([k, n]) => [k, String(n)])]),
  );
  return 0;
}

type Handler = (entry: DeadLetterEntry) => unknown;

/** Loads `--handler <module>`: its default export, or an export named `handler`. */
export async function loadHandler(io: Io, path: string): Promise<Handler> {
  let mod: { default?: unknown; handler?: unknown };
  try {
    mod = (await import(pathToFileURL(resolve(io.cwd, path)).href)) as typeof mod;
  } catch (error) {
    throw new UsageError(`--handler: cannot load "${path}": ${(error as Error).message}`);
  }
  const fn =
    typeof mod.handler === 'function'
      ? mod.handler
      : typeof mod.default === 'function'
        ? mod.default
        : typeof (mod.default as { handler?: unknown } | undefined)?.handler === 'function'
          ? (mod.default as { handler: unknown }).handler
          : undefined;
  if (typeof fn !== 'function') {
    throw new UsageError(
      `--handler: "${path}" must export a function (default export or "handler")`,
    );
  }
  return fn as Handler;
}

export interface RedriveFlags extends FilterFlags {
  readonly rate?: string | undefined;
  readonly 'dry-run'?: boolean | undefined;
  readonly handler?: string | undefined;
  readonly 'bullmq-prefix'?: string | undefined;
}

export async function redrive(ctx: DlqContext, flags: RedriveFlags): Promise<number> {
  const filter = parseFilter(flags, Date.now());
  const pacer = new Pacer(flags.rate === undefined ? undefined : parseRate('rate', flags.rate));
  const handler =
    flags.handler === undefined ? undefined : await loadHandler(ctx.io, flags.handler);
  const how = (e: DeadLetterEntry): string | undefined =>
    handler !== undefined
      ? `handler ${flags.handler}`
      : e.origin?.kind === 'bullmq'
        ? `bullmq queue ${e.origin.queue}`
        : undefined;
  const runnable: string[] = [];
  const stuck: string[] = [];
  for await (const e of entries(ctx.dlq, filter)) {
    if (how(e) === undefined) stuck.push(e.id);
    else runnable.push(e.id);
    if (flags['dry-run'] === true) {
      out(
        ctx.io,
        `would redrive ${e.id} (${e.reason}, code ${codeOf(e)}) via ${how(e) ?? 'nothing: pass --handler'}`,
      );
    }
  }
  const cannot = (): void => {
    if (stuck.length === 0) return;
    err(
      ctx.io,
      `${stuck.length} entr${stuck.length === 1 ? 'y has' : 'ies have'} no BullMQ origin and no --handler to run ${stuck.length === 1 ? 'it' : 'them'}: ${stuck.slice(0, 5).join(', ')}${stuck.length > 5 ? ', …' : ''}`,
    );
  };
  if (flags['dry-run'] === true) {
    out(ctx.io, `dry run: ${runnable.length} would be redriven, ${stuck.length} could not`);
    cannot();
    return stuck.length > 0 ? 1 : 0;
  }
  const bullmqPrefix = flags['bullmq-prefix'];
  const queue = createDeadLetterRequeuer(
    ctx.redis,
    bullmqPrefix === undefined ? {} : { prefix: bullmqPrefix },
  );
  const progress = new Progress(ctx.io, 'redrive', runnable.length);
  const errors: string[] = [];
  try {
    const report =
      runnable.length === 0
        ? { redriven: [], failed: [], skipped: [] }
        : await ctx.dlq.redrive(
            { ids: runnable },
            async (entry) => {
              await pacer.next();
              try {
                if (handler !== undefined) await handler(entry);
                else await queue.add(entry);
              } catch (error) {
                const message = (error as Error)?.message ?? String(error);
                errors.push(`${entry.id}: ${message}`);
                progress.tick('failed', `failed ${entry.id}: ${message}`);
                throw error;
              }
              progress.tick('redriven', `redriven ${entry.id}`);
            },
            { signal: ctx.signal },
          );
    for (const id of report.skipped)
      progress.tick('skipped', `skipped ${id} (being redriven elsewhere, or not due)`);
    const summary = progress.finish();
    if (ctx.json) {
      out(ctx.io, JSON.stringify({ ...report, cannot: stuck, errors, summary }));
    }
    cannot();
    return report.failed.length > 0 || stuck.length > 0 ? 1 : 0;
  } finally {
    await queue.close();
  }
}

export async function purge(
  ctx: DlqContext,
  flags: FilterFlags & { yes?: boolean | undefined },
): Promise<number> {
  const filter = parseFilter(flags, Date.now());
  if (flags.yes !== true) {
    throw new UsageError('purge deletes dead letters for good: pass --yes to go ahead');
  }
  if (filter.all) {
    const n = await ctx.dlq.purge();
    out(ctx.io, `purged ${n} dead letter${n === 1 ? '' : 's'}`);
    return 0;
  }
  const ids: string[] = [];
  for await (const e of entries(ctx.dlq, filter)) ids.push(e.id);
  const progress = new Progress(ctx.io, 'purge', ids.length);
  for (const id of ids) {
    ctx.signal.throwIfAborted();
    if (await ctx.dlq.remove(id)) progress.tick('removed', `removed ${id}`);
    else progress.tick('gone', `gone already ${id}`);
  }
  progress.finish();
  out(
    ctx.io,
    `purged ${progress.count('removed')} dead letter${progress.count('removed') === 1 ? '' : 's'}`,
  );
  return 0;
}

export async function exportEntries(
  ctx: DlqContext,
  flags: FilterFlags & { out?: string | undefined },
): Promise<number> {
  const filter = parseFilter(flags, Date.now());
  const toFile = flags.out !== undefined && flags.out !== '-';
  const sink: NodeJS.WritableStream = toFile
    ? createWriteStream(resolve(ctx.io.cwd, flags.out as string), { mode: 0o600 })
    : ctx.io.stdout;
  const opened = toFile
    ? new Promise<void>((ok, fail) => {
        sink.once('error', fail);
        sink.once('open', () => ok());
      })
    : Promise.resolve();
  try {
    await opened;
  } catch (error) {
    throw new CommandError(`--out: cannot write "${flags.out}": ${(error as Error).message}`);
  }
  const total = filter.all ? await ctx.dlq.size() : undefined;
  const progress = new Progress(ctx.io, 'export', total);
  for await (const e of entries(ctx.dlq, filter)) {
    if (!sink.write(`${JSON.stringify(e)}\n`)) {
      await new Promise<void>((ok) => sink.once('drain', () => ok()));
    }
    progress.tick('exported');
  }
  if (toFile) {
    await new Promise<void>((ok, fail) => {
      sink.once('error', fail);
      sink.end(() => ok());
    });
  }
  progress.finish();
  return 0;
}
