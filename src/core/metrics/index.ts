// What this feature offers to the rest of retrykit: `createMetrics`, its histogram-backed latency summaries and the section extension point.
export type { HealthBreach, HealthReport, HealthResolution, HealthThresholds } from './health.js';
export type { MetricsHandle, MetricsOptions } from './metrics.js';
export { createMetrics } from './metrics.js';
export type {
  AttachedSection,
  InstrumentOptions,
  LatencySummary,
  MetricsSection,
  MetricsWindow,
  SectionBreach,
  SectionCounter,
  SectionLatency,
  SectionSnapshots,
} from './metrics-section.js';
export type { BreakerSummary, JobsSnapshot, MetricsSnapshot, QueueSummary } from './snapshot.js';
