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

  for (const backend of ['wasm', 'cpu', 'native'] as const) {
    it.runIf(backend !== 'native' || isNativeBuilt())(`takes tf.train.adam's steps on ${backend}${backend === 'cpu' ? ' (its ops)' : ' (the fused kernel)'}`, async () => {
      await initBackend({ backend });
      await registerGradients();
      expect(tf.getKernel(FUSED.adam, backend) !== undefined).toBe(backend !== 'cpu');
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

/** Adam (with AdamW's decoupled decay) in doubles, element by element: the reference for the fused step. */
function referenceAdamW(start: number[], grads: (w: number[]) => number[], steps: number, lr: number, b1: number, b2: number, eps: number, wd: number): number[] {
  const w = [...start];
  const m = w.map(() => 0);
  const v = w.map(() => 0);
  for (let t = 1; t <= steps; t++) {
    const g = grads(w);
    for (let i = 0; i < w.length; i++) {
      m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
      v[i] = b2 * v[i]! + (1 - b2) * g[i]! * g[i]!;
      w[i] = w[i]! * (1 - lr * wd) - (lr * (m[i]! / (1 - b1 ** t))) / (Math.sqrt(v[i]! / (1 - b2 ** t)) + eps);
    }
  }
  return w;
}

/** The native backend's stored array of a tensor (not a read-out copy: reading it marks nothing). */
function storedArray(t: tf.Tensor): unknown {
  return (tf.backend() as unknown as { data: { get(id: object): { values: unknown } } }).data.get(t.dataId).values;
}

describe('adam options and state', () => {
  const previous = tf.getBackend();
  afterAll(async () => {
    await tf.setBackend(previous);
  });

  for (const backend of ['wasm', 'cpu', 'native'] as const) {
    it.runIf(backend !== 'native' || isNativeBuilt())(`AdamW (weightDecay) matches a reference over several steps on ${backend}`, async () => {
      await initBackend({ backend });
      await registerGradients();
      const start = [0.5, -1.5, 2, 0.1, 0, -0.3, 4, -2];
      const target = [1, 1, 1, -1, -1, -1, 0.5, 0];
      // loss = Σ (w − target)², gradient 2 (w − target)
      const grads = (w: number[]): number[] => w.map((x, i) => 2 * (x - target[i]!));
      const expected = referenceAdamW(start, grads, 5, 0.05, 0.9, 0.99, 1e-7, 0.1);
      const w = tf.variable(tf.tensor1d(start));
      const t = tf.tensor1d(target);
      const optimizer = adam(0.05, 0.9, 0.99, 1e-7, { weightDecay: 0.1 });
      const before = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) tf.dispose(optimizer.minimize(() => tf.tidy(() => w.sub(t).square().sum() as tf.Scalar), true, [w])!);
      Array.from(w.dataSync()).forEach((value, i) => expect(value, `w[${i}]`).toBeCloseTo(expected[i]!, 5));
      // The moments were made on the first step; nothing else was left behind.
      expect(tf.memory().numTensors).toBe(before + 2);
      expect(optimizer.getConfig()).toMatchObject({ learningRate: 0.05, weightDecay: 0.1 });
      optimizer.dispose();
      tf.dispose([w, t]);
    });
  }

  it('rejects an unknown option key, naming the nearest one, and a negative weightDecay', () => {
    expect(() => adam(0.1, 0.9, 0.999, undefined, { weightDecy: 0.1 } as never)).toThrow(/adam options: unknown key 'weightDecy'; did you mean 'weightDecay'\?/);
    expect(() => adam(0.1, 0.9, 0.999, undefined, { weightDecay: -1 })).toThrow(/weightDecay must be a finite number >= 0, got -1/);
  });

  it('carries its state through getWeights/setWeights like tf.train.adam', async () => {
    await initBackend({ backend: isNativeBuilt() ? 'native' : 'wasm' });
    await registerGradients();
    const run = async (first: tf.Optimizer, second: () => tf.Optimizer): Promise<number[]> => {
      const w = tf.variable(tf.tensor1d([0.5, -1.5, 2, 0.25]));
      const loss = (): tf.Scalar => tf.tidy(() => w.sub(1).square().sum() as tf.Scalar);
      for (let i = 0; i < 3; i++) tf.dispose(first.minimize(loss, true, [w])!);
      const next = second();
      const weights = await first.getWeights();
      await next.setWeights(weights.map(({ name, tensor }) => ({ name, tensor: tensor.clone() })));
      for (let i = 0; i < 2; i++) tf.dispose(next.minimize(loss, true, [w])!);
      const result = Array.from(w.dataSync());
      tf.dispose(weights.map((x) => x.tensor));
      first.dispose();
      next.dispose();
      w.dispose();
      return result;
    };
    const theirs = await run(tf.train.adam(0.1), () => tf.train.adam(0.1));
    const intoOurs = await run(tf.train.adam(0.1), () => adam(0.1));
    const intoTheirs = await run(adam(0.1), () => tf.train.adam(0.1));
    theirs.forEach((value, i) => {
      expect(intoOurs[i]).toBeCloseTo(value, 5);
      expect(intoTheirs[i]).toBeCloseTo(value, 5);
    });
  });

  describe.runIf(isNativeBuilt())('in place on native', () => {
    it('updates a weight in place only where no one else sees its values, and each step gives it a new dataId', async () => {
      await initBackend({ backend: 'native' });
      await registerGradients();
      const initial = tf.tensor1d([0.5, -1.5, 2, 0.25]);
      const kept = Array.from(initial.dataSync());
      const w = tf.variable(initial); // shares initial's data: in place must not change initial
      const optimizer = adam(0.1);
      const step = (): void => tf.dispose(optimizer.minimize(() => tf.tidy(() => w.sub(1).square().sum() as tf.Scalar), true, [w])!);
      step();
      step();
      expect(Array.from(initial.dataSync())).toEqual(kept);
      initial.dispose();
      const before = tf.memory().numTensors;
      step(); // w now holds a buffer the optimizer made and no one read: taken over from here on
      const array = storedArray(w);
      const id = w.dataId;
      step();
      expect(storedArray(w)).toBe(array);
      expect(w.dataId).not.toBe(id); // a changed dataId is how derived weights see the change
      // A read-out array is the caller's: the next step must not change it.
      const seen = w.dataSync();
      const copy = Float32Array.from(seen);
      step();
      expect(seen).toEqual(copy);
      expect(storedArray(w)).not.toBe(seen);
      step();
      expect(tf.memory().numTensors).toBe(before);
      optimizer.dispose();
      w.dispose();
    });

    it('gives the same steps in place as tf.train.adam over many steps', async () => {
      await initBackend({ backend: 'native' });
      await registerGradients();
      const run = (optimizer: tf.Optimizer): Float32Array => {
        const w = tf.variable(tf.randomNormal([300, 257], 0, 1, 'float32', 3));
        const target = tf.randomNormal([300, 257], 0, 1, 'float32', 4);
        for (let i = 0; i < 6; i++) tf.dispose(optimizer.minimize(() => tf.tidy(() => w.sub(target).square().mul(w).sum() as tf.Scalar), true, [w])!);
        const out = Float32Array.from(w.dataSync());
        optimizer.dispose();
        tf.dispose([w, target]);
        return out;
      };
      const theirs = run(tf.train.adam(0.01));
      const ours = run(adam(0.01));
      let worst = 0;
      ours.forEach((value, i) => (worst = Math.max(worst, Math.abs(value - theirs[i]!))));
      expect(worst).toBeLessThan(1e-5);
    });
  });
});
