import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { MixtureOfExperts, createContext } from '../../src/index.js';

// Three tokens of width 2. With the router below, the logits are x·Wᵀ:
//   [1, 0.5]   -> [2, 0.5, 0]   top-2: experts 0, 1
//   [-1, 1]    -> [-2, 1, 0]    top-2: experts 1, 2
//   [0.25, -2] -> [0.5, -2, 0]  top-2: experts 0, 2
const TOKENS = [
  [1, 0.5],
  [-1, 1],
  [0.25, -2],
];
const ROUTER = [
  [2, 0],
  [0, 1],
  [0, 0],
];
const CHOSEN = [
  [0, 1],
  [1, 2],
  [0, 2],
];

function softmax(logits: number[]): number[] {
  const e = logits.map(Math.exp);
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

function makeMoe(renormalize = false): MixtureOfExperts {
  const moe = new MixtureOfExperts({ hiddenSize: 2, intermediateSize: 3, numExperts: 3, topK: 2, activation: 'silu', renormalize });
  moe.router.weight.assign(tf.tensor2d(ROUTER));
  // Distinct, non-tiny experts so a wrong choice or weight shows.
  moe.experts.items.forEach((e, i) => {
    for (const lin of [e.gate!, e.up, e.down]) lin.weight.assign(tf.randomNormal(lin.weight.shape, 0, 1, 'float32', 10 + i));
  });
  return moe;
}

/** What the layer should output: Σ over the hand-chosen experts of weight · expert(x). */
function byHand(moe: MixtureOfExperts, renormalize: boolean): number[][] {
  const ctx = createContext();
  return TOKENS.map((x, t) => {
    const logits = ROUTER.map((w) => w[0]! * x[0]! + w[1]! * x[1]!);
    const p = softmax(logits);
    const chosen = CHOSEN[t]!;
    const total = renormalize ? chosen.reduce((s, e) => s + p[e]!, 0) : 1;
    const out = [0, 0];
    for (const e of chosen) {
      const y = tf.tidy(() => moe.experts.items[e]!.call(tf.tensor2d([x]), ctx).arraySync() as number[][])[0]!;
      y.forEach((v, j) => (out[j]! += (p[e]! / total) * v));
    }
    return out;
  });
}

function close(a: number[][], b: number[][]): number {
  return Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i]![j]!))));
}

describe('MixtureOfExperts', () => {
  it("routes each token to its top-k experts with Jamba's unnormalised softmax weights", () => {
    const moe = makeMoe();
    const y = moe.call(tf.tensor3d([TOKENS]), createContext());
    expect(y.shape).toEqual([1, 3, 2]);
    const got = (y.arraySync() as number[][][])[0]!;
    expect(close(got, byHand(moe, false))).toBeLessThan(1e-5);
    // The weights do not sum to 1, so the renormalised answer is measurably different.
    expect(close(got, byHand(moe, true))).toBeGreaterThan(1e-3);
    y.dispose();
    moe.dispose();
  });

  it('renormalises the top-k weights when asked (Mixtral style)', () => {
    const moe = makeMoe(true);
    const y = moe.call(tf.tensor2d(TOKENS), createContext());
    expect(close(y.arraySync() as number[][], byHand(moe, true))).toBeLessThan(1e-5);
    y.dispose();
    moe.dispose();
  });

  it('keeps [B, L, H] shapes and leaks no tensors', () => {
    const moe = makeMoe();
    const x = tf.randomNormal([2, 5, 2]);
    const run = (): void => tf.dispose(moe.call(x, createContext()));
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run();
    expect(tf.memory().numTensors).toBe(before);
    tf.tidy(() => {
      expect(moe.call(x, createContext()).shape).toEqual([2, 5, 2]);
    });
    x.dispose();
    moe.dispose();
  });

  it('exposes the router logits as a hook point that can steer the routing', () => {
    const moe = makeMoe();
    moe.namedModules();
    // Force every token to experts 2 then 1 (logits 3 > 2 > 0, softmax weights known).
    const handle = moe.attachHook('routerLogits', 'post', (v) => tf.tidy(() => tf.tile(tf.tensor([0, 2, 3]).reshape([1, 1, 3]), [...v.shape.slice(0, 2), 1])));
    const y = moe.call(tf.tensor3d([TOKENS]), createContext());
    const p = softmax([0, 2, 3]);
    const ctx = createContext();
    const want = TOKENS.map((x) =>
      tf.tidy(() => {
        const e2 = moe.experts.items[2]!.call(tf.tensor2d([x]), ctx).mul(p[2]!);
        const e1 = moe.experts.items[1]!.call(tf.tensor2d([x]), ctx).mul(p[1]!);
        return (e2.add(e1).arraySync() as number[][])[0]!;
      }),
    );
    expect(close((y.arraySync() as number[][][])[0]!, want)).toBeLessThan(1e-5);
    handle.remove();
    y.dispose();
    moe.dispose();
  });

  it('rejects a top-k larger than the number of experts', () => {
    expect(() => new MixtureOfExperts({ hiddenSize: 2, intermediateSize: 3, numExperts: 2, topK: 3, activation: 'silu' })).toThrow(/topK.*between 1 and numExperts \(2\), got 3/);
  });
});
