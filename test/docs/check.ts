import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { collectBlocks, type DocBlock } from './blocks.js';

/** The outcome of type-checking every doc block. */
export interface DocCheckReport {
  /** Blocks type-checked. */
  readonly checked: readonly DocBlock[];
  /** Blocks marked `no-check`, left out. */
  readonly skipped: readonly DocBlock[];
  /** One line per error: `docs/retry.md:12:5 TS2304: Cannot find name 'x'.` */
  readonly errors: readonly string[];
}

/**
 * Maps each package name a user imports (`retrykit`, `retrykit/redis`, …) to the source entry
 * the build makes its types from: `exports['./redis'].import.types` is `./dist/redis/index.d.ts`,
 * built by tsup from `src/redis/index.ts`. Only the subpaths in `exports` resolve, as for a user.
 */
export function packagePaths(root: string): Record<string, string[]> {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    name: string;
    exports: Record<string, string | { import?: { types?: string } }>;
  };
  const paths: Record<string, string[]> = {};
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    if (typeof target === 'string') continue;
    const types = target.import?.types;
    if (types === undefined) throw new Error(`package.json exports['${subpath}'] has no types`);
    const source = join(root, types.replace(/^\.\/dist\//, 'src/').replace(/\.d\.ts$/, '.ts'));
    if (!existsSync(source)) {
      throw new Error(`package.json exports['${subpath}']: no source ${source} for ${types}`);
    }
    paths[subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`] = [source];
  }
  return paths;
}

/** Member names of an exported interface in `file`, read from its syntax. */
function interfaceMembers(file: string, name: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest);
  for (const statement of source.statements) {
    if (ts.isInterfaceDeclaration(statement) && statement.name.text === name) {
      return statement.members.map((member) => {
        if (member.name === undefined || !ts.isIdentifier(member.name)) {
          throw new Error(`${file}: every member of ${name} needs a plain name`);
        }
        return member.name.text;
      });
    }
  }
  throw new Error(`${file}: no interface ${name}`);
}

/**
 * The ambient declarations of the free names: each member of `DocGlobals` becomes a global
 * `const`, each member of `DocTypes` a global type, typed by the prelude.
 */
function globalsSource(prelude: string): string {
  const values = interfaceMembers(prelude, 'DocGlobals');
  const types = interfaceMembers(prelude, 'DocTypes');
  return [
    `import type { DocGlobals, DocTypes } from ${JSON.stringify(prelude.replace(/\.ts$/, '.js'))};`,
    'declare global {',
    ...values.map((name) => `  const ${name}: DocGlobals['${name}'];`),
    ...types.map((name) => `  type ${name} = DocTypes['${name}'];`),
    '}',
    'export {};',
    '',
  ].join('\n');
}

/**
 * Type-checks every `ts` block of README.md and `docs/*.md` in one TypeScript program, with the
 * project's compiler options (strict, `exactOptionalPropertyTypes`, …). Each block is its own
 * ES module, as written, plus `export {}`: top-level `await` works, and its names do not leak
 * into other blocks. Lines map one to one, so an error names the doc file and line.
 *
 * `extra` blocks join the same program (the test's probes that the checker catches mistakes).
 */
export function checkDocBlocks(root: string, extra: readonly DocBlock[] = []): DocCheckReport {
  const blocks = [...collectBlocks(root), ...extra];
  const checked = blocks.filter((block) => !block.noCheck);
  const skipped = blocks.filter((block) => block.noCheck);

  const config = ts.readConfigFile(join(root, 'tsconfig.json'), ts.sys.readFile);
  if (config.error)
    throw new Error(ts.flattenDiagnosticMessageText(config.error.messageText, '\n'));
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, root);
  const compilerOptions: ts.CompilerOptions = {
    ...options,
    noEmit: true,
    paths: packagePaths(root),
  };

  // Virtual files under the repository root, so that `ioredis`, `bullmq` and `express` resolve
  // from its node_modules as they would in an application.
  const dir = join(root, '.doc-blocks');
  const virtual = new Map<string, string>();
  const origin = new Map<string, DocBlock>();
  const prelude = join(root, 'test', 'docs', 'prelude.ts');
  const globals = join(dir, 'globals.ts');
  virtual.set(globals, globalsSource(prelude));
  for (const block of checked) {
    const path = join(dir, `${block.file.replace(/[/\\.]/g, '_')}_${block.line}.ts`);
    virtual.set(path, `${block.code}\nexport {};\n`);
    origin.set(path, block);
  }

  const host = ts.createCompilerHost(compilerOptions, true);
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (file) => virtual.has(file) || fileExists.call(host, file);
  host.readFile = (file) => virtual.get(file) ?? readFile.call(host, file);
  host.getSourceFile = (file, language, onError, shouldCreate) => {
    const text = virtual.get(file);
    return text === undefined
      ? getSourceFile.call(host, file, language, onError, shouldCreate)
      : ts.createSourceFile(file, text, language);
  };

  const program = ts.createProgram({
    rootNames: [prelude, globals, ...origin.keys()],
    options: compilerOptions,
    host,
  });

  const errors: string[] = [];
  const describe = (diagnostic: ts.Diagnostic): string => {
    const text = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    const code = `TS${diagnostic.code}`;
    const file = diagnostic.file;
    if (file === undefined || diagnostic.start === undefined) return `${code}: ${text}`;
    const { line, character } = file.getLineAndCharacterOfPosition(diagnostic.start);
    const block = origin.get(file.fileName);
    const where =
      block === undefined
        ? `${file.fileName}:${line + 1}:${character + 1}`
        : `${block.file}:${block.line + line}:${character + 1}`;
    return `${where} ${code}: ${text}`;
  };
  for (const diagnostic of [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
  ]) {
    errors.push(describe(diagnostic));
  }
  for (const file of [prelude, globals, ...origin.keys()]) {
    const source = program.getSourceFile(file);
    if (source === undefined) throw new Error(`not in the program: ${file}`);
    for (const diagnostic of [
      ...program.getSyntacticDiagnostics(source),
      ...program.getSemanticDiagnostics(source),
    ]) {
      errors.push(describe(diagnostic));
    }
  }
  return { checked, skipped, errors };
}
