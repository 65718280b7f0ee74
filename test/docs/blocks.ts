import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** A fenced `ts` code block of a Markdown file. */
export interface DocBlock {
  /** Path of the Markdown file, relative to the repository root. */
  readonly file: string;
  /** 1-based line of the block's first code line (the line after the opening fence). */
  readonly line: number;
  readonly code: string;
  /** `true` when the fence carries the `no-check` marker: ```` ```ts no-check ````. */
  readonly noCheck: boolean;
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)(.*)$/;

/** The `ts` (or `typescript`) blocks of one Markdown text, in order. */
export function extractBlocks(file: string, markdown: string): DocBlock[] {
  const lines = markdown.split('\n');
  const blocks: DocBlock[] = [];
  let open: { fence: string; lang: string; info: string; start: number; body: string[] } | null =
    null;
  for (const [index, text] of lines.entries()) {
    const match = FENCE.exec(text);
    if (open === null) {
      if (match?.[2] !== undefined) {
        open = {
          fence: match[2],
          lang: match[3] ?? '',
          info: (match[4] ?? '').trim(),
          start: index + 2,
          body: [],
        };
      }
      continue;
    }
    if (match?.[2]?.startsWith(open.fence) && match[3] === '') {
      if (open.lang === 'ts' || open.lang === 'typescript') {
        blocks.push({
          file,
          line: open.start,
          code: open.body.join('\n'),
          noCheck: open.info.split(/\s+/).includes('no-check'),
        });
      }
      open = null;
      continue;
    }
    open.body.push(text);
  }
  if (open !== null) throw new Error(`${file}:${open.start - 1}: code fence never closed`);
  return blocks;
}

/** The Markdown files whose blocks are checked: README.md and every `docs/*.md`. */
export function docFiles(root: string): string[] {
  const docs = readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => join(root, 'docs', name));
  return [join(root, 'README.md'), ...docs];
}

/** Every `ts` block of README.md and `docs/*.md`. */
export function collectBlocks(root: string): DocBlock[] {
  return docFiles(root).flatMap((path) =>
    extractBlocks(relative(root, path), readFileSync(path, 'utf8')),
  );
}
