import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DocBlock } from './docs/blocks.js';
import { extractBlocks } from './docs/blocks.js';
import { checkDocBlocks, type DocCheckReport, packagePaths } from './docs/check.js';

// Every ```ts block of README.md and docs/*.md is type-checked here, as its own module, against
// the package entries a user imports (see test/docs/check.ts). A block may use the reader's own
// application without declaring it (`accessToken`, `order`, `queue`…): those names and their
// types live in test/docs/prelude.ts; add one there rather than loosening a block. A block that
// cannot compile on purpose (pseudo-code) is fenced ```ts no-check and listed in OPT_OUTS.

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * Blocks allowed to skip the check (```` ```ts no-check ````), counted per file. Adding one is a
 * deliberate change to this list, with the reason beside it.
 */
const OPT_OUTS: Record<string, number> = {};

/** Mistakes the checker must catch, checked in the same program as the docs. */
const probe = (line: number, code: string): DocBlock => ({
  file: 'probe.md',
  line,
  code,
  noCheck: false,
});
const PROBES = [
  probe(10, "import { createRetry } from 'retrykit';\n\ncreateRetry({ maxAttempts: '5' });"),
  probe(20, "import { createRetry } from 'retrykit/src/core/retry.js';"),
  probe(30, 'await sendTheThing();'),
  probe(
    40,
    "import { createRedisTokenBucket } from 'retrykit/redis';\n\ncreateRedisTokenBucket();",
  ),
];

describe('the ts blocks of README.md and docs/*.md', () => {
  let report: DocCheckReport;
  let docErrors: string[];
  let probeErrors: string[];
  beforeAll(() => {
    report = checkDocBlocks(root, PROBES);
    docErrors = report.errors.filter((error) => !error.startsWith('probe.md:'));
    probeErrors = report.errors.filter((error) => error.startsWith('probe.md:'));
  });

  it('type-check against the package as a user imports it', () => {
    console.info(
      `doc blocks: ${report.checked.length - PROBES.length} checked, ${report.skipped.length} marked no-check`,
    );
    expect(report.checked.length - PROBES.length).toBeGreaterThan(25);
    expect(docErrors).toEqual([]);
  });

  it('opt out only where listed', () => {
    const counts: Record<string, number> = {};
    for (const block of report.skipped) counts[block.file] = (counts[block.file] ?? 0) + 1;
    expect(counts).toEqual(OPT_OUTS);
  });

  it('catch a wrong option, a deep import, an undeclared name and a missing argument, by doc line', () => {
    expect(probeErrors).toEqual([
      "probe.md:12:15 TS2322: Type 'string' is not assignable to type 'number'.",
      "probe.md:20:29 TS2307: Cannot find module 'retrykit/src/core/retry.js' or its corresponding type declarations.",
      "probe.md:30:7 TS2304: Cannot find name 'sendTheThing'.",
      'probe.md:42:1 TS2554: Expected 2 arguments, but got 0.',
    ]);
  });
});

describe('extractBlocks', () => {
  it('reads ts blocks with the line of their first code line and the no-check marker', () => {
    const markdown = [
      '# Title',
      '```ts',
      'const a = 1;',
      '```',
      '```sh',
      'npm i retrykit',
      '```',
      '````ts no-check',
      'const b = 2;',
      '```',
      'still b',
      '````',
    ].join('\n');
    expect(extractBlocks('x.md', markdown)).toEqual([
      { file: 'x.md', line: 3, code: 'const a = 1;', noCheck: false },
      { file: 'x.md', line: 9, code: 'const b = 2;\n```\nstill b', noCheck: true },
    ]);
  });

  it('rejects a fence that never closes', () => {
    expect(() => extractBlocks('x.md', 'text\n```ts\nconst a = 1;\n')).toThrow(
      'x.md:2: code fence never closed',
    );
  });
});

describe('the examples', () => {
  /** `compilerOptions.paths` of a tsconfig file, as written (its comments allowed). */
  function pathsOf(file: string): Record<string, string[]> {
    const { config, error } = ts.readConfigFile(join(root, file), ts.sys.readFile);
    if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
    return (config as { compilerOptions: { paths: Record<string, string[]> } }).compilerOptions
      .paths;
  }

  it('resolve every subpath export to its source, in both tsconfig files', () => {
    const expected = Object.fromEntries(
      Object.entries(packagePaths(root)).map(([name, [source]]) => [
        name,
        [`./${relative(root, source as string)}`],
      ]),
    );
    for (const file of ['tsconfig.json', 'tsconfig.peers6.json']) {
      const retrykit = Object.fromEntries(
        Object.entries(pathsOf(file)).filter(([name]) => name.split('/')[0] === 'retrykit'),
      );
      expect(retrykit, file).toEqual(expected);
    }
  });

  it('narrow sendMessage results to accepted before reading messageId, as the docs do', () => {
    // `SendResult` is a union: a held send has no messageId, and destructuring hides that.
    const unnarrowed = [
      /\{[^}]*\bmessageId\b[^}]*\}\s*=\s*await\s+[\w.]+\.sendMessage\(/,
      /\(\s*await\s+[\w.]+\.sendMessage\([^;]*\)\s*\)\s*\.messageId\b/,
    ];
    const texts: [string, string][] = [
      ['README.md', readFileSync(join(root, 'README.md'), 'utf8')],
      ...readdirSync(join(root, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f): [string, string] => [`docs/${f}`, readFileSync(join(root, 'docs', f), 'utf8')]),
      ...readdirSync(join(root, 'examples'), { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith('.ts'))
        .map((f): [string, string] => [
          `examples/${f}`,
          readFileSync(join(root, 'examples', f), 'utf8'),
        ]),
    ];
    expect(texts.length).toBeGreaterThan(10);
    for (const [file, text] of texts) {
      for (const pattern of unnarrowed) expect(text, file).not.toMatch(pattern);
    }
  });

  it('import retrykit as an application does, never its sources or tools', () => {
    const dir = join(root, 'examples');
    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) =>
      f.endsWith('.ts'),
    );
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) {
      const text = readFileSync(join(dir, file), 'utf8');
      expect(text, file).not.toMatch(/(from|import\()\s*'\.\.\/(\.\.\/)?(src|tools|test)\//);
    }
  });
});
