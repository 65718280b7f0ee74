import { seededRandom } from '../../src/testing/index.js';
import { EventQueue } from './heap.js';
import { delayFunction, type Growth, networkDelay, type Strategy } from './strategies.js';

/**
 * Scenario 1, after Marc Brooker's simulation for "Exponential Backoff And Jitter": N clients
 * each update one row under optimistic concurrency. A client reads the row's version, then
 * writes with that version; the write succeeds only if no other write landed in between, so the
 * row admits one writer per round trip and overlapping clients conflict and retry.
 */
export interface ContentionOptions {
  /** Clients contending for the row. */
  readonly clients: number;
  readonly strategy: Strategy;
  readonly seed: number;
  /** Backoff growth. @default CONTENTION_GROWTH */
  readonly growth?: Growth;
  /** Mean one-way network delay in milliseconds. @default 10 */
  readonly netMeanMs?: number;
  /** Standard deviation of the one-way network delay in milliseconds. @default 2 */
  readonly netSdMs?: number;
}

/** What one run of scenario 1 measured. */
export interface ContentionResult {
  /** Write calls the server received, conflicts included. */
  readonly calls: number;
  /** Milliseconds from the start until the last client has its success response. */
  readonly completionMs: number;
}

/**
 * Brooker's parameters: a 10 ms first retry delay doubling to a 2 s cap (his `base = 5` with
 * his attempt counter starting at 1 gives the same 10, 20, 40… schedule).
 */
export const CONTENTION_GROWTH: Growth = Object.freeze({
  initialDelayMs: 10,
  multiplier: 2,
  maxDelayMs: 2000,
});

const READ = 0;
const WRITE = 1;
const WRITE_REPLY = 2;

interface Message {
  readonly kind: typeof READ | typeof WRITE | typeof WRITE_REPLY;
  readonly client: number;
  /** The version the client read (WRITE) or whether the write won (WRITE_REPLY: 1 or 0). */
  readonly value: number;
}

/** Runs scenario 1 once. */
export function runContention(options: ContentionOptions): ContentionResult {
  const { clients, strategy, seed } = options;
  const mean = options.netMeanMs ?? 10;
  const sd = options.netSdMs ?? 2;
  const random = seededRandom(seed);
  const backoff = delayFunction(strategy, options.growth ?? CONTENTION_GROWTH, random);
  const net = (): number => networkDelay(random, mean, sd);
  const attempts = new Int32Array(clients);
  const previousDelay = new Float64Array(clients);
  const queue = new EventQueue<Message>();
  let version = 0;
  let calls = 0;
  let now = 0;

  for (let client = 0; client < clients; client++) {
    queue.push(net(), { kind: READ, client, value: 0 });
  }
  for (;;) {
    const time = queue.peekTime();
    const message = queue.pop();
    if (message === undefined) break;
    now = time;
    const { client } = message;
    switch (message.kind) {
      case READ:
        // The reply carries the version; the client sends its write as soon as it arrives.
        queue.push(now + net() + net(), { kind: WRITE, client, value: version });
        break;
      case WRITE: {
        calls++;
        const won = message.value === version;
        if (won) version++;
        queue.push(now + net(), { kind: WRITE_REPLY, client, value: won ? 1 : 0 });
        break;
      }
      case WRITE_REPLY: {
        if (message.value === 1) break;
        const attempt = attempts[client]!;
        const delay = backoff(attempt, attempt === 0 ? undefined : previousDelay[client]);
        attempts[client] = attempt + 1;
        previousDelay[client] = delay;
        queue.push(now + delay + net(), { kind: READ, client, value: 0 });
        break;
      }
    }
  }
  return { calls, completionMs: now };
}

/** Scenario 1 averaged over seeds `1..seeds`. */
export interface ContentionSummary {
  readonly clients: number;
  readonly strategy: Strategy;
  readonly seeds: number;
  /** Mean write calls per run. */
  readonly calls: number;
  /** Mean completion time per run, in milliseconds. */
  readonly completionMs: number;
}

/** Runs scenario 1 for each seed in `1..seeds` and averages. */
export function summarizeContention(
  clients: number,
  strategy: Strategy,
  seeds: number,
): ContentionSummary {
  let calls = 0;
  let completionMs = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const r = runContention({ clients, strategy, seed: seed * 7919 + clients });
    calls += r.calls;
    completionMs += r.completionMs;
  }
  return { clients, strategy, seeds, calls: calls / seeds, completionMs: completionMs / seeds };
}
