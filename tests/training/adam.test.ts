import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { FUSED } from '../../src/kernels/contract.js';
import { adam } from '../../src/training/adam.js';
import { isNativeBuilt } from '../../src/kernels/native/index.js';
import { initBackend } from '../../src/kernels/backend.js';
import { registerGradients } from '../../src/training/gradients.js';

/** Three steps of `optimizer` on a quadratic loss over two weights; returns the weights after. */
function train(optimizer: tf.Optimizer): number[][] {
  const w = tf.variable(tf.tensor2d([[0.5, -1.5, 2], [0.1, 0, -0.3]]));
  const b = tf.variable(tf.tensor1d([1, -2]));
  const target = tf.tensor2d([[1, 1, 1], [-1, -1, -1]]);
  for (let i = 0; i < 3; i++) {
    tf.dispose(optimizer.minimize(() => tf.tidy(() => w.sub(target).square().sum().add(b.square().mul(3).sum()) as tf.Scalar), true, [w, b])!);
  }
  const result = [Array.from(w.dataSync()), Array.from(b.dataSync())];
  tf.dispose([w, b, target]);
  return result;
}

describe('adam (fused update)', () => {
  const previous = tf.getBackend();
  afterAll(async () => {
    await tf.setBackend(previous);
  });

  for (const backend of ['wasm', 'native'] as const) {
    it.runIf(backend !== 'native' || isNativeBuilt())(`takes tf.train.adam's steps on ${backend}${backend === 'native' ? ' (the fused kernel)' : ' (its ops)'}`, async () => {
      await initBackend({ backend });
      await registerGradients();
      expect(tf.getKernel(FUSED.adam, backend) !== undefined).toBe(backend === 'native');
      // Tensors left after training and disposing: ours leaves what tfjs's own Adam leaves.
      const growth = (make: () => tf.Optimizer): { weights: number[][]; grown: number; steps: number } => {
        const before = tf.memory().numTensors;
        const optimizer = make();
        const weights = train(optimizer);
        const steps = optimizer.iterations;
        optimizer.dispose();
        return { weights, grown: tf.memory().numTensors - before, steps };
      };
      const theirs = growth(() => tf.train.adam(0.1));
      const ours = growth(() => adam(0.1));
      ours.weights.flat().forEach((value, i) => expect(value).toBeCloseTo(theirs.weights.flat()[i]!, 5));
      expect(ours.steps).toBe(3);
      expect(ours.grown).toBe(theirs.grown);
    });
  }
});
