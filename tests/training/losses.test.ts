import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { attentionLoss, hiddenCosineLoss, hiddenMseLoss, klDivergenceLoss, nextTokenCrossEntropy, uniformLayerMap } from '../../src/index.js';

const value = (t: tf.Tensor): number => {
  const v = t.dataSync()[0]!;
  t.dispose();
  return v;
};

function softmax(xs: number[]): number[] {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

describe('distillation losses', () => {
  it('next-token cross-entropy: position t predicts token t + 1; positions whose next token is masked do not count', () => {
    const logits = [[[1, 2, 0.5], [0, 3, -1], [2, 2, 2]], [[0, 0, 1], [4, 1, 0], [1, 0, 0]]];
    const inputIds = [[0, 1, 2], [2, 0, 1]];
    const nll = (b: number, t: number): number => -Math.log(softmax(logits[b]![t]!)[inputIds[b]![t + 1]!]!);
    const [x, idsT] = [tf.tensor3d(logits), tf.tensor2d(inputIds, undefined, 'int32')];
    const all = (nll(0, 0) + nll(0, 1) + nll(1, 0) + nll(1, 1)) / 4;
    expect(value(nextTokenCrossEntropy(x, idsT))).toBeCloseTo(all, 5);
    // Row 1's last token is padding, so its position 1 (predicting it) drops out.
    const mask = tf.tensor2d([[1, 1, 1], [1, 1, 0]], undefined, 'int32');
    expect(value(nextTokenCrossEntropy(x, idsT, { mask }))).toBeCloseTo((nll(0, 0) + nll(0, 1) + nll(1, 0)) / 3, 5);
    expect(() => nextTokenCrossEntropy(x, tf.tensor2d([[1, 2]], undefined, 'int32'))).toThrow(/inputIds has shape \[1,2\], expected \[2, 3\]/);
    tf.dispose([x, idsT, mask]);
  });

  it('KL on temperature-softened logits, scaled by T², averaged over unmasked positions', () => {
    const s = [[[1, 2, 0.5], [0, 0, 0]]];
    const t = [[[2, 0, 1], [5, -5, 9]]];
    const T = 2;
    const p = softmax(t[0]![0]!.map((x) => x / T));
    const q = softmax(s[0]![0]!.map((x) => x / T));
    const expected = T * T * p.reduce((acc, pi, i) => acc + pi * Math.log(pi / q[i]!), 0);
    const mask = tf.tensor2d([[1, 0]], undefined, 'int32');
    const [st, tt] = [tf.tensor3d(s), tf.tensor3d(t)];
    // The second position is padding: its (large) divergence must not count.
    expect(value(klDivergenceLoss(st, tt, { temperature: T, mask }))).toBeCloseTo(expected, 5);
    expect(value(klDivergenceLoss(st, tt, { temperature: T }))).toBeGreaterThan(expected);
    expect(value(klDivergenceLoss(tt, tt, { temperature: T }))).toBeCloseTo(0, 6);
    expect(() => klDivergenceLoss(st, tf.zeros([1, 2, 4]))).toThrow(/student shape \[1,2,3\] differs from teacher shape \[1,2,4\]/);
    expect(() => klDivergenceLoss(st, tt, { mask: tf.ones([2, 2]) })).toThrow(/mask has shape \[2,2\], expected \[1, 2\]/);
    tf.dispose([st, tt, mask]);
  });

  it('MSE and cosine on hidden states with a padding mask', () => {
    const s = tf.tensor3d([[[1, 0], [3, 4]]]);
    const t = tf.tensor3d([[[0, 1], [3, 4]]]);
    const mask = tf.tensor2d([[1, 0]]);
    expect(value(hiddenMseLoss(s, t))).toBeCloseTo(0.5, 6); // (1 + 1) / 2 features, / 2 positions
    expect(value(hiddenMseLoss(s, t, { mask }))).toBeCloseTo(1, 6);
    expect(value(hiddenCosineLoss(s, t, { mask }))).toBeCloseTo(1, 6); // orthogonal
    expect(value(hiddenCosineLoss(s, t))).toBeCloseTo(0.5, 6);
    expect(() => hiddenMseLoss(s, tf.zeros([1, 2, 3]))).toThrow(/learned projection/);
    tf.dispose([s, t, mask]);
  });

  it('attention loss skips entries the model masked and padded queries/keys', () => {
    // [B=1, H=1, L=2, S=2]; the teacher masked key 1 for query 0 (causal).
    const teacher = tf.tensor4d([[[[1, -1e9], [2, 3]]]]);
    const student = tf.tensor4d([[[[0, 7], [2, 1]]]]);
    expect(value(attentionLoss(student, teacher))).toBeCloseTo((1 + 0 + 4) / 3, 5);
    const mask = tf.tensor2d([[1, 0]]); // key/query 1 is padding
    expect(value(attentionLoss(student, teacher, { mask }))).toBeCloseTo(1, 5);
    expect(() => attentionLoss(tf.zeros([2, 2]), tf.zeros([2, 2]))).toThrow(/expected \[batch, heads, queries, keys\]/);
    tf.dispose([teacher, student, mask]);
  });

  it('uniform layer map', () => {
    expect(uniformLayerMap(1, 2)).toEqual([[0, 1]]);
    expect(uniformLayerMap(4, 12)).toEqual([[0, 2], [1, 5], [2, 8], [3, 11]]);
    expect(uniformLayerMap(2, 3)).toEqual([[0, 1], [1, 2]]);
    expect(() => uniformLayerMap(0, 2)).toThrow(/studentLayers must be a positive integer/);
  });
});
