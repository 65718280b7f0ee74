/**
 * One soak run: start the processes, drive the load, inject the chaos schedule, drain, reconcile
 * the dead-letter files, audit, and hand back what the report needs.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { DeadLetterEntry } from 'retrykit';
import { sweepStalledJobs } from 'retrykit/bullmq';
import { replayFile } from 'retrykit/node';
import { createRedisDeadLetterQueue } from 'retrykit/redis';
import { getDelivery, throughputLimits } from 'retrykit/whatsapp';
import type { FakeFaults } from '../../examples/support/fake-whatsapp.js';
import {
  type AuditedAttempt,
  type AuditResult,
  audit,
  type InjectedFault,
  type LoggedRequest,
} from './audit.js';
import { type ChaosEvent, chaosSchedule, type FaultKind, seeded } from './chaos.js';
import {
  CLOSED_LOOP,
  type LoopEvent,
  messageKey,
  NAMES,
  type SendJob,
  WORKER_HEADER,
} from './config.js';
import { type Cluster, startCluster } from './processes.js';
import { bullConnection, deliveryStore, sendsQueue, updatesQueue } from './wiring.js';

/** Options of {@link runSoak}. */
export interface SoakOptions {
  /** How long the load runs, in milliseconds (the drain comes after). */
  readonly loadMs: number;
  readonly seed: number;
  /** Worker processes. @default 2 */
  readonly workers?: number;
  /** BullMQ concurrency per worker. @default 8 */
  readonly concurrency?: number;
  /** Logical messages per second. @default 8 */
  readonly rate?: number;
  /** About how far apart the faults are, ms. @default 7000 */
  readonly spacingMs?: number;
  /** Where logs, the AOF and the dead-letter files go. */
  readonly dir: string;
  /** Longest wait for the backlog to drain after the load, ms. @default max(45 s, 30 % of the load) */
  readonly drainMs?: number;
  /** Progress lines. @default console.log */
  readonly log?: (line: string) => void;
}

/** One second of the run, for the chart. */
export interface Sample {
  /** Seconds since the load started. */
  readonly t: number;
  readonly accepted: number;
  readonly requests: number;
  /** Requests for a message that had been requested before. */
  readonly resends: number;
  /** Jobs waiting, delayed or active in the sends queue (`undefined`: Redis didn't answer). */
  readonly depth: number | undefined;
}

/** What a run produced. */
export interface SoakRun {
  readonly options: Required<Omit<SoakOptions, 'log'>>;
  readonly schedule: readonly ChaosEvent[];
  readonly faults: readonly InjectedFault[];
  readonly samples: readonly Sample[];
  readonly audit: AuditResult;
  readonly requests: number;
  readonly accepted: number;
  readonly fakeFaults: Readonly<Record<string, number>>;
  readonly webhookStats: {
    readonly events: number;
    readonly posts: number;
    readonly refused: number;
  };
  readonly workerCounters: {
    readonly jobsCompleted: number;
    readonly jobsDeferred: number;
    readonly retriesScheduled: number;
    readonly fallbackWrites: number;
  };
  readonly drained: boolean;
  /** Epoch milliseconds at which the load started (the chart's zero). */
  readonly loadStartedAt: number;
  readonly wallMs: number;
}

const PHONE_NUMBERS = ['1001', '1002', '1003'];
/** Per-number limit the fake enforces (Meta's is 80/s; lower so the limiter works in a soak). */
const PER_NUMBER_LIMIT = 6;
/** Meta's pair limit is 45 + 1 per 6 s; scaled down so hot recipients hit it within a minute. */
const PAIR = { capacity: 3, refillPerSecond: 0.2 };
const CLIENT_LEASE_MS = 30_000;
const BASE_FAULTS: FakeFaults = { serverError: 0.01, rateLimit: 0.01, hang: 0.002 };
const STORMS: Partial<Record<FaultKind, FakeFaults>> = {
  server_errors: { serverError: 0.5 },
  throttle_burst: { rateLimit: 0.5 },
  hung_requests: { hang: 0.2 },
};

/** The delivery-fault windows, by fault kind. */
const WINDOWS = {
  failed_after_accept: 'fail',
  answer_lost: 'answerLost',
  status_delay: 'statusDelay',
  status_drop: 'statusDrop',
} as const;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves with `promise`'s value, or `undefined` after `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([promise.catch(() => undefined), sleep(ms).then(() => undefined)]);
}

async function depthOf(queue: Queue<SendJob>): Promise<number | undefined> {
  const counts = await within(queue.getJobCounts('wait', 'active', 'delayed', 'prioritized'), 800);
  return counts === undefined ? undefined : Object.values(counts).reduce((a, b) => a + b, 0);
}

