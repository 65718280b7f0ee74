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

interface Tracked {
  flags: number;
  /** Emitter-clock time the message left us (`accepted`) or was first reported `sent`. */
  startTime: number;
  /** The `sent` webhook's own timestamp. */
  sentTs: number;
  /** Emitter-clock time of the first delivered/read/played report. */
  reachedTime: number;
  /** That report's own timestamp. */
  reachedTs: number;
}

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
  readonly #messages = new Map<string, Tracked>();
  #dropped = 0;

  constructor(maxTracked: number) {
    this.#max = maxTracked;
  }

  /** Messages currently followed. */
  get size(): number {
    return this.#messages.size;
  }

  /** Messages forgotten, to stay within `maxTracked`, before they were delivered or failed. */
  get dropped(): number {
    return this.#dropped;
  }

  observe(event: MessageStatusEvent): DeliveryObservation {
    let m = this.#messages.get(event.messageId);
    if (m === undefined) {
      if (this.#messages.size >= this.#max) {
        const oldest = this.#messages.keys().next();
        if (oldest.done !== true) {
          const flags = this.#messages.get(oldest.value)?.flags ?? 0;
          if ((flags & (REACHED | FAILED)) === 0) this.#dropped++;
          this.#messages.delete(oldest.value);
        }
      }
      m = {
        flags: 0,
        startTime: Number.NaN,
        sentTs: Number.NaN,
        reachedTime: Number.NaN,
        reachedTs: Number.NaN,
      };
      this.#messages.set(event.messageId, m);
    }
    const flag = FLAG[event.status] ?? 0;
    const first = (m.flags & flag) === 0;
    m.flags |= flag;
    let reached = false;
    let failed = false;
    switch (event.status) {
      case 'accepted':
        if (first) m.startTime = event.time;
        break;
      case 'sent':
        if (first) {
          m.sentTs = event.timestampMs ?? Number.NaN;
          if (Number.isNaN(m.startTime)) m.startTime = event.time;
        }
        break;
      case 'failed':
        failed = first && (m.flags & REACHED) === 0;
        break;
      default:
        if ((m.flags & REACHED) === 0) {
          m.flags |= REACHED;
          m.reachedTime = event.time;
          m.reachedTs = event.timestampMs ?? Number.NaN;
          reached = true;
        }
    }
    let latencyMs: number | undefined;
    if ((m.flags & (REACHED | MEASURED)) === REACHED && !Number.isNaN(m.startTime)) {
      m.flags |= MEASURED;
      const payloadClock = !Number.isNaN(m.sentTs) && !Number.isNaN(m.reachedTs);
      latencyMs = Math.max(0, payloadClock ? m.reachedTs - m.sentTs : m.reachedTime - m.startTime);
    }
    return { first, reached, failed, latencyMs };
  }
}
