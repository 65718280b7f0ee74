import { describe, expect, it } from 'vitest';
import { createMemoryDeadLetterQueue } from '../memory/dead-letter.js';
import { wrapProcessor } from './processor.js';

describe('wrapProcessor options', () => {
  const dlq = createMemoryDeadLetterQueue();
  const processor = async (): Promise<void> => {};

  it('names the option and the value it refuses', () => {
    expect(() => wrapProcessor(processor, { dlq: undefined as never })).toThrow(
      'dlq must have an add(entry) method, got undefined',
    );
    expect(() => wrapProcessor(processor, { dlq, maxAttempts: 0 })).toThrow(
      /^maxAttempts must be a finite number between 1 and \d+, got 0$/,
    );
    expect(() => wrapProcessor(processor, { dlq, maxAttempts: 1.5 })).toThrow(
      'maxAttempts must be an integer, got 1.5',
    );
    expect(() => wrapProcessor('x' as never, { dlq })).toThrow(
      'processor must be a function, got "x"',
    );
    expect(() => wrapProcessor(processor, { dlq, classify: 3 as never })).toThrow(
      'classify must be a function, got 3',
    );
  });
});
