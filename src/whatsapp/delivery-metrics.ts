import type { AnyEvent } from '../core/events.js';
import type {
  LatencySummary,
  MetricsSection,
  SectionBreach,
} from '../core/metrics/metrics-section.js';
import { assertInteger, assertNumber, showValue } from '../core/validate.js';
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
interface DeliveryObservation {
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
 * delivery. Entries stay after a final status so that a retried webhook still counts once.
 * Webhooks arrive out of order: the latency is measured from the `delivered` status alone
 * (see {@link DeliveryTracker.observe}), so any order of the same statuses gives the same
 * figures.
 */
class DeliveryTracker {
  readonly #max: number;
  /** Message ID → its slot in the arrays below. */
  readonly #slots = new Map<string, number>();
  /** Message ID per slot, in insertion order as a ring: `#next` is the oldest. */
  readonly #ids: string[] = [];
  readonly #flags: Uint8Array;
  /** Emitter-clock time the message left us (`accepted`), else when `sent` was first reported. */
  readonly #startTime: Float64Array;
  /** The `sent` webhook's own timestamp. */
  readonly #sentTs: Float64Array;
  /** Emitter-clock time the `delivered` status arrived. */
  readonly #deliveredTime: Float64Array;
  /** The `delivered` webhook's own timestamp. */
  readonly #deliveredTs: Float64Array;
  #next = 0;
  #dropped = 0;

  constructor(maxTracked: number) {
    this.#max = maxTracked;
    this.#flags = new Uint8Array(maxTracked);
    this.#startTime = new Float64Array(maxTracked);
    this.#sentTs = new Float64Array(maxTracked);
    this.#deliveredTime = new Float64Array(maxTracked);
    this.#deliveredTs = new Float64Array(maxTracked);
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
    this.#deliveredTime[i] = Number.NaN;
    this.#deliveredTs[i] = Number.NaN;
    return i;
  }

  /**
   * Folds one status in. The send-to-delivered latency is measured once per message, from the
   * `delivered` status: its payload timestamp minus the `sent` payload's (one clock, Meta's),
   * once both have arrived, in either order. Without those timestamps (events from another
   * emitter), arrival times: the `accepted` event (else the `sent` arrival) to the `delivered`
   * arrival. `read` or `played` without `delivered` count as delivered but add no latency: when
   * the message was delivered is unknown then, only that it was before.
   */
  observe(event: MessageStatusEvent): DeliveryObservation {
    const i = this.#slotFor(event.messageId);
    let flags = this.#flags[i] ?? 0;
    const flag = FLAG[event.status] ?? 0;
    const first = (flags & flag) === 0;
    flags |= flag;
    let reached = false;
    let failed = false;
    const ts = event.timestampMs ?? Number.NaN;
    switch (event.status) {
      case 'accepted':
        if (first) this.#startTime[i] = event.time;
        break;
      case 'sent':
        if (first) {
          this.#sentTs[i] = ts;
          if ((flags & ACCEPTED) === 0) this.#startTime[i] = event.time;
        }
        break;
      case 'failed':
        failed = first && (flags & REACHED) === 0;
        break;
      case 'delivered':
        if (first) {
          this.#deliveredTime[i] = event.time;
          this.#deliveredTs[i] = ts;
        }
        break;
    }
    if (event.status !== 'accepted' && event.status !== 'sent' && event.status !== 'failed') {
      if ((flags & REACHED) === 0) {
        flags |= REACHED;
        reached = true;
      }
    }
    let latencyMs: number | undefined;
    if ((flags & (DELIVERED | MEASURED)) === DELIVERED) {
      latencyMs = this.#latency(i, flags);
      if (latencyMs !== undefined) flags |= MEASURED;
    }
    this.#flags[i] = flags;
    return { first, reached, failed, latencyMs };
  }

