import { describe, expectTypeOf, it } from 'vitest';
import type { JitterKind } from '../backoff-types.js';
import type { JITTER_KINDS } from './backoff.js';

describe('backoff types', () => {
  it('JITTER_KINDS lists exactly the JitterKind union', () => {
    expectTypeOf<(typeof JITTER_KINDS)[number]>().toEqualTypeOf<JitterKind>();
  });
});
