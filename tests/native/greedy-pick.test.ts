import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { FUSED } from '../../src/kernels/contract.js';
import { greedyPicks, unusableLogit, USABLE } from '../../src/ops/greedy-pick.js';
import { built, useNativeBackend } from './helpers.js';

/** The definition: the first largest value's index (JS comparisons, as the wasm path picks), and unusableLogit. */
function expected(values: Float32Array, cols: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < values.length / cols; r++) {
    const row = values.subarray(r * cols, (r + 1) * cols);
    const check = unusableLogit(row);
    let best = 0;
    for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
    out.push(check === USABLE ? best : 0, check);
  }
  return out;
}

/** Logits with ties, signed zeros, -Infinity, and now and then a NaN or +Infinity. */
const logitValue = fc.oneof(
  { arbitrary: fc.constantFrom(-2, -1, 0, -0, 1, 2.5), weight: 6 },
  { arbitrary: fc.float({ noNaN: true, noDefaultInfinity: true }), weight: 3 },
  { arbitrary: fc.constant(-Infinity), weight: 2 },
  { arbitrary: fc.constantFrom(Number.NaN, Infinity), weight: 1 },
);

describe.skipIf(!built)('greedy picks in one kernel (FUSED.greedyPick, native)', () => {
  useNativeBackend();

  it('the token and the check of every row equal the JS definition: ties to the lowest id, NaN or +Infinity named by index, all -Infinity by the row length', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 70 }), fc.infiniteStream(logitValue), (rows, cols, stream) => {
        const values = Float32Array.from(stream.take(rows * cols));
        const logits = tf.tensor3d(values, [rows, 1, cols]);
        const before = tf.memory().numTensors;
        const picks = greedyPicks(logits);
        expect(tf.memory().numTensors).toBe(before);
        logits.dispose();
        expect(Array.from(picks!)).toEqual(expected(values, cols));
      }),
      { numRuns: 300, seed: 7 },
    );
  });

  it('finds the pick past the vectorised body of a vocabulary-sized row, and a late NaN', () => {
    const values = new Float32Array(50280).map((_, i) => Math.sin(i));
    values[50279] = 5;
    const logits = tf.tensor2d(values, [1, 50280]);
    expect(Array.from(greedyPicks(logits)!)).toEqual([50279, USABLE]);
    values[50001] = Number.NaN;
    const poisoned = tf.tensor2d(values, [1, 50280]);
    expect(Array.from(greedyPicks(poisoned)!)).toEqual([0, 50001]);
    tf.dispose([logits, poisoned]);
  });

  it('rejects logits that are not float32 or have no vocabulary, naming the kernel', () => {
    const ints = tf.tensor2d([1, 2], [1, 2], 'int32');
    const empty = tf.zeros([2, 0]);
    expect(() => tf.engine().runKernel(FUSED.greedyPick, { logits: ints })).toThrow(/TesseraGreedyPick.*float32/);
    expect(() => tf.engine().runKernel(FUSED.greedyPick, { logits: empty })).toThrow(/TesseraGreedyPick: logits must be \[\.\.\., vocabulary\]/);
    tf.dispose([ints, empty]);
  });
});
