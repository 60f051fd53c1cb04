import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

import { cpuKernel, values, type KernelArgs } from './kernel-utils.js';

/**
 * GatherV2 (embedding lookups) as whole-row copies. The cpu kernel computes a multi-dimensional
 * index per element; copying each gathered slice with TypedArray.set is memcpy-fast, so this one
 * needs no native code. float32 with batchDims 0 only; everything else goes to the cpu kernel.
 */
function gatherKernel(): KernelFunc {
  const cpu = cpuKernel(tf.GatherV2);
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const { x, indices } = inputs as { x: TensorInfo; indices: TensorInfo };
    const { axis, batchDims } = attrs as unknown as tf.GatherV2Attrs;
    if (x.dtype !== 'float32' || (batchDims ?? 0) !== 0) return cpu({ inputs, backend, attrs });
    const ax = tf.util.parseAxisParam(axis, x.shape)[0];
    const axisDim = x.shape[ax];
    const idx = backend.data.get(indices.dataId).values as ArrayLike<number>;
    for (let i = 0; i < idx.length; i++) {
      const index = idx[i];
      // The cpu kernel's check and message.
      tf.util.assert(index <= axisDim - 1 && index >= 0, () => `GatherV2: the index value ${index} is not in [0, ${axisDim - 1}]`);
    }
    const outer = tf.util.sizeFromShape(x.shape.slice(0, ax));
    const inner = tf.util.sizeFromShape(x.shape.slice(ax + 1));
    const xs = values(backend, x);
    const out = new Float32Array(outer * idx.length * inner);
    for (let o = 0, at = 0; o < outer; o++) {
      const base = o * axisDim * inner;
      for (let i = 0; i < idx.length; i++, at += inner) {
        const from = base + idx[i] * inner;
        out.set(xs.subarray(from, from + inner), at);
      }
    }
    const shape = [...x.shape.slice(0, ax), ...indices.shape, ...x.shape.slice(ax + 1)];
    return backend.makeTensorInfo(shape, 'float32', out);
  }) as unknown as KernelFunc;
}

export function gatherKernels(backendName: string): KernelConfig[] {
  return [{ kernelName: tf.GatherV2, backendName, kernelFunc: gatherKernel() }];
}
