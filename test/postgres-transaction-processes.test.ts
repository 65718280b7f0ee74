import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { seededRandom } from '../src/testing/index.js';
import { describePostgres, pgUrl, useTestSchema } from './support/postgres.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Starts the worker fixture with tsx and the text loader, as a separate Node process. */
function worker(mode: string, env: Record<string, string>): ChildProcess {
  return spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--import',
      './tools/lua-loader.mjs',
      'test/fixtures/postgres-transaction-worker.ts',
      mode,
    ],
    { cwd: root, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] },
  );
}

/** Everything a process writes to stdout until it exits; rejects on a non-zero exit. */
async function output(child: ChildProcess): Promise<string> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`worker exited with ${code}: ${stderr}`);
  return stdout;
}

/** Resolves when a process prints `line`. */
async function printed(child: ChildProcess, line: string): Promise<void> {
  let buffered = '';
  for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
    buffered += chunk.toString();
    if (buffered.split('\n').includes(line)) return;
  }
  throw new Error(`worker exited without printing ${line}`);
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

describePostgres('idempotentTransaction across processes', () => {
  const db = useTestSchema('procs');

  async function setup(name: string) {
    const { idempotency } = await db.tables(name);
    const effects = `${name}_effects`;
    await db.pool.query(`CREATE TABLE "${db.schema}"."${effects}" (key text NOT NULL, pid int)`);
    const env = { PG_URL: pgUrl, SCHEMA: db.schema, TABLE: idempotency, EFFECTS: effects };
    const perKey = async () =>
      (
        await db.pool.query(
          `SELECT key, count(*)::int AS n, min(pid) AS pid FROM "${db.schema}"."${effects}" GROUP BY key`,
        )
      ).rows as { key: string; n: number; pid: number }[];
    return { env, perKey, idempotency };
  }

  it('10,000 keys delivered 3 times each, shuffled over 4 processes: every effect exactly once', async () => {
    const { env, perKey, idempotency } = await setup('many');
    const keys = Array.from({ length: 10_000 }, (_, i) => `order-${i}`);
    const deliveries = shuffle([...keys, ...keys, ...keys], seededRandom(20));
    const processes = 4;
    const outputs = await Promise.all(
      Array.from({ length: processes }, (_, p) => {
        const child = worker('deliveries', env);
        child.stdin?.end(JSON.stringify(deliveries.filter((_, i) => i % processes === p)));
        return output(child);
      }),
    );
    const ran = outputs.map((o) => (JSON.parse(o) as { ran: number }).ran);
    expect(ran.reduce((a, b) => a + b, 0)).toBe(10_000);
    const rows = await perKey();
    expect(rows).toHaveLength(10_000);
    expect(rows.filter((r) => r.n !== 1)).toEqual([]);
    const { rows: states } = await db.pool.query(
      `SELECT state, count(*)::int AS n FROM "${db.schema}"."${idempotency}" GROUP BY state`,
    );
    expect(states).toEqual([{ state: 'completed', n: 10_000 }]);
  }, 120_000);

  it('a worker SIGKILLed inside its transaction leaves the key free; the waiting duplicate runs it once', async () => {
    const { env, perKey } = await setup('kill');
    const doomed = worker('hold', { ...env, KEY: 'crash' });
    await printed(doomed, 'holding');
    const rescuer = worker('deliveries', env);
    rescuer.stdin?.end(JSON.stringify(['crash', 'crash']));
    const rescued = output(rescuer);
    // The rescuer is blocked on the key's row lock until the holder's connection dies.
    await new Promise((resolve) => setTimeout(resolve, 300));
    doomed.kill('SIGKILL');
    await once(doomed, 'exit');
    expect(JSON.parse(await rescued)).toEqual({ ran: 1 });
    expect(await perKey()).toEqual([{ key: 'crash', n: 1, pid: rescuer.pid }]);
  });
});
