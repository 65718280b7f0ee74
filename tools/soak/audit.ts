/**
 * The audit: every logical message, every status update and every rate-limit grant, checked
 * against the fake Cloud API's own log and what the stores hold at the end. Pure: run.ts
 * collects the inputs, this decides.
 */
import type { CloudRequest } from '../../examples/support/fake-whatsapp.js';
import type { ChaosEvent } from './chaos.js';
import { type LoopEvent, SENT_HEADER, type SendJob, WORKER_HEADER } from './config.js';

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
  /** Extra delay of this accepted message's statuses (ms). */
  readonly statusDelayMs?: number;
  /** This accepted message's statuses are never posted. */
  readonly statusesDropped?: boolean;
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
  /** The client's and reconcilers' `timeoutGraceMs`. */
  readonly graceMs: number;
  /** When the receiver first answered 200 to a webhook with a status of each wamid. */
  readonly statusArrived: ReadonlyMap<string, number>;
  /** The reconcilers' `message_stuck` and `message_resent` events. */
  readonly loopEvents: readonly LoopEvent[];
  /** Keys still in the delivery due index at the end (the loop not done with them). */
  readonly stillDue: ReadonlySet<string>;
}

/** How one logical message ended. */
export type MessageOutcome =
  | 'delivered'
  | 'dead_lettered'
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
  /** Justified doubles by window: `held` (statuses after the grace), `killed` (sender died). */
  readonly justified: { readonly held: number; readonly killed: number };
  /** Messages sent again by a reconciler, by cause; sends after an accept without cause. */
  readonly resends: {
    readonly afterFailed: number;
    readonly unconfirmed: number;
    readonly withoutCause: number;
  };
  /** Accepted sends whose statuses were dropped, against the reconcilers' alerts. */
  readonly stuck: {
    readonly expected: number;
    readonly alerted: number;
    readonly missing: number;
    /** Alerts for a message whose statuses were not dropped. */
    readonly unexpected: number;
    /** Alerts beyond one per message. */
    readonly repeated: number;
  };
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

