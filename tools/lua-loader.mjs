// Lets Node (and tsx) import `.lua` (and `.sql`) files as text, as tsup and vitest do:
//   npx tsx --import ./tools/lua-loader.mjs <file.ts>
// or import this module before a dynamic `import()` of code that loads Lua scripts.
import { register } from 'node:module';

register(
  `data:text/javascript,${encodeURIComponent(`
    import { readFile } from 'node:fs/promises';
    export async function load(url, context, nextLoad) {
      if (!url.endsWith('.lua') && !url.endsWith('.sql')) return nextLoad(url, context);
      const text = await readFile(new URL(url), 'utf8');
      return { format: 'module', source: 'export default ' + JSON.stringify(text) + ';', shortCircuit: true };
    }
  `)}`,
);
