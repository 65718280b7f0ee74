// Makes a Node process load the newer peer majors: `ioredis` resolves to `ioredis6` and `bullmq`
// to `bullmq6` (npm aliases in devDependencies). The `peers6` vitest project puts it in
// NODE_OPTIONS, so the processes its tests spawn run on the same majors as the tests.
// It covers `import`; a package's own `require('ioredis')` still finds the root `ioredis`.
import { register } from 'node:module';

register(
  `data:text/javascript,${encodeURIComponent(`
    const next = new Map([['ioredis', 'ioredis6'], ['bullmq', 'bullmq6']]);
    export async function resolve(specifier, context, nextResolve) {
      return nextResolve(next.get(specifier) ?? specifier, context);
    }
  `)}`,
);
