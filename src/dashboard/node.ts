import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DashboardHandler } from './handler.js';

/** A `node:http` request listener, which Express also takes as middleware. */
export type NodeHandler = (
  request: IncomingMessage,
  response: ServerResponse,
  next?: (error?: unknown) => void,
) => void;

const MAX_BODY_BYTES = 1_048_576;

/**
 * Serves a {@link DashboardHandler} from `node:http` (`createServer(toNodeHandler(d))`) or
 * Express (`app.use('/ops', toNodeHandler(d))` with `basePath: '/ops'`: the handler sees the
 * original URL). Bodies over 1 MiB are refused with 413. The request's `signal` aborts when the
 * client goes away. Errors the handler can't answer go to
 * Express's `next` when there is one, else become a 500.
 */
export function toNodeHandler(dashboard: DashboardHandler): NodeHandler {
  if (typeof dashboard !== 'function') {
    throw new TypeError(
      `dashboard must be the handler createDashboard returns, got ${String(dashboard)}`,
    );
  }
  return (request, response, next) => {
    // A client that goes away aborts the request's signal (a redrive stops before the next entry).
    const gone = new AbortController();
    response.once('close', () => {
      if (!response.writableFinished) gone.abort(new Error('the client went away'));
    });
    const run = async (): Promise<void> => {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of request) {
        size += (chunk as Buffer).length;
        if (size > MAX_BODY_BYTES) {
          response.writeHead(413, { 'content-type': 'text/plain' }).end('body too large');
          return;
        }
        chunks.push(chunk as Buffer);
      }
      const host = request.headers.host ?? '127.0.0.1';
      const secure = (request.socket as { encrypted?: boolean }).encrypted === true;
      const url = new URL(
        (request as { originalUrl?: string }).originalUrl ?? request.url ?? '/',
        `${secure ? 'https' : 'http'}://${host}`,
      );
      const headers = new Headers();
      for (const [name, value] of Object.entries(request.headers)) {
        if (value === undefined) continue;
        for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
      }
      const method = request.method ?? 'GET';
      const answer = await dashboard(
        new Request(url, {
          method,
          headers,
          signal: gone.signal,
          ...(method === 'GET' || method === 'HEAD' ? {} : { body: Buffer.concat(chunks) }),
        }),
      );
      const out: Record<string, string | string[]> = {};
      answer.headers.forEach((value, name) => {
        out[name] = value;
      });
      const cookies = answer.headers.getSetCookie?.();
      if (cookies !== undefined && cookies.length > 0) out['set-cookie'] = cookies;
      response.writeHead(answer.status, out);
      response.end(method === 'HEAD' ? undefined : Buffer.from(await answer.arrayBuffer()));
    };
    run().catch((error: unknown) => {
      if (next !== undefined) return next(error);
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
      response.end('internal error');
    });
  };
}
