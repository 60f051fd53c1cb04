import * as tf from '@tensorflow/tfjs-core';
import '../tf-chained.js';
import { decay } from './decay.js';

/** Inputs of the selective scan, with the paper's names and shapes. */
export interface ScanInputs {
  /** u: the conv/SiLU output, [B, L, D]. */
  u: tf.Tensor3D;
  /** delta: softplus(dt_proj(dt)), the per-token step size, [B, L, D]. */
  delta: tf.Tensor3D;
  /** A = -exp(A_log), [D, N]. */
  A: tf.Tensor2D;
  /** B: input-dependent input matrix, [B, L, N]. */
  B: tf.Tensor3D;
  /** C: input-dependent output matrix, [B, L, N]. */
  C: tf.Tensor3D;
  /** D: skip connection, [D]. */
  D: tf.Tensor1D;
  /** Initial state h, [B, D, N] (zeros when absent). */
  h0?: tf.Tensor3D;
}

export interface ScanOutputs {
  /** y = C·h + D·u, [B, L, D]. */
  y: tf.Tensor3D;
  /** The state after the last token, [B, D, N]. */
  h: tf.Tensor3D;
}

/** The scan Mamba mixers use; swappable so faster implementations can be tested against the reference. */
export type SelectiveScan = (inputs: ScanInputs) => ScanOutputs;

/**
 * The discretised recurrence: deltaA = exp(delta A) and deltaBu = delta u B for every channel d
 * and state n. `u` and `delta` come as columns [..., D, 1] and `B` as rows [..., 1, N], so both
 * results broadcast to [..., D, N].
 */
export function discretize(u: tf.Tensor, delta: tf.Tensor, A: tf.Tensor2D, B: tf.Tensor): { deltaA: tf.Tensor; deltaBu: tf.Tensor } {
  return { deltaA: decay(delta.mul(A)), deltaBu: delta.mul(u).mul(B) };
}

/**
 * The one update of the recurrence, h = deltaA ⊙ h + deltaBu. Every scan here applies it: the
 * sequential scan once per token, the chunked scan to spans of tokens (the pairs (deltaA, deltaBu)
 * compose associatively), the kernels in their own loops.
 */
export function update(deltaA: tf.Tensor, h: tf.Tensor, deltaBu: tf.Tensor): tf.Tensor {
  return deltaA.mul(h).add(deltaBu);
}

/**
 * One token of the scan (L = 1), O(1) in the position; what decoding runs where no kernel does:
 *   h = exp(delta A) ⊙ h0 + delta B u,   y = C · h + D u.
 */
export function scanStep({ u, delta, A, B, C, D, h0 }: ScanInputs): ScanOutputs {
  return tf.tidy(() => {
    const [batch, , dim] = u.shape;
    const n = A.shape[1];
    const column = (x: tf.Tensor): tf.Tensor => x.reshape([batch, dim, 1]);
    const { deltaA, deltaBu } = discretize(column(u), column(delta), A, B.reshape([batch, 1, n])); // [B, D, N]
    const h = (h0 === undefined ? deltaBu : update(deltaA, h0, deltaBu)) as tf.Tensor3D;
    const y = tf.matMul(h, C.reshape([batch, n, 1])).reshape([batch, 1, dim]).add(u.mul(D)) as tf.Tensor3D;
    return { y, h };
  });
}

/**
 * The reference selective scan: {@link scanStep} token by token,
 *   h_t = exp(delta_t A) ⊙ h_{t-1} + delta_t B_t u_t,   y_t = C_t · h_t + D u_t.
 * Readable rather than fast; faster scans are tested against it.
 */
export function sequentialScan(inputs: ScanInputs): ScanOutputs {
  return tf.tidy(() => {
    const { u, delta, B, C, A } = inputs;
    const [batch, length, dim] = u.shape;
    const token = (x: tf.Tensor3D, t: number): tf.Tensor3D => x.slice([0, t, 0], [batch, 1, x.shape[2]]);
    let h = inputs.h0;
    const ys: tf.Tensor[] = [];
    for (let t = 0; t < length; t++) {
      const step = scanStep({ ...inputs, u: token(u, t), delta: token(delta, t), B: token(B, t), C: token(C, t), h0: h });
      ys.push(step.y);
      h = step.h;
    }
    return { y: tf.concat(ys, 1) as tf.Tensor3D, h: h ?? (tf.zeros([batch, dim, A.shape[1]]) as tf.Tensor3D) };
  });
}
