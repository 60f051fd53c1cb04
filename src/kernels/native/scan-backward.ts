import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

import { FUSED, requireShape, scanKernelInputs } from '../contract.js';
import * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from './addon.js';
import { allocate, kernelConfigs, values, type KernelArgs } from './kernel-utils.js';

/**
 * The selective scan's backward pass (native/src/scan-backward.c): a reverse scan per channel,
 * recomputing that channel's states in a forward sweep, so nothing [B, L, D, N] is ever held;
 * channels split across both cores.
 */
function selectiveScanBackwardKernel(addon: NativeAddon): KernelFunc {
  return (({ inputs, backend }: KernelArgs) => {
    const kernel = FUSED.selectiveScanBackward;
    const { batch, len, dim, nstate: n, ...t } = scanKernelInputs(kernel, inputs);
    const { dy, dh } = inputs as { dy?: TensorInfo; dh?: TensorInfo };
    requireShape(kernel, 'dy', dy, [batch, len, dim]);
    requireShape(kernel, 'dh', dh, [batch, dim, n]);
    const grads = [t.u, t.delta, t.A, t.B, t.C, t.D].map((x) => allocate(backend, tf.util.sizeFromShape(x.shape)));
    const dh0 = allocate(backend, batch * dim * n);
    const orNull = (x: TensorInfo | undefined) => (x === undefined ? null : values(backend, x));
    if (batch * len * dim > 0) {
      const [u, delta, A, B, C, D] = [t.u, t.delta, t.A, t.B, t.C, t.D].map((x) => values(backend, x)) as Float32Array[];
      addon.selectiveScanBackward(u!, delta!, A!, B!, C!, D!, orNull(t.h0), orNull(dy), orNull(dh), ...(grads as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array]), dh0, batch, len, dim, n);
    } else {
      for (const g of [...grads, dh0]) g.fill(0);
    }
    return [
      ...[t.u, t.delta, t.A, t.B, t.C, t.D].map((x, i) => backend.makeTensorInfo(x.shape, 'float32', grads[i]!)),
      backend.makeTensorInfo([batch, dim, n], 'float32', dh0),
    ];
  }) as unknown as KernelFunc;
}

/** The backward kernels of the native backend (the gradients that ops register call them). */
export function backwardKernels(addon: NativeAddon, backendName: string): KernelConfig[] {
  return kernelConfigs(backendName, [[FUSED.selectiveScanBackward, selectiveScanBackwardKernel(addon)]]);
}
