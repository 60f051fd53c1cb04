import * as tf from '@tensorflow/tfjs-core';

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

/**
 * The reference selective scan, one token at a time:
 *   h_t = exp(delta_t A) ⊙ h_{t-1} + delta_t B_t u_t,   y_t = C_t · h_t + D u_t.
 * Readable and exact; faster scans are tested against it.
 */
export function sequentialScan({ u, delta, A, B, C, D, h0 }: ScanInputs): ScanOutputs {
  return tf.tidy(() => {
    const [batch, length, dim] = u.shape;
    const n = A.shape[1];
    const deltaA = tf.exp(delta.expandDims(3).mul(A)); // [B, L, D, N]
    const deltaBu = delta.mul(u).expandDims(3).mul(B.expandDims(2)); // [B, L, D, N]
    let h: tf.Tensor = h0 ?? tf.zeros([batch, dim, n]);
    const ys: tf.Tensor[] = [];
    for (let t = 0; t < length; t++) {
      const at = deltaA.slice([0, t, 0, 0], [batch, 1, dim, n]).reshape([batch, dim, n]);
      const bt = deltaBu.slice([0, t, 0, 0], [batch, 1, dim, n]).reshape([batch, dim, n]);
      h = at.mul(h).add(bt);
      const ct = C.slice([0, t, 0], [batch, 1, n]).reshape([batch, n, 1]);
      ys.push(tf.matMul(h as tf.Tensor3D, ct as tf.Tensor3D).reshape([batch, 1, dim])); // C_t · h_t
    }
    const y = tf.concat(ys, 1).add(u.mul(D));
    return { y: y as tf.Tensor3D, h: h as tf.Tensor3D };
  });
}

/** The scan Mamba mixers use; swappable so faster implementations can be tested against the reference. */
export type SelectiveScan = (inputs: ScanInputs) => ScanOutputs;
