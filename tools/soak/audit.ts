/**
 * The audit: every logical message, every status update and every rate-limit grant, checked
 * against the fake Cloud API's own log and what the stores hold at the end. Pure: run.ts
 * collects the inputs, this decides.
 */
import type { CloudRequest } from '../../examples/support/fake-whatsapp.js';
import type { ChaosEvent } from './chaos.js';
import { SENT_HEADER, type SendJob, WORKER_HEADER } from './config.js';

/** A fault as it actually ran. */
export interface InjectedFault extends ChaosEvent {
  /** Epoch milliseconds it began and ended (a restarted process: once it was ready again). */
  readonly startedAt: number;
  readonly endedAt: number;
  /** For a killed process: `<slot>/<pid>` of the process that died. */
  readonly victim?: string;
  /** For a killed process: epoch milliseconds of the SIGKILL. */
  readonly killedAt?: number;
}

/** A Cloud API request, with the logical message it carried. */
export interface LoggedRequest extends CloudRequest {
  readonly key: string | undefined;
  /** The code of the `failed` status the fake will post for this accepted message. */
  readonly failCode?: number;
}

/** A dead-letter entry, as far as the audit reads it. */
export interface AuditedDeadLetter {
  readonly id: string;
  readonly source?: string;
  readonly reason: string;
  readonly disposition: string;
  readonly attempts: readonly { readonly reason: string; readonly at: string }[];
}

/** A delivery record's attempt, as far as the audit reads it. */
export interface AuditedAttempt {
  readonly wamid: string | undefined;
  readonly status: string;
}

/** Everything the audit reads. */
export interface AuditInput {
  /** The logical messages the producer enqueued, by key, with when they were enqueued. */
  readonly messages: ReadonlyMap<string, SendJob & { readonly enqueuedAt: number }>;
  readonly requests: readonly LoggedRequest[];
  /** The last status the fake reported per wamid. */
  readonly finalStatus: ReadonlyMap<string, string>;
  readonly deadLetters: readonly AuditedDeadLetter[];
  /** Status updates found in the updates queue, as `<wamid>:<status>` per job. */
  readonly queuedUpdates: readonly string[];
  /** Each message's delivery record attempts (missing: no record). */
  readonly records: ReadonlyMap<string, readonly AuditedAttempt[]>;
  /** BullMQ state of jobs that are still in the sends queue at the end, by key. */
  readonly pendingJobs: ReadonlyMap<string, string>;
  readonly faults: readonly InjectedFault[];
  /** Dead-letter ids read from the fallback files before the replay, and after it. */
  readonly fallback: {
    readonly idsBefore: readonly string[];
    readonly replayed: number;
    readonly rejected: number;
    readonly leftAfter: number;
  };
  readonly limits: {
    readonly perNumber: { readonly capacity: number; readonly refillPerSecond: number };
    readonly pair: { readonly capacity: number; readonly refillPerSecond: number };
  };
  /** Client idempotency lease (ms): how long a dead worker's claim blocks a re-send. */
  readonly leaseMs: number;
}

/** How one logical message ended. */
export type MessageOutcome =
  | 'delivered'
  | 'dead_lettered'
  | 'failed_after_accept'
  | 'pending'
  | 'lost'
  | 'doubled'
  | 'doubled_justified'
  | 'delivered_and_dead_lettered';

/** A message, update or limit that needs a person's eyes, with its timeline. */
export interface Finding {
  readonly kind: string;
  readonly id: string;
  readonly summary: string;
  readonly timeline: readonly string[];
}

/** The audit's result. */
export interface AuditResult {
  readonly messages: number;
  readonly outcomes: Readonly<Record<MessageOutcome, number>>;
  readonly lost: number;
  readonly doubled: number;
  readonly doubledJustified: number;
  readonly updates: {
    readonly expected: number;
    readonly queuedOnce: number;
    readonly missing: number;
    readonly doubled: number;
  };
  readonly statuses: {
    readonly checked: number;
    readonly regressed: number;
    readonly unrecorded: number;
  };
  readonly deadLetters: {
    readonly total: number;
    /** Entries by `<source> <reason>/<disposition>`. */
    readonly byKind: Readonly<Record<string, number>>;
    readonly withoutHistory: number;
    readonly fallbackIds: number;
    readonly fallbackMissingFromQueue: number;
    readonly fallbackLeft: number;
  };
  readonly rate: {
    readonly numberExcess: number;
    readonly pairExcess: number;
    readonly worstNumber: string;
    readonly worstPair: string;
  };
  readonly findings: readonly Finding[];
  readonly verdict: string;
  /** `true` when nothing was lost, nothing doubled outside a documented window, and every check held. */
  readonly ok: boolean;
}

