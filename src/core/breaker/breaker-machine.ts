import type {
  CircuitAdmission,
  CircuitOutcome,
  CircuitPolicy,
  CircuitState,
  CircuitStatus,
  CircuitTicket,
} from './breaker-types.js';

/**
 * One key's circuit as a store keeps it. The memory store holds these; the Redis store keeps
 * the same fields in a hash, and `src/redis/scripts/circuit-breaker.lua` runs the functions
 * below step for step.
 */
export interface CircuitRecord {
  state: CircuitState;
  /** Bumped on every change of state: a result carrying an older one is dropped. */
  epoch: number;
  /** When the break ends (while `open`), in milliseconds. */
  openUntil: number;
  /** Breaks since the circuit last closed: the next break is `breakMultiplier^(opens)` longer. */
  opens: number;
  /** Counted failures in a row (closed). */
  consecutive: number;
  /** Probe successes (half-open). */
  successes: number;
  /** Admission times of the probes in flight (half-open). */
  probes: number[];
  /** The window: per slot, its number (`floor(time / slotMs)`), calls and failures. */
  slotIds: number[];
  calls: number[];
  failures: number[];
}

/** A closed circuit with empty counts: what a key nobody has seen stands for. */
export function newCircuitRecord(policy: CircuitPolicy): CircuitRecord {
  return {
    state: 'closed',
    epoch: 0,
    openUntil: 0,
    opens: 0,
    consecutive: 0,
    successes: 0,
    probes: [],
    slotIds: new Array<number>(policy.windowSlots).fill(Number.NEGATIVE_INFINITY),
    calls: new Array<number>(policy.windowSlots).fill(0),
    failures: new Array<number>(policy.windowSlots).fill(0),
  };
}

/** The length of the `opens`-th break (1-based), in whole milliseconds. */
export function breakDuration(policy: CircuitPolicy, opens: number): number {
  const grown = policy.breakDurationMs * policy.breakMultiplier ** Math.max(0, opens - 1);
  return Math.floor(Math.min(policy.maxBreakDurationMs, grown));
}

function slotOf(policy: CircuitPolicy, now: number): number {
  return Math.floor(now / (policy.windowMs / policy.windowSlots));
}

/** Calls and failures in the window ending at `now`. */
export function windowCounts(
  r: CircuitRecord,
  policy: CircuitPolicy,
  now: number,
): { calls: number; failures: number } {
  const current = slotOf(policy, now);
  let calls = 0;
  let failures = 0;
  for (let i = 0; i < r.slotIds.length; i++) {
    const id = r.slotIds[i] as number;
    if (id > current - policy.windowSlots && id <= current) {
      calls += r.calls[i] as number;
      failures += r.failures[i] as number;
    }
  }
  return { calls, failures };
}

function count(r: CircuitRecord, policy: CircuitPolicy, now: number, failed: boolean): void {
  const id = slotOf(policy, now);
  const n = policy.windowSlots;
  const i = ((id % n) + n) % n;
  if (r.slotIds[i] !== id) {
    r.slotIds[i] = id;
    r.calls[i] = 0;
    r.failures[i] = 0;
  }
  r.calls[i] = (r.calls[i] as number) + 1;
  if (failed) r.failures[i] = (r.failures[i] as number) + 1;
}

function clearCounts(r: CircuitRecord): void {
  r.consecutive = 0;
  r.successes = 0;
  r.probes = [];
  r.slotIds.fill(Number.NEGATIVE_INFINITY);
  r.calls.fill(0);
  r.failures.fill(0);
}

function open(r: CircuitRecord, policy: CircuitPolicy, now: number): void {
  r.state = 'open';
  r.epoch++;
  r.opens++;
  r.openUntil = now + breakDuration(policy, r.opens);
  clearCounts(r);
}

function status(r: CircuitRecord, now: number, from?: CircuitState): CircuitStatus {
  const base = {
    state: r.state,
    openUntil: r.state === 'open' ? r.openUntil : undefined,
    time: now,
  };
  return from === undefined || from === r.state
    ? base
    : { ...base, transition: { from, to: r.state } };
}

/** Drops probes whose place `probeTimeoutMs` has freed. */
function expireProbes(r: CircuitRecord, policy: CircuitPolicy, now: number): void {
  if (r.probes.length === 0) return;
  r.probes = r.probes.filter((t) => t + policy.probeTimeoutMs > now);
}

/**
 * Lets a call through or refuses it: an open circuit whose break has ended turns half-open
 * first; half-open admits up to `halfOpenMaxCalls` probes at once.
 */
export function admitCall(r: CircuitRecord, policy: CircuitPolicy, now: number): CircuitAdmission {
  const from = r.state;
  if (r.state === 'open') {
    if (now < r.openUntil) {
      return { ...status(r, now), ok: false, retryAfterMs: r.openUntil - now };
    }
    r.state = 'half_open';
    r.epoch++;
    clearCounts(r);
  }
  if (r.state === 'half_open') {
    expireProbes(r, policy, now);
    if (r.probes.length >= policy.halfOpenMaxCalls) {
      const oldest = Math.min(...r.probes);
      return {
        ...status(r, now, from),
        ok: false,
        retryAfterMs: Math.min(
          policy.breakDurationMs,
          Math.max(0, oldest + policy.probeTimeoutMs - now),
        ),
      };
    }
    r.probes.push(now);
    return { ...status(r, now, from), ok: true, ticket: { epoch: r.epoch, probe: true } };
  }
  return { ...status(r, now), ok: true, ticket: { epoch: r.epoch, probe: false } };
}

/**
 * Records how an admitted call ended. A result from an older generation (the circuit changed
 * state since the call was admitted) is dropped. Closed: a counted failure opens the circuit
 * when `consecutiveFailures` are reached, or when the window holds at least `minimumCalls`
 * and its failure ratio reaches `failureRatio`. Half-open: a failure opens it again for a
 * longer break; `halfOpenSuccesses` successes close it.
 */
export function recordOutcome(
  r: CircuitRecord,
  policy: CircuitPolicy,
  ticket: CircuitTicket,
  outcome: CircuitOutcome,
  now: number,
): CircuitStatus {
  const from = r.state;
  if (ticket.epoch !== r.epoch) return status(r, now);
  if (r.state === 'half_open') {
    if (!ticket.probe) return status(r, now);
    r.probes.shift();
    if (outcome === 'failure') {
      open(r, policy, now);
    } else if (outcome === 'success') {
      r.successes++;
      if (r.successes >= policy.halfOpenSuccesses) {
        r.state = 'closed';
        r.epoch++;
        r.opens = 0;
        clearCounts(r);
      }
    }
    return status(r, now, from);
  }
  if (r.state !== 'closed' || outcome === 'ignored') return status(r, now);
  const failed = outcome === 'failure';
  count(r, policy, now, failed);
  if (!failed) {
    r.consecutive = 0;
    return status(r, now);
  }
  r.consecutive++;
  const { calls, failures } = windowCounts(r, policy, now);
  if (
    r.consecutive >= policy.consecutiveFailures ||
    (calls >= policy.minimumCalls && failures / calls >= policy.failureRatio)
  ) {
    open(r, policy, now);
  }
  return status(r, now, from);
}

/** `true` when the record says nothing a new one would not (it may be forgotten). */
export function isIdle(r: CircuitRecord, policy: CircuitPolicy, now: number): boolean {
  return r.state === 'closed' && r.opens === 0 && windowCounts(r, policy, now).calls === 0;
}