  /** The latency of a delivered message, or `undefined` while its start is still to come. */
  #latency(i: number, flags: number): number | undefined {
    const deliveredTs = this.#deliveredTs[i] ?? Number.NaN;
    const sentTs = this.#sentTs[i] ?? Number.NaN;
    if (!Number.isNaN(deliveredTs)) {
      if (!Number.isNaN(sentTs)) return Math.max(0, deliveredTs - sentTs);
      // A timestamped `delivered` waits for its `sent`, unless that came without a timestamp.
      if ((flags & SENT) === 0) return undefined;
    }
    const start = this.#startTime[i] ?? Number.NaN;
    if (Number.isNaN(start)) return undefined;
    return Math.max(0, (this.#deliveredTime[i] ?? Number.NaN) - start);
  }
}

const STATUSES: readonly MessageStatusEvent['status'][] = [
  'accepted',
  'sent',
  'delivered',
  'read',
  'played',
  'failed',
];

function isMessageStatus(event: AnyEvent): event is MessageStatusEvent {
  return event.type === 'message_status';
}

/** Options of {@link whatsappDeliveryMetrics}. */
export interface DeliveryMetricsOptions {
  /**
   * WhatsApp message IDs followed at once to deduplicate statuses and pair sends with
   * deliveries; the oldest is forgotten first.
   * @default 10_000
   */
  readonly maxTrackedMessages?: number;
  /**
   * Largest healthy mean time from send to `delivered`, in milliseconds (the check
   * `messages.meanDeliveryLatencyMs`): the 5 s users notice, seen from the recipient's phone.
   * `Infinity` turns the check off.
   * @default 5000
   */
  readonly meanDeliveryLatencyMs?: number;
  /**
   * Most messages reported stuck (`message_stuck`, from the delivery reconciler) in the window
   * that are still healthy (the check `messages.stuck`, judged whatever `minSamples` says: one
   * message that never arrives matters). `Infinity` turns the check off.
   * @default 0
   */
  readonly maxStuckMessages?: number;
}

/** The defaults of {@link DeliveryMetricsOptions}. */
const DELIVERY_DEFAULTS = Object.freeze({
  maxTrackedMessages: 10_000,
  meanDeliveryLatencyMs: 5000,
  maxStuckMessages: 0,
});

/** What {@link whatsappDeliveryMetrics} adds to `snapshot()`, as `messages`. */
export interface DeliverySnapshot {
  /** Messages the API accepted (sent by this process). */
  readonly accepted: number;
  /** Accepted messages per minute over the window's covered time. */
  readonly acceptedPerMinute: number | null;
  /** Status reports by status, each status counted once per message. */
  readonly byStatus: Readonly<Partial<Record<MessageStatusEvent['status'], number>>>;
  /** Messages that reached the phone (first of delivered, read, played). */
  readonly delivered: number;
  /** Messages that failed without reaching the phone. */
  readonly failed: number;
  /** delivered ÷ (delivered + failed); `null` when both are 0. */
  readonly deliveryRate: number | null;
  /**
   * From send to delivered, once per message, whatever order its webhooks arrive in: the
   * `delivered` payload's timestamp minus the `sent` payload's (Meta's clock, whole seconds);
   * without payload timestamps, the `accepted` event (else the `sent` arrival) to the
   * `delivered` arrival. A message `read` or `played` without a `delivered` counts in
   * `delivered` but not here: when it was delivered is unknown.
   */
  readonly deliveryLatency: LatencySummary;
  /** Message IDs followed right now. */
  readonly tracked: number;
  /** Messages forgotten (to stay bounded) before they were delivered or failed, ever. */
  readonly untracked: number;
  /** Sends held because their outcome was unknown (a timeout), by the client. */
  readonly held: number;
  /** Messages sent again by the delivery reconciler (after a failed status, or unconfirmed). */
  readonly resent: number;
  /** Messages the delivery reconciler found stuck at `accepted` or `sent`. */
  readonly stuck: number;
}

/**
 * WhatsApp delivery as a metrics section, from `message_status` events (the client's
 * `accepted`, the webhook handler's statuses): statuses counted once per message, delivery
 * rate, send-to-delivered latency, the closed loop (held, re-sent and stuck messages), and the
 * health checks `messages.meanDeliveryLatencyMs` and `messages.stuck`.
 * Plugs into `createMetrics` (adds `snapshot().messages`) and into `createOtelListener` of
 * `retrykit/otel` (instruments `messages`, `messages.delivered`, `messages.undelivered`,
 * `message.delivery.duration`). Each host follows messages in its own bounded map.
 *
 * @example
 * const metrics = createMetrics({ sections: [whatsappDeliveryMetrics()] });
 * const client = createWhatsAppClient({ accessToken, phoneNumberId, onEvent: metrics.onEvent });
 * metrics.snapshot().messages.deliveryRate;
 */
export function whatsappDeliveryMetrics(
  options: DeliveryMetricsOptions = {},
): MetricsSection<DeliverySnapshot, 'messages'> {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`options must be an object, got ${showValue(options)}`);
  }
  const maxTracked = assertInteger(
    'maxTrackedMessages',
    options.maxTrackedMessages ?? DELIVERY_DEFAULTS.maxTrackedMessages,
    1,
  );
  const limit = options.meanDeliveryLatencyMs ?? DELIVERY_DEFAULTS.meanDeliveryLatencyMs;
  if (limit !== Infinity) assertNumber('meanDeliveryLatencyMs', limit, 0);
  const maxStuck = options.maxStuckMessages ?? DELIVERY_DEFAULTS.maxStuckMessages;
  if (maxStuck !== Infinity) assertNumber('maxStuckMessages', maxStuck, 0);
  return {
    name: 'messages',
    attach(window) {
      const tracker = new DeliveryTracker(maxTracked);
      const byStatus = STATUSES.map((status) =>
        window.counter('messages', {
          unit: '{message}',
          description: 'WhatsApp message statuses, once each.',
          attributes: { 'whatsapp.message.status': status },
        }),
      );
      const reached = window.counter('messages.delivered', {
        unit: '{message}',
        description: 'WhatsApp messages that reached the phone.',
      });
      const undelivered = window.counter('messages.undelivered', {
        unit: '{message}',
        description: 'WhatsApp messages that failed without reaching the phone.',
      });
      const loop = {
        message_held: window.counter('messages.held', {
          unit: '{message}',
          description: 'WhatsApp sends held because their outcome was unknown.',
        }),
        message_resent: window.counter('messages.resent', {
          unit: '{message}',
          description: 'WhatsApp messages sent again by the delivery reconciler.',
        }),
        message_stuck: window.counter('messages.stuck', {
          unit: '{message}',
          description: 'WhatsApp messages stuck at accepted or sent.',
        }),
      };
      const latency = window.latency('message.delivery.duration', {
        description: 'Time from sending a WhatsApp message to its delivery.',
      });
      return {
        observe(event) {
          if (
            event.type === 'message_held' ||
            event.type === 'message_resent' ||
            event.type === 'message_stuck'
          ) {
            loop[event.type].add(1, event);
            return;
          }
          if (!isMessageStatus(event)) return;
          const seen = tracker.observe(event);
          const s = STATUSES.indexOf(event.status);
          if (seen.first && s >= 0) byStatus[s]?.add(1, event);
          if (seen.reached) reached.add(1, event);
          if (seen.failed) undelivered.add(1, event);
          if (seen.latencyMs !== undefined) latency.record(seen.latencyMs, event);
        },
        snapshot() {
          const counts: Partial<Record<MessageStatusEvent['status'], number>> = {};
          for (const [i, status] of STATUSES.entries()) {
            const n = byStatus[i]?.total() ?? 0;
            if (n > 0) counts[status] = n;
          }
          const accepted = counts.accepted ?? 0;
          const delivered = reached.total();
          const failed = undelivered.total();
          return {
            accepted,
            acceptedPerMinute: window.perMinute(accepted),
            byStatus: counts,
            delivered,
            failed,
            deliveryRate: delivered + failed > 0 ? delivered / (delivered + failed) : null,
            deliveryLatency: latency.summary(),
            tracked: tracker.size,
            untracked: tracker.dropped,
            held: loop.message_held.total(),
            resent: loop.message_resent.total(),
            stuck: loop.message_stuck.total(),
          };
        },
        health(minSamples) {
          const breaches: SectionBreach[] = [];
          const { count, meanMs } = latency.summary();
          if (count >= minSamples && meanMs !== null && meanMs > limit) {
            breaches.push({
              check: 'meanDeliveryLatencyMs',
              value: meanMs,
              threshold: limit,
              samples: count,
            });
          }
          const stuck = loop.message_stuck.total();
          if (stuck > maxStuck) {
            breaches.push({ check: 'stuck', value: stuck, threshold: maxStuck, samples: stuck });
          }
          return breaches;
        },
      };
    },
  };
}