const RANK: Readonly<Record<string, number>> = {
  pending: 0,
  accepted: 1,
  sent: 2,
  delivered: 3,
  read: 4,
  played: 4,
  failed: 5,
};

/** Codes the fake posts as `failed` that classifyWhatsAppError calls permanent. */
const PERMANENT_FAIL_CODES = new Set([131026]);

function iso(ms: number): string {
  return new Date(ms).toISOString().slice(11, 23);
}

/** The statuses the fake posts for a message, from its final status. */
function expectedStatuses(final: string): string[] {
  if (final === 'failed') return ['sent', 'failed'];
  if (final === 'read') return ['sent', 'delivered', 'read'];
  return ['sent', 'delivered'];
}

/**
 * How far the grants `times` (sorted, ms) go past `capacity + refillPerSecond · t` over any
 * window `t` between two grants: 0 when the bound holds.
 */
export function bucketExcess(
  times: readonly number[],
  capacity: number,
  refillPerSecond: number,
): number {
  let worst = 0;
  for (let j = 0; j < times.length; j++) {
    for (let i = j; i >= 0; i--) {
      const allowed = capacity + (refillPerSecond * (times[j]! - times[i]!)) / 1000;
      worst = Math.max(worst, j - i + 1 - allowed);
    }
  }
  return Math.max(0, Math.floor(worst + 1e-9));
}