/** Outcomes of requests the fake accepted (the last two: their answer was lost). */
const ACCEPTED = new Set(['accepted', 'drop_after_accept', 'hang_after_accept']);

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
  const loopEvents = new Map<string, LoopEvent[]>();
  for (const e of input.loopEvents) loopEvents.set(e.key, [...(loopEvents.get(e.key) ?? []), e]);
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
      const fate = r.statusesDropped
        ? ', statuses dropped'
        : r.statusDelayMs === undefined
          ? ''
          : `, statuses delayed ${r.statusDelayMs} ms`;
      const extra =
        r.wamid === undefined
          ? ''
          : ` ${r.wamid} → final ${input.finalStatus.get(r.wamid) ?? 'none'}${r.failCode === undefined ? '' : ` (${r.failCode})`}${fate}`;
      lines.push([r.at, `request from ${worker}: ${r.outcome}${extra}`]);
      const arrived = r.wamid === undefined ? undefined : input.statusArrived.get(r.wamid);
      if (arrived !== undefined) lines.push([arrived, `first status of ${r.wamid} answered 200`]);
    }
    for (const e of loopEvents.get(key) ?? []) {
      lines.push([
        e.at,
        `${e.type} by ${e.by}${e.cause === undefined ? '' : ` (${e.cause}, ${e.attemptId})`}${e.messageId === undefined ? '' : ` ${e.messageId}`}`,
      ]);
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
    pending: 0,
    lost: 0,
    doubled: 0,
    doubled_justified: 0,
    delivered_and_dead_lettered: 0,
  };
  const justified = { held: 0, killed: 0 };
  let withoutCause = 0;
  const stuck = { expected: 0, alerted: 0, missing: 0, unexpected: 0, repeated: 0 };
  const stuckExpected = new Set<string>();

  /**
   * Why `later` (a request for the same message) could follow the accepted send `first`, or
   * `undefined`: it couldn't. None of `first`'s statuses had reached the receiver when the
   * message went again (else the record knew it was accepted), and one of the two windows
   * docs/guarantees.md names: the sender of `first` was SIGKILLed after the accept, before it
   * recorded the result (the job ran again once the idempotency lease ran out); or `first`'s
   * answer was lost (held) and the message went again `graceMs` or more later.
   */
  const windowOf = (
    first: LoggedRequest,
    later: LoggedRequest,
  ): { kind: 'killed' | 'held'; why: string } | undefined => {
    const worker = String(first.headers[WORKER_HEADER] ?? '');
    const arrived = input.statusArrived.get(first.wamid ?? '');
    const unseen = arrived === undefined || arrived >= later.at;
    const killed = input.faults.find((f) => {
      const at = f.killedAt ?? f.startedAt;
      return f.victim === worker && at >= first.at && at <= first.at + input.leaseMs;
    });
    // A status of the send that reached the receiver first gave the record its wamid (by the
    // tag): the job's retry finds it there and sends nothing.
    if (killed !== undefined && unseen) {
      return {
        kind: 'killed',
        why: `${worker} was SIGKILLed ${(killed.killedAt ?? killed.startedAt) - first.at} ms after the accept of ${first.wamid}, before it recorded the result, none of its statuses had reached the receiver when the message went again once the idempotency lease ran out (docs/guarantees.md: a process that died after Meta accepted)`,
      };
    }
    const gap = later.at - first.at;
    if (unseen && gap >= input.graceMs) {
      const answer =
        first.outcome === 'accepted'
          ? 'its answer came too late for the client (timed out)'
          : `its answer was lost (${first.outcome})`;
      const statuses =
        arrived === undefined
          ? 'none of its statuses ever reached the receiver'
          : `its first status reached the receiver ${arrived - first.at} ms after the send`;
      return {
        kind: 'held',
        why: `${first.wamid} was accepted but ${answer}; held, and ${statuses}, so it was sent again ${gap} ms later, past the ${input.graceMs} ms grace window (docs/guarantees.md: a held send whose statuses arrive after timeoutGraceMs)`,
      };
    }
    return undefined;
  };

  for (const key of input.messages.keys()) {
    const requests = byKey.get(key) ?? [];
    const accepts = requests.filter((r) => ACCEPTED.has(r.outcome));
    const good = accepts.filter((r) => input.finalStatus.get(r.wamid!) !== 'failed');
    const dead = letters.get(key) ?? [];
    const pending = input.pendingJobs.get(key) ?? (input.stillDue.has(key) ? 'due' : undefined);
    let outcome: MessageOutcome;
    let summary = '';
    // Every request after a send that was accepted and not reported failed needs a window.
    const reasons: string[] = [];
    let unexplained = false;
    for (const later of requests) {
      const before = good.filter((g) => g.at < later.at);
      if (before.length === 0) continue;
      const window = windowOf(before.at(-1)!, later);
      if (window === undefined) unexplained = true;
      else if (!reasons.includes(window.why)) reasons.push(window.why);
    }
    if (unexplained) withoutCause++;
    if (good.length === 1 && dead.length === 0) {
      outcome = 'delivered';
    } else if (good.length >= 1) {
      const windows = good.slice(1).map((g, i) => windowOf(good[i]!, g));
      if (good.length > 1 && dead.length === 0 && windows.every((w) => w !== undefined)) {
        outcome = 'doubled_justified';
        for (const w of windows) justified[w!.kind]++;
        summary = `accepted ${good.length} times: ${windows.map((w) => w!.why).join('; ')}`;
      } else if (good.length === 1) {
        outcome = 'delivered_and_dead_lettered';
        summary = 'delivered once, yet also dead-lettered';
      } else {
        outcome = 'doubled';
        summary = `accepted ${good.length} times${dead.length > 0 ? ' and dead-lettered' : ''}, not inside a documented window`;
      }
    } else if (dead.length > 0) {
      // Never delivered: its sends failed in the call, or were reported failed (the handler
      // dead-letters a permanent code, a reconciler a message whose sends ran out).
      outcome = 'dead_lettered';
    } else if (pending !== undefined) {
      outcome = 'pending';
      summary = `still ${pending === 'due' ? 'in the delivery due index' : `${pending} in the sends queue`} at the end`;
    } else {
      outcome = 'lost';
      summary =
        accepts.length > 0
          ? `accepted ${accepts.length} times, every send reported failed, not sent again and not dead-lettered`
          : 'never accepted, not dead-lettered, not in the queue';
    }
    if (unexplained && outcome !== 'doubled') {
      findings.push({
        kind: 'sent again without cause',
        id: key,
        summary:
          'a request followed a send that was accepted and not reported failed, outside the documented windows',
        timeline: timelineOf(key),
      });
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
    // A send left without statuses is reported stuck, once: the last accepted send, if its
    // answer reached the client (a held one is sent again instead) and no other send of the
    // message reached the phone.
    const last = accepts.at(-1);
    if (
      last?.statusesDropped === true &&
      last.outcome === 'accepted' &&
      !good.some((a) => a !== last && !a.statusesDropped)
    ) {
      stuckExpected.add(key);
    }
    outcomes[outcome]++;
    if (outcome !== 'delivered' && outcome !== 'dead_lettered') {
      findings.push({
        kind: outcome,
        id: key,
        summary:
          reasons.length > 0 && outcome === 'doubled'
            ? `${summary}; ${reasons.join('; ')}`
            : summary,
        timeline: timelineOf(key),
      });
    }
  }

  // Stuck alerts: one per message whose statuses were dropped, none for the others.
  const alerts = new Map<string, number>();
  for (const e of input.loopEvents) {
    if (e.type === 'message_stuck') alerts.set(e.key, (alerts.get(e.key) ?? 0) + 1);
  }
  stuck.expected = stuckExpected.size;
  for (const key of stuckExpected) {
    if ((alerts.get(key) ?? 0) > 0) stuck.alerted++;
    else {
      stuck.missing++;
      findings.push({
        kind: 'stuck not alerted',
        id: key,
        summary: 'its statuses were dropped, and no reconciler reported it stuck',
        timeline: timelineOf(key),
      });
    }
  }
  for (const [key, n] of alerts) {
    if (n > 1) {
      stuck.repeated += n - 1;
      findings.push({
        kind: 'stuck alerted twice',
        id: key,
        summary: `${n} message_stuck events`,
        timeline: timelineOf(key),
      });
    }
    if (!stuckExpected.has(key)) {
      stuck.unexpected++;
      findings.push({
        kind: 'stuck alert without dropped statuses',
        id: key,
        summary: 'reported stuck though its statuses were posted',
        timeline: timelineOf(key),
      });
    }
  }
  const resentBy = (cause: string): number =>
    new Set(
      input.loopEvents
        .filter((e) => e.type === 'message_resent' && e.cause === cause)
        .map((e) => e.key),
    ).size;

  // Status updates: each queued exactly once.
  const queued = new Map<string, number>();
  for (const u of input.queuedUpdates) queued.set(u, (queued.get(u) ?? 0) + 1);
  let expected = 0;
  let queuedOnce = 0;
  let missing = 0;
  let updatesDoubled = 0;
  for (const r of input.requests) {
    if (!ACCEPTED.has(r.outcome) || r.wamid === undefined) continue;
    if (r.statusesDropped) continue;
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
    if (!ACCEPTED.has(r.outcome) || r.wamid === undefined || r.key === undefined) continue;
    const attempt = input.records.get(r.key)?.find((a) => a.wamid === r.wamid);
    if (attempt === undefined) {
      unrecorded++;
      continue;
    }
    checked++;
    const final = r.statusesDropped ? 'accepted' : (input.finalStatus.get(r.wamid) ?? 'delivered');
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
    numberExcess === 0 &&
    withoutCause === 0 &&
    stuck.missing === 0 &&
    stuck.repeated === 0;
  return {
    messages: input.messages.size,
    outcomes,
    lost,
    doubled,
    doubledJustified: outcomes.doubled_justified,
    justified,
    resends: {
      afterFailed: resentBy('failed'),
      unconfirmed: resentBy('unconfirmed'),
      withoutCause,
    },
    stuck,
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
