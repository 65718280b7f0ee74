import fc from 'fast-check';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { type AnyEvent, combineListeners, type EventListener } from '../core/events.js';
import { createMetrics } from '../core/metrics/metrics.js';
import { createManualClock } from '../testing/index.js';
import { whatsappDeliveryMetrics } from './delivery-metrics.js';
import type { MessageStatusEvent, WhatsAppEvent, WhatsAppEventListener } from './events.js';

const status = (
  messageId: string,
  s: MessageStatusEvent['status'],
  time: number,
  timestampMs?: number,
): MessageStatusEvent => ({
  type: 'message_status',
  time,
  messageId,
  status: s,
  ...(timestampMs === undefined ? {} : { timestampMs }),
});

const withDelivery = (options?: Parameters<typeof whatsappDeliveryMetrics>[0]) =>
  createMetrics({ clock: createManualClock(), sections: [whatsappDeliveryMetrics(options)] });

describe('whatsappDeliveryMetrics in createMetrics', () => {
  it('measures send to delivered, counts each status once per message, and the delivery rate', () => {
    const m = withDelivery();
    m.onEvent(status('wamid.A', 'accepted', 1_000));
    m.onEvent(status('wamid.A', 'sent', 1_400));
    m.onEvent(status('wamid.A', 'delivered', 3_000));
    m.onEvent(status('wamid.A', 'delivered', 3_900)); // a retried webhook
    m.onEvent(status('wamid.A', 'read', 9_000));
    m.onEvent(status('wamid.B', 'accepted', 1_000));
    m.onEvent(status('wamid.B', 'read', 2_000)); // read implies delivered
    m.onEvent(status('wamid.C', 'accepted', 1_000));
    m.onEvent(status('wamid.C', 'failed', 1_500));
    m.onEvent(status('wamid.C', 'failed', 1_600));
    const s = m.snapshot().messages;
    expect(s).toMatchObject({
      accepted: 3,
      delivered: 2,
      failed: 1,
      byStatus: { accepted: 3, sent: 1, delivered: 1, read: 2, failed: 1 },
      tracked: 3,
      untracked: 0,
    });
    expect(s.deliveryRate).toBeCloseTo(2 / 3, 12);
    // B was read, so delivered, but when is unknown: only A's delivery has a latency.
    expect(s.deliveryLatency).toMatchObject({ count: 1, meanMs: 2_000, maxMs: 2_000 });
  });

  it('measures to the delivered timestamp when a later read arrives first', () => {
    const m = withDelivery();
    const T = 1_767_225_600_000;
    m.onEvent(status('wamid.R', 'accepted', 100));
    m.onEvent(status('wamid.R', 'sent', 200, T));
    m.onEvent(status('wamid.R', 'read', 300, T + 5_000));
    expect(m.snapshot().messages).toMatchObject({ delivered: 1, deliveryLatency: { count: 0 } });
    m.onEvent(status('wamid.R', 'delivered', 400, T + 2_000));
    expect(m.snapshot().messages).toMatchObject({
      delivered: 1,
      deliveryLatency: { count: 1, meanMs: 2_000 },
    });
  });

  it('gives the same figures for any arrival order of the same statuses, duplicates too', () => {
    const T = 1_767_225_600_000;
    const delivery = ['sent', 'delivered', 'read', 'played'] as const;
    const message = fc.oneof(
      fc.record({
        statuses: fc.subarray([...delivery], { minLength: 1 }),
        gapsS: fc.array(fc.integer({ min: 0, max: 30 }), { minLength: 4, maxLength: 4 }),
      }),
      fc.record({
        statuses: fc.subarray(['sent', 'failed'] as const, { minLength: 1 }),
        gapsS: fc.array(fc.integer({ min: 0, max: 30 }), { minLength: 4, maxLength: 4 }),
      }),
    );
    const scenario = fc
      .array(fc.tuple(message, fc.boolean(), fc.integer({ min: 1, max: 3 })), {
        minLength: 1,
        maxLength: 5,
      })
      .chain((messages) => {
        const events: MessageStatusEvent[] = [];
        messages.forEach(([{ statuses, gapsS }, accepted, copies], m) => {
          const id = `wamid.${m}`;
          if (accepted) events.push(status(id, 'accepted', 0));
          // Meta's timestamps rise with rank (sent ≤ delivered ≤ read ≤ played), in seconds.
          let ts = T;
          for (const [k, s] of statuses.entries()) {
            ts += (gapsS[k] ?? 0) * 1000;
            for (let c = 0; c < copies; c++) events.push(status(id, s, 0, ts));
          }
        });
        return fc.tuple(
          fc.constant(events),
          fc.shuffledSubarray(events, {
            minLength: events.length,
            maxLength: events.length,
          }),
        );
      });
    const figures = (events: readonly MessageStatusEvent[], arrivals: readonly number[]) => {
      const clock = createManualClock();
      const m = createMetrics({ clock, sections: [whatsappDeliveryMetrics()] });
      for (const [k, e] of events.entries()) m.onEvent({ ...e, time: arrivals[k] ?? 0 });
      const { acceptedPerMinute: _, ...rest } = m.snapshot().messages;
      return rest;
    };
    fc.assert(
      fc.property(
        scenario,
        fc.array(fc.integer({ min: 0, max: 60_000 }), { minLength: 60, maxLength: 60 }),
        ([inOrder, shuffled], arrivals) => {
          const expected = figures(inOrder, []);
          expect(figures(shuffled, arrivals)).toEqual(expected);
          // Latency: delivered − sent on Meta's timestamps, for each message that has both.
          const bySent = new Map<string, number>();
          const byDelivered = new Map<string, number>();
          for (const e of inOrder) {
            if (e.status === 'sent') bySent.set(e.messageId, e.timestampMs as number);
            if (e.status === 'delivered') byDelivered.set(e.messageId, e.timestampMs as number);
          }
          const latencies = [...byDelivered].flatMap(([id, d]) => {
            const sent = bySent.get(id);
            return sent === undefined ? [] : [d - sent];
          });
          expect(expected.deliveryLatency.count).toBe(latencies.length);
          expect(expected.deliveryLatency.maxMs).toBe(
            latencies.length === 0 ? null : Math.max(...latencies),
          );
        },
      ),
    );
  });

  it('pairs a delivered that arrives before its sent, on the webhooks own timestamps', () => {
    const m = withDelivery();
    m.onEvent(status('wamid.X', 'delivered', 50_000, 7_000));
    expect(m.snapshot().messages.deliveryLatency.count).toBe(0);
    m.onEvent(status('wamid.X', 'sent', 50_100, 4_000));
    const s = m.snapshot().messages;
    expect(s.deliveryLatency).toMatchObject({ count: 1, meanMs: 3_000 });
    expect(s.delivered).toBe(1);
  });

  it('never reports a negative latency when the webhook clock is behind ours', () => {
    const m = withDelivery();
    m.onEvent(status('wamid.Y', 'accepted', 10_700));
    m.onEvent(status('wamid.Y', 'delivered', 10_600));
    expect(m.snapshot().messages.deliveryLatency.meanMs).toBe(0);
  });

  it('counts over the window: a delivery leaves the snapshot with its slot', async () => {
    const clock = createManualClock();
    const m = createMetrics({
      clock,
      windowMs: 60_000,
      slots: 6,
      sections: [whatsappDeliveryMetrics()],
    });
    m.onEvent(status('wamid.A', 'accepted', 0));
    m.onEvent(status('wamid.A', 'delivered', 800));
    expect(m.snapshot().messages).toMatchObject({ accepted: 1, delivered: 1 });
    await clock.advance(60_000);
    expect(m.snapshot().messages).toMatchObject({
      accepted: 0,
      delivered: 0,
      deliveryRate: null,
      deliveryLatency: { count: 0, meanMs: null },
      tracked: 1,
    });
  });

  it('mean delivery latency: breached iff send-to-delivered averages above the threshold', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 10_000 }),
        (latencies, threshold) => {
          const m = withDelivery({ meanDeliveryLatencyMs: threshold });
          latencies.forEach((l, i) => {
            m.onEvent(status(`wamid.${i}`, 'accepted', 0));
            m.onEvent(status(`wamid.${i}`, 'delivered', l));
          });
          const sum = latencies.reduce((a, b) => a + b, 0);
          const breaches = m.checkHealth({ minSamples: 1 }).breaches;
          const breached = breaches.some((b) => b.check === 'messages.meanDeliveryLatencyMs');
          expect(breached).toBe(sum > threshold * latencies.length);
          expect(breaches.length).toBe(breached ? 1 : 0);
        },
      ),
    );
  });

  it('judges delivery latency at the default 5 s only over minSamples deliveries', () => {
    const m = withDelivery();
    for (let i = 0; i < 19; i++) {
      m.onEvent(status(`wamid.${i}`, 'accepted', 0));
      m.onEvent(status(`wamid.${i}`, 'delivered', 9_000));
    }
    expect(m.checkHealth().healthy).toBe(true);
    m.onEvent(status('wamid.19', 'accepted', 0));
    m.onEvent(status('wamid.19', 'delivered', 9_000));
    expect(m.checkHealth().breaches).toEqual([
      { check: 'messages.meanDeliveryLatencyMs', value: 9_000, threshold: 5_000, samples: 20 },
    ]);
  });

  it('a mean exactly at the threshold is healthy, a millisecond more is not', () => {
    const m = withDelivery();
    for (let i = 0; i < 20; i++) {
      m.onEvent(status(`wamid.${i}`, 'accepted', 0));
      m.onEvent(status(`wamid.${i}`, 'delivered', 5_000));
    }
    expect(m.checkHealth().healthy).toBe(true);
    m.onEvent(status('wamid.20', 'accepted', 0));
    m.onEvent(status('wamid.20', 'delivered', 5_021));
    expect(m.checkHealth().breaches.map((b) => [b.check, b.value])).toEqual([
      ['messages.meanDeliveryLatencyMs', 5_001],
    ]);
  });

  it('keeps at most maxTrackedMessages IDs, and counts the ones forgotten undelivered', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 0, max: 200 }), (max, n) => {
        const m = withDelivery({ maxTrackedMessages: max });
        for (let i = 0; i < n; i++) m.onEvent(status(`wamid.${i}`, 'accepted', i));
        const s = m.snapshot().messages;
        expect(s.tracked).toBe(Math.min(n, max));
        expect(s.untracked).toBe(Math.max(0, n - max));
      }),
    );
  });

  it('each createMetrics handle follows messages on its own', () => {
    const section = whatsappDeliveryMetrics();
    const a = createMetrics({ clock: createManualClock(), sections: [section] });
    const b = createMetrics({ clock: createManualClock(), sections: [section] });
    a.onEvent(status('wamid.A', 'accepted', 0));
    b.onEvent(status('wamid.A', 'delivered', 100));
    expect(a.snapshot().messages).toMatchObject({ accepted: 1, delivered: 0 });
    expect(b.snapshot().messages).toMatchObject({ accepted: 0, delivered: 1 });
    expect(b.snapshot().messages.deliveryLatency.count).toBe(0);
  });

  it('counts the closed loop, and a stuck message breaches health at once', () => {
    const held: WhatsAppEvent = {
      type: 'message_held',
      time: 0,
      key: 'k1',
      attemptId: 'k1#1',
      graceMs: 60_000,
    };
    const resent: WhatsAppEvent = {
      type: 'message_resent',
      time: 1,
      key: 'k1',
      attemptId: 'k1#2',
      cause: 'unconfirmed',
      messageId: 'wamid.2',
    };
    const stuck: WhatsAppEvent = {
      type: 'message_stuck',
      time: 2,
      key: 'k2',
      messageId: 'wamid.9',
      status: 'sent',
      ageMs: 600_000,
    };
    const m = withDelivery();
    m.onEvent(held);
    m.onEvent(resent);
    expect(m.snapshot().messages).toMatchObject({ held: 1, resent: 1, stuck: 0 });
    expect(m.checkHealth().healthy).toBe(true);
    m.onEvent(stuck);
    expect(m.snapshot().messages.stuck).toBe(1);
    expect(m.checkHealth().breaches).toEqual([
      { check: 'messages.stuck', value: 1, threshold: 0, samples: 1 },
    ]);
    const lenient = withDelivery({ maxStuckMessages: 1 });
    lenient.onEvent(stuck);
    expect(lenient.checkHealth().healthy).toBe(true);
    expect(() => whatsappDeliveryMetrics({ maxStuckMessages: -1 })).toThrow(
      /maxStuckMessages .*got -1/,
    );
  });

  it('rejects bad options naming the option and the value', () => {
    expect(() => whatsappDeliveryMetrics({ maxTrackedMessages: 0 })).toThrow(
      /maxTrackedMessages .*got 0/,
    );
    expect(() => whatsappDeliveryMetrics({ meanDeliveryLatencyMs: -1 })).toThrow(
      /meanDeliveryLatencyMs .*got -1/,
    );
    expect(() => whatsappDeliveryMetrics({ meanDeliveryLatencyMs: Number.NaN })).toThrow(
      /meanDeliveryLatencyMs/,
    );
    expect(() => whatsappDeliveryMetrics(null as never)).toThrow(/options must be an object/);
  });

  it('types the listeners: metrics and combined listeners take WhatsApp events, core-only ones not', () => {
    const plain = createMetrics();
    expectTypeOf(plain.onEvent).toExtend<WhatsAppEventListener>();
    expectTypeOf(
      combineListeners(plain.onEvent, (_e: AnyEvent) => {}),
    ).toExtend<WhatsAppEventListener>();
    expectTypeOf<EventListener>().not.toExtend<WhatsAppEventListener>();
    expectTypeOf<WhatsAppEventListener>().toExtend<EventListener>();
  });

  it('types the section as snapshot().messages', () => {
    const m = withDelivery();
    expectTypeOf(m.snapshot().messages.deliveryRate).toEqualTypeOf<number | null>();
    expectTypeOf(m.snapshot().messages.byStatus.delivered).toEqualTypeOf<number | undefined>();
  });
});
