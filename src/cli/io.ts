// What the command line writes to and reads from, and the small formats it shares: durations,
// rates, progress, tables. Kept apart so that commands run in tests without a process.

/** A failure of the command itself: exit code 1, with its message. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
}

/** A wrong invocation: exit code 2, with its message and a pointer to `--help`. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Where a command writes. */
export interface Io {
  readonly stdout: NodeJS.WritableStream & { readonly isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { readonly isTTY?: boolean; columns?: number };
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The working directory that relative paths are resolved against. */
  readonly cwd: string;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters it escapes.
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/**
 * `text` with terminal control characters shown as `\u001b`-style escapes: payloads and error
 * messages come from outside (webhooks), and must not move the cursor or recolour a terminal.
 */
export function printable(text: string): string {
  return text.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Writes a line to standard output, control characters escaped. */
export function out(io: Io, line = ''): void {
  io.stdout.write(`${printable(line)}\n`);
}

/** Writes a line to standard error, control characters escaped. */
export function err(io: Io, line: string): void {
  io.stderr.write(`${printable(line)}\n`);
}

const UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** `90s`, `15m`, `2h`, `7d`, `500ms` or a plain number of milliseconds, in milliseconds. */
export function parseDuration(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  const unit = UNITS[m?.[2] ?? 'ms'];
  if (m === null || unit === undefined) {
    throw new UsageError(`--${flag} must be a duration like 30s, 15m, 2h or 7d, got "${text}"`);
  }
  return Number(m[1]) * unit;
}

/** `5/s`, `300/m` or a plain number per second, in operations per second. */
export function parseRate(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(?:\/(s|m|h))?$/.exec(text.trim());
  const per = { s: 1, m: 60, h: 3600 }[(m?.[2] ?? 's') as 's' | 'm' | 'h'];
  const n = m === null ? Number.NaN : Number(m[1]) / per;
  if (!(n > 0) || !Number.isFinite(n)) {
    throw new UsageError(`--${flag} must be a positive rate like 5/s or 300/m, got "${text}"`);
  }
  return n;
}

/** A positive integer flag. */
export function parseCount(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`--${flag} must be a positive integer, got "${text}"`);
  }
  return n;
}

/** Rows as aligned columns, the first row the header. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map((row) =>
      row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '),
    )
    .join('\n');
}

/** A percentage with one decimal, or `-` when there is nothing to divide. */
export function percent(ratio: number | null): string {
  return ratio === null ? '-' : `${(ratio * 100).toFixed(1)} %`;
}

/**
 * Reports progress: a bar with counts and rate on a terminal (on stderr, redrawn in place),
 * and one plain line per item otherwise.
 */
export class Progress {
  readonly #io: Io;
  readonly #label: string;
  readonly #total: number | undefined;
  readonly #start = Date.now();
  readonly #tty: boolean;
  readonly #counts = new Map<string, number>();
  #done = 0;
  #lastDraw = 0;

  constructor(io: Io, label: string, total: number | undefined) {
    this.#io = io;
    this.#label = label;
    this.#total = total;
    this.#tty = io.stderr.isTTY === true;
  }

  /** Counts one item under `outcome`; `line` is printed when not on a terminal. */
  tick(outcome: string, line?: string): void {
    this.#done++;
    this.#counts.set(outcome, (this.#counts.get(outcome) ?? 0) + 1);
    if (!this.#tty) {
      if (line !== undefined) err(this.#io, line);
      return;
    }
    const now = Date.now();
    if (now - this.#lastDraw >= 100) {
      this.#lastDraw = now;
      this.#draw();
    }
  }

  count(outcome: string): number {
    return this.#counts.get(outcome) ?? 0;
  }

  /** Ends the bar and prints the summary line. */
  finish(): string {
    if (this.#tty) {
      this.#draw();
      this.#io.stderr.write('\n');
    }
    const parts = [...this.#counts].map(([k, n]) => `${n} ${k}`);
    const summary = `${this.#label}: ${parts.length === 0 ? 'nothing to do' : parts.join(', ')} (${this.#rate()})`;
    err(this.#io, summary);
    return summary;
  }

  #rate(): string {
    const s = (Date.now() - this.#start) / 1000;
    return `${(s > 0 ? this.#done / s : 0).toFixed(1)}/s`;
  }

  #draw(): void {
    const width = 30;
    const total = this.#total;
    const bar =
      total !== undefined && total > 0
        ? `[${'#'.repeat(Math.min(width, Math.round((this.#done / total) * width))).padEnd(width, '.')}] `
        : '';
    const of = total === undefined ? `${this.#done}` : `${this.#done}/${total}`;
    const parts = [...this.#counts].map(([k, n]) => `${k} ${n}`).join(' · ');
    this.#io.stderr.write(`\r\x1b[2K${this.#label} ${bar}${of}  ${parts}  ${this.#rate()}`);
  }
}

/** Waits so that calls to `next()` happen at most `perSecond` times a second. */
export class Pacer {
  readonly #gapMs: number;
  #next = 0;

  constructor(perSecond: number | undefined) {
    this.#gapMs = perSecond === undefined ? 0 : 1000 / perSecond;
  }

  async next(): Promise<void> {
    if (this.#gapMs === 0) return;
    const now = Date.now();
    const at = Math.max(now, this.#next);
    this.#next = at + this.#gapMs;
    if (at > now) await new Promise((resolve) => setTimeout(resolve, at - now));
  }
}
