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

/** What the WhatsApp client and webhook handler report: core events and message statuses. */
export type WhatsAppEvent = RetrykitEvent | MessageStatusEvent;

/** Receives {@link WhatsAppEvent}s; `createMetrics().onEvent` is one. */
export type WhatsAppEventListener = EventListener<WhatsAppEvent>;
