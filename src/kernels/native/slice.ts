import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

import { cpuKernel, kernelConfigs, type Backend, type KernelArgs } from './kernel-utils.js';

type Values = Float32Array | Int32Array | Uint8Array;

/**
 * Copy the box `begin .. begin + size` of a row-major tensor as runs along the last axis. The
 * cpu backend's Slice and SplitV compute a multi-dimensional index per element, which made
 * splitting Mamba's in_proj output take seconds; TypedArray.set per run is memcpy-fast.
 */
function copyBox(xs: Values, shape: number[], begin: number[], size: number[]): Values {
  const rank = shape.length;
  const out = new (xs.constructor as new (n: number) => Values)(tf.util.sizeFromShape(size));
  if (out.length === 0) return out;
  const strides = tf.util.computeStrides(shape); // rank - 1 entries
  const run = size[rank - 1]!;
  const rows = out.length / run;
  const index = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  for (let row = 0, at = 0; row < rows; row++, at += run) {
    let from = begin[rank - 1]!;
    for (let d = 0; d < rank - 1; d++) from += (begin[d]! + index[d]!) * strides[d]!;
    out.set(xs.subarray(from, from + run), at);
    for (let d = rank - 2; d >= 0; d--) {
      if (++index[d]! < size[d]!) break;
      index[d] = 0;
    }
  }
  return out;
}

function sliceOf(backend: Backend, x: TensorInfo, begin: number[], size: number[]): TensorInfo {
  const xs = backend.data.get(x.dataId).values as Values;
  return backend.makeTensorInfo(size, x.dtype, copyBox(xs, x.shape, begin, size));
}

function sliceKernel(): KernelFunc {
  const cpu = cpuKernel(tf.Slice);
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const { x } = inputs as { x: TensorInfo };
    if (x.dtype === 'string' || x.shape.length === 0) return cpu({ inputs, backend, attrs });
    const { begin, size } = attrs as unknown as tf.SliceAttrs;
    const [b, s] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    tf.slice_util.assertParamsValid(x as tf.Tensor, b, s);
    return sliceOf(backend, x, b, s);
  }) as unknown as KernelFunc;
}

function splitKernel(): KernelFunc {
  const cpu = cpuKernel(tf.SplitV);
  return (({ inputs, backend, attrs }: KernelArgs) => {
    const { x } = inputs as { x: TensorInfo };
    if (x.dtype === 'string' || x.shape.length === 0) return cpu({ inputs, backend, attrs });
    const { numOrSizeSplits, axis } = attrs as unknown as tf.SplitVAttrs;
    const ax = tf.util.parseAxisParam(axis, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, ax);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((piece) => {
      const size = [...x.shape];
      size[ax] = piece;
      const out = sliceOf(backend, x, [...begin], size);
      begin[ax]! += piece;
      return out;
    });
  }) as unknown as KernelFunc;
}

export function sliceKernels(backendName: string): KernelConfig[] {
  return kernelConfigs(backendName, [
    [tf.Slice, sliceKernel()],
    [tf.SplitV, splitKernel()],
  ]);
}
