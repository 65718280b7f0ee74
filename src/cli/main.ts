// The `retrykit` command: parses the arguments, runs one command, returns its exit code
// (0 done, 1 something failed, 2 usage). Built on the public API only.
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { close, connect, redisUrl } from './connect.js';
import { dashboard, parsePort } from './dashboard.js';
import * as dlq from './dlq.js';
import {
  CommandError,
  err,
  type Io,
  out,
  parseCount,
  parseDuration,
  parseRate,
  UsageError,
} from './io.js';
import { replay } from './replay.js';
import { stats } from './stats.js';

const COMMON = `Connection:
  --redis <url>     Redis to use (default: $REDIS_URL, else redis://127.0.0.1:6379)
  --prefix <name>   key prefix of the dead-letter queue or fleet metrics
                    (default: $RETRYKIT_PREFIX, else "retrykit")
  -h, --help        show this help`;

const FILTERS = `Filters (all must match):
  --reason <r>          classification reason (rate_limited, server_error, client_error, …)
  --code <c[,c…]>       platform error code of the last failure (e.g. 131026,130429)
  --ids <id[,id…]>      these entry ids
  --older-than <dur>    dead for longer than this (30s, 15m, 2h, 7d)`;

const HELP: Readonly<Record<string, string>> = {
  main: `Usage: retrykit <command> [options]

Operator tools for retrykit: dead letters, file-fallback replay, fleet metrics.

Commands:
  dlq list       list dead letters, oldest first
  dlq show <id>  one dead letter: every attempt and its payload
  dlq stats      dead letters grouped by reason, platform code and day
  dlq redrive    run dead letters again (a --handler module, or back to their BullMQ queue)
  dlq purge      delete dead letters (needs --yes)
  dlq export     write dead letters as JSON lines (read back by replay)
  replay <file>  ingest a JSON-lines file (fallback file or export) into the queue
  stats          the fleet's metrics from Redis (createRedisMetricsReporter)
  dashboard      serve the live dashboard page on 127.0.0.1

Run "retrykit <command> --help" for a command's options.
Exit codes: 0 done, 1 something failed, 2 usage error.

${COMMON}`,
  dlq: `Usage: retrykit dlq <list|show|stats|redrive|purge|export> [options]

Run "retrykit dlq <command> --help" for a command's options.

${COMMON}`,
  'dlq list': `Usage: retrykit dlq list [filters] [--limit <n>] [--json]

Lists dead letters, oldest first: id, time, reason, platform code, attempts, origin.
  --limit <n>   at most this many (default 50)
  --json        print {"entries": [...], "more": boolean}

${FILTERS}

${COMMON}`,
  'dlq show': `Usage: retrykit dlq show <id> [--json]

Shows one dead letter: its fields, every attempt, and its payload (as text).
  --json   print the entry as stored

${COMMON}`,
  'dlq stats': `Usage: retrykit dlq stats [filters] [--json]

Groups dead letters by reason and platform code (the recurring patterns), by reason, by code
and by day (UTC).
  --json   print {"total", "byReason", "byCode", "byDay", "patterns"}

${FILTERS}

${COMMON}`,
  'dlq redrive': `Usage: retrykit dlq redrive [filters] [--handler <module>] [--rate <n>/s] [--dry-run]

Runs the selected dead letters again, oldest first. An entry that succeeds is removed; one
that fails stays, with the failure added and a redrive backoff before the next try.
  --handler <module>      a module whose default export (or export "handler") is called with
                          each entry; without it, entries that came from BullMQ are re-added
                          to their queue (job name and payload as they were)
  --bullmq-prefix <p>     BullMQ's key prefix for re-added jobs (default: BullMQ's, "bull")
  --rate <n>/s            at most n entries a second (also /m, /h)
  --dry-run               only say what would be redriven, and how
  --json                  print the report as JSON

${FILTERS}

${COMMON}`,
  'dlq purge': `Usage: retrykit dlq purge --yes [filters]

Deletes dead letters for good: all of them, or those the filters select.
  --yes   required

${FILTERS}

${COMMON}`,
  'dlq export': `Usage: retrykit dlq export [filters] [--out <file>]

Writes the selected dead letters as JSON lines, one entry a line, as stored; "retrykit replay"
reads them back.
  --out <file>   write to this file (default: standard output)

${FILTERS}

${COMMON}`,
  replay: `Usage: retrykit replay <file> [--keep] [--rate <n>/s] [--json]

Ingests a JSON-lines file of dead letters into the queue: a createFileSink fallback file
written while Redis was away, or a "retrykit dlq export" file. Each entry keeps its id, so
ingesting one twice is harmless.
By default the file is consumed as replayFile does: renamed to <file>.replaying, resumed
where it stopped if interrupted, deleted when done (lines that are not JSON go to
<file>.rejected). Entries that are not valid dead letters go to <file>.invalid.
  --keep         read the file as it is; leave it in place
  --rate <n>/s   at most n entries a second
  --json         print the counts as JSON

${COMMON}`,
  stats: `Usage: retrykit stats [--window <dur>] [--interval <dur>] [--json]

The fleet's metrics over a window, from what every createRedisMetricsReporter wrote:
calls, first-attempt success, retry and error rates against their 2 % lines, latency
percentiles, dead letters, queues, open circuits, and the health report.
  --window <dur>     length of the window (default 5m)
  --interval <dur>   the reporters' intervalMs (default 10s)
  --whatsapp         also WhatsApp delivery (reporters given whatsappDeliveryMetrics()):
                     delivery rate and send → delivered latency
  --json             print {"snapshot", "health", "instances"}

${COMMON}`,
  dashboard: `Usage: retrykit dashboard [--port <n>] [--allow-changes] [--handler <module>]

Serves the dashboard page (retrykit/dashboard) on 127.0.0.1 until Ctrl-C: the fleet's
metrics live (first-attempt success vs retried, retry and error rates against their 2 %
lines, latency, errors by reason and code, queue depth, health) and a dead-letter browser.
  --port <n>              port on 127.0.0.1 (default 8787; 0 picks a free one)
  --dlq-prefix <name>     the dead-letter queue's prefix (default: --prefix, which names
                          the fleet metrics' reporters)
  --allow-changes         allow redrive and purge from the page (default: read-only)
  --handler <module>      redrive entries through this module, as "dlq redrive --handler";
                          without it, entries from BullMQ go back to their queue
  --bullmq-prefix <p>     BullMQ's key prefix for re-added jobs (default "bull")
  --window <dur>          the window the page shows (default 15m)
  --interval <dur>        the reporters' intervalMs (default 10s)

${COMMON}`,
};