/** Runs every check. */
export function audit(input: AuditInput): AuditResult {
  const findings: Finding[] = [];
  const byKey = new Map<string, LoggedRequest[]>();
  for (const r of input.requests) {
    if (r.key === undefined) continue;
    const list = byKey.get(r.key) ?? [];
    list.push(r);
    byKey.set(r.key, list);
  }
  const letters = new Map<string, AuditedDeadLetter[]>();
  for (const entry of input.deadLetters) {
    const key = entry.id.startsWith('sends:') ? entry.id.slice('sends:'.length) : entry.id;
    letters.set(key, [...(letters.get(key) ?? []), entry]);
  }
  const faultsNear = (from: number, to: number): [number, string][] =>
    input.faults
      .filter((f) => f.startedAt <= to && f.endedAt >= from)
      .map((f) => [
        f.startedAt,
        `fault ${f.kind}${f.victim === undefined ? '' : ` (${f.victim})`} until ${iso(f.endedAt)}`,
      ]);
  const timelineOf = (key: string): string[] => {
    const message = input.messages.get(key);
    const lines: [number, string][] = [];
    if (message !== undefined) {
      lines.push([
        message.enqueuedAt,
        `enqueued (number ${message.phoneNumberId}, to ${message.to})`,
      ]);
    }
    for (const r of byKey.get(key) ?? []) {
      const worker = String(r.headers[WORKER_HEADER] ?? '?');
      const extra =
        r.wamid === undefined
          ? ''
          : ` ${r.wamid} → final ${input.finalStatus.get(r.wamid) ?? '?'}${r.failCode === undefined ? '' : ` (${r.failCode})`}`;
      lines.push([r.at, `request from ${worker}: ${r.outcome}${extra}`]);
    }
    for (const entry of letters.get(key) ?? []) {
      lines.push([
        Date.parse(entry.attempts.at(-1)?.at ?? '') || 0,
        `dead letter ${entry.id} (${entry.source ?? '?'}, ${entry.reason}, ${entry.disposition}, ${entry.attempts.length} attempts)`,
      ]);
    }
    const state = input.pendingJobs.get(key);
    if (state !== undefined) lines.push([Number.MAX_SAFE_INTEGER, `job still ${state} at the end`]);
    const times = lines.map(([t]) => t).filter((t) => t > 0 && t < Number.MAX_SAFE_INTEGER);
    if (times.length > 0) {
      lines.push(...faultsNear(Math.min(...times) - 1000, Math.max(...times) + 1000));
    }
    return lines
      .sort((a, b) => a[0] - b[0])
      .map(([t, s]) =>
        t > 0 && t < Number.MAX_SAFE_INTEGER ? `${iso(t)} ${s}` : `${''.padEnd(12)} ${s}`,
      );
  };

  const outcomes: Record<MessageOutcome, number> = {
    delivered: 0,
    dead_lettered: 0,
    failed_after_accept: 0,
    pending: 0,
    lost: 0,
    doubled: 0,
    doubled_justified: 0,
    delivered_and_dead_lettered: 0,
  };
  for (const key of input.messages.keys()) {
    const requests = byKey.get(key) ?? [];
    const accepts = requests.filter((r) => r.outcome === 'accepted');
    const good = accepts.filter((r) => input.finalStatus.get(r.wamid!) !== 'failed');
    const dead = letters.get(key) ?? [];
    let outcome: MessageOutcome;
    let summary = '';
    if (good.length === 1) {
      outcome = dead.length > 0 ? 'delivered_and_dead_lettered' : 'delivered';
      if (outcome !== 'delivered') summary = 'delivered once, yet also dead-lettered';
    } else if (good.length > 1) {
      // The documented window: an accepted request whose answer never reached a live holder
      // (the worker died after Meta accepted, before the result was recorded), so the claim
      // ran out and the message went again.
      const first = good[0]!;
      const worker = String(first.headers[WORKER_HEADER] ?? '');
      const killed = input.faults.find((f) => {
        const at = f.killedAt ?? f.startedAt;
        return f.victim === worker && at >= first.at && at <= first.at + input.leaseMs;
      });
      outcome = killed === undefined ? 'doubled' : 'doubled_justified';
      summary =
        killed === undefined
          ? `accepted ${good.length} times`
          : `accepted ${good.length} times: ${worker} was SIGKILLed ${(killed.killedAt ?? killed.startedAt) - first.at} ms after the first accept, before it recorded the result, and the send ran again once the idempotency lease ran out (docs/guarantees.md: the answer lost after Meta accepted)`;
    } else if (accepts.length > 0) {
      const permanent = accepts.every((r) => PERMANENT_FAIL_CODES.has(r.failCode ?? -1));
      if (permanent && dead.length > 0) outcome = 'dead_lettered';
      else if (!permanent) outcome = 'failed_after_accept';
      else {
        outcome = 'lost';
        summary = 'accepted, failed permanently, and not dead-lettered';
      }
    } else if (dead.length > 0) {
      outcome = 'dead_lettered';
    } else if (input.pendingJobs.has(key)) {
      outcome = 'pending';
      summary = `still ${input.pendingJobs.get(key)} in the sends queue at the end`;
    } else {
      outcome = 'lost';
      summary = 'never accepted, not dead-lettered, not in the queue';
    }
    for (const entry of dead) {
      if (entry.attempts.length === 0) {
        findings.push({
          kind: 'dead letter without history',
          id: key,
          summary: `${entry.id} has no attempts`,
          timeline: timelineOf(key),
        });
      }
    }
    outcomes[outcome]++;
    if (
      outcome !== 'delivered' &&
      outcome !== 'dead_lettered' &&
      outcome !== 'failed_after_accept'
    ) {
      findings.push({ kind: outcome, id: key, summary, timeline: timelineOf(key) });
    }
  }

  // Status updates: each queued exactly once.
  const queued = new Map<string, number>();
  for (const u of input.queuedUpdates) queued.set(u, (queued.get(u) ?? 0) + 1);
  let expected = 0;
  let queuedOnce = 0;
  let missing = 0;
  let updatesDoubled = 0;
  for (const r of input.requests) {
    if (r.outcome !== 'accepted' || r.wamid === undefined) continue;
    for (const status of expectedStatuses(input.finalStatus.get(r.wamid) ?? 'delivered')) {
      expected++;
      const n = queued.get(`${r.wamid}:${status}`) ?? 0;
      if (n === 1) queuedOnce++;
      else {
        if (n === 0) missing++;
        else updatesDoubled++;
        findings.push({
          kind: n === 0 ? 'update not queued' : 'update queued twice',
          id: `${r.wamid}:${status}`,
          summary: `${r.key ?? '?'}: status ${status} of ${r.wamid} queued ${n} times`,
          timeline: r.key === undefined ? [] : timelineOf(r.key),
        });
      }
    }
  }

  // Statuses never move back: each recorded send ends on the fake's final status.
  let checked = 0;
  let regressed = 0;
  let unrecorded = 0;
  for (const r of input.requests) {
    if (r.outcome !== 'accepted' || r.wamid === undefined || r.key === undefined) continue;
    const attempt = input.records.get(r.key)?.find((a) => a.wamid === r.wamid);
    if (attempt === undefined) {
      unrecorded++;
      continue;
    }
    checked++;
    const final = input.finalStatus.get(r.wamid) ?? 'delivered';
    if ((RANK[attempt.status] ?? 0) !== RANK[final]) {
      regressed++;
      findings.push({
        kind: 'status off its final',
        id: r.key,
        summary: `${r.wamid} recorded ${attempt.status}, the API's final status is ${final}`,
        timeline: timelineOf(r.key),
      });
    }
  }

  // Dead letters and the fallback files.
  const inQueue = new Set(input.deadLetters.map((e) => e.id));
  const fallbackMissing = input.fallback.idsBefore.filter((id) => !inQueue.has(id));
  for (const id of fallbackMissing) {
    findings.push({
      kind: 'fallback entry not in the queue',
      id,
      summary: 'written to a fallback file, missing from the Redis queue after the replay',
      timeline: [],
    });
  }
  const withoutHistory = input.deadLetters.filter((e) => e.attempts.length === 0).length;
  const byKind: Record<string, number> = {};
  for (const e of input.deadLetters) {
    const kind = `${e.source ?? '?'} ${e.reason}/${e.disposition}`;
    byKind[kind] = (byKind[kind] ?? 0) + 1;
  }

  // Rate limits, on departures.
  const perNumber = new Map<string, number[]>();
  const perPair = new Map<string, number[]>();
  for (const r of input.requests) {
    const sent = Number(r.headers[SENT_HEADER]);
    if (!Number.isFinite(sent)) continue;
    perNumber.set(r.phoneNumberId, [...(perNumber.get(r.phoneNumberId) ?? []), sent]);
  }
  // The pair bucket is taken once per job run (wrapProcessor's limiter), so pair departures
  // are counted per first request of a run: requests of one key more than 3 s apart.
  for (const [key, requests] of byKey) {
    const message = input.messages.get(key);
    if (message === undefined) continue;
    const pair = `${message.phoneNumberId}:${message.to}`;
    let last = Number.NEGATIVE_INFINITY;
    for (const r of requests) {
      if (r.at - last > 3_000) perPair.set(pair, [...(perPair.get(pair) ?? []), r.at]);
      last = r.at;
    }
  }
  const worst = (
    groups: Map<string, number[]>,
    limits: { capacity: number; refillPerSecond: number },
  ): [number, string] => {
    let excess = 0;
    let name = '—';
    for (const [k, times] of groups) {
      times.sort((a, b) => a - b);
      const e = bucketExcess(times, limits.capacity, limits.refillPerSecond);
      if (e > excess) {
        excess = e;
        name = k;
      }
    }
    return [excess, name];
  };
  const [numberExcess, worstNumber] = worst(perNumber, input.limits.perNumber);
  const [pairExcess, worstPair] = worst(perPair, input.limits.pair);
  if (numberExcess > 0) {
    findings.push({
      kind: 'rate limit exceeded',
      id: worstNumber,
      summary: `${numberExcess} requests of number ${worstNumber} beyond capacity + rate · t`,
      timeline: [],
    });
  }

  const lost = outcomes.lost;
  const doubled = outcomes.doubled + outcomes.delivered_and_dead_lettered;
  const ok =
    lost === 0 &&
    doubled === 0 &&
    missing === 0 &&
    updatesDoubled === 0 &&
    regressed === 0 &&
    fallbackMissing.length === 0 &&
    input.fallback.leftAfter === 0 &&
    withoutHistory === 0 &&
    numberExcess === 0;
  return {
    messages: input.messages.size,
    outcomes,
    lost,
    doubled,
    doubledJustified: outcomes.doubled_justified,
    updates: { expected, queuedOnce, missing, doubled: updatesDoubled },
    statuses: { checked, regressed, unrecorded },
    deadLetters: {
      total: input.deadLetters.length,
      byKind,
      withoutHistory,
      fallbackIds: input.fallback.idsBefore.length,
      fallbackMissingFromQueue: fallbackMissing.length,
      fallbackLeft: input.fallback.leftAfter,
    },
    rate: { numberExcess, pairExcess, worstNumber, worstPair },
    findings,
    verdict: `lost ${lost}, doubled ${doubled}`,
    ok,
  };
}
