// Node module hooks that load `.lua` files as `export default "<source>"`, the way tsup
// (`loader: { '.lua': 'text' }`) and vitest (`vitest.config.ts`) do. Registered by
// `tools/lua-loader.mjs`.
import { readFile } from 'node:fs/promises';

export async function load(url, context, nextLoad) {
  if (!url.endsWith('.lua')) return nextLoad(url, context);
  const source = await readFile(new URL(url), 'utf8');
  return {
    format: 'module',
    source: `export default ${JSON.stringify(source)};`,
    shortCircuit: true,
  };
}