const CONNECTION = {
  redis: { type: 'string' },
  prefix: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;
const FILTER_OPTIONS = {
  reason: { type: 'string' },
  code: { type: 'string' },
  ids: { type: 'string' },
  'older-than': { type: 'string' },
} as const;
const JSON_OPTION = { json: { type: 'boolean' } } as const;

const OPTIONS = {
  'dlq list': { ...CONNECTION, ...FILTER_OPTIONS, ...JSON_OPTION, limit: { type: 'string' } },
  'dlq show': { ...CONNECTION, ...JSON_OPTION },
  'dlq stats': { ...CONNECTION, ...FILTER_OPTIONS, ...JSON_OPTION },
  'dlq redrive': {
    ...CONNECTION,
    ...FILTER_OPTIONS,
    ...JSON_OPTION,
    handler: { type: 'string' },
    'bullmq-prefix': { type: 'string' },
    rate: { type: 'string' },
    'dry-run': { type: 'boolean' },
  },
  'dlq purge': { ...CONNECTION, ...FILTER_OPTIONS, yes: { type: 'boolean' } },
  'dlq export': { ...CONNECTION, ...FILTER_OPTIONS, out: { type: 'string' } },
  replay: { ...CONNECTION, ...JSON_OPTION, keep: { type: 'boolean' }, rate: { type: 'string' } },
  stats: {
    ...CONNECTION,
    ...JSON_OPTION,
    window: { type: 'string' },
    interval: { type: 'string' },
    whatsapp: { type: 'boolean' },
  },
  dashboard: {
    ...CONNECTION,
    port: { type: 'string' },
    'dlq-prefix': { type: 'string' },
    'allow-changes': { type: 'boolean' },
    handler: { type: 'string' },
    'bullmq-prefix': { type: 'string' },
    window: { type: 'string' },
    interval: { type: 'string' },
  },
} as const satisfies Record<string, ParseArgsConfig['options']>;

type Command = keyof typeof OPTIONS;

/** Checks the flags that need no Redis, so that a usage error never waits for a connection. */
function precheck(command: Command, values: Record<string, string | boolean | undefined>): void {
  const text = (name: string): string | undefined => values[name] as string | undefined;
  if (command.startsWith('dlq ') && command !== 'dlq show') dlq.parseFilter(values, Date.now());
  if (text('rate') !== undefined) parseRate('rate', text('rate') as string);
  if (text('limit') !== undefined) parseCount('limit', text('limit') as string);
  for (const name of ['window', 'interval']) {
    if (text(name) !== undefined) parseDuration(name, text(name) as string);
  }
  if (command === 'dashboard') parsePort(text('port'));
  if (command === 'dlq purge' && values.yes !== true) {
    throw new UsageError('purge deletes dead letters for good: pass --yes to go ahead');
  }
}

/** Splits `argv` into the command's name and its arguments. */
function commandOf(argv: readonly string[]): { name: string; rest: string[] } {
  const [first, second, ...more] = argv;
  if (first === 'dlq') {
    if (second === undefined || second.startsWith('-')) {
      return { name: 'dlq', rest: argv.slice(1) };
    }
    return { name: `dlq ${second}`, rest: more };
  }
  if (first === undefined || first.startsWith('-')) return { name: 'main', rest: [...argv] };
  return { name: first, rest: argv.slice(1) };
}

/**
 * Runs the `retrykit` command line with `argv` (the arguments after the program name) and
 * resolves with its exit code. Never rejects: failures are reported on `io.stderr`.
 */
export async function main(argv: readonly string[], io: Io, signal?: AbortSignal): Promise<number> {
  const { name, rest } = commandOf(argv);
  try {
    if (name === 'main' || name === 'dlq') {
      const wantsHelp = rest.includes('--help') || rest.includes('-h');
      if (wantsHelp) {
        out(io, HELP[name]);
        return 0;
      }
      const unknown = rest[0];
      throw new UsageError(
        unknown === undefined ? `missing command` : `unknown option or command "${unknown}"`,
        { cause: name },
      );
    }
    if (!(name in OPTIONS)) {
      throw new UsageError(`unknown command "${name}"`, {
        cause: name.startsWith('dlq ') ? 'dlq' : 'main',
      });
    }
    const command = name as Command;
    let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
    try {
      parsed = parseArgs({
        args: rest,
        options: OPTIONS[command],
        allowPositionals: true,
        strict: true,
      }) as typeof parsed;
    } catch (error) {
      throw new UsageError((error as Error).message, { cause: command });
    }
    const { values, positionals } = parsed;
    if (values.help === true) {
      out(io, HELP[command]);
      return 0;
    }
    const maxPositionals = command === 'dlq show' || command === 'replay' ? 1 : 0;
    if (positionals.length > maxPositionals) {
      throw new UsageError(`unexpected argument "${positionals[maxPositionals]}"`, {
        cause: command,
      });
    }
    precheck(command, values);
    const prefix = (values.prefix as string | undefined) ?? io.env.RETRYKIT_PREFIX ?? 'retrykit';
    const json = values.json === true;
    const controller = new AbortController();
    signal?.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
    const redis = await connect(redisUrl(io, values.redis as string | undefined));
    try {
      if (command === 'stats') return await stats(io, redis, prefix, values, json);
      if (command === 'dashboard') {
        return await dashboard(io, redis, prefix, values, controller.signal);
      }
      const queue = dlq.openDlq(redis, prefix);
      if (command === 'replay') {
        return await replay(io, queue, positionals[0], values, controller.signal, json);
      }
      const ctx: dlq.DlqContext = { io, redis, dlq: queue, json, signal: controller.signal };
      switch (command) {
        case 'dlq list':
          return await dlq.list(ctx, values as dlq.FilterFlags & { limit?: string });
        case 'dlq show':
          return await dlq.show(ctx, positionals[0]);
        case 'dlq stats':
          return await dlq.stats(ctx, values);
        case 'dlq redrive':
          return await dlq.redrive(ctx, values as dlq.RedriveFlags);
        case 'dlq purge':
          return await dlq.purge(ctx, values);
        case 'dlq export':
          return await dlq.exportEntries(ctx, values as dlq.FilterFlags & { out?: string });
      }
    } finally {
      await close(redis);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      const topic = typeof error.cause === 'string' ? error.cause : name in OPTIONS ? name : 'main';
      err(io, `retrykit: ${error.message}`);
      err(io, `Run "retrykit ${topic === 'main' ? '' : `${topic} `}--help" for usage.`);
      return 2;
    }
    const message =
      error instanceof CommandError ? error.message : (error as Error)?.message || String(error);
    err(io, `retrykit: ${message}`);
    return 1;
  }
}