/** Runs one soak. */
export async function runSoak(options: SoakOptions): Promise<SoakRun> {
  const started = Date.now();
  const log = options.log ?? console.log;
  const resolved = {
    loadMs: options.loadMs,
    seed: options.seed,
    workers: options.workers ?? 2,
    concurrency: options.concurrency ?? 8,
    rate: options.rate ?? 8,
    spacingMs: options.spacingMs ?? 7_000,
    dir: options.dir,
    drainMs: options.drainMs ?? Math.max(45_000, options.loadMs * 0.3),
  };
  const schedule = chaosSchedule(
    resolved.seed,
    resolved.loadMs,
    resolved.workers,
    resolved.spacingMs,
  );
  const random = seeded(resolved.seed ^ 0x5eed);
  const chaosRandom = seeded(resolved.seed ^ 0xc4a05);

  // ---- recipients: a pool, two hot pairs (the pair limit), a few undeliverable --------------
  const pool = Array.from(
    { length: 150 },
    (_, i) => `49151${String(1_000_000 + i * 7919).slice(-7)}`,
  );
  // 5 % of the load goes from the first number to one of two recipients: about 0.2/s per pair
  // at the default rate, the pair bucket's refill, so bunched ones are deferred.
  const hot = pool.slice(0, 2);
  const undeliverable = new Set(pool.filter((_, i) => i % 50 === 13));

  // ---- the fake API's log ------------------------------------------------------------------
  const requests: LoggedRequest[] = [];
  const seenKeys = new Set<string>();
  // Delivery faults are decided per accepted message while a window is open; the fake asks
  // (synchronously) while it answers, and the request's log line takes what was decided.
  const windows = { fail: false, answerLost: false, statusDelay: false, statusDrop: false };
  let fate: Pick<LoggedRequest, 'failCode' | 'statusDelayMs' | 'statusesDropped'> = {};
  /** When a status of each wamid was first answered 200 by the receiver. */
  const statusArrived = new Map<string, number>();
  const counters = { accepted: 0, requests: 0, resends: 0 };
  /** Called once with the next accepted request of a worker (`<slot>/<pid>`): a kill's cue. */
  const acceptWaiters = new Map<string, () => void>();
  const cluster: Cluster = await startCluster({
    dir: resolved.dir,
    workers: resolved.workers,
    concurrency: resolved.concurrency,
    phoneNumbers: PHONE_NUMBERS,
    perNumberLimit: PER_NUMBER_LIMIT,
    pair: PAIR,
    seed: resolved.seed,
    undeliverable: (to) => undeliverable.has(to),
    failAfterAccept: () => {
      const failCode =
        windows.fail && chaosRandom() < 0.3 ? (chaosRandom() < 0.5 ? 131000 : 131026) : undefined;
      if (failCode !== undefined) fate = { ...fate, failCode };
      return failCode;
    },
    acceptThen: () =>
      windows.answerLost && chaosRandom() < 0.25
        ? chaosRandom() < 0.5
          ? 'drop'
          : 'hang'
        : undefined,
    statusDelayMs: () => {
      if (!windows.statusDelay || chaosRandom() >= 0.3) return 0;
      const statusDelayMs = chaosRandom() < 0.5 ? 3_000 : 12_000;
      fate = { ...fate, statusDelayMs };
      return statusDelayMs;
    },
    dropStatuses: () => {
      const drop = windows.statusDrop && chaosRandom() < 0.2;
      if (drop) fate = { ...fate, statusesDropped: true };
      return drop;
    },
    onWebhook: (post) => {
      if (post.status !== 200) return;
      for (const e of post.events) {
        if (!statusArrived.has(e.wamid)) statusArrived.set(e.wamid, post.at);
      }
    },
    onRequest: (request) => {
      const text = (request.payload?.text as { body?: unknown } | undefined)?.body;
      const key = typeof text === 'string' ? text : undefined;
      const decided = request.wamid === undefined ? {} : fate;
      fate = {};
      requests.push({ ...request, key, ...decided });
      counters.requests++;
      if (request.wamid !== undefined) {
        counters.accepted++;
        const worker = String(request.headers[WORKER_HEADER] ?? '');
        acceptWaiters.get(worker)?.();
        acceptWaiters.delete(worker);
      }
      if (key !== undefined) {
        if (seenKeys.has(key)) counters.resends++;
        seenKeys.add(key);
      }
    },
  });
  const { fake, redis, proxy } = cluster;
  fake.configure({ faults: BASE_FAULTS });
  // The producer and the audit talk to Redis directly: the faults are between the children and it.
  const producerConnection: Redis = bullConnection(redis.url);
  producerConnection.on('error', () => {});
  const queue = sendsQueue(producerConnection);
  queue.on('error', () => {});

  const messages = new Map<string, SendJob & { enqueuedAt: number }>();
  const faults: InjectedFault[] = [];
  const samples: Sample[] = [];
  let closing = false;
  try {
    log(
      `soak: ${resolved.workers} workers × ${resolved.concurrency}, ${resolved.rate} msg/s, redis ${redis.url} (through proxy ${proxy.url}), API ${fake.url}`,
    );
    const loadStart = Date.now();

    // ---- the sampler ------------------------------------------------------------------------
    let last = { ...counters };
    const sampler = setInterval(() => {
      const now = { ...counters };
      const t = Math.round((Date.now() - loadStart) / 1000);
      void depthOf(queue).then((depth) => {
        samples.push({
          t,
          accepted: now.accepted - last.accepted,
          requests: now.requests - last.requests,
          resends: now.resends - last.resends,
          depth,
        });
        last = now;
      });
    }, 1_000);

    // ---- the load ---------------------------------------------------------------------------
    const adds: Promise<void>[] = [];
    const enqueue = (job: SendJob): void => {
      const add = async (): Promise<void> => {
        for (;;) {
          try {
            await queue.add('send', job, { jobId: job.key });
            messages.set(job.key, { ...job, enqueuedAt: Date.now() });
            return;
          } catch {
            await sleep(250);
          }
        }
      };
      adds.push(add());
    };
    let index = 0;
    const nextJob = (phoneNumberId?: string): SendJob => {
      const i = index++;
      if (phoneNumberId === undefined && random() < 0.05) {
        const number = PHONE_NUMBERS[0]!;
        return {
          key: messageKey(resolved.seed, i, number),
          phoneNumberId: number,
          to: hot[Math.floor(random() * hot.length)]!,
        };
      }
      const number = phoneNumberId ?? PHONE_NUMBERS[Math.floor(random() * PHONE_NUMBERS.length)]!;
      return {
        key: messageKey(resolved.seed, i, number),
        phoneNumberId: number,
        to: pool[2 + Math.floor(random() * (pool.length - 2))]!,
      };
    };
    const producer = (async () => {
      let due = 0;
      let nextBurst = 10_000;
      while (Date.now() - loadStart < resolved.loadMs) {
        const elapsed = Date.now() - loadStart;
        while (due < (elapsed / 1000) * resolved.rate) {
          enqueue(nextJob());
          due++;
        }
        // Every 10 s, one number gets twice its limit at once: the number limit in play.
        if (elapsed >= nextBurst) {
          const number = PHONE_NUMBERS[Math.floor(random() * PHONE_NUMBERS.length)]!;
          for (let i = 0; i < PER_NUMBER_LIMIT * 2; i++) enqueue(nextJob(number));
          nextBurst += 10_000;
        }
        await sleep(100);
      }
    })();

    // ---- the chaos --------------------------------------------------------------------------
    const storms = new Map<FaultKind, number>();
    const applyStorms = (): void => {
      const merged: Record<string, number> = { ...BASE_FAULTS };
      for (const kind of storms.keys()) {
        for (const [k, v] of Object.entries(STORMS[kind] ?? {}))
          merged[k] = Math.max(merged[k] ?? 0, v);
      }
      fake.configure({ faults: merged });
    };
    const inject = async (event: ChaosEvent): Promise<void> => {
      const startedAt = Date.now();
      let victim: string | undefined;
      let killedAt: number | undefined;
      switch (event.kind) {
        case 'worker_kill': {
          const worker = cluster.workers[event.target]!;
          victim = `${worker.name}/${worker.pid}`;
          // Mid-job at its worst: right after the API accepted one of this worker's sends,
          // before the worker can record it (or after 3 s, whatever it is doing then).
          const name = victim;
          await within(new Promise<void>((resolve) => acceptWaiters.set(name, resolve)), 3_000);
          acceptWaiters.delete(name);
          killedAt = Date.now();
          await worker.kill();
          await sleep(event.durationMs);
          await worker.start();
          break;
        }
        case 'receiver_restart':
          victim = `receiver/${cluster.receiver.pid}`;
          killedAt = Date.now();
          await cluster.receiver.kill();
          await sleep(event.durationMs);
          await cluster.receiver.start();
          break;
        case 'redis_kill':
          await redis.kill();
          await sleep(event.durationMs);
          await redis.start();
          break;
        case 'redis_pause':
          await redis.pause(event.durationMs).catch(() => undefined);
          await sleep(event.durationMs);
          break;
        case 'proxy_cut':
          proxy.cut();
          break;
        case 'proxy_drop':
          proxy.loseReplies(5);
          break;
        case 'proxy_refuse':
          proxy.refuse(true);
          await sleep(event.durationMs);
          proxy.refuse(false);
          proxy.cut();
          break;
        case 'server_errors':
        case 'throttle_burst':
        case 'hung_requests':
          storms.set(event.kind, (storms.get(event.kind) ?? 0) + 1);
          applyStorms();
          await sleep(event.durationMs);
          if (storms.get(event.kind) === 1) storms.delete(event.kind);
          else storms.set(event.kind, storms.get(event.kind)! - 1);
          applyStorms();
          break;
        case 'failed_after_accept':
        case 'answer_lost':
        case 'status_delay':
        case 'status_drop': {
          const window = WINDOWS[event.kind];
          windows[window] = true;
          await sleep(event.durationMs);
          windows[window] = false;
          break;
        }
        case 'webhook_mess':
          fake.configure({ duplicateShare: 0.5, reorderShare: 1 });
          await sleep(event.durationMs);
          fake.configure({ duplicateShare: 0.05, reorderShare: 0.1 });
          break;
      }
      const fault: InjectedFault = {
        ...event,
        startedAt,
        endedAt: Date.now(),
        ...(victim === undefined ? {} : { victim }),
        ...(killedAt === undefined ? {} : { killedAt }),
      };
      faults.push(fault);
      log(
        `  ${((startedAt - loadStart) / 1000).toFixed(1).padStart(6)} s  ${event.kind}${victim === undefined ? '' : ` ${victim}`} (${fault.endedAt - startedAt} ms)`,
      );
    };
    // One fault of a kind at a time, so that a slow restart can't overlap its own next round.
    const chains = new Map<string, Promise<void>>();
    const timers = schedule.map((event) =>
      setTimeout(() => {
        const lane = event.kind === 'worker_kill' ? `worker-${event.target}` : event.kind;
        const chain = (chains.get(lane) ?? Promise.resolve()).then(() =>
          closing
            ? undefined
            : inject(event).catch((error) => log(`  fault ${event.kind} failed: ${String(error)}`)),
        );
        chains.set(lane, chain);
      }, event.atMs),
    );

    await producer;
    await Promise.all(adds);
    for (const timer of timers) clearTimeout(timer);
    await Promise.all(chains.values());
    log(`soak: load done, ${messages.size} messages enqueued; draining`);

    // ---- the drain --------------------------------------------------------------------------
    fake.configure({ faults: {}, duplicateShare: 0.05, reorderShare: 0.1 });
    for (const window of Object.values(WINDOWS)) windows[window] = false;
    proxy.refuse(false);
    const drainDeadline = Date.now() + resolved.drainMs;
    const dlq = createRedisDeadLetterQueue<unknown>(producerConnection, { prefix: NAMES.dlq });
    // Drained: no job left in the sends queue and no record left in the delivery due index
    // (every message delivered, dead-lettered or reported stuck by a reconciler).
    const dueKey = `{${NAMES.deliveries}:deliveries}:due`;
    const dueCount = () => within(producerConnection.zcard(dueKey), 800);
    let drained = false;
    while (Date.now() < drainDeadline) {
      await within(sweepStalledJobs(queue, { dlq }), 5_000);
      const depth = await depthOf(queue);
      const due = await dueCount();
      if (depth === 0 && due === 0) {
        // A tagged status whose wamid was never stored (its sender killed after the accept)
        // is answered 503 for its first minute, then queued: wait that out, then look again
        // (a late `failed` wakes its record).
        await within(fake.drainWebhooks(), 90_000);
        if ((await depthOf(queue)) === 0 && (await dueCount()) === 0) {
          drained = true;
          break;
        }
      }
      // Deferred and backed-off jobs would come back in their own time; bring them forward.
      if (depth !== 0) await within(queue.promoteJobs(), 2_000);
      await sleep(1_000);
    }
    await within(fake.drainWebhooks(), 90_000);
    clearInterval(sampler);
    log(`soak: ${drained ? 'drained' : 'drain timed out'}; stopping processes`);

    // ---- stop the children, replay the dead-letter files ---------------------------------------
    closing = true;
    await Promise.all([...cluster.workers, cluster.receiver].map((c) => c.stop()));
    const fallbackDir = cluster.config.fallbackDir;
    const files = readdirSync(fallbackDir).filter((f) => f.endsWith('.jsonl'));
    const idsBefore: string[] = [];
    for (const f of files) {
      for (const line of readFileSync(join(fallbackDir, f), 'utf8').split('\n')) {
        if (line.trim() === '') continue;
        try {
          idsBefore.push((JSON.parse(line) as { id: string }).id);
        } catch {
          // A torn line: replayFile counts it as rejected.
        }
      }
    }
    let replayed = 0;
    let rejected = 0;
    for (const f of files) {
      const report = await replayFile<DeadLetterEntry<unknown>>(join(fallbackDir, f), (entry) =>
        dlq.add(entry),
      );
      replayed += report.replayed;
      rejected += report.rejected;
    }
    const leftAfter = readdirSync(fallbackDir).filter(
      (f) => f.endsWith('.jsonl') && readFileSync(join(fallbackDir, f), 'utf8').trim() !== '',
    ).length;

    // ---- read the stores --------------------------------------------------------------------
    const deadLetters: DeadLetterEntry<unknown>[] = [];
    for (let cursor: string | undefined; ; ) {
      const page = await dlq.list({ limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
      deadLetters.push(...page.entries);
      cursor = page.cursor;
      if (cursor === undefined || page.entries.length === 0) break;
    }
    const updates = updatesQueue(producerConnection);
    const queuedUpdates: string[] = [];
    for (let start = 0; ; start += 1000) {
      const jobs = await updates.getJobs(
        ['wait', 'active', 'completed', 'failed', 'delayed', 'prioritized'],
        start,
        start + 999,
      );
      for (const job of jobs) {
        const u = job?.data as { kind?: string; id?: string; status?: string } | undefined;
        if (u?.kind === 'status') queuedUpdates.push(`${u.id}:${u.status}`);
      }
      if (jobs.length < 1000) break;
    }
    await updates.close();
    const deliveries = deliveryStore(producerConnection);
    const records = new Map<string, AuditedAttempt[]>();
    for (const key of messages.keys()) {
      const delivery = await getDelivery(deliveries, key);
      if (delivery !== undefined) {
        records.set(
          key,
          delivery.attempts.map((a) => ({ wamid: a.wamid, status: a.status })),
        );
      }
    }
    const loopEvents: LoopEvent[] = [];
    for (const f of readdirSync(cluster.config.eventsDir)) {
      for (const line of readFileSync(join(cluster.config.eventsDir, f), 'utf8').split('\n')) {
        if (line.trim() !== '') loopEvents.push(JSON.parse(line) as LoopEvent);
      }
    }
    const stillDue = new Set<string>();
    for (const key of await producerConnection.zrange(dueKey, '0', '-1')) stillDue.add(key);
    const pendingJobs = new Map<string, string>();
    for (const job of await queue.getJobs(['wait', 'active', 'delayed', 'prioritized', 'failed'])) {
      if (job?.id !== undefined) pendingJobs.set(job.id, await job.getState());
    }

    const result = audit({
      messages,
      requests,
      finalStatus: fake.finalStatus,
      deadLetters,
      queuedUpdates,
      records,
      pendingJobs,
      faults,
      fallback: { idsBefore, replayed, rejected, leftAfter },
      limits: { perNumber: throughputLimits(PER_NUMBER_LIMIT), pair: PAIR },
      leaseMs: CLIENT_LEASE_MS,
      graceMs: CLOSED_LOOP.graceMs,
      statusArrived,
      loopEvents,
      stillDue,
    });
    const sum = (
      pick: (c: {
        jobsCompleted: number;
        jobsDeferred: number;
        retriesScheduled: number;
        fallbackWrites: number;
      }) => number,
    ) => [...cluster.counters.values()].reduce((a, c) => a + pick(c), 0);
    return {
      options: resolved,
      schedule,
      faults,
      samples: samples.sort((a, b) => a.t - b.t),
      audit: result,
      requests: requests.length,
      accepted: requests.filter((r) => r.outcome === 'accepted').length,
      fakeFaults: { ...fake.faults },
      webhookStats: { ...fake.webhookStats },
      workerCounters: {
        jobsCompleted: sum((c) => c.jobsCompleted),
        jobsDeferred: sum((c) => c.jobsDeferred),
        retriesScheduled: sum((c) => c.retriesScheduled),
        fallbackWrites: sum((c) => c.fallbackWrites),
      },
      drained,
      loadStartedAt: loadStart,
      wallMs: Date.now() - started,
    };
  } finally {
    closing = true;
    await queue.close().catch(() => undefined);
    producerConnection.disconnect();
    await cluster.close();
  }
}
