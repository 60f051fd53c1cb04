import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

import { FUSED } from '../../src/kernels/contract.js';
import { sequentialScan, type ScanInputs } from '../../src/ops/scan-reference.js';
import { selectiveScan } from '../../src/ops/selective-scan.js';
import { registerGradients } from '../../src/training/gradients.js';

const NAMES = ['u', 'delta', 'A', 'B', 'C', 'D', 'h0'] as const;

/** Scan inputs as a Mamba mixer makes them (delta > 0, A < 0). */
function scanInputs(withState: boolean): ScanInputs {
  return tf.tidy(() => ({
    u: tf.randomNormal([2, 9, 3], 0, 1, 'float32', 1) as tf.Tensor3D,
    delta: tf.softplus(tf.randomNormal([2, 9, 3], 0, 1, 'float32', 2)) as tf.Tensor3D,
    A: tf.neg(tf.exp(tf.randomNormal([3, 4], 0, 1, 'float32', 3))) as tf.Tensor2D,
    B: tf.randomNormal([2, 9, 4], 0, 1, 'float32', 4) as tf.Tensor3D,
    C: tf.randomNormal([2, 9, 4], 0, 1, 'float32', 5) as tf.Tensor3D,
    D: tf.randomNormal([3], 0, 1, 'float32', 6) as tf.Tensor1D,
    h0: withState ? (tf.randomNormal([2, 3, 4], 0, 1, 'float32', 7) as tf.Tensor3D) : undefined,
  }));
}

/** A loss over both outputs with non-uniform weights, as a function of the inputs named in `names`. */
function lossOf(scan: (x: ScanInputs) => { y: tf.Tensor; h: tf.Tensor }, x: ScanInputs, names: readonly (typeof NAMES)[number][]) {
  return (...args: tf.Tensor[]): tf.Scalar => {
    const replaced = { ...x, ...Object.fromEntries(names.map((name, i) => [name, args[i]])) } as ScanInputs;
    const { y, h } = scan(replaced);
    return y.mul(y.add(0.5)).sum().add(h.mul(h.sub(0.3)).sum()) as tf.Scalar;
  };
}

describe.runIf(tf.getBackend() === 'wasm')('selective scan backward on wasm', () => {
  beforeAll(() => registerGradients());

  it("runs the wasm scan kernel while recording, and gives the reference scan's gradient for every input", async () => {
    for (const withState of [true, false]) {
      const x = scanInputs(withState);
      const names = NAMES.filter((name) => x[name] !== undefined);
      const args = names.map((name) => x[name]!);
      const profile = await tf.profile(() => tf.grads(lossOf(selectiveScan, x, names))(args));
      const kernels = profile.kernels.map((k) => k.name);
      expect(kernels).toContain(FUSED.selectiveScan);
      expect(kernels).toContain(FUSED.selectiveScanBackward);
      tf.dispose(profile.result as tf.Tensor[]);
      const before = tf.memory().numTensors;
      const fused = tf.grads(lossOf(selectiveScan, x, names))(args);
      const reference = tf.grads(lossOf(sequentialScan, x, names))(args);
      names.forEach((name, i) => {
        expect(fused[i]!.shape, name).toEqual(reference[i]!.shape);
        const [a, b] = [fused[i]!.dataSync(), reference[i]!.dataSync()];
        a.forEach((value, j) => expect(Math.abs(value - b[j]!), `${name}[${j}]`).toBeLessThan(1e-4 * Math.max(1, Math.abs(b[j]!))));
      });
      tf.dispose([...fused, ...reference]);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose(args);
    }
  });

  it('names the problem when the upstream gradient has the wrong shape, leaving no tensor behind', () => {
    const x = scanInputs(true);
    const before = tf.memory().numTensors;
    const dy = tf.zeros([2, 9, 5]);
    const inputs = { ...x, dy, dh: tf.zeros([2, 3, 4]) } as unknown as tf.NamedTensorMap;
    expect(() => tf.engine().runKernel(FUSED.selectiveScanBackward, inputs)).toThrow(/TesseraSelectiveScanBackward: input 'dy' must have shape \[2,9,3\], got \[2,9,5\]/);
    tf.dispose([dy, inputs.dh!]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(Object.values(x).filter((t) => t !== undefined));
  });
});
