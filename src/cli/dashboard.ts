// `retrykit dashboard`: serves the dashboard page on loopback until interrupted.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import { createDashboard, toNodeHandler } from '../dashboard/index.js';
import { loadHandler } from './dlq.js';
import { type Io, out, parseCount, parseDuration, UsageError } from './io.js';

export interface DashboardFlags {
  readonly port?: string | undefined;
  readonly window?: string | undefined;
  readonly interval?: string | undefined;
  readonly handler?: string | undefined;
  readonly 'bullmq-prefix'?: string | undefined;
  readonly 'allow-changes'?: boolean | undefined;
  readonly 'dlq-prefix'?: string | undefined;
}

/** The port of `--port`: 0 (any free port) to 65535. */
export function parsePort(flag: string | undefined): number {
  if (flag === undefined) return 8787;
  const port = flag === '0' ? 0 : parseCount('port', flag);
  if (port > 65_535) throw new UsageError(`--port must be from 0 to 65535, got "${flag}"`);
  return port;
}

export async function dashboard(
  io: Io,
  redis: Redis,
  prefix: string,
  flags: DashboardFlags,
  signal: AbortSignal,
): Promise<number> {
  const port = parsePort(flags.port);
  const redrive = flags.handler === undefined ? undefined : await loadHandler(io, flags.handler);
  let handler: ReturnType<typeof createDashboard>;
  try {
    handler = createDashboard({
      redis,
      prefix,
      ...(flags['dlq-prefix'] === undefined ? {} : { dlqPrefix: flags['dlq-prefix'] }),
      ...(flags.window === undefined ? {} : { windowMs: parseDuration('window', flags.window) }),
      ...(flags.interval === undefined
        ? {}
        : { intervalMs: parseDuration('interval', flags.interval) }),
      ...(redrive === undefined ? {} : { redrive }),
      ...(flags['bullmq-prefix'] === undefined ? {} : { bullmqPrefix: flags['bullmq-prefix'] }),
      // Loopback only: whoever can reach the port is the operator who started it.
      ...(flags['allow-changes'] === true ? { authorize: () => true } : {}),
    });
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) {
      throw new UsageError(error.message);
    }
    throw error;
  }
  const server = createServer(toNodeHandler(handler));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const { port: bound } = server.address() as AddressInfo;
  out(io, `retrykit dashboard for "${prefix}": http://127.0.0.1:${bound}/`);
  out(
    io,
    flags['allow-changes'] === true
      ? 'redrive and purge are allowed from the page; Ctrl-C stops'
      : 'read-only (pass --allow-changes to redrive and purge from the page); Ctrl-C stops',
  );
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
  server.closeAllConnections?.();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return 0;
}
