import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DeadLetterEntry, NewDeadLetter, Reason } from '../src/index.js';
import { createFileSink } from '../src/node/index.js';
import {
  createRedisDeadLetterQueue,
  createRedisMetricsReporter,
  readFleetMetrics,
} from '../src/redis/index.js';
import { type WhatsAppEvent, whatsappDeliveryMetrics } from '../src/whatsapp/index.js';
import { type PackedCli, packCli } from './support/packed-cli.js';
import { connectRedis, describeRedis, redisUrl, uniquePrefix } from './support/redis.js';

const AT = '2026-01-02T03:04:05.000Z';

function letter(
  id: string,
  reason: Reason,
  errorCode: number | undefined,
  extra: Partial<NewDeadLetter> = {},
): NewDeadLetter {
  return {
    id,
    payload: { id },
    reason,
    disposition: 'exhausted',
    attempts: [
      {
        message: `failed ${id}`,
        reason,
        at: AT,
        ...(errorCode === undefined ? {} : { errorCode }),
      },
    ],
    firstAttemptAt: AT,
    lastAttemptAt: AT,
    ...extra,
  };
}

describeRedis('retrykit command line (packed tarball, real Redis)', () => {
  let cli: PackedCli;
  beforeAll(async () => {
    cli = await packCli();
  }, 60_000);
  afterAll(() => cli?.remove());
  const redis = connectRedis();
  const env = (): Record<string, string> => ({ REDIS_URL: redisUrl });

  it('is the package bin: an executable with a node shebang; --help everywhere, exit 0', async () => {
    expect(readFileSync(cli.bin, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(statSync(cli.bin).mode & 0o111).not.toBe(0);
    const commands = [
      [],
      ['dlq'],
      ['dlq', 'list'],
      ['dlq', 'show'],
      ['dlq', 'stats'],
      ['dlq', 'redrive'],
      ['dlq', 'purge'],
      ['dlq', 'export'],
      ['replay'],
      ['stats'],
      ['dashboard'],
    ];
    const runs = await Promise.all(commands.map((c) => cli.run([...c, '--help'])));
    for (const [i, run] of runs.entries()) {
      expect(run.code, commands[i]?.join(' ')).toBe(0);
      expect(run.stdout).toMatch(/^Usage: retrykit/);
    }
  });

  it('exit 2 for usage errors, 1 for failures, each saying what', async () => {
    const [unknown, flag, noYes, rate, noRedis] = await Promise.all([
      cli.run(['frobnicate']),
      cli.run(['dlq', 'list', '--bogus']),
      // Usage is checked before connecting: no Redis needed to be told.
      cli.run(['dlq', 'purge'], { REDIS_URL: 'redis://127.0.0.1:1' }),
      cli.run(['dlq', 'redrive', '--rate', 'fast'], { REDIS_URL: 'redis://127.0.0.1:1' }),
      cli.run(['dlq', 'list'], { REDIS_URL: 'redis://127.0.0.1:1' }),
    ]);
    expect(unknown).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/unknown command "frobnicate"/),
    });
    expect(flag).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--bogus[\s\S]*dlq list --help/),
    });
    expect(noYes).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--yes[\s\S]*"retrykit dlq purge --help"/),
    });
    expect(rate).toMatchObject({ code: 2, stderr: expect.stringMatching(/--rate .*"fast"/) });
    expect(noRedis).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(
        /cannot connect to Redis at redis:\/\/127\.0\.0\.1:1.*ECONNREFUSED/,
      ),
    });
  });

  it('dlq list, show and stats read entries; filters narrow; --json for scripts', async () => {
    const prefix = uniquePrefix('cli-read');
    const dlq = createRedisDeadLetterQueue(redis, { prefix });
    await dlq.add(letter('a', 'client_error', 131026, { deadAt: '2026-01-01T10:00:00.000Z' }));
    await dlq.add(letter('b', 'client_error', 131026, { deadAt: '2026-01-02T10:00:00.000Z' }));
    await dlq.add(letter('c', 'rate_limited', 130429, { deadAt: '2026-01-02T11:00:00.000Z' }));
    await dlq.add(
      letter('d', 'server_error', undefined, {
        payload: '<script>alert(1)</script>\u001b[2J',
        origin: { kind: 'webhook', webhookId: 'abc', path: '$' },
      }),
    );
    const ids = async (...args: string[]): Promise<string[]> => {
      const run = await cli.run(['dlq', 'list', '--prefix', prefix, '--json', ...args], env());
      expect(run.code, run.stderr).toBe(0);
      return (JSON.parse(run.stdout) as { entries: DeadLetterEntry[] }).entries.map((e) => e.id);
    };
    expect(await ids()).toEqual(['a', 'b', 'c', 'd']);
    expect(await ids('--reason', 'client_error')).toEqual(['a', 'b']);
    expect(await ids('--code', '130429,131026')).toEqual(['a', 'b', 'c']);
    expect(await ids('--ids', 'd,a')).toEqual(['a', 'd']);
    expect(await ids('--older-than', '1d')).toEqual(['a', 'b', 'c']);
    expect(await ids('--limit', '1')).toEqual(['a']);

    const table = await cli.run(['dlq', 'list', '--prefix', prefix], env());
    expect(table.stdout).toMatch(/^ID\s+DEAD AT\s+REASON\s+CODE\s+ATTEMPTS\s+ORIGIN/);
    expect(table.stdout).toMatch(/d\s+\S+\s+server_error\s+-\s+1\s+webhook abc \$/);

    const stats = await cli.run(['dlq', 'stats', '--prefix', prefix, '--json'], env());
    expect(JSON.parse(stats.stdout)).toMatchObject({
      total: 4,
      byReason: { client_error: 2, rate_limited: 1, server_error: 1 },
      byCode: { 131026: 2, 130429: 1, '-': 1 },
      byDay: { '2026-01-01': 1, '2026-01-02': 2 },
      patterns: [
        {
          reason: 'client_error',
          code: '131026',
          count: 2,
          firstDeadAt: '2026-01-01T10:00:00.000Z',
        },
        expect.objectContaining({ count: 1 }),
        expect.objectContaining({ count: 1 }),
      ],
    });

    const shown = await cli.run(['dlq', 'show', 'd', '--prefix', prefix], env());
    expect(shown.code).toBe(0);
    // An attacker's payload is printed as text: no terminal control character gets through.
    expect(shown.stdout).toContain('<script>alert(1)</script>\\u001b[2J');
    expect(shown.stdout).not.toContain('\u001b');
    const json = await cli.run(['dlq', 'show', 'c', '--prefix', prefix, '--json'], env());
    expect(JSON.parse(json.stdout)).toEqual(await dlq.get('c'));
    const missing = await cli.run(['dlq', 'show', 'zz', '--prefix', prefix], env());
    expect(missing).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/no dead letter with id "zz"/),
    });
  });

  it('export writes JSON lines that replay reads back; purge needs --yes', async () => {
    const prefix = uniquePrefix('cli-export');
    const dlq = createRedisDeadLetterQueue(redis, { prefix });
    for (const [i, reason] of (['timeout', 'network', 'client_error'] as const).entries()) {
      await dlq.add(
        letter(`e${i}`, reason, 400 + i, {
          origin: { kind: 'bullmq', queue: 'sends', jobId: String(i), jobName: 'send' },
          source: 'sends',
        }),
      );
    }
    const before = (await dlq.list()).entries;
    const file = join(cli.app, 'export.jsonl');
    const exported = await cli.run(
      ['dlq', 'export', '--prefix', prefix, '--out', 'export.jsonl'],
      env(),
    );
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stderr).toMatch(/export: 3 exported/);
    expect(
      readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual(before);
    const toStdout = await cli.run(
      ['dlq', 'export', '--prefix', prefix, '--reason', 'network'],
      env(),
    );
    expect(
      toStdout.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).id),
    ).toEqual(['e1']);

    const purged = await cli.run(
      ['dlq', 'purge', '--prefix', prefix, '--reason', 'network', '--yes'],
      env(),
    );
    expect(purged).toMatchObject({ code: 0, stdout: 'purged 1 dead letter\n' });
    const all = await cli.run(['dlq', 'purge', '--prefix', prefix, '--yes'], env());
    expect(all).toMatchObject({ code: 0, stdout: 'purged 2 dead letters\n' });
    expect(await dlq.size()).toBe(0);

    const replayed = await cli.run(
      ['replay', 'export.jsonl', '--keep', '--prefix', prefix, '--json'],
      env(),
    );
    expect(replayed.code, replayed.stderr).toBe(0);
    expect(JSON.parse(replayed.stdout)).toMatchObject({ ingested: 3, invalid: 0, rejected: 0 });
    expect(replayed.stderr).toMatch(/ingested e0\ningested e1\ningested e2\n/); // plain lines off a terminal
    expect((await dlq.list()).entries).toEqual(before);
    expect(existsSync(file)).toBe(true);
  });

  it('replay ingests a file-fallback file and consumes it; bad lines are set aside, exit 1', async () => {
    const prefix = uniquePrefix('cli-replay');
    const dlq = createRedisDeadLetterQueue(redis, { prefix });
    const file = join(cli.app, `fallback-${prefix.replaceAll(':', '-')}.jsonl`);
    const sink = createFileSink<NewDeadLetter>(file);
    await sink.add({ ...letter('f1', 'timeout', undefined), deadAt: AT });
    await sink.add({ ...letter('f2', 'network', undefined), deadAt: AT });
    const ok = await cli.run(['replay', file, '--prefix', prefix], env());
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/replay: 2 ingested/);
    expect((await dlq.list()).entries.map((e) => [e.id, e.deadAt])).toEqual([
      ['f1', AT],
      ['f2', AT],
    ]);
    expect(existsSync(file)).toBe(false);

    writeFileSync(file, `${JSON.stringify(letter('f3', 'timeout', 1))}\nnot json\n{"id":"bad"}\n`);
    const bad = await cli.run(['replay', file, '--prefix', prefix, '--json'], env());
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ingested: 1, invalid: 1, rejected: 1 });
    expect(readFileSync(`${file}.invalid`, 'utf8')).toBe('{"id":"bad"}\n');
    expect(readFileSync(`${file}.rejected`, 'utf8')).toBe('not json\n');
    expect(await dlq.size()).toBe(3);
    const none = await cli.run(['replay', file, '--prefix', prefix], env());
    expect(none).toMatchObject({ code: 1, stderr: expect.stringMatching(/no such file/) });
  });

  it('dlq redrive: a --handler module, filters, --rate pacing, --dry-run; failures stay, exit 1', async () => {
    const prefix = uniquePrefix('cli-redrive');
    const dlq = createRedisDeadLetterQueue(redis, { prefix });
    for (let i = 0; i < 5; i++) await dlq.add(letter(`r${i}`, 'server_error', 500));
    await dlq.add(letter('other', 'client_error', 131026));
    const seen = join(cli.app, `seen-${prefix.replaceAll(':', '-')}.txt`);
    writeFileSync(
      join(cli.app, 'handler.mjs'),
      `import { appendFileSync } from 'node:fs';
export default function handler(entry) {
  appendFileSync(process.env.SEEN, entry.id + '\\n');
  if (entry.id === 'r3') throw new Error('still broken');
}
`,
    );
    const dry = await cli.run(
      [
        'dlq',
        'redrive',
        '--prefix',
        prefix,
        '--reason',
        'server_error',
        '--handler',
        './handler.mjs',
        '--dry-run',
      ],
      { ...env(), SEEN: seen },
    );
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/dry run: 5 would be redriven, 0 could not/);
    expect(existsSync(seen)).toBe(false);

    const started = Date.now();
    const run = await cli.run(
      [
        'dlq',
        'redrive',
        '--prefix',
        prefix,
        '--reason',
        'server_error',
        '--handler',
        './handler.mjs',
        '--rate',
        '10/s',
        '--json',
      ],
      { ...env(), SEEN: seen },
    );
    const elapsed = Date.now() - started;
    expect(run.code).toBe(1);
    expect(readFileSync(seen, 'utf8')).toBe('r0\nr1\nr2\nr3\nr4\n');
    expect(elapsed).toBeGreaterThanOrEqual(400); // 5 entries at 10/s: 4 gaps of 100 ms
    expect(JSON.parse(run.stdout)).toMatchObject({
      redriven: ['r0', 'r1', 'r2', 'r4'],
      failed: ['r3'],
      errors: ['r3: still broken'],
    });
    expect(run.stderr).toMatch(/failed r3: still broken/);
    expect((await dlq.list()).entries.map((e) => e.id)).toEqual(['r3', 'other']);
    expect(await dlq.get('r3')).toMatchObject({ redriveFailures: 1 });

    const noWay = await cli.run(['dlq', 'redrive', '--prefix', prefix, '--ids', 'other'], env());
    expect(noWay).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/no BullMQ origin and no --handler.*other/),
    });
    const badModule = await cli.run(
      ['dlq', 'redrive', '--prefix', prefix, '--handler', './nope.mjs'],
      env(),
    );
    expect(badModule).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--handler: cannot load/),
    });
  });

  it('dlq redrive re-adds an entry that came from BullMQ to its queue', async () => {
    const prefix = uniquePrefix('cli-bullmq');
    const bullPrefix = uniquePrefix('bull');
    const dlq = createRedisDeadLetterQueue(redis, { prefix });
    await dlq.add(
      letter('sends:7', 'server_error', 500, {
        payload: { to: '4915', text: 'hi' },
        origin: { kind: 'bullmq', queue: 'cli-sends', jobId: '7', jobName: 'send-text' },
      }),
    );
    const run = await cli.run(
      ['dlq', 'redrive', '--prefix', prefix, '--bullmq-prefix', bullPrefix],
      env(),
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/redriven sends:7/);
    const queue = new Queue('cli-sends', { connection: redis, prefix: bullPrefix });
    try {
      const jobs = await queue.getWaiting();
      expect(jobs.map((j) => [j.name, j.data])).toEqual([
        ['send-text', { to: '4915', text: 'hi' }],
      ]);
    } finally {
      await queue.close();
    }
    expect(await dlq.size()).toBe(0);
  });

  it('stats prints the fleet metrics readFleetMetrics returns', async () => {
    const prefix = uniquePrefix('cli-stats');
    const reporter = createRedisMetricsReporter(redis, {
      prefix,
      sections: [whatsappDeliveryMetrics()],
    });
    for (const [i, status] of (['accepted', 'sent', 'delivered'] as const).entries()) {
      const event: WhatsAppEvent = {
        type: 'message_status',
        time: 0,
        messageId: 'wamid.1',
        status,
        timestampMs: 1_000 + i * 1_500,
      };
      reporter.onEvent(event);
    }
    for (let i = 0; i < 30; i++) {
      reporter.onEvent({ type: 'attempt_start', time: 0, attempt: 0, elapsedMs: 0 });
      reporter.onEvent({
        type: 'attempt_success',
        time: 0,
        attempt: 0,
        durationMs: 20,
        elapsedMs: 20,
      });
    }
    reporter.onEvent({
      type: 'retry_scheduled',
      time: 0,
      attempt: 1,
      delayMs: 100,
      reason: 'rate_limited',
    });
    await reporter.close();
    const json = await cli.run(['stats', '--prefix', prefix, '--json'], env());
    expect(json.code, json.stderr).toBe(0);
    const fleet = await readFleetMetrics(redis, { prefix });
    const printed = JSON.parse(json.stdout);
    // Read a moment apart: everything but the per-minute rate (over the time covered) agrees.
    expect({
      ...printed.snapshot,
      time: 0,
      coveredMs: 0,
      calls: { ...printed.snapshot.calls, perMinute: 0 },
    }).toEqual({
      ...fleet.snapshot,
      time: 0,
      coveredMs: 0,
      calls: { ...fleet.snapshot.calls, perMinute: 0 },
    });
    expect(printed.instances).toBe(1);
    const text = await cli.run(['stats', '--prefix', prefix, '--window', '1m'], env());
    expect(text.stdout).toMatch(/calls\s+30 started, 30 succeeded, 0 gave up/);
    expect(text.stdout).toMatch(/retry rate 3\.2 %, healthy ≤ 2 %/);
    expect(text.stdout).toMatch(/health: BREACHED\n {2}retryRatio/);
    expect(text.stdout).not.toContain('whatsapp delivery');
    const whatsapp = await cli.run(['stats', '--prefix', prefix, '--whatsapp'], env());
    expect(whatsapp.stdout).toMatch(/whatsapp delivery\s+1 delivered, 0 failed \(100\.0 %\)/);
    // 1.5 s from sent to delivered, read back from a histogram bucket (within 1.6 %).
    const p50 = Number(/send → delivered\s+p50 (\d+) ms/.exec(whatsapp.stdout)?.[1]);
    expect(Math.abs(p50 - 1500)).toBeLessThanOrEqual(1500 / 64);
  });
  it('dashboard serves the page on 127.0.0.1, read-only unless --allow-changes; Ctrl-C ends it with 0', async () => {
    const bad = await cli.run(['dashboard', '--port', 'x'], env());
    expect(bad).toMatchObject({ code: 2, stderr: expect.stringMatching(/--port .*"x"/) });
    const prefix = uniquePrefix('cli-dash');
    const dlq = createRedisDeadLetterQueue(redis, { prefix: `${prefix}:dlq` });
    await dlq.add(letter('a', 'client_error', 131026));
    for (const [flags, canMutate] of [
      [[], false],
      [['--allow-changes'], true],
    ] as const) {
      const child = spawn(
        cli.bin,
        ['dashboard', '--port', '0', '--prefix', prefix, '--dlq-prefix', `${prefix}:dlq`, ...flags],
        { cwd: cli.app, env: { PATH: process.env.PATH ?? '', REDIS_URL: redisUrl } },
      );
      let stdout = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          const found = /http:\/\/127\.0\.0\.1:\d+\//.exec(stdout);
          if (found) resolve(found[0]);
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${stdout}`)));
      });
      const session = (await (await fetch(`${url}api/session`)).json()) as { canMutate: boolean };
      expect(session.canMutate).toBe(canMutate);
      const list = (await (await fetch(`${url}api/dead-letters`)).json()) as {
        entries: { id: string }[];
      };
      expect(list.entries.map((e) => e.id)).toEqual(['a']);
      const code = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGINT');
      expect(await code).toBe(0);
    }
  });
});
