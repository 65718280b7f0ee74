/**
 * The chaos schedule: which fault is injected when, drawn from a seed. The same seed gives the
 * same schedule (kinds, order, offsets, targets); the timing of everything else is the
 * machine's, so the verdict has to hold for any interleaving.
 */

/** The faults the soak injects. */
export const FAULT_KINDS = [
  'worker_kill',
  'redis_kill',
  'redis_pause',
  'proxy_cut',
  'proxy_drop',
  'proxy_refuse',
  'server_errors',
  'throttle_burst',
  'hung_requests',
  'failed_after_accept',
  'answer_lost',
  'status_delay',
  'status_drop',
  'webhook_mess',
  'receiver_restart',
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

/** What each fault does, for the printed schedule and the report. */
export const FAULT_DESCRIPTIONS: Readonly<Record<FaultKind, string>> = {
  worker_kill:
    'SIGKILL a worker process right after the API accepted one of its sends, start it again after the pause',
  redis_kill: 'SIGKILL redis-server, start it again (AOF) after the pause',
  redis_pause: 'CLIENT PAUSE ALL for the duration',
  proxy_cut: 'cut every connection between the children and Redis',
  proxy_drop: 'lose the next 5 Redis replies with their connections (the commands ran)',
  proxy_refuse: 'refuse new Redis connections for the duration, then cut the open ones',
  server_errors: 'the API answers 503 to half the sends',
  throttle_burst: 'the API answers 130429 (HTTP 400) to half the sends',
  hung_requests: 'the API never answers 20 % of the sends',
  failed_after_accept:
    '30 % of accepted messages get a `failed` status: 131000 (transient) or 131026 (permanent)',
  answer_lost:
    '25 % of accepted messages lose their answer: the connection dropped, or never answered',
  status_delay:
    "30 % of accepted messages' statuses come late: 3 s (inside the grace window) or 12 s (after it)",
  status_drop: "20 % of accepted messages' statuses never come",
  webhook_mess: "half the status webhooks duplicated, every message's statuses shuffled",
  receiver_restart: 'SIGKILL the webhook receiver, start it again after the pause',
};

/** Colour of each fault in the chart. */
export const FAULT_COLORS: Readonly<Record<FaultKind, string>> = {
  worker_kill: '#d62728',
  redis_kill: '#8c1515',
  redis_pause: '#ff7f0e',
  proxy_cut: '#9467bd',
  proxy_drop: '#c5b0d5',
  proxy_refuse: '#6a3d9a',
  server_errors: '#e377c2',
  throttle_burst: '#bcbd22',
  hung_requests: '#7f7f7f',
  failed_after_accept: '#17becf',
  answer_lost: '#1f77b4',
  status_delay: '#aec7e8',
  status_drop: '#393b79',
  webhook_mess: '#2ca02c',
  receiver_restart: '#8c564b',
};

const DURATIONS_MS: Readonly<Record<FaultKind, number>> = {
  worker_kill: 1_000,
  redis_kill: 1_500,
  redis_pause: 2_000,
  proxy_cut: 0,
  proxy_drop: 0,
  proxy_refuse: 1_500,
  server_errors: 4_000,
  throttle_burst: 3_000,
  hung_requests: 4_000,
  failed_after_accept: 5_000,
  answer_lost: 5_000,
  status_delay: 5_000,
  status_drop: 5_000,
  webhook_mess: 5_000,
  receiver_restart: 500,
};

/** One scheduled fault. */
export interface ChaosEvent {
  /** Milliseconds after the load started. */
  readonly atMs: number;
  readonly kind: FaultKind;
  /** How long it lasts (a process's downtime, a storm's length); 0 for an instant fault. */
  readonly durationMs: number;
  /** The worker a `worker_kill` hits (0-based). */
  readonly target: number;
}

/** mulberry32: the seeded random source of the schedule. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The schedule for a run of `loadMs`: faults between 10 % and 80 % of it (the rest is a calm
 * start and a calm end for the backlog to drain), about one every `spacingMs`, every kind
 * once before any repeats (in a seeded order), each at a seeded offset within its slot.
 */
export function chaosSchedule(
  seed: number,
  loadMs: number,
  workers: number,
  spacingMs = 7_000,
): ChaosEvent[] {
  const random = seeded(seed);
  const from = loadMs * 0.1;
  const to = loadMs * 0.8;
  const count = Math.max(1, Math.floor((to - from) / spacingMs));
  const slot = (to - from) / count;
  const kinds: FaultKind[] = [];
  while (kinds.length < count) {
    const round = [...FAULT_KINDS];
    for (let i = round.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [round[i], round[j]] = [round[j]!, round[i]!];
    }
    kinds.push(...round);
  }
  return kinds.slice(0, count).map((kind, i) => ({
    atMs: Math.round(from + i * slot + random() * slot * 0.5),
    kind,
    durationMs: DURATIONS_MS[kind],
    target: Math.floor(random() * workers),
  }));
}

/** The schedule as printed at the start of a run and in the report. */
export function formatSchedule(events: readonly ChaosEvent[]): string {
  return events
    .map((e) => {
      const target = e.kind === 'worker_kill' ? ` worker-${e.target + 1}` : '';
      const lasting = e.durationMs > 0 ? ` for ${(e.durationMs / 1000).toFixed(1)} s` : '';
      return `  ${(e.atMs / 1000).toFixed(1).padStart(7)} s  ${e.kind}${target}${lasting}`;
    })
    .join('\n');
}
