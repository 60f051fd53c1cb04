import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

import { FUSED } from '../../src/kernels/contract.js';
import { sequentialScan, type ScanInputs } from '../../src/ops/scan-reference.js';
import { selectiveScan } from '../../src/ops/selective-scan.js';
import { registerGradients } from '../../src/training/gradients.js';
import { built, expectClose, randoms, selectNativeOrExpectClearError } from './helpers.js';

const [BATCH, LENGTH, DIM, N] = [2, 9, 3, 4];

/** Scan inputs as a Mamba mixer makes them (delta > 0, A < 0), from a fixed LCG. */
function scanInputs(withState: boolean): ScanInputs {
  const t = (shape: number[], seed: number, f: (v: number) => number = (v) => v): tf.Tensor =>
    tf.tensor(randoms(tf.util.sizeFromShape(shape), seed).map(f), shape);
  return {
    u: t([BATCH, LENGTH, DIM], 1) as tf.Tensor3D,
    delta: t([BATCH, LENGTH, DIM], 2, (v) => 0.1 + 0.5 * (v + 1)) as tf.Tensor3D,
    A: t([DIM, N], 3, (v) => -0.2 - (v + 1)) as tf.Tensor2D,
    B: t([BATCH, LENGTH, N], 4) as tf.Tensor3D,
    C: t([BATCH, LENGTH, N], 5) as tf.Tensor3D,
    D: t([DIM], 6) as tf.Tensor1D,
    h0: withState ? (t([BATCH, DIM, N], 7) as tf.Tensor3D) : undefined,
  };
}

const NAMES = ['u', 'delta', 'A', 'B', 'C', 'D', 'h0'] as const;

/** A loss over both outputs with non-uniform weights, as a function of the inputs named in `names`. */
function lossOf(scan: (x: ScanInputs) => { y: tf.Tensor; h: tf.Tensor }, x: ScanInputs, names: readonly (typeof NAMES)[number][]) {
  return (...args: tf.Tensor[]): tf.Scalar => {
    const replaced = { ...x, ...Object.fromEntries(names.map((name, i) => [name, args[i]])) } as ScanInputs;
    const { y, h } = scan(replaced);
    return y.mul(y.add(0.5)).sum().add(h.mul(h.sub(0.3)).sum()) as tf.Scalar;
  };
}

describe('native selective scan backward', () => {
  it('is selectable, or fails with a build hint where the addon is not built', async () => {
    await selectNativeOrExpectClearError();
  });

  describe.runIf(built)('as the scan kernel\'s gradient', () => {
    beforeAll(async () => {
      await tf.setBackend('native');
      await registerGradients();
    });

    it('runs the fused scan while recording, and gives the reference scan\'s gradient for every input', async () => {
      for (const withState of [true, false]) {
        const x = scanInputs(withState);
        const names = NAMES.filter((name) => x[name] !== undefined);
        const args = names.map((name) => x[name]!);
        const profile = await tf.profile(() => tf.grads(lossOf(selectiveScan, x, names))(args));
        const kernels = profile.kernels.map((k) => k.name);
        expect(kernels).toContain(FUSED.selectiveScan);
        expect(kernels).toContain(FUSED.selectiveScanBackward);
        const before = tf.memory().numTensors;
        const fused = tf.grads(lossOf(selectiveScan, x, names))(args);
        const reference = tf.grads(lossOf(sequentialScan, x, names))(args);
        names.forEach((name, i) => {
          expect(fused[i]!.shape, name).toEqual(reference[i]!.shape);
          expectClose(fused[i]!.dataSync(), reference[i]!.dataSync(), 1e-4, 1e-4);
        });
        tf.dispose([...fused, ...reference]);
        expect(tf.memory().numTensors).toBe(before);
        tf.dispose(args);
      }
    });

    it('has the gradient finite differences give (central differences, step 1e-2)', () => {
      const x = scanInputs(true);
      const names = [...NAMES];
      const args = names.map((name) => x[name]!);
      const loss = lossOf(selectiveScan, x, names);
      const grads = tf.grads(loss)(args);
      const step = 1e-2;
      names.forEach((name, i) => {
        const values = args[i]!.dataSync();
        const analytic = grads[i]!.dataSync();
        // Three entries of each input: the first, the middle and the last.
        for (const at of [0, Math.floor(values.length / 2), values.length - 1]) {
          const shifted = (delta: number): number =>
            tf.tidy(() => {
              const moved = Float32Array.from(values);
              moved[at] += delta;
              const inputs = args.map((a, j) => (j === i ? tf.tensor(moved, a.shape) : a));
              return loss(...inputs).dataSync()[0]!;
            });
          const numeric = (shifted(step) - shifted(-step)) / (2 * step);
          expect(Math.abs(numeric - analytic[at]!), `d loss / d ${name}[${at}]`).toBeLessThan(5e-3 * Math.max(1, Math.abs(numeric)));
        }
      });
      tf.dispose([...grads, ...args]);
    });
  });
});
