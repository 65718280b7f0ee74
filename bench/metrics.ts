import { metrics as otelApi } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { RetrykitEvent } from '../src/index.js';
import { combineListeners, createMetrics, createRetry } from '../src/index.js';
import { createOtelListener } from '../src/otel/index.js';
import { type WhatsAppEventListener, whatsappDeliveryMetrics } from '../src/whatsapp/index.js';
import { type BenchSuite, measure, ratioTable } from './harness.js';

const succeed = async (): Promise<number> => 42;

export const metricsSuite: BenchSuite = {
  name: 'metrics',
  async run({ timeMs }) {
    const provider = new MeterProvider();
    const window = createMetrics({ sections: [whatsappDeliveryMetrics()] });
    const otel = createOtelListener({ meterProvider: provider });
    const plain = createRetry({ maxAttempts: 5 });
    const withWindow = createRetry({ maxAttempts: 5, onEvent: window.onEvent });
    const withOtel = createRetry({ maxAttempts: 5, onEvent: otel });
    const withBoth = createRetry({
      maxAttempts: 5,
      onEvent: combineListeners(window.onEvent, otel),
    });
    const happy = await measure(
      {
        'createRetry, no onEvent': () => plain(succeed),
        'createRetry + createMetrics': () => withWindow(succeed),
        'createRetry + createOtelListener (SDK)': () => withOtel(succeed),
        'createRetry + both': () => withBoth(succeed),
      },
      { timeMs },
    );

    const success: RetrykitEvent = {
      type: 'attempt_success',
      time: 0,
      attempt: 0,
      durationMs: 120,
      elapsedMs: 120,
    };
    const sdkHistogram = provider.getMeter('peer').createHistogram('peer.duration', { unit: 's' });
    const noop = otelApi.getMeter('noop').createHistogram('noop');
    let i = 0;
    const onStatus: WhatsAppEventListener = window.onEvent;
    const perEvent = await measure(
      {
        'OTel SDK histogram.record': () => sdkHistogram.record((i++ & 1023) / 1000),
        'createMetrics onEvent(attempt_success)': () => window.onEvent(success),
        'createMetrics onEvent(message_status)': () =>
          onStatus({
            type: 'message_status',
            time: 0,
            messageId: `wamid.${i++ & 16_383}`,
            status: (i & 1) === 0 ? 'accepted' : 'delivered',
          }),
        'OTel API no-op histogram.record': () => noop.record(1),
      },
      { timeMs },
    );

    const snapshots = await measure(
      {
        'createMetrics snapshot()': () => window.snapshot(),
        'createMetrics checkHealth()': () => window.checkHealth(),
      },
      { timeMs },
    );
    await provider.shutdown();

    return [
      '## Metrics: the cost of observing',
      '',
      'The retry happy path (one attempt_start and one attempt_success per call) with no',
      'listener, with the sliding window, with the OTel listener on an SDK MeterProvider, and',
      'with both. Each call emits two events; on a real send (tens of milliseconds of network)',
      'the difference is lost in the noise, so the target is only: no worse than the OTel SDK.',
      '',
      ratioTable(happy, 'createRetry, no onEvent'),
      '',
      'One event into the window, next to one `record()` on an OTel SDK histogram (the peer:',
      'what an exporter-backed metric costs) and on the no-op API histogram. A window event reads',
      'the clock once (Date.now() is most of it); a status event for a new message ID also',
      'inserts into, and evicts from, the bounded map of followed messages.',
      '',
      ratioTable(perEvent, 'OTel SDK histogram.record'),
      '',
      'Reading the window: a snapshot walks the 768-bucket histograms once per percentile.',
      '',
      ratioTable(snapshots, 'createMetrics snapshot()'),
    ].join('\n');
  },
};
