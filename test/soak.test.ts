import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { type AuditInput, audit, bucketExcess, type LoggedRequest } from '../tools/soak/audit.js';
import { chaosSchedule, FAULT_KINDS } from '../tools/soak/chaos.js';
import { describeOwnRedis } from './support/redis.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsx = fileURLToPath(new URL('../node_modules/.bin/tsx', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'retrykit-soak-test-'));

afterAll(() => rmSync(out, { recursive: true, force: true }));

describeOwnRedis('npm run soak', () => {
  it('runs a short soak with its processes and a fault, audits it and writes the report', async () => {
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve) => {
        execFile(
          tsx,
          [
            '--import',
            './tools/lua-loader.mjs',
            'tools/soak/cli.ts',
            '--seconds',
            '8',
            '--seed',
            '1',
            '--workers',
            '1',
            '--out',
            out,
          ],
          { cwd: root, env: { ...process.env, NO_COLOR: '1' }, timeout: 150_000 },
          (error, stdout, stderr) => {
            const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
            resolve({ code, stdout, stderr });
          },
        );
      },
    );
    const lines = run.stdout.trim().split('\n');
    expect(run.stdout).toContain('chaos schedule (seed 1):');
    expect(lines.at(-1), run.stdout + run.stderr).toMatch(/^lost \d+, doubled \d+$/);
    expect(lines.at(-1)).toBe('lost 0, doubled 0');
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const report = readFileSync(join(out, 'report.md'), 'utf8');
    expect(report).toContain('| Verdict | **lost 0, doubled 0**');
    expect(report).toContain('| Closed loop |');
    expect(report).toContain('| Stuck alerts |');
    expect(report).not.toContain('closed loop pending');
    expect(existsSync(join(out, 'soak.svg'))).toBe(true);
    expect(readFileSync(join(out, 'soak.svg'), 'utf8')).toMatch(/^<svg[\s\S]*<\/svg>\s*$/);
  }, 180_000);

  it('rejects a bad option naming it and the value', async () => {
    const stderr = await new Promise<string>((resolve) => {
      execFile(
        tsx,
        ['--import', './tools/lua-loader.mjs', 'tools/soak/cli.ts', '--seconds', 'soon'],
        { cwd: root },
        (_error, _stdout, err) => resolve(err),
      );
    });
    expect(stderr).toContain('--seconds must be a positive number, got soon');
  });
});

