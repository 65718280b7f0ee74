import type { MessageStatusEvent } from './events.js';

const ACCEPTED = 1;
const SENT = 2;
const DELIVERED = 4;
const FAILED = 32;
const REACHED = 64;
const MEASURED = 128;

const FLAG: Readonly<Record<MessageStatusEvent['status'], number>> = {
  accepted: ACCEPTED,
  sent: SENT,
  delivered: DELIVERED,
  read: 8,
  played: 16,
  failed: FAILED,
};

/** What one status event changed. */
export interface DeliveryObservation {
  /** The first report of this status for this message (duplicates are `false`). */
  readonly first: boolean;
  /** The message reached the phone with this event (first of delivered, read, played). */
  readonly reached: boolean;
  /** The message failed with this event, without having reached the phone. */
  readonly failed: boolean;
  /** Send-to-delivered latency completed by this event, in milliseconds. */
  readonly latencyMs: number | undefined;
}

/**
 * Follows WhatsApp message statuses per message ID, in a map bounded to `maxTracked` entries
 * (the oldest is dropped first), to deduplicate repeated webhooks and to pair a send with its
 * delivery. Entries stay after a final status so that a retried webhook still counts once. Webhooks arrive out of order: a `delivered` before its `sent` is kept until the
 * `sent` arrives.
 */
export class DeliveryTracker {
  readonly #max: number;
  /** Message ID → its slot in the arrays below. */
  readonly #slots = new Map<string, number>();
  /** Message ID per slot, in insertion order as a ring: `#next` is the oldest. */
  readonly #ids: string[] = [];
  readonly #flags: Uint8Array;
  /** Emitter-clock time the message left us (`accepted`) or was first reported `sent`. */
  readonly #startTime: Float64Array;
  /** The `sent` webhook's own timestamp. */
  readonly #sentTs: Float64Array;
  /** Emitter-clock time of the first delivered/read/played report. */
  readonly #reachedTime: Float64Array;
  /** That report's own timestamp. */
  readonly #reachedTs: Float64Array;
  #next = 0;
  #dropped = 0;

  constructor(maxTracked: number) {
    this.#max = maxTracked;
    this.#flags = new Uint8Array(maxTracked);
    this.#startTime = new Float64Array(maxTracked);
    this.#sentTs = new Float64Array(maxTracked);
    this.#reachedTime = new Float64Array(maxTracked);
    this.#reachedTs = new Float64Array(maxTracked);
  }

  /** Messages currently followed. */
  get size(): number {
    return this.#slots.size;
  }

  /** Messages forgotten, to stay within `maxTracked`, before they were delivered or failed. */
  get dropped(): number {
    return this.#dropped;
  }

  #slotFor(id: string): number {
    const known = this.#slots.get(id);
    if (known !== undefined) return known;
    let i: number;
    if (this.#ids.length < this.#max) {
      i = this.#ids.length;
      this.#ids.push(id);
    } else {
      i = this.#next;
      this.#next = (i + 1) % this.#max;
      if (((this.#flags[i] ?? 0) & (REACHED | FAILED)) === 0) this.#dropped++;
      this.#slots.delete(this.#ids[i] as string);
      this.#ids[i] = id;
    }
    this.#slots.set(id, i);
    this.#flags[i] = 0;
    this.#startTime[i] = Number.NaN;
    this.#sentTs[i] = Number.NaN;
    this.#reachedTime[i] = Number.NaN;
    this.#reachedTs[i] = Number.NaN;
    return i;
  }

  observe(event: MessageStatusEvent): DeliveryObservation {
    const i = this.#slotFor(event.messageId);
    let flags = this.#flags[i] ?? 0;
    const flag = FLAG[event.status] ?? 0;
    const first = (flags & flag) === 0;
    flags |= flag;
    let reached = false;
    let failed = false;
    switch (event.status) {
      case 'accepted':
        if (first) this.#startTime[i] = event.time;
        break;
      case 'sent':
        if (first) {
          this.#sentTs[i] = event.timestampMs ?? Number.NaN;
          if (Number.isNaN(this.#startTime[i])) this.#startTime[i] = event.time;
        }
        break;
      case 'failed':
        failed = first && (flags & REACHED) === 0;
        break;
      default:
        if ((flags & REACHED) === 0) {
          flags |= REACHED;
          this.#reachedTime[i] = event.time;
          this.#reachedTs[i] = event.timestampMs ?? Number.NaN;
          reached = true;
        }
    }
    let latencyMs: number | undefined;
    const start = this.#startTime[i] ?? Number.NaN;
    if ((flags & (REACHED | MEASURED)) === REACHED && !Number.isNaN(start)) {
      flags |= MEASURED;
      const sentTs = this.#sentTs[i] ?? Number.NaN;
      const reachedTs = this.#reachedTs[i] ?? Number.NaN;
      const payloadClock = !Number.isNaN(sentTs) && !Number.isNaN(reachedTs);
      latencyMs = Math.max(
        0,
        payloadClock ? reachedTs - sentTs : (this.#reachedTime[i] ?? Number.NaN) - start,
      );
    }
    this.#flags[i] = flags;
    return { first, reached, failed, latencyMs };
  }
}
