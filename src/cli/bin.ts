#!/usr/bin/env node
// The `retrykit` executable (package `bin`): runs the command line and exits with its code.
import { main } from './main.js';

const controller = new AbortController();
process.once('SIGINT', () => controller.abort(new Error('interrupted')));
main(
  process.argv.slice(2),
  { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() },
  controller.signal,
).then((code) => {
  process.exitCode = code;
});
