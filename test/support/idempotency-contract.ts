import { describe, expect, it } from 'vitest';
import type { IdempotencyStore } from '../../src/index.js';

/** A store under test and a way to move its time forward. */
export interface ContractHarness {
  readonly store: IdempotencyStore;
  /** Moves the store's time forward by `ms` milliseconds (leases and TTLs run out). */
  advance(ms: number): Promise<void>;
}

const LEASE = 10_000;
const TTL = 60_000;

/**
 * The behaviour every {@link IdempotencyStore} adapter must show. Time only moves through
 * `advance`, by margins far above the milliseconds a real store's own clock adds meanwhile.
 */
export function idempotencyStoreContract(name: string, setup: () => Promise<ContractHarness>) {
  describe(`IdempotencyStore contract: ${name}`, () => {
    it('claims a new key with a fencing token, then reports it in progress', async () => {
      const { store } = await setup();
      const first = await store.claim('order-1', { leaseMs: LEASE });
      expect(first.status).toBe('claimed');
      if (first.status !== 'claimed') return;
      expect(first.token.length).toBeGreaterThanOrEqual(32);
      const second = await store.claim('order-1', { leaseMs: LEASE });
      expect(second.status).toBe('in_progress');
      if (second.status !== 'in_progress') return;
      expect(second.retryAfterMs).toBeGreaterThan(0);
      expect(second.retryAfterMs).toBeLessThanOrEqual(LEASE);
    });

    it('hands out a different token on every claim', async () => {
      const { store } = await setup();
      const tokens = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const claim = await store.claim(`k${i}`, { leaseMs: LEASE });
        if (claim.status === 'claimed') tokens.add(claim.token);
      }
      expect(tokens.size).toBe(20);
    });

    it('stores the result for the holder and returns it to later claims', async () => {
      const { store } = await setup();
      const values: unknown[] = [
        { wamid: 'wamid.HBgL', nested: { list: [1, 'two', null, true] } },
        'text',
        0,
        null,
        undefined,
        [],
        'äöå ✓',
      ];
      for (const [i, value] of values.entries()) {
        const claim = await store.claim(`v${i}`, { leaseMs: LEASE });
        if (claim.status !== 'claimed') throw new Error(`expected a claim, got ${claim.status}`);
        expect(await store.complete(`v${i}`, claim.token, value, { resultTtlMs: TTL })).toBe(true);
        expect(await store.claim(`v${i}`, { leaseMs: LEASE })).toEqual({
          status: 'completed',
          result: value,
        });
      }
    });

    it('refuses complete and release with a token that does not hold the key', async () => {
      const { store } = await setup();
      const claim = await store.claim('k', { leaseMs: LEASE });
      if (claim.status !== 'claimed') throw new Error('expected a claim');
      expect(await store.complete('k', 'not-the-token', 'forged', { resultTtlMs: TTL })).toBe(
        false,
      );
      expect(await store.release('k', 'not-the-token')).toBe(false);
      expect((await store.claim('k', { leaseMs: LEASE })).status).toBe('in_progress');
      expect(await store.complete('k', claim.token, 'real', { resultTtlMs: TTL })).toBe(true);
      expect(await store.complete('k', claim.token, 'again', { resultTtlMs: TTL })).toBe(false);
      expect(await store.release('k', claim.token)).toBe(false);
      expect(await store.claim('k', { leaseMs: LEASE })).toEqual({
        status: 'completed',
        result: 'real',
      });
    });

    it('answers false for a key that was never claimed', async () => {
      const { store } = await setup();
      expect(await store.complete('ghost', 'some-token', 1, { resultTtlMs: TTL })).toBe(false);
      expect(await store.release('ghost', 'some-token')).toBe(false);
      expect((await store.claim('ghost', { leaseMs: LEASE })).status).toBe('claimed');
    });

    it('release lets the next claim run again, and the old token is dead', async () => {
      const { store } = await setup();
      const first = await store.claim('k', { leaseMs: LEASE });
      if (first.status !== 'claimed') throw new Error('expected a claim');
      expect(await store.release('k', first.token)).toBe(true);
      const second = await store.claim('k', { leaseMs: LEASE });
      if (second.status !== 'claimed') throw new Error('expected a second claim');
      expect(second.token).not.toBe(first.token);
      expect(await store.complete('k', first.token, 'stale', { resultTtlMs: TTL })).toBe(false);
      expect(await store.complete('k', second.token, 'fresh', { resultTtlMs: TTL })).toBe(true);
      expect(await store.claim('k', { leaseMs: LEASE })).toEqual({
        status: 'completed',
        result: 'fresh',
      });
    });

    it('lets the next claim take over an expired lease and fences the old holder out', async () => {
      const { store, advance } = await setup();
      const dead = await store.claim('k', { leaseMs: LEASE });
      if (dead.status !== 'claimed') throw new Error('expected a claim');
      await advance(LEASE / 2);
      const waiting = await store.claim('k', { leaseMs: LEASE });
      expect(waiting.status).toBe('in_progress');
      if (waiting.status === 'in_progress') {
        expect(waiting.retryAfterMs).toBeLessThanOrEqual(LEASE / 2);
      }
      await advance(LEASE / 2 + 100);
      const next = await store.claim('k', { leaseMs: LEASE });
      if (next.status !== 'claimed') throw new Error(`expected a takeover, got ${next.status}`);
      expect(await store.complete('k', dead.token, 'late', { resultTtlMs: TTL })).toBe(false);
      expect(await store.release('k', dead.token)).toBe(false);
      expect(await store.complete('k', next.token, 'new holder', { resultTtlMs: TTL })).toBe(true);
      expect(await store.claim('k', { leaseMs: LEASE })).toEqual({
        status: 'completed',
        result: 'new holder',
      });
    });

    it('refuses a late complete after the lease ran out even when nobody took over', async () => {
      const { store, advance } = await setup();
      const claim = await store.claim('k', { leaseMs: LEASE });
      if (claim.status !== 'claimed') throw new Error('expected a claim');
      await advance(LEASE + 100);
      expect(await store.complete('k', claim.token, 'late', { resultTtlMs: TTL })).toBe(false);
      expect((await store.claim('k', { leaseMs: LEASE })).status).toBe('claimed');
    });

    it('forgets a result after resultTtlMs', async () => {
      const { store, advance } = await setup();
      const claim = await store.claim('k', { leaseMs: LEASE });
      if (claim.status !== 'claimed') throw new Error('expected a claim');
      await store.complete('k', claim.token, 'done', { resultTtlMs: TTL });
      await advance(TTL - 1000);
      expect((await store.claim('k', { leaseMs: LEASE })).status).toBe('completed');
      await advance(1100);
      expect((await store.claim('k', { leaseMs: LEASE })).status).toBe('claimed');
    });

    it('answers mismatch to a different fingerprint, in progress and completed', async () => {
      const { store } = await setup();
      const claim = await store.claim('k', { leaseMs: LEASE, fingerprint: 'sha:aaa' });
      if (claim.status !== 'claimed') throw new Error('expected a claim');
      expect(await store.claim('k', { leaseMs: LEASE, fingerprint: 'sha:bbb' })).toEqual({
        status: 'mismatch',
      });
      expect((await store.claim('k', { leaseMs: LEASE, fingerprint: 'sha:aaa' })).status).toBe(
        'in_progress',
      );
      await store.complete('k', claim.token, 42, { resultTtlMs: TTL });
      expect(await store.claim('k', { leaseMs: LEASE, fingerprint: 'sha:bbb' })).toEqual({
        status: 'mismatch',
      });
      expect(await store.claim('k', { leaseMs: LEASE, fingerprint: 'sha:aaa' })).toEqual({
        status: 'completed',
        result: 42,
      });
      expect(await store.claim('k', { leaseMs: LEASE })).toEqual({
        status: 'completed',
        result: 42,
      });
    });

    it('claims a key again for the requestId that holds it, with a new lease', async () => {
      const { store, advance } = await setup();
      expect(await store.claim('k', { leaseMs: LEASE, requestId: 'job-1' })).toEqual({
        status: 'claimed',
        token: 'job-1',
      });
      await advance(LEASE / 2);
      expect(await store.claim('k', { leaseMs: LEASE, requestId: 'job-1' })).toEqual({
        status: 'claimed',
        token: 'job-1',
      });
      const other = await store.claim('k', { leaseMs: LEASE, requestId: 'job-2' });
      expect(other.status).toBe('in_progress');
      if (other.status === 'in_progress') expect(other.retryAfterMs).toBeGreaterThan(LEASE / 2);
      expect((await store.claim('k', { leaseMs: LEASE })).status).toBe('in_progress');
      await advance(LEASE / 2 + 100);
      expect((await store.claim('k', { leaseMs: LEASE })).status).toBe('in_progress');
      expect(await store.complete('k', 'job-2', 'not mine', { resultTtlMs: TTL })).toBe(false);
      expect(await store.complete('k', 'job-1', 'done', { resultTtlMs: TTL })).toBe(true);
      expect(await store.claim('k', { leaseMs: LEASE, requestId: 'job-1' })).toEqual({
        status: 'completed',
        result: 'done',
      });
    });

    it('keeps request ids with colons, slashes and percent signs apart', async () => {
      const { store } = await setup();
      const ids = ['a:b', 'a', 'a%3Ab', 'a/b', 'a/', '%', 'äöå:/%'];
      for (const [i, requestId] of ids.entries()) {
        const claim = await store.claim(`k${i}`, { leaseMs: LEASE, requestId });
        expect(claim).toEqual({ status: 'claimed', token: requestId });
        for (const other of ids.filter((id) => id !== requestId)) {
          expect((await store.claim(`k${i}`, { leaseMs: LEASE, requestId: other })).status).toBe(
            'in_progress',
          );
          expect(await store.complete(`k${i}`, other, 'forged', { resultTtlMs: TTL })).toBe(false);
          expect(await store.release(`k${i}`, other)).toBe(false);
        }
      }
      expect(await store.release('k0', 'a:b')).toBe(true);
      expect((await store.claim('k0', { leaseMs: LEASE })).status).toBe('claimed');
      expect(await store.complete('k6', 'äöå:/%', 6, { resultTtlMs: TTL })).toBe(true);
      expect(await store.claim('k6', { leaseMs: LEASE })).toEqual({
        status: 'completed',
        result: 6,
      });
    });

    it('answers mismatch before recognising a requestId, and keeps the first fingerprint', async () => {
      const { store } = await setup();
      const claim = await store.claim('k', { leaseMs: LEASE, requestId: 'r', fingerprint: 'f1' });
      expect(claim.status).toBe('claimed');
      expect(await store.claim('k', { leaseMs: LEASE, requestId: 'r', fingerprint: 'f2' })).toEqual(
        { status: 'mismatch' },
      );
      expect((await store.claim('k', { leaseMs: LEASE, requestId: 'r' })).status).toBe('claimed');
      expect(await store.claim('k', { leaseMs: LEASE, fingerprint: 'f2' })).toEqual({
        status: 'mismatch',
      });
      const late = await store.claim('late', { leaseMs: LEASE, requestId: 'r' });
      expect(late.status).toBe('claimed');
      expect(
        (await store.claim('late', { leaseMs: LEASE, requestId: 'r', fingerprint: 'f3' })).status,
      ).toBe('claimed');
      expect(await store.claim('late', { leaseMs: LEASE, fingerprint: 'f4' })).toEqual({
        status: 'mismatch',
      });
    });

    it('markOnce is true the first time within ttlMs, false after, true once expired', async () => {
      const { store, advance } = await setup();
      expect(await store.markOnce('wamid.1', TTL)).toBe(true);
      expect(await store.markOnce('wamid.1', TTL)).toBe(false);
      expect(await store.markOnce('wamid.2', TTL)).toBe(true);
      await advance(TTL - 1000);
      expect(await store.markOnce('wamid.1', TTL)).toBe(false);
      await advance(1100);
      expect(await store.markOnce('wamid.1', TTL)).toBe(true);
    });

    it('keeps markOnce marks apart from claims of the same key', async () => {
      const { store } = await setup();
      expect(await store.markOnce('shared', TTL)).toBe(true);
      expect((await store.claim('shared', { leaseMs: LEASE })).status).toBe('claimed');
      expect(await store.markOnce('shared', TTL)).toBe(false);
    });

    it('keeps keys with braces, colons and non-ASCII apart', async () => {
      const { store } = await setup();
      const keys = ['a', 'a}', '{a}', 'a:once', 'a}:once', 'äöå', 'x'.repeat(2000)];
      for (const key of keys) {
        expect((await store.claim(key, { leaseMs: LEASE })).status).toBe('claimed');
        expect(await store.markOnce(key, TTL)).toBe(true);
      }
    });

    it('rejects bad input with an error naming the value, writing nothing', async () => {
      const { store } = await setup();
      await expect(store.claim('', { leaseMs: LEASE })).rejects.toThrow(/key must not be empty/);
      await expect(store.claim('k', { leaseMs: -5 })).rejects.toThrow(/leaseMs.*-5/);
      await expect(store.claim('k', { leaseMs: Number.NaN })).rejects.toThrow(/leaseMs.*NaN/);
      await expect(store.claim('k', { leaseMs: 0 })).rejects.toThrow(/leaseMs.*0/);
      await expect(store.claim('k', { leaseMs: LEASE, fingerprint: '' })).rejects.toThrow(
        /fingerprint must not be empty/,
      );
      await expect(store.claim('k', { leaseMs: LEASE, requestId: '' })).rejects.toThrow(
        /requestId must not be empty/,
      );
      await expect(
        store.claim('k', { leaseMs: LEASE, requestId: 7 as unknown as string }),
      ).rejects.toThrow(/requestId must be a string, got 7/);
      await expect(store.markOnce('', TTL)).rejects.toThrow(/key must not be empty/);
      await expect(store.markOnce('k', -1)).rejects.toThrow(/ttlMs.*-1/);
      await expect(store.markOnce('k', Number.POSITIVE_INFINITY)).rejects.toThrow(
        /ttlMs.*Infinity/,
      );
      const claim = await store.claim('k', { leaseMs: LEASE });
      if (claim.status !== 'claimed') throw new Error('expected a claim');
      await expect(store.complete('k', claim.token, 1, { resultTtlMs: -60 })).rejects.toThrow(
        /resultTtlMs.*-60/,
      );
      await expect(store.complete('k', '', 1, { resultTtlMs: TTL })).rejects.toThrow(
        /token must not be empty/,
      );
      await expect(store.release('', claim.token)).rejects.toThrow(/key must not be empty/);
      expect((await store.claim('k', { leaseMs: LEASE })).status).toBe('in_progress');
      expect(await store.markOnce('k', TTL)).toBe(true);
    });
  });
}
