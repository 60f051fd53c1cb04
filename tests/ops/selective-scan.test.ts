import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { FUSED, isSequencesOnly } from '../../src/kernels/contract.js';
import { chunkedScan } from '../../src/ops/chunked-scan.js';
import { scanStep, sequentialScan, type ScanInputs } from '../../src/ops/scan-reference.js';
import { selectiveScan } from '../../src/ops/selective-scan.js';
import { registerGradients } from '../../src/training/gradients.js';
import { maxDiff } from './helpers.js';

/** Scan inputs as a Mamba mixer makes them (delta > 0 by softplus, A < 0). */
function inputs(batch: number, length: number, dim: number, n: number, withState: boolean, seed = 1): ScanInputs {
  return tf.tidy(() => ({
    u: tf.randomNormal([batch, length, dim], 0, 1, 'float32', seed) as tf.Tensor3D,
    delta: tf.softplus(tf.randomNormal([batch, length, dim], -1, 1.5, 'float32', seed + 1)) as tf.Tensor3D,
    A: tf.neg(tf.exp(tf.randomNormal([dim, n], 0.5, 1, 'float32', seed + 2))) as tf.Tensor2D,
    B: tf.randomNormal([batch, length, n], 0, 1, 'float32', seed + 3) as tf.Tensor3D,
    C: tf.randomNormal([batch, length, n], 0, 1, 'float32', seed + 4) as tf.Tensor3D,
    D: tf.randomNormal([dim], 1, 0.2, 'float32', seed + 5) as tf.Tensor1D,
    h0: withState ? (tf.randomNormal([batch, dim, n], 0, 1, 'float32', seed + 6) as tf.Tensor3D) : undefined,
  }));
}

function dispose(x: ScanInputs): void {
  tf.dispose(Object.values(x).filter((t): t is tf.Tensor => t !== undefined));
}

/** Tokens [start, start + length) of the sequence inputs. */
function tokens(x: ScanInputs, start: number, length: number, h0?: tf.Tensor3D): ScanInputs {
  const part = (t: tf.Tensor3D): tf.Tensor3D => t.slice([0, start, 0], [t.shape[0], length, t.shape[2]]);
  return { ...x, u: part(x.u), delta: part(x.delta), B: part(x.B), C: part(x.C), h0 };
}

describe('the reference selective scan', () => {
  it('is its one-token step, token by token: a sequence equals its halves with the state carried', () => {
    const x = inputs(2, 9, 5, 4, true);
    tf.tidy(() => {
      const whole = sequentialScan(x);
      const first = sequentialScan(tokens(x, 0, 4, x.h0));
      const second = sequentialScan(tokens(x, 4, 5, first.h));
      expect(maxDiff(whole.y, tf.concat([first.y, second.y], 1))).toBe(0);
      expect(maxDiff(whole.h, second.h)).toBe(0);
      const step = scanStep(tokens(x, 0, 1, x.h0));
      const one = sequentialScan(tokens(x, 0, 1, x.h0));
      expect(maxDiff(step.y, one.y)).toBe(0);
      expect(maxDiff(step.h, one.h)).toBe(0);
    });
    dispose(x);
  });

  it('starts from zeros without h0, like a zero state', () => {
    const x = inputs(1, 3, 4, 2, false);
    tf.tidy(() => {
      const fromNothing = sequentialScan(x);
      const fromZeros = sequentialScan({ ...x, h0: tf.zeros([1, 4, 2]) as tf.Tensor3D });
      expect(maxDiff(fromNothing.y, fromZeros.y)).toBe(0);
      expect(maxDiff(fromNothing.h, fromZeros.h)).toBe(0);
    });
    dispose(x);
  });
});

describe('the selectiveScan op', () => {
  it.each([
    [1, false],
    [1, true],
    [9, true],
    [20, false],
  ])('equals the sequential reference to 1e-4 (%i tokens, h0 %s) and keeps no tensor', (length, withState) => {
    const x = inputs(2, length, 6, 4, withState);
    const before = tf.memory().numTensors;
    const out = selectiveScan(x);
    const reference = sequentialScan(x);
    expect(maxDiff(out.y, reference.y)).toBeLessThan(1e-4);
    expect(maxDiff(out.h, reference.h)).toBeLessThan(1e-4);
    tf.dispose([out.y, out.h, reference.y, reference.h]);
    expect(tf.memory().numTensors).toBe(before);
    dispose(x);
  });

  it('runs the backend\'s scan kernel where registered, and for one token only where not declared for sequences only (wasm)', async () => {
    const kernelsOf = async (x: ScanInputs): Promise<string[]> => {
      const info = await tf.profile(() => tf.tidy(() => selectiveScan(x).y));
      return info.kernels.map((k) => k.name);
    };
    const backend = tf.getBackend();
    const registered = tf.getKernel(FUSED.selectiveScan, backend) !== undefined;
    expect(registered).toBe(backend === 'wasm' || backend === 'native');
    const prompt = inputs(1, 8, 4, 3, true);
    const step = inputs(1, 1, 4, 3, true);
    expect((await kernelsOf(prompt)).includes(FUSED.selectiveScan)).toBe(registered);
    expect((await kernelsOf(step)).includes(FUSED.selectiveScan)).toBe(registered && !isSequencesOnly(FUSED.selectiveScan, backend));
    expect(isSequencesOnly(FUSED.selectiveScan, backend)).toBe(backend === 'wasm');
    dispose(prompt);
    dispose(step);
  });

  it('while gradients are recorded, takes the reference math and gives its gradients (prompt and step)', async () => {
    await registerGradients();
    for (const length of [7, 1]) {
      const x = inputs(1, length, 4, 3, true, 11);
      const loss = (scan: (i: ScanInputs) => { y: tf.Tensor; h: tf.Tensor }) => (u: tf.Tensor, delta: tf.Tensor, B: tf.Tensor, h0: tf.Tensor) => {
        const out = scan({ ...x, u: u as tf.Tensor3D, delta: delta as tf.Tensor3D, B: B as tf.Tensor3D, h0: h0 as tf.Tensor3D });
        return out.y.square().sum().add(out.h.sum());
      };
      const args = [x.u, x.delta, x.B, x.h0!];
      const grads = tf.grads(loss(selectiveScan))(args);
      const reference = tf.grads(loss(sequentialScan))(args);
      grads.forEach((g, i) => expect(maxDiff(g, reference[i]!)).toBeLessThan(1e-4));
      tf.dispose([...grads, ...reference]);
      dispose(x);
    }
  });

  it('the chunked scan is the same math blocked: equal to the reference across chunk boundaries', () => {
    const x = inputs(1, 37, 3, 2, true, 21);
    tf.tidy(() => {
      const blocked = chunkedScan(x, 8);
      const reference = sequentialScan(x);
      expect(maxDiff(blocked.y, reference.y)).toBeLessThan(1e-4);
      expect(maxDiff(blocked.h, reference.h)).toBeLessThan(1e-4);
    });
    dispose(x);
  });
});
