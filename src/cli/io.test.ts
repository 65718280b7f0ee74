import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Io, Progress, parseDuration, parseRate, printable, UsageError } from './io.js';

function fakeIo(tty: boolean): { io: Io; stderr: () => string } {
  const chunks: string[] = [];
  const stderr = Object.assign(new PassThrough(), { isTTY: tty });
  stderr.on('data', (c: Buffer) => chunks.push(c.toString()));
  return {
    io: { stdout: new PassThrough(), stderr, env: {}, cwd: '/' },
    stderr: () => chunks.join(''),
  };
}

describe('command line formats', () => {
  it('reads durations and rates in every unit, never NaN, and names the flag otherwise', () => {
    fc.assert(
      fc.property(fc.nat(1_000_000), fc.constantFrom('ms', 's', 'm', 'h', 'd'), (n, unit) => {
        const ms = parseDuration('older-than', `${n}${unit}`);
        const factor = { ms: 1, s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[unit];
        expect(ms).toBe(n * factor);
      }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.constantFrom('s', 'm', 'h'),
        (n, per) => {
          const rate = parseRate('rate', `${n}/${per}`);
          expect(Number.isFinite(rate) && rate > 0).toBe(true);
        },
      ),
    );
    expect(parseRate('rate', '5')).toBe(5);
    for (const bad of ['', 'soon', '-1s', '1w', 'NaN', '1e3s']) {
      expect(() => parseDuration('older-than', bad)).toThrow(UsageError);
      expect(() => parseDuration('older-than', bad)).toThrow(/--older-than must be a duration/);
    }
    for (const bad of ['0/s', 'fast', '-2/s', '1/d', 'Infinity']) {
      expect(() => parseRate('rate', bad)).toThrow(/--rate must be a positive rate/);
    }
  });

  it('escapes terminal control characters, keeping newlines and tabs', () => {
    expect(printable('a\u001b[31mb\u0007\nc\td\u009b')).toBe('a\\u001b[31mb\\u0007\nc\td\\u009b');
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        // biome-ignore lint/suspicious/noControlCharactersInRegex: checking none is left.
        expect(printable(s)).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
      }),
      { numRuns: 200 },
    );
  });

  it('progress: a bar with counts and rate on a terminal, plain lines otherwise', () => {
    const tty = fakeIo(true);
    const bar = new Progress(tty.io, 'redrive', 4);
    bar.tick('redriven', 'redriven a');
    bar.tick('failed', 'failed b');
    bar.finish();
    expect(tty.stderr().replaceAll('\u001b', 'ESC')).toMatch(
      /\rESC\[2Kredrive \[#{15}\.{15}\] 2\/4 {2}redriven 1 · failed 1 {2}\d+\.\d\/s\n/,
    );
    expect(tty.stderr()).not.toContain('redriven a\n');
    expect(tty.stderr()).toMatch(/redrive: 1 redriven, 1 failed \(\d+\.\d\/s\)\n$/);

    const plain = fakeIo(false);
    const lines = new Progress(plain.io, 'redrive', 4);
    lines.tick('redriven', 'redriven a');
    lines.tick('failed', 'failed b');
    lines.finish();
    expect(plain.stderr()).not.toContain('\r');
    expect(plain.stderr()).toMatch(/^redriven a\nfailed b\nredrive: 1 redriven, 1 failed/);
  });

  it('the command line imports only what users can import: the package entry points', () => {
    const dir = import.meta.dirname;
    // `bullmq/requeue.js` is `createDeadLetterRequeuer` of retrykit/bullmq, imported from its
    // file so that the bundled command loads bullmq only when it re-adds a job.
    const allowed =
      /^(node:|ioredis$|bullmq$|\.\/|\.\.\/(index|redis\/index|node\/index|bullmq\/index|bullmq\/requeue|dashboard\/index|whatsapp\/index)\.js$)/;
    for (const file of readdirSync(dir).filter(
      (f) => f.endsWith('.ts') && !f.endsWith('.test.ts'),
    )) {
      const source = readFileSync(join(dir, file), 'utf8');
      for (const [, spec] of source.matchAll(/(?:from|import\()\s*'([^']+)'/g)) {
        expect(spec, `${file} imports ${spec}`).toMatch(allowed);
      }
    }
  });
});
