import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

import { FUSED, requireFloat32, requireShape } from '../contract.js';
import { allocate, kernelConfigs, values, type KernelArgs } from './kernel-utils.js';

/**
 * Adam's update of one weight in one pass over value, gradient and both moments (see FUSED.adam);
 * tfjs's optimizer makes ten weight-sized passes, ~0.9 s per step for a 32000 × 512 embedding
 * and LM head on this machine.
 */
function adamKernel(): KernelFunc {
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const { value, gradient, m, v } = inputs as Record<'value' | 'gradient' | 'm' | 'v', TensorInfo>;
    requireFloat32(FUSED.adam, inputs);
    for (const [name, t] of Object.entries({ gradient, m, v })) requireShape(FUSED.adam, name, t, value.shape);
    const { learningRate, beta1, beta2, epsilon, correction1, correction2 } = attrs as Record<string, number>;
    const [w, g, m0, v0] = [value, gradient, m, v].map((t) => values(backend, t));
    // Pooled buffers (every element is written): fresh 64 MB arrays would page-fault on each step.
    const [w1, m1, v1] = [0, 1, 2].map(() => allocate(backend, w.length));
    for (let i = 0; i < w.length; i++) {
      const gi = g[i]!;
      const mi = beta1 * m0[i]! + (1 - beta1) * gi;
      const vi = beta2 * v0[i]! + (1 - beta2) * gi * gi;
      m1![i] = mi;
      v1![i] = vi;
      w1![i] = w[i]! - (learningRate * (mi / correction1)) / (Math.sqrt(vi / correction2) + epsilon);
    }
    return [w1, m1, v1].map((out) => backend.makeTensorInfo(value.shape, 'float32', out!));
  }) as unknown as KernelFunc;
}

export function adamKernels(backendName: string): KernelConfig[] {
  return kernelConfigs(backendName, [[FUSED.adam, adamKernel()]]);
}
