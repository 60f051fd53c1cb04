import * as tf from '@tensorflow/tfjs-core';
import '../tf-chained.js';
import { discretize, update, type ScanInputs, type ScanOutputs, type SelectiveScan } from './scan-reference.js';

/**
 * The reference scan's math (scan-reference.ts), blocked: the same {@link discretize} and
 * {@link update}, applied to spans of tokens instead of one token at a time, so the op count grows
 * with log(chunk) + L / chunk rather than with L, and the total work stays O(L).
 *
 * The recurrence h_t = a_t ⊙ h_{t-1} + x_t (a_t = deltaA_t, x_t = deltaBu_t) is associative in
 * the pairs (a, x): (a1, x1) then (a2, x2) = (a1 a2, update(a2, x1, x2)). So:
 * 1. Within each chunk of T tokens, an inclusive scan by doubling (log2 T steps, each a shifted
 *    multiply-add over the whole [B, L, D, N] tensor) gives every token's state as if the chunk
 *    had started from zero, and the decay accumulated since the chunk's start.
 * 2. Across chunks, a short recurrence over the L / T chunk ends carries the true state in.
 * 3. h_t = local_t + decay_t ⊙ h_(chunk start), then y_t = C_t · h_t + D u_t.
 *
 * Stability: nothing is ever divided and no exponent is positive. The decays are products of
 * factors exp(delta A) in (0, 1], so they can only underflow towards 0 (a contribution that is
 * truly negligible), never overflow. The closed form that instead uses cumulative log-decays,
 * h_t = exp(S_t) Σ_s exp(-S_s) x_s, overflows float32 as soon as a chunk's decay passes e^88.
 */
export function chunkedScan({ u, delta, A, B, C, D, h0 }: ScanInputs, chunk = DEFAULT_CHUNK): ScanOutputs {
  return tf.tidy(() => {
    const [batch, length, dim] = u.shape;
    const n = A.shape[1];
    const T = Math.max(1, Math.min(chunk, length));
    const chunks = Math.ceil(length / T);
    const padded = chunks * T;
    // Padding tokens carry delta = 0: a = 1 and x = 0, so they leave the state unchanged.
    const pad = (t: tf.Tensor3D): tf.Tensor3D => (padded === length ? t : tf.pad(t, [[0, 0], [0, padded - length], [0, 0]]));
    const dn = dim * n;
    const { deltaA, deltaBu } = discretize(pad(u).expandDims(3), pad(delta).expandDims(3), A, pad(B).expandDims(2)); // [B, padded, D, N]
    // [B, chunks, T, D·N]: rank 4 at most, since tfjs-wasm slices higher ranks element by element.
    let a: tf.Tensor = deltaA.reshape([batch, chunks, T, dn]);
    let x: tf.Tensor = deltaBu.reshape([batch, chunks, T, dn]);

    // 1. Inclusive scan within chunks by doubling: after the step of span k, (a_t, x_t) covers
    //    tokens t-2k+1 .. t of the chunk (a = decay over that span, x = state from zero).
    for (let k = 1; k < T; k *= 2) {
      const aPrev = shift(a, 2, k, 1);
      const xPrev = shift(x, 2, k, 0);
      x = update(a, xPrev, x);
      a = a.mul(aPrev);
    }

    // 2. Across chunks, the same doubling over the chunk ends (decay and zero-start state of each
    //    whole chunk), then the initial state h0 decayed through: the state after each chunk.
    let endA: tf.Tensor = a.slice([0, 0, T - 1, 0], [batch, chunks, 1, dn]).reshape([batch, chunks, dn]);
    let endX: tf.Tensor = x.slice([0, 0, T - 1, 0], [batch, chunks, 1, dn]).reshape([batch, chunks, dn]);
    for (let k = 1; k < chunks; k *= 2) {
      const aPrev = shift(endA, 1, k, 1);
      const xPrev = shift(endX, 1, k, 0);
      endX = update(endA, xPrev, endX);
      endA = endA.mul(aPrev);
    }
    const initial = (h0 ?? tf.zeros([batch, dim, n])).reshape([batch, 1, dn]);
    const after = update(endA, initial, endX); // [B, chunks, D·N]
    const entering = tf.concat([initial, after.slice([0, 0, 0], [batch, chunks - 1, dn])], 1);

    // 3. Every token's state and output.
    const states = update(a, entering.expandDims(2), x).reshape([batch, padded, dim, n]);
    const statesL = padded === length ? states : states.slice([0, 0, 0, 0], [batch, length, dim, n]);
    const y = statesL.mul(C.expandDims(2)).sum(3).add(u.mul(D)); // C_t · h_t + D u_t
    const h = after.slice([0, chunks - 1, 0], [batch, 1, dn]).reshape([batch, dim, n]);
    return { y: y as tf.Tensor3D, h: h as tf.Tensor3D };
  });
}

/** `t` moved `k` places along `axis` (towards later indices), the first `k` filled with `fill`. */
function shift(t: tf.Tensor, axis: number, k: number, fill: number): tf.Tensor {
  const size = [...t.shape];
  size[axis] -= k;
  const padding = t.shape.map((_, i) => (i === axis ? [k, 0] : [0, 0])) as [number, number][];
  return tf.pad(t.slice(t.shape.map(() => 0), size), padding, fill);
}

/** Tokens per chunk: log2(16) = 4 doubling steps inside, L / 16 carries across. */
export const DEFAULT_CHUNK = 16;

/** {@link chunkedScan} with a chosen chunk length, as a drop-in {@link SelectiveScan}. */
export function chunkedScanWith(chunk: number): SelectiveScan {
  if (!Number.isInteger(chunk) || chunk < 1) throw new Error(`chunk length must be a positive integer, got ${chunk}`);
  return (inputs) => chunkedScan(inputs, chunk);
}
