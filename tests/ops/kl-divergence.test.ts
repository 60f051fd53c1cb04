import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUSED } from '../../src/kernels/contract.js';
import { initBackend } from '../../src/kernels/backend.js';
import { isNativeBuilt } from '../../src/kernels/native/index.js';
import { klDivergence, referenceKlDivergence } from '../../src/ops/kl-divergence.js';
import { klDivergenceLoss } from '../../src/training/losses.js';
import { registerGradients } from '../../src/training/gradients.js';
import { maxDiff } from './helpers.js';

/** The kernel names a call ran, in order (tf.profile records every kernel the engine dispatched). */
async function kernelsRun(fn: () => tf.Tensor | tf.Tensor[]): Promise<string[]> {
  const info = await tf.profile(() => {
    tf.dispose(fn());
  });
  return info.kernels.map((k) => k.name);
}

describe('klDivergence (reference path)', () => {
  it('rejects a bad temperature and mismatched shapes', () => {
    const [s, t] = [tf.zeros([2, 5]), tf.zeros([2, 4])];
    expect(() => klDivergence(s, s, 0)).toThrow(/temperature must be a finite number > 0, got 0/);
    expect(() => klDivergence(s, t, 1)).toThrow(/student shape \[2,5\] differs from teacher shape \[2,4\]/);
    tf.dispose([s, t]);
  });
});

describe.runIf(isNativeBuilt())('klDivergence: the native fused kernels', () => {
  const previous = tf.getBackend();
  beforeAll(async () => {
    await initBackend({ backend: 'native' });
    await registerGradients();
  });
  afterAll(async () => {
    await tf.setBackend(previous);
  });

  // [2, 60, 1000]: 120 rows, several per thread part, so the rows are split over threads.
  const shape: [number, number, number] = [2, 60, 1000];
  const student = (): tf.Tensor3D => tf.randomNormal(shape, 0, 3, 'float32', 21) as tf.Tensor3D;
  const teacher = (): tf.Tensor3D => tf.randomNormal(shape, 0.5, 4, 'float32', 22) as tf.Tensor3D;
  const weights = (): tf.Tensor2D => tf.randomUniform([2, 60], -2, 2, 'float32', 23) as tf.Tensor2D;

  for (const temperature of [1, 2]) {
    it(`equals the reference composition at T = ${temperature}: values and both gradients`, () => {
      const [s, t, w] = [student(), teacher(), weights()];
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        expect(maxDiff(klDivergence(s, t, temperature), referenceKlDivergence(s, t, temperature))).toBeLessThan(2e-5);
        const [fs, ft] = tf.grads((a: tf.Tensor, b: tf.Tensor) => klDivergence(a, b, temperature).mul(w).sum())([s, t]);
        const [rs, rt] = tf.grads((a: tf.Tensor, b: tf.Tensor) => referenceKlDivergence(a, b, temperature).mul(w).sum())([s, t]);
        const scale = tf.max(tf.abs(rs!)).dataSync()[0]!;
        expect(scale).toBeGreaterThan(1e-3); // a gradient worth comparing
        expect(maxDiff(fs!, rs!)).toBeLessThan(1e-6 + 1e-4 * scale);
        expect(maxDiff(ft!, rt!)).toBeLessThan(1e-6 + 1e-4 * tf.max(tf.abs(rt!)).dataSync()[0]!);
      });
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([s, t, w]);
    });
  }

  it('runs the fused kernels, and the teacher backward only when the teacher is differentiated', async () => {
    const [s, t] = [student(), teacher()];
    expect(await kernelsRun(() => klDivergence(s, t, 2))).toContain(FUSED.klDivergence);
    const count = (names: string[]): number => names.filter((n) => n === FUSED.klDivergenceBackward).length;
    const studentOnly = await kernelsRun(() => tf.grad((a: tf.Tensor) => klDivergence(a, t, 2).sum())(s));
    expect(studentOnly).toContain(FUSED.klDivergence);
    expect(count(studentOnly)).toBe(1);
    const both = await kernelsRun(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => klDivergence(a, b, 2).sum())([s, t]));
    expect(count(both)).toBe(2);
    tf.dispose([s, t]);
  });

  it('has the gradients finite differences give, student and teacher', () => {
    const s = tf.randomNormal([3, 7], 0, 2, 'float32', 31);
    const t = tf.randomNormal([3, 7], 0, 2, 'float32', 32);
    const w = tf.tensor1d([1, -0.5, 2]);
    const temperature = 2;
    const loss = (a: tf.Tensor, b: tf.Tensor): tf.Scalar => klDivergence(a, b, temperature).mul(w).sum() as tf.Scalar;
    const [gs, gt] = tf.tidy(() => tf.grads(loss)([s, t]).map((g) => g.arraySync() as number[][]));
    const [sv, tv] = [s.arraySync() as number[][], t.arraySync() as number[][]];
    const step = 1e-2;
    const shifted = (values: number[][], row: number, col: number, delta: number): tf.Tensor =>
      tf.tensor2d(values.map((r, i) => r.map((v, j) => (i === row && j === col ? v + delta : v))));
    const at = (which: 0 | 1, row: number, col: number, delta: number): number =>
      tf.tidy(() => (which === 0 ? loss(shifted(sv, row, col, delta), t) : loss(s, shifted(tv, row, col, delta))).dataSync()[0]!);
    for (const which of [0, 1] as const) {
      const analytic = which === 0 ? gs! : gt!;
      for (let row = 0; row < 3; row++) {
        for (const col of [row, (row * 3 + 2) % 7, 6 - row]) {
          const numeric = (at(which, row, col, step) - at(which, row, col, -step)) / (2 * step);
          expect(Math.abs(numeric - analytic[row]![col]!), `${which === 0 ? 'student' : 'teacher'}[${row}, ${col}]`).toBeLessThan(1e-3);
        }
      }
    }
    tf.dispose([s, t, w]);
  });

  it('klDivergenceLoss with a mask: the masked mean of the reference, times T², value and gradient', () => {
    const [s, t] = [student(), teacher()];
    const mask = tf.tensor2d(Array.from({ length: 120 }, (_, i) => (i % 7 === 3 ? 0 : 1)), [2, 60]);
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const reference = (a: tf.Tensor): tf.Scalar => referenceKlDivergence(a, t, 2).mul(mask).sum().div(mask.sum()).mul(4) as tf.Scalar;
      const fused = (a: tf.Tensor): tf.Scalar => klDivergenceLoss(a, t, { temperature: 2, mask });
      const [value, expected] = [fused(s).dataSync()[0]!, reference(s).dataSync()[0]!];
      expect(Math.abs(value - expected)).toBeLessThan(1e-5 * Math.abs(expected));
      const g = tf.grad(fused)(s);
      const r = tf.grad(reference)(s);
      expect(maxDiff(g, r)).toBeLessThan(1e-4 * tf.max(tf.abs(r)).dataSync()[0]!);
      // Masked positions get no gradient.
      expect(tf.max(tf.abs(g.slice([0, 3, 0], [1, 1, 1000]))).dataSync()[0]).toBe(0);
    });
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([s, t, mask]);
  });

  it('rejects a bad temperature inside the kernel too, leaving no tensors behind', () => {
    const [s, t] = [tf.zeros([2, 5]), tf.zeros([2, 5])];
    const before = tf.memory().numTensors;
    expect(() => tf.engine().runKernel(FUSED.klDivergence, { student: s, teacher: t }, { temperature: -1 })).toThrow(/temperature must be a finite number > 0, got -1/);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([s, t]);
  });
});