describe('the soak audit', () => {
  const request = (key: string, at: number, outcome: string, wamid?: string): LoggedRequest => ({
    at,
    phoneNumberId: '1001',
    headers: { 'x-soak-worker': 'worker-1/100', 'x-soak-sent': String(at) },
    outcome,
    key,
    to: '4915',
    ...(wamid === undefined ? {} : { wamid }),
  });
  const input = (over: Partial<AuditInput>): AuditInput => ({
    messages: new Map(
      ['a', 'b', 'c', 'd', 'e'].map((key) => [
        key,
        { key, phoneNumberId: '1001', to: '4915', enqueuedAt: 0 },
      ]),
    ),
    requests: [],
    finalStatus: new Map(),
    deadLetters: [],
    queuedUpdates: [],
    records: new Map(),
    pendingJobs: new Map(),
    faults: [],
    fallback: { idsBefore: [], replayed: 0, rejected: 0, leftAfter: 0 },
    limits: {
      perNumber: { capacity: 100, refillPerSecond: 100 },
      pair: { capacity: 100, refillPerSecond: 100 },
    },
    leaseMs: 30_000,
    graceMs: 8_000,
    statusArrived: new Map(),
    loopEvents: [],
    stillDue: new Set(),
    ...over,
  });

  it('tells delivered, re-sent after failed, dead-lettered, pending and doubled apart', () => {
    const result = audit(
      input({
        requests: [
          request('a', 1000, 'accepted', 'w1'),
          request('b', 1000, 'server_error'),
          request('d', 1000, 'accepted', 'w2'),
          request('d', 4000, 'accepted', 'w5'),
          request('e', 1000, 'accepted', 'w3'),
          request('e', 5000, 'accepted', 'w4'),
        ],
        finalStatus: new Map([
          ['w1', 'read'],
          ['w2', 'failed'],
          ['w5', 'delivered'],
          ['w3', 'delivered'],
          ['w4', 'delivered'],
        ]),
        deadLetters: [
          {
            id: 'sends:b',
            reason: 'server_error',
            disposition: 'exhausted',
            attempts: [{ reason: 'server_error', at: new Date(1000).toISOString() }],
          },
        ],
        pendingJobs: new Map([['c', 'delayed']]),
      }),
    );
    expect(result.outcomes).toMatchObject({
      delivered: 2,
      dead_lettered: 1,
      pending: 1,
      doubled: 1,
      lost: 0,
    });
    expect(result.verdict).toBe('lost 0, doubled 1');
    expect(result.ok).toBe(false);
    expect(result.findings.find((f) => f.kind === 'doubled')?.timeline.join('\n')).toContain(
      'accepted w4',
    );
  });

  it('counts a message whose every send was reported failed, neither re-sent nor dead-lettered, as lost', () => {
    const result = audit(
      input({
        messages: new Map([['f', { key: 'f', phoneNumberId: '1001', to: '4915', enqueuedAt: 0 }]]),
        requests: [request('f', 1000, 'accepted', 'w1')],
        finalStatus: new Map([['w1', 'failed']]),
      }),
    );
    expect(result.verdict).toBe('lost 1, doubled 0');
    const kept = audit(
      input({
        messages: new Map([['f', { key: 'f', phoneNumberId: '1001', to: '4915', enqueuedAt: 0 }]]),
        requests: [request('f', 1000, 'accepted', 'w1')],
        finalStatus: new Map([['w1', 'failed']]),
        stillDue: new Set(['f']),
      }),
    );
    expect(kept.outcomes.pending).toBe(1);
    expect(kept.verdict).toBe('lost 0, doubled 0');
  });

  it('justifies a re-send of a held send only when none of its statuses had arrived and the grace window had passed', () => {
    const doubled = (resentAt: number, arrivedAt: number | undefined) =>
      audit(
        input({
          messages: new Map([
            ['a', { key: 'a', phoneNumberId: '1001', to: '4915', enqueuedAt: 0 }],
          ]),
          requests: [
            request('a', 1000, 'hang_after_accept', 'w1'),
            request('a', resentAt, 'accepted', 'w2'),
          ],
          finalStatus: new Map([
            ['w1', 'delivered'],
            ['w2', 'delivered'],
          ]),
          statusArrived: new Map(arrivedAt === undefined ? [] : [['w1', arrivedAt]]),
        }),
      );
    expect(doubled(10_000, undefined).outcomes.doubled_justified).toBe(1);
    expect(doubled(10_000, undefined).justified.held).toBe(1);
    expect(doubled(10_000, 20_000).outcomes.doubled_justified).toBe(1);
    expect(doubled(10_000, 20_000).verdict).toBe('lost 0, doubled 0');
    // Its status was there before the re-send: the reconciler should have seen it.
    expect(doubled(10_000, 5_000).verdict).toBe('lost 0, doubled 1');
    // Sent again inside the grace window.
    expect(doubled(5_000, undefined).verdict).toBe('lost 0, doubled 1');
  });

  it('checks that a message whose statuses were dropped is reported stuck, once', () => {
    const run = (stuckEvents: number) =>
      audit(
        input({
          messages: new Map([
            ['a', { key: 'a', phoneNumberId: '1001', to: '4915', enqueuedAt: 0 }],
          ]),
          requests: [{ ...request('a', 1000, 'accepted', 'w1'), statusesDropped: true }],
          loopEvents: Array.from({ length: stuckEvents }, () => ({
            type: 'message_stuck' as const,
            key: 'a',
            messageId: 'w1',
            at: 22_000,
            by: 'worker-1/100',
          })),
        }),
      );
    expect(run(1).stuck).toMatchObject({ expected: 1, alerted: 1, missing: 0, repeated: 0 });
    expect(run(1).ok).toBe(true);
    expect(run(0).stuck.missing).toBe(1);
    expect(run(0).ok).toBe(false);
    expect(run(2).stuck.repeated).toBe(1);
    expect(run(2).ok).toBe(false);
  });

  it('counts a message with no accepted send, no dead letter and no job as lost', () => {
    const result = audit(
      input({
        messages: new Map([['z', { key: 'z', phoneNumberId: '1001', to: '4915', enqueuedAt: 0 }]]),
      }),
    );
    expect(result.verdict).toBe('lost 1, doubled 0');
  });

  it('justifies a double only when the first sender was killed after the accept, within the lease, before any of its statuses arrived', () => {
    const doubled = (killedAt: number, arrivedAt = 50_000) =>
      audit(
        input({
          requests: [request('a', 1000, 'accepted', 'w1'), request('a', 40_000, 'accepted', 'w2')],
          finalStatus: new Map([
            ['w1', 'sent'],
            ['w2', 'sent'],
          ]),
          statusArrived: new Map([['w1', arrivedAt]]),
          faults: [
            {
              atMs: 0,
              kind: 'worker_kill',
              durationMs: 1000,
              target: 0,
              startedAt: killedAt,
              endedAt: killedAt + 1000,
              victim: 'worker-1/100',
            },
          ],
        }),
      );
    expect(doubled(1200).outcomes.doubled_justified).toBe(1);
    expect(doubled(1200).justified.killed).toBe(1);
    // Its status was in the record before the retry: the retry must find it there.
    expect(doubled(1200, 1100).outcomes.doubled).toBe(1);
    expect(doubled(500, 1100).outcomes.doubled).toBe(1);
    expect(doubled(1000 + 31_000, 1100).outcomes.doubled).toBe(1);
  });

  it('bucketExcess finds grants beyond capacity + rate · t over any window, and none within it', () => {
    // capacity 2, 1 per second: three at once is one too many; then one a second is fine.
    expect(bucketExcess([0, 0, 0], 2, 1)).toBe(1);
    expect(bucketExcess([0, 0, 1000, 2000, 3000], 2, 1)).toBe(0);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 40 }), (cap, n) => {
        // A schedule that is exactly the bucket's: a burst of `cap`, then one per second.
        const times = [
          ...Array.from({ length: cap }, () => 0),
          ...Array.from({ length: n }, (_, i) => (i + 1) * 1000),
        ];
        expect(bucketExcess(times, cap, 1)).toBe(0);
        expect(
          bucketExcess(
            [...times, n * 1000].sort((a, b) => a - b),
            cap,
            1,
          ),
        ).toBe(1);
      }),
    );
  });

  it('draws the same schedule from the same seed, every kind before a repeat', () => {
    expect(chaosSchedule(7, 300_000, 2)).toEqual(chaosSchedule(7, 300_000, 2));
    const kinds = chaosSchedule(7, 300_000, 2).map((e) => e.kind);
    expect(new Set(kinds.slice(0, FAULT_KINDS.length)).size).toBe(FAULT_KINDS.length);
  });
});
