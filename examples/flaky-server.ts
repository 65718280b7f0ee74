/**
 * Retries against a flaky HTTP server on 127.0.0.1: requests fail up to three times each, with
 * 503 and Retry-After, 429, a reset connection or a hang; `createRetry` gets every one through,
 * and gives up at once on a 400.
 *
 *   npx tsx examples/flaky-server.ts [--requests 40]
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { createRetry, createRetryBudget, isRetrykitError, type Reason } from 'retrykit';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '40' } } });
const requests = Number(values.requests);

/** Request `n` fails its first `n % 4` tries, each time in another way, then succeeds. */
let served = 0;
const triesById = new Map<string, number>();
const server = createServer((req, res) => {
  served++;
  if (req.url === '/bad') return void res.writeHead(400).end('{"error":"invalid payload"}');
  const id = String(req.headers['x-request-id']);
  const tries = triesById.get(id) ?? 0;
  triesById.set(id, tries + 1);
  if (tries < Number(id) % 4) {
    const failure = (Number(id) + tries) % 4;
    if (failure === 0) return void res.writeHead(503, { 'Retry-After': '0.05' }).end('busy');
    if (failure === 1) return void res.writeHead(429).end('slow down');
    if (failure === 2) return void req.socket.destroy();
    return; // hangs: the per-attempt timeout cuts it off
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, id }));
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const retries: Record<string, number> = {};
const send = createRetry({
  maxAttempts: 6,
  attemptTimeoutMs: 500,
  backoff: { initialDelayMs: 20, maxDelayMs: 500 },
  budget: createRetryBudget(),
  onRetry: ({ classification }) => {
    retries[classification.reason] = (retries[classification.reason] ?? 0) + 1;
  },
});

async function post(path: string, id = 0): Promise<unknown> {
  return send(async ({ signal }) => {
    const res = await fetch(base + path, {
      method: 'POST',
      signal,
      headers: { 'x-request-id': String(id) },
    });
    if (!res.ok) throw res;
    return res.json();
  });
}

const started = Date.now();
const results = await Promise.allSettled(
  Array.from({ length: requests }, (_, id) => post('/messages', id)),
);
const delivered = results.filter((r) => r.status === 'fulfilled').length;
console.log(
  `delivered ${delivered}/${requests} in ${Date.now() - started} ms; server saw ${served} requests`,
);
console.log('retries by reason:', retries as Record<Reason, number>);

try {
  await post('/bad');
} catch (error) {
  const reason =
    isRetrykitError(error) && 'classification' in error
      ? (error.classification as { reason: string })?.reason
      : 'unknown';
  console.log(`POST /bad gave up at once: ${(error as Error).name} (${reason})`);
}

server.closeAllConnections();
server.close();
process.exitCode = delivered === requests ? 0 : 1;
