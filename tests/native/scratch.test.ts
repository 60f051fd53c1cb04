import { describe, expect, it } from 'vitest';

import { SCRATCH_MAX_FLOATS, scratch } from '../../src/kernels/native/kernel-utils.js';

describe('kernel scratch slots (src/kernels/native/kernel-utils.ts)', () => {
  it('hands a slot the same memory call after call, at the length asked', () => {
    const first = scratch('normed', 768);
    first[0] = 42;
    const again = scratch('normed', 256);
    expect(again.length).toBe(256);
    expect(again.buffer).toBe(first.buffer);
    expect(again[0]).toBe(42);
  });

  it('keeps the slots apart, so rotated q and k never share memory', () => {
    const q = scratch('rotatedQ', 768);
    const k = scratch('rotatedK', 256);
    const normed = scratch('normed', 768);
    expect(new Set([q.buffer, k.buffer, normed.buffer]).size).toBe(3);
  });

  it('grows a slot for a longer temporary, and gives a prompt-sized one its own array', () => {
    const small = scratch('rotatedK', 100);
    const larger = scratch('rotatedK', 5000);
    expect(larger.length).toBe(5000);
    expect(scratch('rotatedK', 100).buffer).toBe(larger.buffer);
    expect(larger.buffer).not.toBe(small.buffer);
    const huge = scratch('rotatedK', SCRATCH_MAX_FLOATS + 1);
    expect(huge.length).toBe(SCRATCH_MAX_FLOATS + 1);
    expect(huge.buffer).not.toBe(larger.buffer);
    expect(scratch('rotatedK', 100).buffer).toBe(larger.buffer);
  });
});
