import * as tf from '@tensorflow/tfjs-core';
import type { MambaMixer } from './mamba.js';
import type { RMSNorm } from './norm.js';
import { FUSED } from '../kernels/contract.js';
import { canFuse } from '../ops/dispatch.js';

/** The whole-mixer kernel a backend may register (the native addon does: native/src/mamba.c). */
export const MAMBA_MIXER_KERNEL = FUSED.mambaMixer;

/**
 * Whether the Mamba mixer may run fused now: the backend has the kernel, no gradients are
 * recorded, and the kernel takes this state size N (the native one up to 256).
 */
export function canFuseMixer(stateSize?: number): boolean {
  return canFuse(MAMBA_MIXER_KERNEL, { stateSize });
}

/** What a call carries besides the weights: padding, the cached states and A = -exp(A_log). */
export interface FusedMixerState {
  /** [B, L], 1 for real tokens, 0 for padding. */
  keep?: tf.Tensor;
  /** Conv window [B, D, d_conv] and SSM state [B, D, N] from the cache. */
  conv?: tf.Tensor;
  ssm?: tf.Tensor;
  A: tf.Tensor;
  /** The block's pre-norm: the kernel then returns hidden + mixer(preNorm(hidden)). */
  preNorm?: RMSNorm;
}

/**
 * One call of the backend's Mamba mixer kernel: the same math as MambaMixer's op-by-op forward
 * (in_proj, conv + SiLU, x_proj, dt_proj + softplus, scan, gate, out_proj) with the mixer's own
 * weights. Returns the output [B, L, H] and the new conv and SSM states.
 */
export function fusedMixer(mixer: MambaMixer, hidden: tf.Tensor, state: FusedMixerState): { out: tf.Tensor; conv: tf.Tensor; ssm: tf.Tensor } {
  const optional: Record<string, tf.Tensor | undefined> = {
    inBias: mixer.inProj.bias,
    convBias: mixer.convBias,
    outBias: mixer.outProj.bias,
    dtNorm: mixer.dtNorm?.weight,
    bNorm: mixer.bNorm?.weight,
    cNorm: mixer.cNorm?.weight,
    keep: state.keep,
    convState: state.conv,
    ssmState: state.ssm,
    preNorm: state.preNorm?.weight,
  };
  const inputs: tf.NamedTensorMap = {
    hidden,
    inWeight: mixer.inProj.weight,
    convWeight: mixer.convWeight,
    xWeight: mixer.xProj.weight,
    dtWeight: mixer.dtProj.weight,
    dtBias: mixer.dtProj.bias!,
    A: state.A,
    D: mixer.D,
    outWeight: mixer.outProj.weight,
  };
  for (const [name, t] of Object.entries(optional)) if (t !== undefined) inputs[name] = t;
  const attrs = { normEps: mixer.options.innerNormEps ?? 0, preNormEps: state.preNorm?.eps ?? 0, addResidual: state.preNorm !== undefined };
  const [out, conv, ssm] = tf.engine().runKernel(MAMBA_MIXER_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
  return { out: out!, conv: conv!, ssm: ssm! };
}
