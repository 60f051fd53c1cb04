import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

import { FUSED, requireFloat32, requireShape } from '../contract.js';
import type { NativeAddon } from './addon.js';
import { allocate, kernelConfigs, values, type Backend, type KernelArgs } from './kernel-utils.js';

/**
 * The buffer of `t` for the kernel to overwrite and return as its output, where the backend can
 * tell that nothing else sees it (NativeBackend.takeOver); otherwise undefined.
 */
function takeOver(backend: Backend, t: TensorInfo): Float32Array | undefined {
  const pool = backend as Backend & { takeOver?: (dataId: object) => Float32Array | undefined };
  return pool.takeOver?.(t.dataId);
}

/**
 * Adam's update of one weight in one pass over value, gradient and both moments (see FUSED.adam),
 * in C over both cores (native/src/train.c); tfjs's optimizer makes ten weight-sized passes.
 * With `inPlace` the outputs are the inputs' own buffers wherever the backend can tell no one
 * else sees them (a weight the optimizer has updated before, not read out since), so a step
 * touches no new memory; otherwise pooled buffers, whose every element the kernel writes.
 */
function adamKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const { value, gradient, m, v } = inputs as Record<'value' | 'gradient' | 'm' | 'v', TensorInfo>;
    requireFloat32(FUSED.adam, inputs);
    for (const [name, t] of Object.entries({ gradient, m, v })) requireShape(FUSED.adam, name, t, value.shape);
    const { learningRate, beta1, beta2, epsilon, correction1, correction2, weightDecay = 0, inPlace = 0 } = attrs as Record<string, number>;
    const [w, g, m0, v0] = [value, gradient, m, v].map((t) => values(backend, t)) as [Float32Array, Float32Array, Float32Array, Float32Array];
    const [w1, m1, v1] = [value, m, v].map((t) => (inPlace ? takeOver(backend, t) : undefined) ?? allocate(backend, w.length)) as [Float32Array, Float32Array, Float32Array];
    addon.adam(w, g, m0, v0, w1, m1, v1, learningRate!, beta1!, beta2!, epsilon!, correction1!, correction2!, weightDecay);
    return [w1, m1, v1].map((out) => backend.makeTensorInfo(value.shape, 'float32', out));
  }) as unknown as KernelFunc;
}

export function adamKernels(addon: NativeAddon, backendName: string): KernelConfig[] {
  return kernelConfigs(backendName, [[FUSED.adam, adamKernel(addon)]]);
}
