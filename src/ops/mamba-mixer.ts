import * as tf from '@tensorflow/tfjs-core';
import { FUSED } from '../kernels/contract.js';
import { canFuse, runFusedOutputs } from './dispatch.js';

/** A Mamba mixer's weights, in PyTorch's layouts (E = inner width, R = dt rank, N = state size). */
export interface MambaMixerWeights {
  /** in_proj [2E, H] and its bias [2E]. */
  inWeight: tf.Tensor;
  inBias?: tf.Tensor;
  /** The depthwise conv [E, 1, K] and its bias [E]. */
  convWeight: tf.Tensor;
  convBias?: tf.Tensor;
  /** x_proj [R + 2N, E]. */
  xWeight: tf.Tensor;
  /** dt_proj [E, R] and its bias [E]. */
  dtWeight: tf.Tensor;
  dtBias: tf.Tensor;
  /** A = -exp(A_log) [E, N] and the skip D [E]. */
  A: tf.Tensor;
  D: tf.Tensor;
  /** out_proj [H, E] and its bias [H]. */
  outWeight: tf.Tensor;
  outBias?: tf.Tensor;
  /** Jamba: RMSNorm weights on dt [R], B and C [N], with their epsilon. */
  innerNorms?: { dt: tf.Tensor; B: tf.Tensor; C: tf.Tensor; eps: number };
}

/** What one call of the mixer carries besides the weights. */
export interface MambaMixerCall {
  /** Conv window [B, E, K] and SSM state [B, E, N] from the cache (zeros when absent). */
  conv?: tf.Tensor;
  ssm?: tf.Tensor;
  /** [B, L, 1], 1 for real tokens, 0 for padding. */
  keep?: tf.Tensor;
  /** The block's pre-norm (RMSNorm): the result is then hidden + mixer(RMSNorm(hidden)). */
  preNorm?: { weight: tf.Tensor; eps: number };
  /**
   * Whether something needs the mixer's steps one by one (a hook inside the mixer, a scan other
   * than the default): the kernel computes them inside itself, so it must not run then.
   */
  stepsObserved: boolean;
}

export interface MambaMixerResult {
  /** [B, L, H]. */
  out: tf.Tensor;
  /** The conv window [B, E, K] and SSM state [B, E, N] after this call. */
  conv: tf.Tensor;
  ssm: tf.Tensor;
}

/**
 * The whole Mamba mixer in one call of the backend's kernel (the native addon's
 * native/src/mamba.c): in_proj, causal conv + SiLU, x_proj (and Jamba's inner norms), dt_proj +
 * softplus, the selective scan, the SiLU(z) gate and out_proj, for a prompt or a decode step.
 * Returns undefined where the kernel may not run (not registered, gradients recorded, a state
 * size above what the backend declared, non-float32 input, steps observed); the mixer then runs
 * its steps op by op (MambaMixer's forward, the reference it is tested against).
 */
export function fusedMambaMixer(hidden: tf.Tensor, weights: MambaMixerWeights, call: MambaMixerCall): MambaMixerResult | undefined {
  if (call.stepsObserved || hidden.dtype !== 'float32' || !canFuse(FUSED.mambaMixer, { stateSize: weights.A.shape[1] })) return undefined;
  const { innerNorms, ...projections } = weights;
  const inputs = {
    hidden,
    ...projections,
    dtNorm: innerNorms?.dt,
    bNorm: innerNorms?.B,
    cNorm: innerNorms?.C,
    keep: call.keep === undefined ? undefined : tf.reshape(call.keep, [hidden.shape[0]!, hidden.shape[1]!]),
    convState: call.conv,
    ssmState: call.ssm,
    preNorm: call.preNorm?.weight,
  };
  const attrs = { normEps: innerNorms?.eps ?? 0, preNormEps: call.preNorm?.eps ?? 0, addResidual: Number(call.preNorm !== undefined) };
  const [out, conv, ssm] = runFusedOutputs(FUSED.mambaMixer, inputs, attrs);
  return { out: out!, conv: conv!, ssm: ssm! };
}
