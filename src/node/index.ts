export type { FallbackOptions } from './fallback.js';
export { withFallback } from './fallback.js';
export type { FileSink } from './file-sink.js';
export { createFileSink } from './file-sink.js';
export type { ReplayOptions, ReplayReport } from './replay.js';
export { replayFile } from './replay.js';
