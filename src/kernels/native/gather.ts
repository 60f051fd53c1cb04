import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

import type { NativeAddon } from './addon.js';
import { allocate, cpuKernel, kernelConfigs, values, type KernelArgs } from './kernel-utils.js';

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
    const out = allocate(backend, outer * idx.length * inner);
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

/**
 * UnsortedSegmentSum, the gradient of GatherV2 (every embedding lookup), as one pass adding each
 * row into its segment: out[s, ...] = Σ_{i: ids[i] = s} x[i, ...]; ids outside [0, numSegments)
 * are dropped, as in TF. The cpu kernel instead runs an equal-mask, multiply and sum over the
 * whole input once per segment: 32000 of them for a 32000-token vocabulary, which made it ~23 s of
 * a 26 s training step for 8 tokens. float32 only; other dtypes go to the cpu kernel. int32 ids
 * (as gather's gradient gives them) go to the addon; others to the same loop in JS.
 */
function unsortedSegmentSumKernel(addon: NativeAddon): KernelFunc {
  const cpu = cpuKernel(tf.UnsortedSegmentSum);
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
    if (x.dtype !== 'float32') return cpu({ inputs, backend, attrs });
    const { numSegments } = attrs as unknown as tf.UnsortedSegmentSumAttrs;
    const ids = backend.data.get(segmentIds.dataId).values as ArrayLike<number>;
    const xs = values(backend, x);
    const inner = ids.length === 0 ? 0 : xs.length / ids.length;
    // A pooled buffer (a fresh one the size of an embedding table page-faults on every step),
    // zeroed and filled by the addon, output rows split over the threads.
    const out = allocate(backend, numSegments * inner);
    if (ids instanceof Int32Array) {
      if (out.length > 0) addon.segmentSum(xs, ids, out, inner, numSegments);
    } else {
      out.fill(0);
      for (let i = 0; i < ids.length; i++) {
        const segment = ids[i]!;
        if (!(segment >= 0 && segment < numSegments)) continue;
        const [from, to] = [i * inner, segment * inner];
        for (let j = 0; j < inner; j++) out[to + j]! += xs[from + j]!;
      }
    }
    return backend.makeTensorInfo([numSegments, ...x.shape.slice(segmentIds.shape.length)], 'float32', out);
  }) as unknown as KernelFunc;
}

export function gatherKernels(addon: NativeAddon, backendName: string): KernelConfig[] {
  return kernelConfigs(backendName, [
    [tf.GatherV2, gatherKernel()],
    [tf.UnsortedSegmentSum, unsortedSegmentSumKernel(addon)],
  ]);
}
