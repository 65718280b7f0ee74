// Lets `tsx` (and plain `node`) run sources that import `.lua` files:
//   npx tsx --import ./tools/lua-loader.mjs examples/rate-limit.ts
import { register } from 'node:module';

register('./lua-hooks.mjs', import.meta.url);
