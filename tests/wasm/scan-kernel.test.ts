import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

import { selectiveScan } from '../../src/ops/selective-scan.js';
import { sequentialScan, type ScanInputs } from '../../src/ops/scan-reference.js';

/** Random scan inputs: delta positive (softplus'ed), A negative (= -exp(A_log)). */
function inputs(batch: number, length: number, dim: number, n: number, withH0: boolean): ScanInputs {
  return tf.tidy(() => ({
    u: tf.randomNormal([batch, length, dim], 0, 1, 'float32', 1) as tf.Tensor3D,
    delta: tf.softplus(tf.randomNormal([batch, length, dim], 0, 1, 'float32', 2)) as tf.Tensor3D,
    A: tf.neg(tf.exp(tf.randomNormal([dim, n], 0, 1, 'float32', 3))) as tf.Tensor2D,
    B: tf.randomNormal([batch, length, n], 0, 1, 'float32', 4) as tf.Tensor3D,
    C: tf.randomNormal([batch, length, n], 0, 1, 'float32', 5) as tf.Tensor3D,
    D: tf.randomNormal([dim], 0, 1, 'float32', 6) as tf.Tensor1D,
    h0: withH0 ? (tf.randomNormal([batch, dim, n], 0, 1, 'float32', 7) as tf.Tensor3D) : undefined,
  }));
}

const maxDiff = (a: tf.Tensor, b: tf.Tensor): number => tf.tidy(() => tf.max(tf.abs(a.sub(b))).dataSync()[0]!);

describe.runIf(tf.getBackend() === 'wasm')('TesseraSelectiveScan on wasm (JS over the heap)', () => {
  it('is what Mamba scans with on wasm', () => {
    expect(tf.getKernel('TesseraSelectiveScan', 'wasm')).toBeDefined();
  });

  for (const [batch, length, withH0] of [[1, 1, true], [2, 37, false], [2, 64, true]] as const) {
    it(`equals the sequential reference (batch ${batch}, ${length} tokens, ${withH0 ? 'from a state' : 'from zeros'})`, () => {
      const x = inputs(batch, length, 12, 5, withH0);
      const before = tf.memory().numTensors;
      const fused = selectiveScan(x);
      expect(tf.memory().numTensors).toBe(before + 2);
      const reference = sequentialScan(x);
      expect(fused.y.shape).toEqual([batch, length, 12]);
      expect(maxDiff(fused.y, reference.y)).toBeLessThan(1e-4);
      expect(maxDiff(fused.h, reference.h)).toBeLessThan(1e-4);
      tf.dispose([fused.y, fused.h, reference.y, reference.h, ...Object.values(x).filter((t) => t !== undefined)]);
    });
  }

  it('names an input of the wrong shape', () => {
    const x = inputs(1, 4, 6, 3, false);
    const wrongD = tf.zeros([5]);
    expect(() => tf.engine().runKernel('TesseraSelectiveScan', { ...x, h0: undefined, D: wrongD } as unknown as tf.NamedTensorMap, {})).toThrow(
      /input 'D' must have shape \[6\], got \[5\]/,
    );
    tf.dispose([wrongD, ...Object.values(x).filter((t) => t !== undefined)]);
  });
});
