import * as tf from '@tensorflow/tfjs-core';
import '../tf-chained.js';
import { FUSED } from '../kernels/contract.js';
import { canFuse, recordingGradients, runFused, runFusedOutputs } from './dispatch.js';
import type { Memo } from './memo.js';

/** What a causal conv call continues from and how its tokens are masked. */
export interface CausalConvState {
  /** The last K inputs of the previous call, [B, D, K] (zeros when absent). */
  window?: tf.Tensor;
  /** [B, L, 1], 1 for real tokens, 0 for padding: padding enters the conv as zeros. */
  keep?: tf.Tensor;
  memo: Memo;
}

export interface CausalConvOutput {
  /** The conv output before any activation, [B, L, D]. */
  y: tf.Tensor3D;
  /** The last K inputs after this call, [B, D, K]: the state to continue from. */
  window: tf.Tensor;
}

/**
 * Mamba's causal depthwise conv: y_t = bias + Σ_k weight_k · x_{t+k+1-K} per channel, where inputs
 * before this call's first token come from `window` (the cache). `x` is [B, L, D], `weight`
 * [D, 1, K] as PyTorch's depthwise Conv1d stores it. A padded single step (a longer call pads
 * only on the left, where the window is still zeros) leaves the window as it was.
 */
export function causalConv(x: tf.Tensor3D, weight: tf.Tensor, bias: tf.Tensor | undefined, { window: past, keep, memo }: CausalConvState): CausalConvOutput {
  return tf.tidy(() => {
    const [batch, length, dim] = x.shape;
    const kernel = weight.shape[weight.rank - 1]!;
    const input = keep === undefined ? x : x.mul(keep);
    // From an empty window (training, a first prompt) the backend's kernel, which has a gradient.
    if (length > 1 && past === undefined && weight.rank === 3 && x.dtype === 'float32' && canFuse(FUSED.causalConv)) {
      const taps = Math.min(kernel, length);
      const tail = input.slice([0, length - taps, 0], [batch, taps, dim]).transpose([0, 2, 1]);
      const window = taps === kernel ? tail : tf.concat([tf.zeros([batch, dim, kernel - taps]), tail], 2);
      return { y: fusedCausalConv(input as tf.Tensor3D, weight, bias), window };
    }
    const history = past ?? tf.zeros([batch, dim, kernel]); // [B, D, K]
    if (length > 1) {
      const inputs = tf.concat([history.transpose([0, 2, 1]), input], 1); // [B, K+L, D]
      const taps = weight.reshape([dim, kernel]).transpose(); // [K, D]
      let y: tf.Tensor = bias ?? tf.zeros([dim]);
      for (let k = 0; k < kernel; k++) {
        y = inputs.slice([0, k + 1, 0], [batch, length, dim]).mul(taps.slice([k, 0], [1, dim])).add(y);
      }
      return { y: y as tf.Tensor3D, window: inputs.slice([0, length, 0], [batch, kernel, dim]).transpose([0, 2, 1]) };
    }
    // One token: shift the window by one and take a dot product per channel. The shift is a
    // product with a 0/1 matrix rather than slice + concat along the last axis, which take
    // tfjs-wasm's element-by-element path (~0.6 ms per layer, 15% of a Mamba-130m step);
    // adding zeros and multiplying by 1 is exact.
    const shifted = history
      .reshape([batch * dim, kernel])
      .matMul(memo(`mamba.shift:${kernel}`, () => shiftLeft(kernel)))
      .reshape([batch, dim, kernel])
      .add(input.reshape([batch, dim, 1]).mul(memo(`mamba.last:${kernel}`, () => lastSlot(kernel))));
    let y = shifted.mul(weight.reshape([dim, kernel])).sum(2).reshape([batch, 1, dim]);
    if (bias !== undefined) y = y.add(bias);
    // Arithmetic, not tf.where: wasm broadcasts the condition with a slow Tile.
    const window = keep === undefined ? shifted : history.add(shifted.sub(history).mul(keep.reshape([batch, 1, 1])));
    return { y: y as tf.Tensor3D, window };
  });
}

/** [K, K] with ones at (k + 1, k): `w · shiftLeft(K)` moves every entry of a window one slot left. */
function shiftLeft(k: number): tf.Tensor2D {
  const values = new Float32Array(k * k);
  for (let i = 0; i + 1 < k; i++) values[(i + 1) * k + i] = 1;
  return tf.tensor2d(values, [k, k]);
}

/** [K], one at the last slot: where a window's newest entry goes. */
function lastSlot(k: number): tf.Tensor1D {
  const values = new Float32Array(k);
  values[k - 1] = 1;
  return tf.tensor1d(values);
}

/** The backend's conv kernel; while gradients are recorded, with a gradient that runs its backward kernel. */
function fusedCausalConv(x: tf.Tensor3D, weight: tf.Tensor, bias: tf.Tensor | undefined): tf.Tensor3D {
  if (!recordingGradients()) return runFused(FUSED.causalConv, { x, weight, bias }) as tf.Tensor3D;
  const withGradient = tf.customGrad(((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [xi, wi, bi] = args as [tf.Tensor, tf.Tensor, tf.Tensor | undefined];
    // Saved: the backward pass runs after the forward's scopes have disposed what they made.
    save([xi, wi]);
    return {
      value: runFused(FUSED.causalConv, { x: xi, weight: wi, bias: bi }),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [dx, dweight, dbias] = runFusedOutputs(FUSED.causalConvBackward, { x: saved[0], weight: saved[1], dy });
        if (bi !== undefined) return [dx!, dweight!, dbias!];
        dbias!.dispose();
        return [dx!, dweight!];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (bias === undefined ? withGradient(x, weight) : withGradient(x, weight, bias)) as tf.Tensor3D;
}
