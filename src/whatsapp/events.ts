import type { EventListener, EventScope, RetrykitEvent } from '../core/events.js';

/** A WhatsApp message was sent, or a status webhook for it arrived. */
export interface MessageStatusEvent extends EventScope {
  readonly type: 'message_status';
  /** The emitter clock's `now()`, in milliseconds. */
  readonly time: number;
  /** The WhatsApp message ID (wamid). */
  readonly messageId: string;
  readonly status: 'accepted' | 'sent' | 'delivered' | 'read' | 'played' | 'failed';
  /** The payload's own timestamp, in milliseconds, when the event came from a webhook. */
  readonly timestampMs?: number;
}

/**
 * A send's outcome is unknown (it timed out, or its connection dropped after the request
 * left): the client holds it in its `deliveries` for `graceMs` instead of sending it again at
 * once. Emitted by the client.
 */
export interface MessageHeldEvent extends EventScope {
  readonly type: 'message_held';
  /** The emitter clock's `now()`, in milliseconds. */
  readonly time: number;
  /** The message's key (its idempotency key). */
  readonly key: string;
  /** The attempt held, `<key>#<n>`. */
  readonly attemptId: string;
  /** How long it is held before the reconciler may send it again, in milliseconds. */
  readonly graceMs: number;
}

/**
 * The delivery reconciler sent a message again: after a `failed` status with a transient
 * error (`failed`), or because a held send had no status within its grace window
 * (`unconfirmed`). Emitted by the reconciler.
 */
export interface MessageResentEvent extends EventScope {
  readonly type: 'message_resent';
  /** The emitter clock's `now()`, in milliseconds. */
  readonly time: number;
  readonly key: string;
  /** The new attempt, `<key>#<n>`. */
  readonly attemptId: string;
  /** Why it was sent again. */
  readonly cause: 'failed' | 'unconfirmed';
  /** The new send's wamid; `undefined` when the re-send itself was held. */
  readonly messageId: string | undefined;
}

/**
 * A message still at `accepted` or `sent` after the reconciler's `stuckAfterMs`: it may never
 * be delivered (a phone off for days, or statuses lost). Reported once per attempt. Emitted
 * by the reconciler.
 */
export interface MessageStuckEvent extends EventScope {
  readonly type: 'message_stuck';
  /** The emitter clock's `now()`, in milliseconds. */
  readonly time: number;
  readonly key: string;
  /** The wamid of the stuck attempt. */
  readonly messageId: string;
  readonly status: 'accepted' | 'sent';
  /** Time since the attempt was sent, in milliseconds. */
  readonly ageMs: number;
}

/**
 * What the WhatsApp client, webhook handler and delivery reconciler report: core events,
 * message statuses and the closed delivery loop.
 */
export type WhatsAppEvent =
  | RetrykitEvent
  | MessageStatusEvent
  | MessageHeldEvent
  | MessageResentEvent
  | MessageStuckEvent;

/** Receives {@link WhatsAppEvent}s; `createMetrics().onEvent` is one. */
export type WhatsAppEventListener = EventListener<WhatsAppEvent>;
