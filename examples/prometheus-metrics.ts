/**
 * Exposes retrykit's metrics to Prometheus through OpenTelemetry, next to the in-process
 * sliding window of `createMetrics()`.
 *
 *   npx tsx examples/prometheus-metrics.ts
 *
 * A stand-in for the WhatsApp Cloud API on a loopback port answers some sends with 503 or 429;
 * retrykit retries them. Every event goes to both the OTel listener (scraped by Prometheus) and
 * the window (checked for health). The example scrapes its own /metrics once, prints the
 * retrykit series and the window's summary, and exits.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { combineListeners, createMetrics, createRetry } from 'retrykit';
import { createOtelListener } from 'retrykit/otel';
import { type WhatsAppEventListener, whatsappDeliveryMetrics } from 'retrykit/whatsapp';

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

// 1. The fake Cloud API. Message i fails its first attempt with 503 when i % 5 === 0, and its
//    first two with 429 (asking to wait 0 s) when i % 8 === 2.
const api = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const i = Number(url.searchParams.get('i'));
  const attempt = Number(url.searchParams.get('attempt'));
  res.setHeader('content-type', 'application/json');
  if (i % 5 === 0 && attempt === 0) {
    res.writeHead(503).end('{"error":{"message":"Service temporarily unavailable"}}');
  } else if (i % 8 === 2 && attempt < 2) {
    res.writeHead(429, { 'retry-after': '0' }).end('{"error":{"code":130429}}');
  } else {
    res.writeHead(200).end(JSON.stringify({ messages: [{ id: `wamid.${i}` }] }));
  }
});
const apiPort = await listen(api);

// 2. OpenTelemetry with the Prometheus exporter, served from our own loopback server so the
//    port is free and known (in production: `new PrometheusExporter({ port: 9464 })`).
const exporter = new PrometheusExporter({ preventServerStart: true });
const meterProvider = new MeterProvider({ readers: [exporter] });
const scrape = createServer((req, res) => exporter.getMetricsRequestHandler(req, res));
const scrapePort = await listen(scrape);

// 3. One onEvent for every component: the OTel listener and the sliding window, each with the
//    WhatsApp delivery section (statuses once per message, send-to-delivered latency).
const delivery = whatsappDeliveryMetrics();
const metrics = createMetrics({
  windowMs: 60_000,
  sections: [delivery],
  onAlert: (b) => console.log(`ALERT ${b.check}: ${b.value} > ${b.threshold}`),
});
const onEvent: WhatsAppEventListener = combineListeners(
  metrics.onEvent,
  createOtelListener({ meterProvider, sections: [delivery] }),
);
const send = createRetry({
  onEvent,
  maxAttempts: 4,
  backoff: { initialDelayMs: 10, maxDelayMs: 50 },
});

// 4. Forty sends, five at a time; each accepted message is then "delivered" by a status webhook.
const deliveredAfterMs = (i: number): number => 800 + (i % 5) * 300;
for (let batch = 0; batch < 8; batch++) {
  await Promise.all(
    Array.from({ length: 5 }, async (_, j) => {
      const i = batch * 5 + j;
      const body = await send(async ({ signal, attempt }) => {
        const url = `http://127.0.0.1:${apiPort}/v21.0/1055/messages?i=${i}&attempt=${attempt}`;
        const res = await fetch(url, {
          method: 'POST',
          signal,
        });
        if (!res.ok) throw Object.assign(new Error(`HTTP ${res.status}`), { response: res });
        return (await res.json()) as { messages: Array<{ id: string }> };
      });
      const messageId = body.messages[0]?.id ?? `unknown-${i}`;
      const sentAt = Date.now();
      onEvent({ type: 'message_status', time: sentAt, messageId, status: 'accepted' });
      onEvent({
        type: 'message_status',
        time: sentAt + deliveredAfterMs(i),
        messageId,
        status: 'delivered',
      });
    }),
  );
  onEvent({ type: 'queue_depth', time: Date.now(), depth: 40 - batch * 5, queue: 'sends' });
}

// 5. Scrape once, as Prometheus would.
const text = await (await fetch(`http://127.0.0.1:${scrapePort}/metrics`)).text();
const wanted =
  /^retrykit_(calls_total|retries_total|give_ups_total|call_duration_count|call_duration_sum|messages_total|message_delivery_duration_sum|queue_depth)\b/;
console.log(`# scraped http://127.0.0.1:${scrapePort}/metrics (retrykit series, abridged)`);
for (const line of text.split('\n')) if (wanted.test(line)) console.log(line);

// 6. The same traffic seen by the sliding window.
const s = metrics.snapshot();
const pct = (x: number | null): string => (x === null ? 'n/a' : `${(x * 100).toFixed(1)} %`);
const ms = (x: number | null): string => (x === null ? 'n/a' : `${Math.round(x)} ms`);
console.log('\n# createMetrics().snapshot()');
console.log(`calls: ${s.calls.succeeded} succeeded, ${s.calls.gaveUp} gave up`);
console.log(`first-attempt success: ${pct(s.ratios.firstAttemptSuccess)}`);
console.log(`retry rate: ${pct(s.ratios.retry)} (${JSON.stringify(s.retries.byReason)})`);
console.log(`error rate: ${pct(s.ratios.error)}`);
console.log(`latency: p50 ${ms(s.latency.p50Ms)}, p99 ${ms(s.latency.p99Ms)}`);
console.log(
  `delivery: ${pct(s.messages.deliveryRate)}, mean ${ms(s.messages.deliveryLatency.meanMs)}`,
);
const health = metrics.checkHealth();
console.log(
  health.healthy
    ? 'health: healthy'
    : `health: ${health.breaches.map((b) => `${b.check} ${b.value.toFixed(3)} > ${b.threshold}`).join(', ')}`,
);

await Promise.all([close(api), close(scrape), meterProvider.shutdown()]);
