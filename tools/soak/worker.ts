/**
 * A soak worker process: one BullMQ worker on the `sends` queue, wired by wiring.ts. Started
 * (and SIGKILLed, and started again) by the soak; reports its counters over IPC.
 * Usage: node --import tsx --import ./tools/lua-loader.mjs tools/soak/worker.ts <slot>
 */
import { Worker } from 'bullmq';
import { type ChildMessage, readProcessConfig, type SendJob } from './config.js';
import { createSendWiring } from './wiring.js';

const slot = process.argv[2] ?? 'worker';
const config = readProcessConfig();
const wiring = createSendWiring(config, slot);
const worker = new Worker<SendJob>('sends', wiring.processor, wiring.workerOptions);
// BullMQ reports connection trouble here; the chaos makes plenty of it, and none is fatal.
worker.on('error', () => {});

const send = (message: ChildMessage): void => {
  if (process.connected) process.send?.(message);
};
const report = (): void => {
  const snap = wiring.metrics.snapshot();
  send({
    type: 'metrics',
    snapshot: {
      jobsCompleted: snap.jobs.succeeded,
      jobsFailed: snap.jobs.failed,
      jobsDeferred: snap.jobs.deferred,
      retriesScheduled: snap.retries.scheduled + snap.jobs.retries.scheduled,
      deadLetters: snap.deadLetters.total,
      fallbackWrites: wiring.fallbackWrites(),
    },
  });
};
const timer = setInterval(report, 1_000);

await worker.waitUntilReady().catch(() => undefined);
send({ type: 'ready' });

process.on('SIGTERM', () => {
  clearInterval(timer);
  report();
  void worker
    .close()
    .then(() => wiring.close())
    .finally(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
