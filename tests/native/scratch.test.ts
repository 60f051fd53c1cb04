import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
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

  it('grows a slot for a longer temporary, and keeps a prompt-sized one apart from it', () => {
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

  it('reuses a prompt-sized buffer per slot while it lives, growing it to fit', () => {
    const first = scratch('context', SCRATCH_MAX_FLOATS + 10);
    first[3] = 7;
    const same = scratch('context', SCRATCH_MAX_FLOATS + 1);
    expect(same.length).toBe(SCRATCH_MAX_FLOATS + 1);
    expect(same.buffer).toBe(first.buffer);
    expect(same[3]).toBe(7);
    expect(scratch('projectedQ', SCRATCH_MAX_FLOATS + 10).buffer).not.toBe(first.buffer);
    const longer = scratch('context', 2 * SCRATCH_MAX_FLOATS);
    expect(longer.length).toBe(2 * SCRATCH_MAX_FLOATS);
    expect(longer.buffer).not.toBe(first.buffer);
    expect(scratch('context', SCRATCH_MAX_FLOATS + 10).buffer).toBe(longer.buffer);
  });

  it('holds a prompt-sized buffer only weakly: once no one else does, the collector frees it', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    let freed = false;
    const registry = new FinalizationRegistry(() => (freed = true));
    registry.register(scratch('gated', 3 * SCRATCH_MAX_FLOATS), undefined);
    // A WeakRef's target lives until the job that made or read it ends, so collect after that.
    for (let round = 0; round < 20 && !freed; round++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      gc();
    }
    expect(freed).toBe(true);
  });
});
