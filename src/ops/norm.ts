import * as tf from '@tensorflow/tfjs-core';
import { FUSED } from '../kernels/contract.js';
import { canFuse, recordingGradients, runFused, runFusedOutputs } from './dispatch.js';

/** The norms over the last dimension: LayerNorm (BERT) and RMSNorm (Llama, Mamba, Jamba). */
export type NormKind = 'layernorm' | 'rmsnorm';

/**
 * `norm(x + residual)` (just `norm(x)` without `residual`) over the last dimension:
 * - `layernorm`: `(s - mean) / sqrt(var + eps) * weight + bias`
 * - `rmsnorm`: `s / sqrt(mean(s²) + eps) * weight` (`bias` is ignored)
 *
 * In one fused kernel where the backend has it; the residual sum is made inside the kernel when
 * both are float32 tensors of one shape.
 */
export function norm(
  kind: NormKind,
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor | undefined,
  eps: number,
  residual?: tf.Tensor,
): tf.Tensor {
  if (residual !== undefined && !fusableSum(x, residual)) return tf.tidy(() => norm(kind, x.add(residual), weight, bias, eps));
  if (kind === 'layernorm') {
    if (canFuse(FUSED.layerNorm)) return fusedNorm('layernorm', { x, residual, weight, bias }, eps);
    return tf.tidy(() => {
      const sum = residual === undefined ? x : x.add(residual);
      const { mean, variance } = tf.moments(sum, -1, true);
      const normed = sum.sub(mean).mul(tf.rsqrt(variance.add(eps))).mul(weight);
      return bias === undefined ? normed : normed.add(bias);
    });
  }
  if (canFuse(FUSED.rmsNorm)) return fusedNorm('rmsnorm', { x, residual, weight }, eps);
  return tf.tidy(() => {
    const sum = residual === undefined ? x : x.add(residual);
    return sum.mul(tf.rsqrt(sum.square().mean(-1, true).add(eps))).mul(weight);
  });
}

/** Whether a fused norm kernel can add `residual` to `x` itself (it takes float32 of one shape). */
function fusableSum(x: tf.Tensor, residual: tf.Tensor): boolean {
  return tf.util.arraysEqual(x.shape, residual.shape) && x.dtype === 'float32' && residual.dtype === 'float32';
}

interface NormInputs {
  x: tf.Tensor;
  residual?: tf.Tensor;
  weight?: tf.Tensor;
  bias?: tf.Tensor;
}

/**
 * The backend's norm kernel; while gradients are recorded, with a gradient that runs its backward
 * kernel once for every input (dispatch.ts lets the kernel run then only where that exists).
 */
function fusedNorm(kind: NormKind, inputs: NormInputs, epsilon: number): tf.Tensor {
  const forward = ({ x, residual, weight, bias }: NormInputs): tf.Tensor =>
    kind === 'layernorm'
      ? runFused(FUSED.layerNorm, { x, residual, gamma: weight, beta: bias }, { epsilon })
      : runFused(FUSED.rmsNorm, { x, residual, weight }, { epsilon });
  if (!recordingGradients()) return forward(inputs);
  // customGrad takes tensors only: the inputs present, by name, in a fixed order.
  const names = (['x', 'residual', 'weight', 'bias'] as const).filter((name) => inputs[name] !== undefined && (kind === 'layernorm' || name !== 'bias'));
  const named = (tensors: tf.Tensor[]) => Object.fromEntries(names.map((name, i) => [name, tensors[i]!])) as unknown as NormInputs;
  const withGradient = tf.customGrad(((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    // Saved: the backward pass runs after the forward's scopes have disposed what they made.
    save(args as tf.Tensor[]);
    return {
      value: forward(named(args as tf.Tensor[])),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const { x, residual, weight } = named(saved);
        const [ds, dweight, dbias] =
          kind === 'layernorm'
            ? runFusedOutputs(FUSED.layerNormBackward, { x, residual, gamma: weight, dy }, { epsilon })
            : runFusedOutputs(FUSED.rmsNormBackward, { x, residual, weight, dy }, { epsilon });
        // residual's gradient equals x's: a clone, so that each input owns its gradient tensor.
        const grads: Record<string, () => tf.Tensor> = { x: () => ds!, residual: () => ds!.clone(), weight: () => dweight!, bias: () => dbias! };
        const out = names.map((name) => grads[name]!());
        for (const t of [dweight, dbias]) if (t !== undefined && !out.includes(t)) t.dispose();
        return out;
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return withGradient(...names.map((name) => inputs[name]!));
}
